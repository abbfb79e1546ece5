"""Training inputs: ragtune QA JSONL, chat JSONL (OpenAI `messages`) and SQuAD JSON, validated line by line.

Every accepted record becomes a `ragtune.types.Example`; every rejected one becomes a line in
`LoadedExamples.errors` of the form "FILE:LINE: reason", so a user can fix the file. Nothing valid at all is an
`InputError` (the run stops before any model is loaded).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import InputError, require_input_file
from ragtune.types import Example

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 4000
MAX_ANSWER_CHARS = 4000
MAX_CONTEXT_CHARS = 20000
_QA_KNOWN = {"question", "answer", "answers", "doc_id", "chunk_id", "context", "id", "qid"}


@dataclass(frozen=True)
class LoadedExamples:
    """The valid examples of a file, and one "FILE:LINE: reason" string per rejected record."""

    examples: list[Example]
    errors: list[str]
    format: str = ""  # "qa" | "chat" | "squad"


def load_examples(path: str | Path, *, allow_empty: bool = False) -> LoadedExamples:
    """Load and validate training examples from a QA JSONL, chat JSONL or SQuAD JSON file.

    The format is detected per file (.json = SQuAD) and per line (a `messages` key = chat). Raises InputError
    when the file is missing or unreadable, or (unless allow_empty) when no valid example remains.

    >>> loaded = load_examples("qa.jsonl")  # doctest: +SKIP
    >>> loaded.examples[0].question, loaded.errors  # doctest: +SKIP
    """
    path = Path(path)
    require_input_file(path, "training file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(f"cannot read training file {str(path)!r}: {exc.strerror}") from exc
    if path.suffix.lower() == ".json":
        loaded = _load_squad(text, str(path))
    else:
        loaded = _load_jsonl(text, str(path))
    for error in loaded.errors[:20]:  # the caller reports them to the user (the CLI once per line)
        logger.debug("skipped %s", error)
    if not loaded.examples and not allow_empty:
        shown = "; ".join(loaded.errors[:5]) or "the file is empty"
        more = f" (and {len(loaded.errors) - 5} more)" if len(loaded.errors) > 5 else ""
        raise InputError(f"no valid training examples in {str(path)!r}: {shown}{more}")
    return loaded


def _load_jsonl(text: str, name: str) -> LoadedExamples:
    examples: list[Example] = []
    errors: list[str] = []
    formats: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{name}:{number}: invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(record, dict):
            errors.append(f"{name}:{number}: expected a JSON object, got {type(record).__name__}")
            continue
        try:
            if "messages" in record:
                example = _from_chat(record)
                formats.add("chat")
            else:
                example = _from_qa(record)
                formats.add("qa")
        except ValueError as exc:
            errors.append(f"{name}:{number}: {exc}")
            continue
        examples.append(example)
    return LoadedExamples(examples, errors, "+".join(sorted(formats)))


def _text_field(record: dict[str, Any], key: str, limit: int, *, required: bool) -> str:
    value = record.get(key)
    if value is None:
        if required:
            raise ValueError(f"missing field {key!r}")
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # numeric answers ("1998", 42) are common and harmless
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise ValueError(f"field {key!r} is empty")
    if len(value) > limit:
        raise ValueError(f"field {key!r} is too long ({len(value)} characters > {limit})")
    return value


def _from_qa(record: dict[str, Any]) -> Example:
    question = _text_field(record, "question", MAX_QUESTION_CHARS, required=True)
    answers_raw = record.get("answers")
    answers: tuple[str, ...] = ()
    if answers_raw is not None:
        if not isinstance(answers_raw, list) or not all(isinstance(a, (str, int, float)) for a in answers_raw):
            raise ValueError(f"field 'answers' must be a list of strings, got {answers_raw!r:.80}")
        answers = tuple(dict.fromkeys(str(a).strip() for a in answers_raw if str(a).strip()))
    if "answer" in record or not answers:
        answer = _text_field(record, "answer", MAX_ANSWER_CHARS, required=True)
    else:
        answer = answers[0]
    if answers and answer not in answers:
        answers = (answer, *answers)
    metadata = {k: v for k, v in record.items() if k not in _QA_KNOWN}
    return Example(
        question=question,
        answer=answer,
        doc_id=_text_field(record, "doc_id", 1000, required=False),
        chunk_id=_text_field(record, "chunk_id", 1000, required=False),
        context=_text_field(record, "context", MAX_CONTEXT_CHARS, required=False),
        answers=answers,
        qid=str(record.get("id", record.get("qid", ""))),
        metadata=metadata,
    )


def _from_chat(record: dict[str, Any]) -> Example:
    """The last user turn is the question and the last assistant turn after it the answer."""
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        raise ValueError("field 'messages' must be a non-empty list")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise ValueError(f"messages[{i}] must be an object with a string 'content'")
        if message.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"messages[{i}] has an unknown role {message.get('role')!r}")
    if messages[-1]["role"] != "assistant":
        raise ValueError("the last message must be the assistant's answer")
    users = [m for m in messages[:-1] if m["role"] == "user"]
    if not users:
        raise ValueError("no user message before the assistant's answer")
    wrapped = {"question": users[-1]["content"], "answer": messages[-1]["content"]}
    example = _from_qa(wrapped)
    extra = {k: v for k, v in record.items() if k != "messages"}
    return Example(
        question=example.question,
        answer=example.answer,
        doc_id=str(record.get("doc_id", "")),
        qid=str(record.get("id", "")),
        metadata={**extra, "messages": messages},
    )


def _load_squad(text: str, name: str) -> LoadedExamples:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError(f"{name}: not SQuAD format (expected {{'data': [{{'title', 'paragraphs': [...]}}]}})")
    examples: list[Example] = []
    errors: list[str] = []
    for a, article in enumerate(data["data"]):
        title = str(article.get("title", f"article-{a}")) if isinstance(article, dict) else f"article-{a}"
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            errors.append(f"{name}:data[{a}]: missing 'paragraphs' list")
            continue
        for p, paragraph in enumerate(paragraphs):
            where = f"{name}:data[{a}].paragraphs[{p}]"
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str) or not context.strip():
                errors.append(f"{where}: missing or empty 'context'")
                continue
            for q, qa in enumerate(paragraph.get("qas") or []):
                try:
                    if not isinstance(qa, dict):
                        raise ValueError("expected an object")
                    texts = [x.get("text") for x in qa.get("answers") or [] if isinstance(x, dict)]
                    record = {"question": qa.get("question"), "answers": [t for t in texts if isinstance(t, str)]}
                    if not record["answers"]:
                        raise ValueError("no answers (SQuAD v2 unanswerable questions are not training data)")
                    example = _from_qa(record)
                except ValueError as exc:
                    errors.append(f"{where}.qas[{q}]: {exc}")
                    continue
                # Same doc id as ragtune.ingest gives a SQuAD paragraph, so RAFT finds the oracle chunk.
                examples.append(
                    Example(
                        question=example.question,
                        answer=example.answer,
                        answers=example.answers,
                        doc_id=f"{title}#{p}",
                        context=context.strip(),
                        qid=str(qa.get("id", "")),
                        metadata={"article": title},
                    )
                )
    return LoadedExamples(examples, errors, "squad")


def _group_key(example: Example) -> str:
    if example.doc_id:
        return example.doc_id
    if example.context:
        return "context:" + hashlib.sha256(example.context.encode()).hexdigest()
    return "question:" + example.question


def split_by_document(
    examples: Sequence[Example], test_fraction: float = 0.2, seed: int = 0, *, by_document: bool = True
) -> tuple[list[Example], list[Example]]:
    """Split into (train, test) so that no test question shares a source document with a training one.

    Documents are shuffled with `seed` and moved to the test side until it holds about `test_fraction` of the
    examples. Examples without doc_id are grouped by their context, else stand alone. by_document=False splits
    example by example instead (when asked). Original order is kept within each side.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise InputError(f"test_fraction must be in [0, 1), got {test_fraction}")
    keys = [_group_key(e) if by_document else str(i) for i, e in enumerate(examples)]
    groups = sorted(set(keys))
    random.Random(seed).shuffle(groups)
    sizes: dict[str, int] = {}
    for key in keys:
        sizes[key] = sizes.get(key, 0) + 1
    target = test_fraction * len(examples)
    test_groups: set[str] = set()
    taken = 0
    for key in groups:
        if taken >= target:
            break
        # Stop rather than overshoot by more than half a group (keeps the fraction honest for big documents).
        if taken and taken + sizes[key] - target > target - taken:
            break
        test_groups.add(key)
        taken += sizes[key]
    train = [e for e, k in zip(examples, keys) if k not in test_groups]
    test = [e for e, k in zip(examples, keys) if k in test_groups]
    return train, test


def examples_hash(examples: Sequence[Any]) -> str:
    """A stable sha256 over the content of a list of dataclass records (Examples or TrainExamples)."""
    from dataclasses import asdict

    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps(asdict(example), sort_keys=True, ensure_ascii=False, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def write_examples_jsonl(examples: Sequence[Example], path: str | Path) -> Path:
    """Write Examples as ragtune QA JSONL (atomically); `load_examples` reads them back unchanged."""
    from ragtune.atomic import write_jsonl_atomic

    return write_jsonl_atomic(
        ({"question": e.question, "answer": e.answer, "answers": list(e.answers), "doc_id": e.doc_id,
          "chunk_id": e.chunk_id, "context": e.context, "id": e.qid, **e.metadata} for e in examples),
        path,
    )
