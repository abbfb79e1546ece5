"""The answer path with a fake retriever and a scripted generator (and once with the tiny real model)."""

from __future__ import annotations

import pytest

from ragtune.errors import BackendError, InputError
from ragtune.generate.prompts import SYSTEM_CLOSED, SYSTEM_RAG
from ragtune.config import GenerateConfig
from ragtune.pipeline import AnswerSettings, answer, answer_from_hits, citations, prediction_to_dict, retrieve
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
    preds = answer(QUESTIONS, gen, FakeRetriever(), AnswerSettings(max_new_tokens=4), k=2)
    assert len(preds) == 3 and all(0 < p.completion_tokens <= 4 for p in preds)
    assert all(len(citations(p)) >= 1 for p in preds)  # the fallback always shows a passage


def test_guided_style_adds_examples_and_cuts_sources_but_keeps_full_hits():
    from ragtune.generate.prompts import WORKED_EXAMPLES

    generator = ScriptedGenerator(SCRIPT, batch_size=8)
    guided = AnswerSettings(prompt_style="guided", context_sentences=3)  # auto for an untuned local model
    long_corpus = {**CORPUS, "paris": ("Paris", "Paris is the capital of France. It has many bridges. Rain is common.")}
    retriever = FakeRetriever()
    try:
        CORPUS.update(long_corpus)
        preds = answer(QUESTIONS[:1], generator, retriever, guided, k=2)
    finally:
        CORPUS["paris"] = ("Paris", "Paris is the capital of France.")
    (messages,) = generator.batches[0]
    assert len(messages) == 2 + 2 * len(WORKED_EXAMPLES)
    prompt = messages[-1]["content"]
    assert "Paris is the capital of France." in prompt and "bridges" not in prompt  # 3 closest sentences of 5
    assert "bridges" in preds[0].hits[0].chunk.text  # the prediction keeps the retrieved passage whole
    assert preds[0].answer == "Paris" and preds[0].cited == (1,)
    plain = ScriptedGenerator(SCRIPT, batch_size=8)
    answer(QUESTIONS[:1], plain, FakeRetriever(), AnswerSettings(prompt_style="plain"), k=2)
    assert len(plain.batches[0][0]) == 2 and "bridges" not in plain.batches[0][0][-1]["content"]
    answer(QUESTIONS[:1], plain, FakeRetriever(), AnswerSettings(context_sentences=1), k=2)
    assert "[2]" not in plain.batches[1][0][-1]["content"]  # one sentence kept: source [2] is skipped
    with pytest.raises(InputError, match="fancy"):
        AnswerSettings(prompt_style="fancy")
    with pytest.raises(InputError, match="context_sentences"):
        AnswerSettings(context_sentences=-1)


class KeywordEmbedder:
    """One dimension per keyword: ranks sentences unlike word overlap does."""

    words = ("capital", "tower")

    def encode(self, texts):
        import numpy as np

        return np.array([[1.0 + t.lower().count(w) for w in self.words] for t in texts], dtype=np.float32)


def test_settings_embedder_decides_which_sentences_are_shown():
    """Compression scores sentences with settings.embedder (the index's), else word overlap."""
    hits = [Hit(Chunk("t#0", "t", "Bridges cross the river. The tower is tall. Towers rise. Paris is old.", "T"), 1.0)]
    question = ["Which capital has the tower?"]
    shown = {}
    for name, embedder in (("overlap", None), ("embedder", KeywordEmbedder())):
        generator = ScriptedGenerator(SCRIPT)
        answer_from_hits(question, [hits], generator, AnswerSettings(context_sentences=1, embedder=embedder))
        shown[name] = generator.batches[0][0][-1]["content"]
    assert "The tower is tall." in shown["overlap"]
    assert shown["overlap"] != shown["embedder"]


def test_answer_is_retrieve_then_answer_from_hits():
    settings = AnswerSettings(prompt_style="guided", context_sentences=2, max_new_tokens=9)
    via_answer = ScriptedGenerator(SCRIPT)
    preds = answer(QUESTIONS, via_answer, FakeRetriever(), settings, k=2, arm="rag")
    hits = retrieve(QUESTIONS, FakeRetriever(), k=2)
    via_hits = ScriptedGenerator(SCRIPT)
    again = answer_from_hits(QUESTIONS, hits, via_hits, settings, arm="rag")
    assert via_answer.batches == via_hits.batches
    assert [(p.answer, p.cited, p.hits) for p in preds] == [(p.answer, p.cited, p.hits) for p in again]
    closed = answer_from_hits(QUESTIONS[:2], [None, []], ScriptedGenerator(SCRIPT), settings)
    assert closed[0].hits == () and closed[1].hits == ()
    with pytest.raises(InputError, match="2 hit lists for 3"):
        answer_from_hits(QUESTIONS, hits[:2], ScriptedGenerator(SCRIPT), settings)


def test_resolve_keeps_the_embedder_and_the_config_max_tokens():
    embedder = KeywordEmbedder()
    settings = AnswerSettings.resolve(GenerateConfig(max_new_tokens=12), embedder)
    assert (settings.prompt_style, settings.context_sentences, settings.max_new_tokens) == ("guided", 3, 12)
    assert settings.embedder is embedder and settings.batch_size is None


@pytest.mark.parametrize(
    ("config", "style"),
    [
        (GenerateConfig(), "guided"),
        (GenerateConfig(adapter="/some/adapter"), "plain"),
        (GenerateConfig(model="http://localhost:8000/v1"), "plain"),
        (GenerateConfig(adapter="/some/adapter", prompt_style="guided"), "guided"),
        (GenerateConfig(prompt_style="plain"), "plain"),
    ],
)
def test_auto_prompt_style(config, style):
    assert AnswerSettings.resolve(config).prompt_style == style


@pytest.mark.parametrize(
    ("config", "keep"),
    [
        (GenerateConfig(), 3),
        (GenerateConfig(adapter="/some/adapter"), 3),
        (GenerateConfig(model="http://localhost:8000/v1"), 0),
        (GenerateConfig(context_sentences=0), 0),
        (GenerateConfig(model="http://localhost:8000/v1", context_sentences=5), 5),
    ],
)
def test_auto_context_sentences(config, keep):
    assert AnswerSettings.resolve(config).context_sentences == keep


def test_span_answers_are_snapped_for_a_generator_that_cannot_constrain_and_cite_their_passage():
    """answer_form "span" with a generator without `constrains_spans` (an endpoint): its free reply is snapped to
    the closest span of the passages shown, and the passage holding the span is the citation."""
    script = {"France": "It is Paris, the capital city [2]", "Germany": "Germany's capital is Berlin",
              "tower": "Nineteen eighty-nine"}
    settings = AnswerSettings(answer_form="span")
    preds = answer(QUESTIONS, ScriptedGenerator(script), FakeRetriever(), settings, k=2)
    assert [p.answer for p in preds] == ["Paris is the capital", "Berlin is the capital",
                                         "Nineteen eighty-nine"]  # no shared word: left as written
    assert preds[0].cited == (1,) and preds[1].cited == (1,)  # the passage the span came from, not the reply's [2]
    free = answer(QUESTIONS, ScriptedGenerator(script), FakeRetriever(), AnswerSettings(), k=2)
    assert free[0].answer == "It is Paris, the capital city" and free[0].cited == (2,)
    snapped = answer(QUESTIONS, ScriptedGenerator(script), FakeRetriever(), AnswerSettings(answer_form="snap"), k=2)
    assert [(p.answer, p.cited) for p in snapped] == [(p.answer, p.cited) for p in preds]  # the same, for any model
    closed = answer(QUESTIONS[:1], ScriptedGenerator(script), None, settings)
    assert closed[0].answer == "It is Paris, the capital city" and closed[0].cited == ()  # no passages: free


def test_span_answers_with_a_local_model_are_spans_of_the_passages_shown(tiny_lm_dir):
    from ragtune.generate.hf import HFGenerator

    generator = HFGenerator(tiny_lm_dir, batch_size=2)
    free = answer(QUESTIONS, generator, FakeRetriever(), AnswerSettings(context_sentences=1, max_new_tokens=8), k=2)
    snapped = answer(QUESTIONS, generator, FakeRetriever(),
                     AnswerSettings(answer_form="snap", context_sentences=1, max_new_tokens=8), k=2)
    for before, after in zip(free, snapped, strict=True):  # the free answer, or the closest span of the passages
        shown = [h.chunk.text for h in before.hits]
        assert after.answer == before.answer or any(after.answer in text for text in shown)
    settings = AnswerSettings(answer_form="span", context_sentences=1, max_new_tokens=8)
    preds = answer(QUESTIONS, generator, FakeRetriever(), settings, k=2)
    for pred in preds:
        assert pred.answer and len(pred.cited) == 1
        shown = pred.hits[pred.cited[0] - 1].chunk.text
        assert pred.answer in shown, (pred.answer, shown)
    assert AnswerSettings.resolve(GenerateConfig(answer_form="span")).answer_form == "span"
    assert AnswerSettings(answer_form="span").describe()["answer_form"] == "span"
    with pytest.raises(InputError, match="answer_form"):
        AnswerSettings(answer_form="quote")


class SpanningGenerator(ScriptedGenerator):
    """A scripted generator that can constrain spans: asked with `spans_of`, it answers with a script of spans."""

    constrains_spans = True

    def __init__(self, script, spans, batch_size=8):
        super().__init__(script, batch_size)
        self.spans = spans
        self.span_batches = []

    def generate(self, batch, max_new_tokens=64, spans_of=None):
        if spans_of is None:
            return super().generate(batch, max_new_tokens)
        self.span_batches.append(batch)
        replies = [next(r for key, r in self.spans.items() if key in m[-1]["content"].split("Question:")[-1])
                   for m in batch]
        return [Generation(text=r, prompt_tokens=100, completion_tokens=1) for r in replies]


def test_free_or_span_decodes_again_only_the_answers_no_passage_holds():
    """answer_form "free-or-span": a free answer a passage holds stays as written, with the model's own citation;
    one no passage holds ("Bonn") is decoded again as a span, which cites its passage and counts both generations;
    a generator that cannot constrain snaps that answer instead, without asking again."""
    script = {"France": "Paris [2]", "Germany": "Bonn", "tower": "1889"}
    generator = SpanningGenerator(script, {"Germany": "Berlin"})
    preds = answer(QUESTIONS, generator, FakeRetriever(), AnswerSettings(answer_form="free-or-span"), k=2)
    assert [p.answer for p in preds] == ["Paris", "Berlin", "1889"]
    assert preds[0].cited == (2,) and preds[1].cited == (1,)  # the model's [2]; the passage holding "Berlin"
    assert len(generator.span_batches) == 1 and len(generator.span_batches[0]) == 1  # only "Bonn" again
    assert preds[1].prompt_tokens > 100 and preds[1].completion_tokens == 2 and preds[0].prompt_tokens < 100
    endpoint = ScriptedGenerator({**script, "Germany": "the capital Berlin, surely"})
    snapped = answer(QUESTIONS, endpoint, FakeRetriever(), AnswerSettings(answer_form="free-or-span"), k=2)
    assert [p.answer for p in snapped] == ["Paris", "Berlin is the capital", "1889"]
    assert len(endpoint.batches) == 2  # 3 questions in batches of 2: nothing generated twice
    assert AnswerSettings.resolve(GenerateConfig(answer_form="free-or-span")).answer_form == "free-or-span"
