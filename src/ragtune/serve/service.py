"""What the HTTP routes call: access-filtered retrieval, screening, batched answers and document writes.

Everything here is synchronous and thread-safe; routes run it in the thread pool (retrieval, writes) or
through the generation worker (answers), so the event loop never blocks.

Access control happens BEFORE ranking: the caller's visible documents become a `doc_id` filter, which the
retriever turns into a row mask before scoring. Hits are then checked once more against the chunk's own
metadata (same index state as the ranking), so a document whose groups changed mid-request cannot leak.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any

from ragtune.arms import ARMS
from ragtune.errors import ConfigError, IndexBusyError, InputError
from ragtune.generate.base import Generator
from ragtune.graph import follow_index_commits
from ragtune.pipeline import AnswerSettings, answer_from_hits
from ragtune.retrieve import open_retriever
from ragtune.access import ACCESS_FIELD
from ragtune.serve.auth import GROUPS_FIELD, Caller, document_groups
from ragtune.serve.metrics import Metrics
from ragtune.generate.screening import screen_hits
from ragtune.serve.settings import ServeSettings
from ragtune.serve.worker import GenerationWorker, Job
from ragtune.types import Document, Hit, Prediction

log = logging.getLogger(__name__)

RELOAD_EVERY_S = 0.5  # how often a store index is asked for commits made by another process (our own are immediate)


@dataclass(frozen=True)
class Retrieved:
    """Hits for one query after access filtering and screening, with the screening flags."""

    hits: list[Hit]
    flags: list[dict]
    retrieve_ms: float = 0.0


class ServeService:
    """The loaded index, generators per arm, generation worker and document writer of one server."""

    def __init__(self, settings: ServeSettings, index: Any, generators: Mapping[str, Generator], metrics: Metrics):
        self.settings = settings
        self.index = index
        self.generators = dict(generators)
        self.metrics = metrics
        self.arm_specs = {arm: ARMS[arm] for arm in settings.arms}
        missing = [arm for arm in settings.arms if arm not in self.generators]
        if missing:
            raise ConfigError(f"no generator for arm(s) {missing}")
        if index is None and any(spec.retrieval for spec in self.arm_specs.values()):
            raise ConfigError(f"arms {list(settings.arms)} retrieve, but no --index was given")
        self._retriever = None if index is None else open_retriever(index, settings.retrieve_mode,
                                                                    **settings.retrieve_options())
        follow_index_commits()  # document uploads and deletes update an existing entity graph in the same commit
        # How each arm answers: the same AnswerSettings as `ask`/`compare` (passages cut with the index's embedder)
        self.answer_settings = {
            arm: AnswerSettings.resolve(settings.generate_config(arm), index.embedder if spec.retrieval else None)
            for arm, spec in self.arm_specs.items()
        }
        self._write_lock = threading.Lock()
        self.admitting = 0  # chat requests admitted but not yet queued (retrieving); see routes_openai
        self._last_reload = time.monotonic()
        self.worker = GenerationWorker(
            self._answer_batch,
            queue_size=settings.queue_size,
            max_batch=settings.max_batch,
            batch_wait_s=settings.batch_wait_ms / 1000.0,
            on_batch=lambda n: metrics.observe("ragtune_generation_batch_size", n),
        )

    # ---- reading -------------------------------------------------------------------------------------------
    def _fresh_index(self) -> Any:
        if self.index is None:
            raise InputError("this server has no index (start it with --index DIR)")
        now = time.monotonic()
        # commits by another process (e.g. `ragtune ingest`): a folder index checks on every request (one stat of
        # its manifest), a store index at most every RELOAD_EVERY_S (a query to the engine)
        if not getattr(self.index, "is_store", False) or now - self._last_reload > RELOAD_EVERY_S:
            self._last_reload = now
            self.index.reload()
        return self.index

    def visible_documents(self, caller: Caller) -> list[Any]:
        """DocumentInfo of every live document the caller may see."""
        return [d for d in self._fresh_index().documents() if caller.can_see(d.metadata)]

    def access_filter(self, caller: Caller) -> dict[str, list[str]] | None:
        """The pre-ranking filter for a caller: None for admins, else {ACCESS_FIELD: their groups}, which every
        index backend applies before ranking (no listing of the documents per request)."""
        if caller.is_admin:
            return None
        return {ACCESS_FIELD: sorted(caller.groups)}

    def warm_up(self) -> None:
        """Load what the first question would (the query encoder, the BM25 state, a +rerank mode's LLM) before the
        server takes requests: one retrieval, its hits dropped, so the first caller does not pay for the loading."""
        if self._retriever is not None:
            self._retriever.retrieve(["warm up"], k=1)

    def retrieve(self, caller: Caller, queries: list[str], k: int, filters: Mapping[str, Any] | None = None) -> list[Retrieved]:
        """Access-filtered (before ranking), access-checked (after) and screened hits for each query."""
        start = time.perf_counter()
        index = self._fresh_index()
        if len(index) == 0 or not queries:
            return [Retrieved([], []) for _ in queries]
        combined = {key: value for key, value in (filters or {}).items() if key != ACCESS_FIELD}
        combined.update(self.access_filter(caller) or {})  # the caller's own groups, whatever the request said
        raw = self._retriever.retrieve(list(queries), k=k, filters=combined or None)
        checked: list[list[Hit]] = []
        for hits in raw:
            allowed = [h for h in hits if caller.can_see(h.chunk.metadata)]
            if len(allowed) != len(hits):  # only possible if a document's groups changed mid-request
                self.metrics.inc("ragtune_acl_dropped_hits_total", len(hits) - len(allowed))
            checked.append(allowed)
        screened, flags = screen_hits(checked, self.settings.screening)
        for query_flags in flags:
            for flag in query_flags:
                self.metrics.inc("ragtune_screened_chunks_total", action=flag["action"])
        elapsed_ms = (time.perf_counter() - start) * 1000 / len(queries)
        return [Retrieved(h, f, elapsed_ms) for h, f in zip(screened, flags)]

    # ---- answering -----------------------------------------------------------------------------------------
    def prepare(self, caller: Caller, arm: str, question: str) -> Retrieved | None:
        """The screened sources for a question (None for a closed-book arm)."""
        if not self.arm_specs[arm].retrieval:
            return None
        return self.retrieve(caller, [question], self.settings.k)[0]

    def _answer_batch(self, arm: str, max_tokens: int, jobs: Sequence[Job]) -> list[Prediction]:
        """The screened hits of each job through `answer_from_hits`, with the arm's AnswerSettings."""
        hits = [job.hits or [] for job in jobs] if self.arm_specs[arm].retrieval else None
        settings = replace(self.answer_settings[arm], max_new_tokens=max_tokens, batch_size=len(jobs))
        generator = self.generators[arm]
        if len(jobs) == 1 and jobs[0].on_text is not None and settings.answer_pick == "joint" \
                and settings.answer_form != "free-or-span":
            # (evidence and free-or-span may generate twice: the kept answer is streamed when chosen)
            from ragtune.serve.streaming import StreamingGenerator

            generator = StreamingGenerator(generator, jobs[0].on_text)
        return answer_from_hits([job.question for job in jobs], hits, generator, settings, arm=arm)

    # ---- writing -------------------------------------------------------------------------------------------
    def put_document(self, doc: Document, create_only: bool = False) -> dict[str, Any]:
        """Add or replace one document in one atomic commit; returns what happened.

        create_only: InputError-like conflict (raised as FileExistsError) when the id already exists.
        """
        index = self._fresh_index()
        with self._writing():  # one writer at a time in this process; the index file lock guards the rest
            exists = any(d.doc_id == doc.doc_id for d in index.documents())
            if create_only and exists:
                raise FileExistsError(doc.doc_id)
            stats = index.add_documents([doc], lock_timeout_s=self.settings.index_write_timeout_s)
        status = "unchanged" if stats.unchanged else ("replaced" if stats.replaced else "added")
        self.metrics.inc("ragtune_document_writes_total", op=status)
        return {"id": doc.doc_id, "status": status, "chunks": stats.chunks_added, "generation": index.generation}

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """This server's one document writer at a time, waiting no longer than a write may (IndexBusyError)."""
        limit = self.settings.index_write_timeout_s
        if not self._write_lock.acquire(timeout=limit):
            raise IndexBusyError(f"another document write to this server's index is still running (waited {limit:g}s)",
                                 retry_after_s=limit)
        try:
            yield
        finally:
            self._write_lock.release()

    def delete_document(self, caller: Caller, doc_id: str) -> dict[str, Any]:
        """Delete one document (KeyError when it does not exist or the caller cannot see it)."""
        index = self._fresh_index()
        with self._writing():
            info = next((d for d in index.documents() if d.doc_id == doc_id), None)
            if info is None or not caller.can_see(info.metadata):
                raise KeyError(doc_id)
            removed = index.delete_documents([doc_id], lock_timeout_s=self.settings.index_write_timeout_s)
        self.metrics.inc("ragtune_document_writes_total", op="deleted")
        return {"id": doc_id, "deleted": True, "chunks_removed": removed, "generation": index.generation}


def document_record(info: Any, full_source: bool = True) -> dict[str, Any]:
    """The JSON shape of a document in GET /v1/documents. Without `full_source` (a caller who is not an admin) a
    file source is its name only: where the server's files live is not for every reader."""
    metadata = {k: v for k, v in info.metadata.items() if k != GROUPS_FIELD}
    source = info.source
    if not full_source and source and source != "api" and not source.startswith("upload:"):
        source = PurePath(source.replace("\\", "/")).name
    return {
        "id": info.doc_id,
        "object": "document",
        "title": info.title,
        "source": source,
        "chunks": info.n_chunks,
        "groups": sorted(document_groups(info.metadata)),
        "metadata": metadata,
    }
