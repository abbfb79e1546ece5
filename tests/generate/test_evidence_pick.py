"""answer_pick "evidence": the joint answer and one answer per passage alone, the one whose backing sentence is
closest to the question kept (ragtune.generate.evidence), through the one answer path."""

from __future__ import annotations

import pytest

from ragtune.config import GenerateConfig
from ragtune.errors import InputError
from ragtune.generate.evidence import NOT_HELD, evidence_scores, holding_sentences, pick
from ragtune.pipeline import AnswerSettings, answer_from_hits
from ragtune.types import Chunk, Generation, Hit

KITCHEN = Hit(Chunk("k#0", "k", "The kitchen serves soup on Tuesdays. Marta cooks the soup.", title="Kitchen"), 0.9)
HARBOUR = Hit(Chunk("h#0", "h", "Boats come in at dawn. Ilse Varga is the harbour master.", title="Harbour"), 0.8)
QUESTION = "Who is the harbour master?"


class ReadsFirstName:
    """Answers with the first name it sees in the prompt's passages: from both passages, the kitchen's cook."""

    model_id = "fake"
    batch_size = 8

    def __init__(self):
        self.prompts = []

    def generate(self, batch, max_new_tokens=64):
        out = []
        for messages in batch:
            user = messages[-1]["content"]
            self.prompts.append(user)
            reply = "Marta" if "Marta" in user else "Ilse Varga" if "Ilse" in user else "I don't know"
            out.append(Generation(text=reply, prompt_tokens=10, completion_tokens=2 if "Ilse" in reply else 1))
        return out


def test_the_answer_a_sentence_backs_best_is_kept_with_its_passage_cited() -> None:
    generator = ReadsFirstName()
    settings = AnswerSettings(answer_pick="evidence")
    joint = answer_from_hits([QUESTION], [[KITCHEN, HARBOUR]], generator, AnswerSettings())[0]
    assert joint.answer == "Marta"  # two passages: the reader drifts to the first name it saw
    generator = ReadsFirstName()
    kept = answer_from_hits([QUESTION], [[KITCHEN, HARBOUR]], generator, settings)[0]
    assert kept.answer == "Ilse Varga" and kept.cited == (2,)  # the harbour passage, alone, backs it
    assert [h.chunk.chunk_id for h in kept.hits] == ["k#0", "h#0"]  # the sources shown stay the retrieved ones
    assert len(generator.prompts) == 3  # joint + one per passage
    assert (kept.prompt_tokens, kept.completion_tokens, kept.answer_tokens, kept.kept_answer_tokens) == (30, 4, 2, 2)


def test_joint_answer_wins_ties_and_closed_book_questions_are_untouched() -> None:
    generator = ReadsFirstName()
    settings = AnswerSettings(answer_pick="evidence")
    out = answer_from_hits([QUESTION, "Who cooks?", "Anything?"], [[HARBOUR], [KITCHEN, HARBOUR], None], generator,
                           settings)
    assert out[0].answer == "Ilse Varga" and out[0].cited == ()  # the joint answer (one passage): ties keep it
    assert out[1].answer == "Marta"  # joint and passage 1 agree
    assert out[2].answer == "I don't know" and out[2].hits == () and out[2].answer_tokens is None
    assert len(generator.prompts) == 3 + 1 + 2  # 3 joint, then 1 + 2 passages alone


def test_holding_sentences_and_scores() -> None:
    assert holding_sentences("harbour master", HARBOUR.chunk.text) == ["Ilse Varga is the harbour master."]
    assert holding_sentences("arbour", HARBOUR.chunk.text) == []  # whole words only
    assert holding_sentences("", HARBOUR.chunk.text) == []
    scores = evidence_scores([QUESTION], [[("Marta", KITCHEN.chunk.text), ("Ilse Varga", HARBOUR.chunk.text),
                                           ("Paris", HARBOUR.chunk.text)]])[0]
    assert scores[1] > scores[0] > NOT_HELD and scores[2] == NOT_HELD
    assert pick([NOT_HELD, NOT_HELD]) == 0 and pick([0.1, 0.3, 0.3]) == 1


def test_settings_and_config_carry_the_pick() -> None:
    config = GenerateConfig(model="bundled", answer_pick="evidence")
    assert AnswerSettings.resolve(config).answer_pick == "evidence"
    assert AnswerSettings.resolve(config).describe()["answer_pick"] == "evidence"
    with pytest.raises(InputError, match="answer_pick must be one of joint, evidence"):
        AnswerSettings(answer_pick="vote")
