"""synthesize_qa end to end with hand-made chunks and a scripted fake generator: filters, dedupe, determinism."""

from __future__ import annotations

import json

import pytest

from ragtune.errors import ConfigError
from ragtune.train.synth import check_pair, synthesize_qa, write_qa_jsonl
from ragtune.types import Chunk, Generation

HANDBOOK = [
    Chunk(
        chunk_id="conduct#0",
        doc_id="conduct",
        text=(
            "The ombudsperson is Hettie Brannagh, who is not employed by any team of the institute. "
            "Every concern is acknowledged within 5 working days. "
            "Gifts above 40 crowns in value must be declared in the register kept by the Finance Office."
        ),
    ),
    Chunk(
        chunk_id="lab#0",
        doc_id="lab",
        text=(
            "The Brinewell Laboratory opened in 1997. It was designed by the architect Halvard Stenmoe. "
            "The Kelp Ecology Team maintains 42 permanent survey plots in Gannet Reach."
        ),
    ),
    Chunk(
        chunk_id="history#0",
        doc_id="history",
        text="The institute was founded on 14 March 1979 by Ilse Vantongeren. Each plot is visited in May.",
    ),
]


class ScriptedGenerator:
    """Answers by prompt type: question generation, paraphrase, or the RAG round trip."""

    model_id = "scripted"

    def __init__(self, question_reply=None, paraphrase_reply=None, answer_reply=None):
        self.calls: list[int] = []
        self.question_reply = question_reply or (lambda answer: f"Which value is asked about here, please?")
        self.paraphrase_reply = paraphrase_reply or (lambda question: "Please tell me " + question[0].lower() + question[1:])
        self.answer_reply = answer_reply or (lambda question, source: "I do not know")

    def generate(self, batch, max_new_tokens=64):
        self.calls.append(len(batch))
        out = []
        for messages in batch:
            system, user = messages[0]["content"], messages[-1]["content"]
            if system.startswith("You write reading-comprehension"):
                text = self.question_reply(user.rsplit("Answer: ", 1)[1])
            elif system.startswith("You rewrite questions"):
                text = self.paraphrase_reply(user.removeprefix("Question: "))
            else:
                question = user.rsplit("Question: ", 1)[1]
                text = self.answer_reply(question, user)
            out.append(Generation(text=text))
        return out


def test_rules_only_examples_pass_every_filter_and_keep_their_gold_chunk():
    result = synthesize_qa(HANDBOOK, None, per_chunk=2, seed=0)
    assert len(result.examples) >= 5
    by_id = {c.chunk_id: c for c in HANDBOOK}
    for example in result.examples:
        chunk = by_id[example.chunk_id]
        assert example.doc_id == chunk.doc_id and example.context == chunk.text
        start = example.metadata["answer_start"]
        assert chunk.text[start : start + len(example.answer)] == example.answer
        assert check_pair(example.question, example.answer, chunk.text) is None
        assert example.metadata["source"] == "synth" and example.metadata["kind"] == "original"
    assert sum(e.chunk_id == "conduct#0" for e in result.examples) <= 2
    questions = {e.question for e in result.examples}
    assert questions & {"Who is the ombudsperson?", "In what year did the Brinewell Laboratory open?",
                        "Within how many working days is every concern acknowledged?"}


@pytest.mark.parametrize(
    "question, answer, reason",
    [
        ("", "1997", "empty"),
        ("When did it open?", "  ", "empty"),
        ("When did the laboratory open?", "2001", "answer_not_in_chunk"),
        ("When did the laboratory open in 1997?", "1997", "answer_in_question"),
        ("When did the laboratory open", "1997", "no_question_mark"),
        ("When open?", "1997", "too_short"),
        ("When " + "did the laboratory really open " * 6 + "?", "1997", "too_long"),
        ("When did the Brinewell Laboratory open?", "1997", None),
        ("Who designed the laboratory?", "halvard stenmoe", None),  # normalised match
    ],
)
def test_check_pair_reasons(question, answer, reason):
    assert check_pair(question, answer, HANDBOOK[1].text) == reason


@pytest.mark.parametrize(
    "question, answer, reason",
    [
        ("In what year was it first carried out?", "1992", "vague_subject"),
        ("Which architect was it designed by?", "Halvard Stenmoe", "vague_subject"),
        ("What is the purpose of the Hollow Buoy Network?", "2024", "not_factoid"),
        ("Why was the Hollow Buoy Network set up in a hurry?", "2024", "not_factoid"),
        ("What is the duty officer's name?", "18", "answer_type"),
        ("How many years is raw data kept?", "Tidebook", "answer_type"),
        ("What year is 1990 in the archive?", "1990s", "answer_in_question"),
        ("When was the Hollow Buoy Network set up?", "2024", None),
        ("How long is raw data kept after deposit?", "12 years", None),
        ("Who designed the Brinewell Laboratory?", "Halvard Stenmoe", None),
        ("How often is the agreement reviewed?", "every twelve months", None),
    ],
)
def test_check_pair_rejects_vague_and_mistyped_questions(question, answer, reason):
    context = ("In 1992 it was first carried out. The laboratory was designed by Halvard Stenmoe. The duty officer "
               "is on extension 18. Raw data is kept 12 years in Tidebook. The Hollow Buoy Network was set up in "
               "2024. The 1990s were wet. The agreement is reviewed every twelve months.")
    assert check_pair(question, answer, context) == reason


def test_same_seed_same_file_and_chunks_are_independent(tmp_path):
    a = write_qa_jsonl(synthesize_qa(HANDBOOK, None, per_chunk=2, paraphrases=1, seed=3).examples, tmp_path / "a.jsonl")
    b = write_qa_jsonl(synthesize_qa(HANDBOOK, None, per_chunk=2, paraphrases=1, seed=3).examples, tmp_path / "b.jsonl")
    assert a.read_bytes() == b.read_bytes() and a.read_bytes()
    alone = synthesize_qa(HANDBOOK[1:2], None, per_chunk=2, seed=3).examples
    together = [e for e in synthesize_qa(HANDBOOK, None, per_chunk=2, seed=3).examples if e.chunk_id == "lab#0"]
    assert [e.question for e in alone] == [e.question for e in together]


def test_duplicate_chunks_give_duplicate_rejections():
    twin = Chunk(chunk_id="conduct-copy#0", doc_id="conduct-copy", text=HANDBOOK[0].text)
    result = synthesize_qa([HANDBOOK[0], twin], None, per_chunk=2, seed=0)
    assert result.rejected.get("duplicate", 0) >= 1
    questions = [e.question for e in result.examples]
    assert len(questions) == len(set(questions))


def test_jsonl_records_have_the_contract_fields_and_load_as_training_data(tmp_path):
    from ragtune.train.data import load_examples

    result = synthesize_qa(HANDBOOK, None, per_chunk=1, seed=0)
    path = write_qa_jsonl(result.examples, tmp_path / "out" / "qa.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == len(result.examples)
    for record in records:
        assert {"question", "answer", "doc_id", "chunk_id", "context", "source", "kind", "seed"} <= set(record)
        assert record["source"] == "synth" and record["kind"] == "original" and record["seed"] == 0
    loaded = load_examples(path)
    assert [e.question for e in loaded.examples] == [r["question"] for r in records] and not loaded.errors
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temp file left behind


def test_rule_paraphrases_follow_their_original():
    result = synthesize_qa(HANDBOOK, None, per_chunk=2, paraphrases=1, seed=0)
    kinds = [e.metadata["kind"] for e in result.examples]
    assert "paraphrase" in kinds
    for i, example in enumerate(result.examples):
        if example.metadata["kind"] == "paraphrase":
            original = result.examples[i - 1]
            assert original.answer == example.answer and original.question != example.question
    assert result.kept["paraphrase"] == kinds.count("paraphrase")


def test_llm_questions_are_filtered_by_reason():
    replies = {"1997": "When did the Brinewell Laboratory open in 1997?", "42": "How many plots are there"}
    gen = ScriptedGenerator(question_reply=lambda answer: replies.get(answer, f"Question: What is meant here by the text?"))
    result = synthesize_qa(HANDBOOK[1:2], gen, per_chunk=3, seed=0, questions="llm")
    assert gen.calls and max(gen.calls) <= 8
    assert all(e.metadata["method"] == "llm" for e in result.examples)
    assert result.rejected.get("answer_in_question", 0) + result.rejected.get("no_question_mark", 0) >= 1
    assert [e.question for e in result.examples].count("What is meant here by the text?") == 1  # deduped
    assert result.rejected.get("duplicate", 0) >= 1


def test_llm_candidates_are_written_only_when_earlier_ones_were_rejected():
    """Each round asks every chunk still short for just the questions it needs, all chunks in one call; a chunk's
    next candidate only after its earlier one was rejected."""
    words = iter(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    accepted = lambda answer: f"Which detail {next(words)} does the passage state?"
    gen = ScriptedGenerator(question_reply=accepted)
    result = synthesize_qa(HANDBOOK, gen, per_chunk=1, seed=0, questions="llm")
    assert gen.calls == [3] and len(result.examples) == 3  # one row per chunk, one call: no spare candidates

    asked = []

    def reject_first(answer):  # the first round's questions name their answer (rejected), later ones are fine
        asked.append(answer)
        return f"Is {answer} what the passage states here?" if len(asked) <= 3 else accepted(answer)

    words = iter(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    gen = ScriptedGenerator(question_reply=reject_first)
    result = synthesize_qa(HANDBOOK, gen, per_chunk=1, seed=0, questions="llm")
    assert gen.calls == [3, 3] and len(result.examples) == 3
    assert result.rejected["answer_in_question"] == 3


def test_question_complete_marks_where_more_text_changes_nothing():
    from ragtune.train.paraphrase import clean_question, question_complete

    reply = 'Question: "Who runs the lab?" It is Ada.\nWho else?'
    points = [n for n in range(len(reply) + 1) if question_complete(reply[:n])]
    assert points and clean_question(reply[: points[0]]) == clean_question(reply) == "Who runs the lab?"
    assert not question_complete("") and not question_complete("  \n") and not question_complete("Who runs the")
    assert question_complete("Who runs the lab\n")  # the first line ended: the rest is never read
    assert question_complete(" ".join(["word"] * 40))  # too long to be kept whatever follows


def test_llm_paraphrases_and_round_trip():
    def answer(question, sources):
        return "Answer: Hettie Brannagh [1]" if "ombudsperson" in question else "Answer: no idea [1]"

    gen = ScriptedGenerator(answer_reply=answer)
    result = synthesize_qa(HANDBOOK[:1], gen, per_chunk=2, paraphrases=1, seed=0, questions="rules", round_trip=True)
    originals = [e for e in result.examples if e.metadata["kind"] == "original"]
    assert [e.answer for e in originals] == ["Hettie Brannagh"]
    assert result.rejected.get("round_trip", 0) >= 1
    paraphrases = [e for e in result.examples if e.metadata["kind"] == "paraphrase"]
    assert [p.question for p in paraphrases] == ["Please tell me who is the ombudsperson?"]


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="per_chunk"):
        synthesize_qa(HANDBOOK, None, per_chunk=0)
    with pytest.raises(ConfigError, match="generator"):
        synthesize_qa(HANDBOOK, None, questions="llm")
    with pytest.raises(ConfigError, match="questions"):
        synthesize_qa(HANDBOOK, None, questions="magic")


def test_rule_paraphrase_rewrites_the_wh_phrase_only():
    import random

    from ragtune.train.paraphrase import clean_question, paraphrase_with_rules

    out = paraphrase_with_rules("When was the game played?", 2, random.Random(0))
    assert sorted(out) == ["At what time was the game played?", "On what date was the game played?"]
    assert paraphrase_with_rules("How many drift cards did the project release?", 1, random.Random(0)) == [
        "What number of drift cards did the project release?"
    ]
    assert paraphrase_with_rules("Name the director.", 1, random.Random(0)) == []
    assert clean_question('Question: "Who runs the lab?" It is Ada.') == "Who runs the lab?"


@pytest.mark.parametrize(
    "paraphrase, kept",
    [
        ("What was the year when Brinewell Laboratory opened?", True),
        ("What year did the Berlin lab open?", False),  # a name from nowhere, and the original's name lost
        ("What is the number of people who opened the Brinewell Laboratory?", False),  # became a quantity
        ("When did it happen?", False),  # lost the name
    ],
)
def test_model_paraphrases_must_keep_the_meaning(paraphrase, kept):
    from ragtune.train.paraphrase import keeps_meaning

    assert keeps_meaning("In what year did the Brinewell Laboratory open?", paraphrase, HANDBOOK[1].text) is kept


def test_drifting_model_paraphrases_are_rejected():
    gen = ScriptedGenerator(paraphrase_reply=lambda q: "What is the number of offices in Berlin?")
    result = synthesize_qa(HANDBOOK[:1], gen, per_chunk=2, paraphrases=1, seed=0, questions="rules")
    assert result.kept.get("paraphrase", 0) == 0
    assert result.rejected["paraphrase_drift"] == result.kept["original"]


def test_write_to_a_directory_or_unwritable_place_is_an_input_error(tmp_path):
    from ragtune.errors import InputError

    with pytest.raises(InputError, match="directory"):
        write_qa_jsonl([], tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write"):
        write_qa_jsonl([], blocker / "qa.jsonl")


def test_cloze_questions_fill_up_what_the_rules_leave_and_pass_every_filter():
    rules = synthesize_qa(HANDBOOK, None, per_chunk=4, seed=0, questions="rules")
    cloze = synthesize_qa(HANDBOOK, None, per_chunk=4, seed=0, questions="cloze")
    methods = [e.metadata["method"] for e in cloze.examples]
    assert len(cloze.examples) > len(rules.examples) and "cloze" in methods
    # the rules' questions are all kept; the wh-cloze ones only add
    assert {e.question for e in rules.examples} <= {e.question for e in cloze.examples}
    by_id = {c.chunk_id: c for c in HANDBOOK}
    for example in cloze.examples:
        assert check_pair(example.question, example.answer, by_id[example.chunk_id].text) is None
    assert max(sum(e.chunk_id == c.chunk_id for e in cloze.examples) for c in HANDBOOK) <= 4
    # no model is needed, and a generator given is not asked
    generator = ScriptedGenerator()
    assert synthesize_qa(HANDBOOK, generator, per_chunk=4, seed=0, questions="cloze").examples == cloze.examples
    assert generator.calls == []
