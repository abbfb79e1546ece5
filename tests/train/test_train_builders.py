"""SFT and RAFT example builders against a fake index (no models)."""

from __future__ import annotations

import json

import pytest

from ragtune.errors import InputError
from ragtune.generate.prompts import SYSTEM_CLOSED, SYSTEM_RAG, build_messages
from ragtune.train.builders import (
    TrainExample,
    build_raft_examples,
    build_sft_examples,
    export_jsonl,
    load_train_jsonl,
)
from ragtune.types import Chunk, Example, Hit


class FakeRetriever:
    def __init__(self, chunks):
        self.chunks = chunks

    def retrieve(self, queries, k=10, filters=None):
        # Deterministic "hard negatives": every chunk, in a query-dependent rotation.
        out = []
        for q in queries:
            shift = sum(map(ord, q)) % len(self.chunks)
            ranked = self.chunks[shift:] + self.chunks[:shift]
            out.append([Hit(chunk=c, score=1.0 / (r + 1), rank=r) for r, c in enumerate(ranked[:k])])
        return out


class FakeIndex:
    def __init__(self, chunks):
        self._chunks = chunks

    def chunks(self):
        return list(self._chunks)

    def get_chunks(self, ids):
        by_id = {c.chunk_id: c for c in self._chunks}
        return [by_id[i] for i in ids]

    def retriever(self, mode="hybrid", **kwargs):
        assert mode == "hybrid"
        return FakeRetriever(self._chunks)


@pytest.fixture(autouse=True)
def fake_retrieval(monkeypatch):
    """The builders find distractors through ragtune.retrieve.open_retriever; over a FakeIndex, its own retriever."""
    monkeypatch.setattr("ragtune.train.builders.open_retriever", lambda index, mode="hybrid": index.retriever(mode))


def _corpus(n_docs=12):
    chunks = []
    for d in range(n_docs):
        chunks.append(Chunk(chunk_id=f"doc{d}#0", doc_id=f"doc{d}", title=f"Doc {d}",
                            text=f"Doc {d} opens here. The keeper of vault {d} is Person{d} Smith. Nothing else."))
        chunks.append(Chunk(chunk_id=f"doc{d}#1", doc_id=f"doc{d}", text=f"Doc {d} part two mentions code Z{d}Q."))
    return chunks


def _examples(n=10):
    return [Example(question=f"Who keeps vault {d}?", answer=f"Person{d} Smith", doc_id=f"doc{d}", qid=f"q{d}")
            for d in range(n)]


def test_sft_closed_book_uses_inference_prompt_and_paraphrases():
    examples = [Example(question="Who keeps vault 1?", answer=" Person1 Smith ",
                        metadata={"paraphrases": ["Vault 1 keeper?", ""]})]
    built = build_sft_examples(examples)
    assert [b.messages for b in built] == [build_messages("Who keeps vault 1?", None),
                                          build_messages("Vault 1 keeper?", None)]
    assert all(b.target == "Person1 Smith" and b.messages[0]["content"] == SYSTEM_CLOSED for b in built)
    assert len(build_sft_examples(examples, paraphrases=False)) == 1


def test_sft_with_context_finds_gold_chunk():
    index = FakeIndex(_corpus())
    examples = _examples(3) + [Example(question="Where?", answer="nowhere", doc_id="unknown-doc"),
                               Example(question="Ctx?", answer="1871", context="Opened in 1871.")]
    built = build_sft_examples(examples, with_context=True, index=index)
    assert len(built) == 4  # the unknown doc is skipped
    first = built[0]
    assert first.messages[0]["content"] == SYSTEM_RAG
    assert "[1] Doc 0: Doc 0 opens here. The keeper of vault 0 is Person0 Smith." in first.messages[1]["content"]
    assert first.target == "Person0 Smith [1]" and first.meta["chunk_id"] == "doc0#0"
    assert "[1] Opened in 1871." in built[-1].messages[1]["content"]
    with pytest.raises(InputError):
        build_sft_examples([Example(question="q", answer="a")], with_context=True)


def test_raft_mix_distractors_and_targets():
    index = FakeIndex(_corpus())
    built = build_raft_examples(_examples(10), index, distractors=3, p_oracle=0.8, seed=0, quote=True,
                                context_sentences=0)  # whole passages
    assert len(built) == 10
    with_oracle = [b for b in built if b.meta["oracle"]]
    assert len(with_oracle) == 8  # exactly round(P * n)
    positions = set()
    for b in built:
        ids = b.meta["chunk_ids"]
        assert len(ids) == 4 and len(set(ids)) == 4  # constant number of sources, no duplicates
        user = b.messages[1]["content"]
        assert [f"[{i}]" in user for i in range(1, 6)] == [True] * 4 + [False]
        answer = b.meta["qid"].replace("q", "Person") + " Smith"
        if b.meta["oracle"]:
            n = b.meta["source_number"]
            positions.add(n)
            assert ids[n - 1] == b.meta["oracle_chunk_id"]
            assert b.target == f'Quote: [{n}] "The keeper of vault {b.meta["qid"][1:]} is {answer}."\nAnswer: {answer} [{n}]'
            others = [i for i in ids if i != b.meta["oracle_chunk_id"]]
        else:
            assert b.target == f"Answer: {answer}" and b.meta["source_number"] is None
            others = ids
        assert b.meta["oracle_chunk_id"] not in others
        assert all(f"{answer}" not in c.text for c in index.get_chunks(others))  # distractors never hold the answer
    assert len(positions) > 1  # the oracle is shuffled, not always first


def test_raft_p_and_seed():
    index = FakeIndex(_corpus())
    assert all(b.meta["oracle"] for b in build_raft_examples(_examples(), index, p_oracle=1.0))
    assert not any(b.meta["oracle"] for b in build_raft_examples(_examples(), index, p_oracle=0.0))
    a = build_raft_examples(_examples(), index, seed=3)
    assert a == build_raft_examples(_examples(), index, seed=3)
    assert a != build_raft_examples(_examples(), index, seed=4)
    with pytest.raises(InputError, match="p_oracle"):
        build_raft_examples(_examples(), index, p_oracle=1.5)
    with pytest.raises(InputError, match="gold passages"):
        build_raft_examples([Example(question="q", answer="a", doc_id="nope")], index)


def test_raft_uses_evidence_as_quote_and_chunk_id():
    index = FakeIndex(_corpus())
    example = Example(question="Which code?", answer="Z4Q", chunk_id="doc4#1",
                      metadata={"evidence": "Doc 4 part two mentions code Z4Q."})
    built = build_raft_examples([example], index, distractors=2, p_oracle=1.0, quote=True)[0]
    n = built.meta["source_number"]
    assert built.target == f'Quote: [{n}] "Doc 4 part two mentions code Z4Q."\nAnswer: Z4Q [{n}]'


def test_export_round_trip(tmp_path):
    built = build_sft_examples(_examples(3))
    path = export_jsonl(built, tmp_path / "out" / "train.jsonl")
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    record = json.loads(lines[0])
    assert record["messages"][-1] == {"role": "assistant", "content": "Person0 Smith"}
    assert load_train_jsonl(path) == built
    with pytest.raises(InputError):
        TrainExample.from_chat({"messages": [{"role": "user", "content": "x"}]})


def test_raft_direct_targets_by_default():
    index = FakeIndex(_corpus())
    examples = _examples(10)
    answers = {e.qid: e.answer for e in examples}
    built = build_raft_examples(examples, index, distractors=2, p_oracle=0.5, seed=1)
    assert {b.meta["oracle"] for b in built} == {True, False}
    for b in built:
        answer = answers[b.meta["qid"]]
        if b.meta["oracle"]:
            assert b.target == f"{answer} [{b.meta['source_number']}]"
        else:
            assert b.target == answer and "[" not in b.target
        assert "Quote:" not in b.target and "Answer:" not in b.target


def test_raft_passages_are_cut_as_at_inference():
    index = FakeIndex(_corpus())
    examples = [Example(question="Who is the keeper of vault 3?", answer="Person3 Smith", doc_id="doc3"),
                Example(question="Doc 5 opens where?", answer="Person5 Smith", doc_id="doc5")]
    built = build_raft_examples(examples, index, distractors=2, p_oracle=1.0, context_sentences=1)
    user = built[0].messages[-1]["content"]
    assert "The keeper of vault 3 is Person3 Smith." in user and "Nothing else" not in user
    assert user.count("[") == 1 and built[0].meta["oracle"]  # one sentence kept: the other sources are skipped
    assert built[0].target == f"Person3 Smith [{built[0].meta['source_number']}]"
    # The kept sentence of doc5 does not hold the answer: trained as an example without the oracle.
    assert not built[1].meta["oracle"] and built[1].target == "Person5 Smith"
    whole = build_raft_examples(examples, index, distractors=2, p_oracle=1.0, context_sentences=0)
    assert "Nothing else" in whole[0].messages[-1]["content"]


def test_raft_keeps_the_oracle_for_answers_not_in_the_passage():
    index = FakeIndex(_corpus())
    free_form = [Example(question="Is vault 2 kept?", answer="yes, by a Smith", chunk_id="doc2#0")]
    for keep in (0, 1):
        built = build_raft_examples(free_form, index, distractors=2, p_oracle=1.0, context_sentences=keep)
        assert built[0].meta["oracle"] and built[0].target.endswith(f"[{built[0].meta['source_number']}]")
