"""The answer path with a fake retriever and a scripted generator (and once with the tiny real model)."""

from __future__ import annotations

import pytest

from ragtune.errors import BackendError, InputError
from ragtune.generate.prompts import SYSTEM_CLOSED, SYSTEM_RAG
from ragtune.pipeline import answer, citations, prediction_to_dict
from ragtune.types import Chunk, Generation, Hit

CORPUS = {
    "paris": ("Paris", "Paris is the capital of France."),
    "berlin": ("Berlin", "Berlin is the capital of Germany."),
    "eiffel": ("Eiffel Tower", "The Eiffel Tower was finished in 1889."),
}


class FakeRetriever:
    """Ranks the corpus by shared words with the query; records its calls."""

    def __init__(self):
        self.calls = []

    def retrieve(self, queries, k=10, filters=None):
        self.calls.append((list(queries), k, filters))
        out = []
        for query in queries:
            words = set(query.lower().replace("?", "").split())
            scored = sorted(CORPUS.items(), key=lambda item: -len(words & set(item[1][1].lower().rstrip(".").split())))
            out.append(
                [Hit(Chunk(f"{d}#0", d, text, title=title), 1.0 / (r + 1), rank=r) for r, (d, (title, text)) in enumerate(scored[:k])]
            )
        return out


class ScriptedGenerator:
    """Answers from a script keyed by a substring of the last user message; records batch sizes."""

    model_id = "scripted"

    def __init__(self, script, batch_size=2):
        self.script = script
        self.batch_size = batch_size
        self.batches = []

    def generate(self, batch, max_new_tokens=64):
        self.batches.append(batch)
        out = []
        for messages in batch:
            user = messages[-1]["content"]
            reply = next((r for key, r in self.script.items() if key in user.split("Question:")[-1]), "I don't know")
            out.append(Generation(text=reply, prompt_tokens=len(user.split()), completion_tokens=len(reply.split())))
        return out


SCRIPT = {"France": "Paris [1]", "Germany": "Berlin", "tower": "1889 [7]"}
QUESTIONS = ["What is the capital of France?", "What is the capital of Germany?", "When was the tower finished?"]


def test_rag_answers_in_order_with_hits_citations_and_batches():
    retriever, generator = FakeRetriever(), ScriptedGenerator(SCRIPT, batch_size=2)
    preds = answer(QUESTIONS, generator, retriever, k=2, filters={"doc_id": "x"}, arm="rag", qids=["a", "b", "c"])
    assert [p.answer for p in preds] == ["Paris", "Berlin", "1889"]
    assert retriever.calls == [(QUESTIONS, 2, {"doc_id": "x"})]  # one batched retrieval
    assert [len(b) for b in generator.batches] == [2, 1]
    assert all(b[0]["content"] == SYSTEM_RAG for batch in generator.batches for b in batch)
    assert [len(p.hits) for p in preds] == [2, 2, 2]
    assert preds[0].cited == (1,) and preds[1].cited == () and preds[2].cited == ()  # [7] is out of range
    assert [p.arm for p in preds] == ["rag"] * 3 and [p.qid for p in preds] == ["a", "b", "c"]
    assert preds[0].completion_tokens == 2 and preds[0].prompt_tokens > 5
    assert all(p.generate_ms >= 0 and p.retrieve_ms >= 0 for p in preds)


def test_citations_explicit_and_fallback():
    preds = answer(QUESTIONS, ScriptedGenerator(SCRIPT), FakeRetriever(), k=3)
    explicit = citations(preds[0])
    assert [(c["number"], c["doc_id"], c["cited"]) for c in explicit] == [(1, "paris", True)]
    assert set(explicit[0]) >= {"doc_id", "title", "chunk_id", "text", "score", "number"}
    # "Berlin" is not cited: the fallback finds the passage that contains it
    fallback = citations(preds[1])
    assert [(c["doc_id"], c["cited"]) for c in fallback] == [("berlin", False)]
    assert [c["doc_id"] for c in citations(preds[2])] == ["eiffel"]


def test_closed_book_has_no_hits_and_no_citations():
    generator = ScriptedGenerator(SCRIPT, batch_size=8)
    preds = answer(QUESTIONS, generator, None)
    assert generator.batches[0][0][0]["content"] == SYSTEM_CLOSED
    assert all(p.hits == () and p.retrieve_ms == 0.0 for p in preds)
    assert citations(preds[0]) == []


def test_json_shape():
    pred = answer(QUESTIONS[:1], ScriptedGenerator(SCRIPT), FakeRetriever(), k=2)[0]
    data = prediction_to_dict(pred, model="scripted")
    assert data["answer"] == "Paris"
    assert set(data["timings"]) == {"retrieve_ms", "generate_ms"}
    assert set(data["citations"][0]) >= {"doc_id", "title", "text", "score"}
    assert [s["number"] for s in data["sources"]] == [1, 2]


def test_input_validation():
    gen = ScriptedGenerator(SCRIPT)
    assert answer([], gen) == []
    with pytest.raises(InputError, match="single string"):
        answer("What?", gen)
    with pytest.raises(InputError, match="non-empty"):
        answer(["ok?", "  "], gen)
    with pytest.raises(InputError, match="qids"):
        answer(["ok?"], gen, qids=["a", "b"])


def test_generator_returning_too_few_answers_is_an_error():
    class Broken(ScriptedGenerator):
        def generate(self, batch, max_new_tokens=64):
            return super().generate(batch)[:-1]

    with pytest.raises(BackendError, match="1 answers for 2"):
        answer(QUESTIONS[:2], Broken(SCRIPT), None)


def test_pipeline_with_tiny_model(tiny_lm_dir):
    from ragtune.generate.hf import HFGenerator

    gen = HFGenerator(tiny_lm_dir, batch_size=2)
    preds = answer(QUESTIONS, gen, FakeRetriever(), k=2, max_new_tokens=4)
    assert len(preds) == 3 and all(0 < p.completion_tokens <= 4 for p in preds)
    assert all(len(citations(p)) >= 1 for p in preds)  # the fallback always shows a passage


def test_guided_style_adds_examples_and_cuts_sources_but_keeps_full_hits():
    from ragtune.generate.prompts import WORKED_EXAMPLES

    generator = ScriptedGenerator(SCRIPT, batch_size=8)
    generator.prompt_style = "guided"  # as load_generator sets them for an untuned local model
    generator.context_sentences = 3
    long_corpus = {**CORPUS, "paris": ("Paris", "Paris is the capital of France. It has many bridges. Rain is common.")}
    retriever = FakeRetriever()
    try:
        CORPUS.update(long_corpus)
        preds = answer(QUESTIONS[:1], generator, retriever, k=2)
    finally:
        CORPUS["paris"] = ("Paris", "Paris is the capital of France.")
    (messages,) = generator.batches[0]
    assert len(messages) == 2 + 2 * len(WORKED_EXAMPLES)
    prompt = messages[-1]["content"]
    assert "Paris is the capital of France." in prompt and "bridges" not in prompt  # 3 closest sentences of 5
    assert "bridges" in preds[0].hits[0].chunk.text  # the prediction keeps the retrieved passage whole
    assert preds[0].answer == "Paris" and preds[0].cited == (1,)
    plain = ScriptedGenerator(SCRIPT, batch_size=8)
    answer(QUESTIONS[:1], plain, FakeRetriever(), k=2, prompt_style="plain")
    assert len(plain.batches[0][0]) == 2 and "bridges" not in plain.batches[0][0][-1]["content"]
    answer(QUESTIONS[:1], plain, FakeRetriever(), k=2, context_sentences=1)
    assert "[2]" not in plain.batches[1][0][-1]["content"]  # one sentence kept: source [2] is skipped
    with pytest.raises(InputError):
        answer(QUESTIONS[:1], plain, FakeRetriever(), k=2, prompt_style="fancy")
