"""Serve test helpers: a hashing-embedder index, a scripted generator, and an app built from them."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from ragtune.config import EmbedConfig, IndexConfig
from ragtune.types import Document, Generation

ADMIN_KEY = "admin-key-0001"
HR_KEY = "hr-key-000001"
ENG_KEY = "eng-key-00001"
PLAIN_KEY = "plain-key-0001"
KEY_ENTRIES = [f"{ADMIN_KEY}=admin", f"{HR_KEY}=hr", f"{ENG_KEY}=eng,ops", PLAIN_KEY]

DOCS = [
    Document("leave.md", "Staff get 27 days of annual leave per year. Leave requests go to your team lead.", "Leave policy"),
    Document("boat.md", "The research vessel Pelling Gull sails from Lantern Point every Monday at dawn.", "Vessel schedule"),
    Document("salaries.md", "Salary bands are reviewed each March by the pay committee.", "Salary review",
             metadata={"groups": ["hr"]}),
    Document("deploy.md", "Deployments to the sensor grid happen on Thursdays after the stand-up.", "Deploy process",
             metadata={"groups": ["eng"]}),
]

_SAY = re.compile(r"\b(?:say|answer|reply|respond)\b(?: only)?(?: with)?\s*[:\"“']\s*([^\"”'\n]+)", re.IGNORECASE)
_FIRST_SOURCE = re.compile(r"^\[1\] (?:[^:\n]*: )?(.*?)(?=\n\n\[2\]|\n\nQuestion:|\Z)", re.MULTILINE | re.DOTALL)


class ScriptedGenerator:
    """A fake LLM: answers with the start of source [1] and cites it. With `gullible`, it obeys any
    'say "X"' instruction found in its prompt, as a naive model would — the screening tests rely on that."""

    batch_size = 8

    def __init__(self, model_id: str = "scripted", gullible: bool = False, delay_s: float = 0.0):
        self.model_id = model_id
        self.gullible = gullible
        self.delay_s = delay_s
        self.prompts: list[str] = []
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    def generate(self, batch, max_new_tokens: int = 64):
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            self.batch_sizes.append(len(batch))
            self.prompts.extend(m[-1]["content"] for m in batch)
        out = []
        for messages in batch:
            prompt = messages[-1]["content"]
            obeyed = _SAY.search(prompt) if self.gullible else None
            if obeyed:
                out.append(Generation(obeyed.group(1).strip(), 10, 3))
                continue
            first = _FIRST_SOURCE.search(prompt)
            body = " ".join(line for line in first.group(1).splitlines() if not line.startswith("#")) if first else ""
            text = f"{' '.join(body.split())[:80].strip()} [1]" if body.strip() else "I do not know."
            out.append(Generation(text, len(prompt.split()), len(text.split())))
        return out


def make_index(folder: Path, docs=DOCS):
    from ragtune.index import HashEmbedder, Index

    index = Index.create(folder, IndexConfig(embed=EmbedConfig(model="hash")), embedder=HashEmbedder())
    if docs:
        index.add_documents(list(docs))
    return index


def make_app(tmp_path: Path, *, keys=KEY_ENTRIES, arms=("rag",), generator=None, docs=DOCS, index=None, **settings):
    from ragtune.serve.app import create_app
    from ragtune.serve.auth import KeyStore, parse_key_entries
    from ragtune.serve.settings import ServeSettings

    index = index if index is not None else make_index(tmp_path / "index", docs)
    generator = generator or ScriptedGenerator()
    app = create_app(
        ServeSettings(index=str(index.path), arms=arms, **settings),
        index=index,
        generators={arm: generator for arm in arms},
        keys=KeyStore(parse_key_entries(keys, "test")),
    )
    return app, index, generator


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class LiveServer:
    """Run an app with uvicorn on 127.0.0.1 (a free port) in a background thread: `with LiveServer(app) as url:`."""

    def __init__(self, app):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
