"""Span answers (ragtune.generate.extract): constrained decoding on the tiny random Llama, snapping, citations."""

from __future__ import annotations

import re

import pytest

from ragtune.generate.base import generate_spans
from ragtune.generate.extract import NOT_FIRST, SpanConstraint, TokenVocab, snap_to_sources, source_of, span_text
from ragtune.generate.hf import HFGenerator
from ragtune.types import Generation

SOURCES = [
    ["Paris is the capital of France.", "The tower was built in 1889 by Gustave Eiffel for the world fair."],
    ["Berlin is the capital of Germany.", "Who wrote the report? It was published in 2021."],
    ["Give the shortest answer that is correct."],
    ["The meeting in 2021 was attended by many people.", "Sources: Paris, Berlin."],
]


def _messages(question: str, passages: list[str]) -> list[dict[str, str]]:
    shown = "\n\n".join(f"[{n}] {text}" for n, text in enumerate(passages, start=1))
    return [{"role": "system", "content": "You answer questions using only the numbered sources."},
            {"role": "user", "content": f"Sources:\n{shown}\n\nQuestion: {question}"}]


BATCH = [_messages(q, s) for q, s in zip(
    ["What is the capital?", "Who wrote the report?", "What is correct?", "When was the meeting?"], SOURCES,
    strict=True)]


def _is_word_span(span: str, passages: list[str]) -> bool:
    """`span` occurs in one of `passages` (spaces normalised) starting and ending on word boundaries."""
    pattern = re.compile(r"(?<!\w)" + re.escape(span) + r"(?!\w)")
    return any(pattern.search(" ".join(text.split())) for text in passages)


@pytest.fixture(scope="module")
def tiny_generator(tiny_lm_dir):
    return HFGenerator(tiny_lm_dir, batch_size=3, round_tokens=4)


def test_constrained_replies_are_word_aligned_spans_of_their_own_passages(tiny_generator):
    """Whatever a (random) model prefers, each reply is a non-empty span of its own passages: it begins on a word
    that is not an article and ends on a word boundary, across rounds of 4 tokens and sub-batches of 3."""
    got = tiny_generator.generate(BATCH * 2, max_new_tokens=12, spans_of=SOURCES * 2)
    for generation, passages in zip(got, SOURCES * 2, strict=True):
        span = span_text(generation.text)
        assert span, generation.text
        assert _is_word_span(span, passages), (span, passages)
        assert span.split()[0].lower() not in NOT_FIRST
    free = tiny_generator.generate(BATCH, max_new_tokens=12)
    assert [g.text for g in free] != [g.text for g in got[:4]]  # the constraint changed what the model wrote


def test_constrained_batches_equal_one_by_one_and_rows_without_passages_answer_freely(tiny_lm_dir):
    generator = HFGenerator(tiny_lm_dir, batch_size=2, round_tokens=3)
    spans_of = [SOURCES[0], None, SOURCES[2], SOURCES[3]]
    batched = generator.generate(BATCH, max_new_tokens=10, spans_of=spans_of)
    single = [generator.generate([m], max_new_tokens=10, spans_of=[s])[0] for m, s in zip(BATCH, spans_of, strict=True)]
    assert [g.text for g in batched] == [g.text for g in single]
    assert batched[1].text == generator.generate([BATCH[1]], max_new_tokens=10)[0].text


def test_spans_of_must_match_the_batch(tiny_generator):
    from ragtune.errors import InputError

    with pytest.raises(InputError, match="spans_of"):
        tiny_generator.generate(BATCH, max_new_tokens=4, spans_of=SOURCES[:2])


def test_constraint_starts_on_words_and_never_cuts_a_number(tiny_generator):
    """The tokenizer's pieces decide nothing: a span may begin with a word's space-less form (how a reply
    starts), not with an article or inside a word, and may end only where a word ends."""
    tokenizer = tiny_generator.tokenizer
    vocab = TokenVocab(tokenizer)
    eos = [tokenizer.eos_token_id]
    constraint = SpanConstraint(vocab, ["The tower was built in 1889 by Gustave Eiffel."], eos)
    ids = constraint.sequences[0]
    texts = [tokenizer.decode([t]) for t in ids]
    first = constraint.allowed([])
    for word in ("tower", "Gustave", "1889"):
        assert tokenizer(" " + word, add_special_tokens=False)["input_ids"][0] in first
    words = "The tower was built in 1889 by Gustave Eiffel.".split()
    for token in first:  # every start is the beginning of a word of the passage, never of "The"
        piece = tokenizer.decode([token]).strip()
        assert any(w.startswith(piece) for w in words[1:]), piece
    the = tokenizer(" The", add_special_tokens=False)["input_ids"]
    assert the[0] not in first or any(w.startswith(tokenizer.decode(the[:1]).strip()) for w in words[1:])
    # walk the span "1889 by" token by token: ends are allowed only after "1889" and "by", never inside them
    start = next(i for i, text in enumerate(texts) if text.strip() and "1889".startswith(text.strip()))
    reply: list[int] = []
    for i in range(start, len(ids)):
        reply.append(ids[i])
        allowed = constraint.allowed(reply)
        so_far = tokenizer.decode(reply).strip()
        assert ids[i + 1] in allowed if i + 1 < len(ids) else True
        assert bool(eos[0] in allowed) == (so_far in ("1889", "1889 by", "1889 by Gustave", "1889 by Gustave Eiffel",
                                                      "1889 by Gustave Eiffel.")), so_far
        if so_far == "1889 by":
            break
    assert constraint.allowed(reply + eos) == frozenset(eos)  # after the end, only the end


class WordTokenizer:
    """One token per word with its leading space (" Paris"), and the bare words a reply starts with ("Paris")."""

    def __init__(self, words: list[str]):
        self.vocab = ["<eos>", " [", "[", "\n"] + [f" {w}" for w in words] + list(words)

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        pieces = re.findall(r" ?\S+|\n", text)
        return {"input_ids": [self.vocab.index(p) for p in pieces]}

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab[i] for i in ids)


def test_a_reply_may_open_with_the_spaceless_form_of_a_word():
    tokenizer = WordTokenizer(["It", "was", "published", "in", "Paris", "."])
    vocab = TokenVocab(tokenizer)
    assert vocab.end == [1, 2, 3]
    constraint = SpanConstraint(vocab, ["It was published in Paris ."], [0])
    spaced, bare = tokenizer.vocab.index(" Paris"), tokenizer.vocab.index("Paris")
    assert {spaced, bare} <= constraint.allowed([])
    assert constraint.allowed([bare]) == {tokenizer.vocab.index(" ."), 0, 1, 2, 3}  # continue, or end the span
    assert constraint.allowed([bare, 1]) == frozenset({0})  # a citation bracket ends it
    assert constraint.allowed([tokenizer.vocab.index("was"), tokenizer.vocab.index(" Paris")]) == frozenset({0})


def test_snap_to_sources_picks_the_closest_span():
    sources = ["The Broncos defeated the Carolina Panthers 24-10 at Levi's Stadium in Santa Clara."]
    assert snap_to_sources("Denver beat the Panthers at Levi's Stadium", sources) == "Panthers 24-10 at Levi's Stadium"
    assert snap_to_sources("the Carolina Panthers.", sources) == "Carolina Panthers"
    assert snap_to_sources("nothing whatsoever", sources) == "nothing whatsoever"
    assert snap_to_sources("", sources) == ""


def test_source_of_finds_the_first_passage_holding_the_span():
    passages = ["Paris is in France.", "The capital, Paris, lies on the Seine."]
    assert source_of("Paris", passages) == 1
    assert source_of("the Seine", passages) == 2
    assert source_of("Pari", passages) is None  # whole words only
    assert source_of("", passages) is None


def test_generate_spans_constrains_where_it_can_else_leaves_snapping_to_the_caller(tiny_generator):
    class Endpoint:
        model_id = "remote"

        def generate(self, batch, max_new_tokens=64):
            return [Generation(text="It is Paris.") for _ in batch]

    replies, constrained = generate_spans(Endpoint(), BATCH[:1], 8, SOURCES[:1])
    assert not constrained and replies[0].text == "It is Paris."
    replies, constrained = generate_spans(tiny_generator, BATCH[:1], 8, SOURCES[:1])
    assert constrained and _is_word_span(span_text(replies[0].text), SOURCES[0])
