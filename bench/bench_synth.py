"""Question quality of `ragtune synth` on SQuAD paragraphs, against baselines measured in the same run.

SQuAD's human annotators picked answer spans and wrote questions for the same paragraphs, so we can ask:
  - answer match: how often a synthesized answer is (EM) or overlaps (F1) a human answer of its paragraph,
    against random 1–4-word spans of the same paragraphs (baseline);
  - extractor recall: how many human answers are exactly one of the candidate spans;
  - question similarity: for synthesized answers that match a human answer, the token F1 between the
    synthesized question and the human question for that answer — rules vs the LLM (few-shot, same spans)
    vs copying the answer's sentence as the "question" (baseline);
  - the round trip: how many rule questions the bundled model answers from the paragraph.

    .venv/bin/python bench/bench_synth.py --paragraphs 50 [--llm]
    .venv/bin/python bench/bench_synth.py --downstream   # LoRA on synthesized questions, F1 before/after
    .venv/bin/python bench/bench_synth.py --speed --paragraphs 24   # LLM synthesis speed, batch 1 vs batched

--speed times the LLM path of `synthesize_qa` (questions="llm": the bundled model writes a question for every
answer span, then one paraphrase each) on the same paragraphs three times in one process:
  1. the baseline, how synthesis generated before it was batched: one sequence per generate call, every prompt
     computed whole, each reply generated to its end of sequence or token limit, and every candidate question a
     chunk may need (2 per missing question) written up front;
  2. the current code with every prompt computed whole: a chunk's later candidates written only when earlier ones
     were rejected, each round's rows in one call (sorted by length, KV cache, `batch_size` per sub-batch,
     regrouped as rows finish), each row stopping once its question is complete (`question_complete`);
  3. the default: (2) with the few-shot turns shared by every prompt computed once per call (shared prefix).
It prints chunks/s of question synthesis and questions/s of paraphrasing for each, the ratios against the
baseline, and checks the runs wrote the same questions (greedy).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

SQUAD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad" / "squad-v1.1-dev-even.json"


def load_paragraphs(n: int):
    from ragtune.types import Chunk

    data = json.loads(SQUAD.read_text())["data"]
    rows = []
    per_article = max(1, -(-n // len(data)))
    for article in data:
        for j, paragraph in enumerate(article["paragraphs"][:per_article]):
            chunk = Chunk(chunk_id=f"{article['title']}#{j}", doc_id=article["title"], text=paragraph["context"])
            qas = [(qa["question"], [a["text"] for a in qa["answers"]]) for qa in paragraph["qas"]]
            rows.append((chunk, qas))
    return rows[:n]


def matching_human_questions(answer: str, qas, threshold: float = 1.0):
    from ragtune.evaluate.answer_metrics import f1

    return [q for q, golds in qas if f1(answer, golds) >= threshold]


def question_similarity(question: str, humans: list[str]) -> float:
    from ragtune.evaluate.answer_metrics import f1

    return f1(question, humans) if humans else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paragraphs", type=int, default=50)
    parser.add_argument("--per-chunk", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--llm", action="store_true", help="also measure LLM questions and the round trip")
    parser.add_argument("--show", type=int, default=20, help="print this many synthesized pairs")
    parser.add_argument("--downstream", action="store_true", help="train LoRA on synthesized questions instead")
    parser.add_argument("--train-paragraphs", type=int, default=200)
    parser.add_argument("--eval-questions", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--speed", action="store_true", help="time LLM synthesis at batch 1 vs batched instead")
    parser.add_argument("--batch-size", type=int, default=8, help="--speed: the batched run's batch size")
    args = parser.parse_args()
    if not SQUAD.is_file():
        print(f"shared SQuAD data not found at {SQUAD}; nothing to measure")
        return 0
    if args.downstream:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            downstream(args.train_paragraphs, args.eval_questions, args.epochs, args.seed, os.path.join(tmp, "adapter"))
        return 0
    if args.speed:
        speed(args.paragraphs, args.per_chunk, args.batch_size, args.seed)
        return 0
    from ragtune.evaluate.answer_metrics import exact_match, f1
    from ragtune.progress import set_progress
    from ragtune.train.answer_spans import extract_answer_spans
    from ragtune.train.synth import synthesize_qa

    set_progress(False)
    rows = load_paragraphs(args.paragraphs)
    qas_by_chunk = {chunk.chunk_id: qas for chunk, qas in rows}
    chunks = [chunk for chunk, _ in rows]

    t0 = time.perf_counter()
    result = synthesize_qa(chunks, None, per_chunk=args.per_chunk, seed=args.seed, questions="rules")
    rules_s = time.perf_counter() - t0
    examples = result.examples

    def answer_scores(pairs):
        ems = [exact_match(a, [g for _, gs in qas_by_chunk[cid] for g in gs]) for cid, a in pairs]
        f1s = [f1(a, [g for _, gs in qas_by_chunk[cid] for g in gs]) for cid, a in pairs]
        return sum(ems) / max(len(ems), 1), sum(f1s) / max(len(f1s), 1)

    synth_em, synth_f1 = answer_scores([(e.chunk_id, e.answer) for e in examples])
    rng = random.Random(args.seed)
    random_pairs = []
    for e in examples:
        words = e.context.split()
        size = rng.randint(1, 4)
        start = rng.randrange(0, max(1, len(words) - size))
        random_pairs.append((e.chunk_id, " ".join(words[start : start + size])))
    rand_em, rand_f1 = answer_scores(random_pairs)

    covered = total = 0
    for chunk, qas in rows:
        candidates = [s.text for s in extract_answer_spans(chunk.text)]
        for _, golds in qas:
            total += 1
            covered += bool(candidates) and exact_match(golds[0], candidates) == 1.0
    recall = covered / max(total, 1)

    matched = [(e, matching_human_questions(e.answer, qas_by_chunk[e.chunk_id])) for e in examples]
    matched = [(e, humans) for e, humans in matched if humans]
    rule_sim = sum(question_similarity(e.question, h) for e, h in matched) / max(len(matched), 1)

    def sentence_of(e):
        from ragtune.text import sentence_spans

        start = e.metadata["answer_start"]
        s, t = next(((s, t) for s, t in sentence_spans(e.context) if s <= start < t), (0, len(e.context)))
        return e.context[s:t]

    copy_sim = sum(question_similarity(sentence_of(e), h) for e, h in matched) / max(len(matched), 1)

    print(f"SQuAD v1.1 dev (even articles): {len(chunks)} paragraphs, per_chunk={args.per_chunk}, seed={args.seed}")
    print(f"rules-only synth: {len(examples)} questions in {rules_s:.2f} s; rejected {result.rejected}")
    print()
    print(f"{'answer spans':36s} {'EM vs human':>12s} {'F1 vs human':>12s}")
    print(f"{'random 1-4 word spans (baseline)':36s} {rand_em:12.3f} {rand_f1:12.3f}")
    print(f"{'synthesized answers':36s} {synth_em:12.3f} {synth_f1:12.3f}   ratio EM {synth_em / max(rand_em, 1e-9):.1f}x")
    print(f"extractor recall (human answers that are exactly a candidate span): {recall:.3f} of {total}")
    print()
    print(f"question similarity to the human question, {len(matched)} synthesized answers matching a human answer:")
    print(f"{'copy the answer sentence (baseline)':36s} token F1 {copy_sim:.3f}")
    print(f"{'rule questions':36s} token F1 {rule_sim:.3f}")

    if args.llm:
        from ragtune.config import GenerateConfig
        from ragtune.generate import load_generator
        from ragtune.train.synth import _round_trip, _Candidate, question_messages
        from ragtune.train.paraphrase import clean_question
        from ragtune.train.answer_spans import AnswerSpan
        from collections import Counter

        generator = load_generator(GenerateConfig(model="bundled", batch_size=8))
        t0 = time.perf_counter()
        messages = [question_messages(sentence_of(e), e.answer) for e, _ in matched]
        replies = []
        for start in range(0, len(messages), 8):
            replies.extend(g.text for g in generator.generate(messages[start : start + 8], max_new_tokens=40))
        llm_s = time.perf_counter() - t0
        llm_questions = [clean_question(r) for r in replies]
        llm_sim = sum(question_similarity(q, h) for q, (_, h) in zip(llm_questions, matched)) / max(len(matched), 1)
        from ragtune.train.synth import check_pair

        llm_pass = sum(check_pair(q, e.answer, e.context) is None for q, (e, _) in zip(llm_questions, matched))
        print(f"{'LLM questions (same spans)':36s} token F1 {llm_sim:.3f}  pass filters {llm_pass}/{len(matched)}  ({llm_s:.1f} s)")
        for q, (e, h) in list(zip(llm_questions, matched))[:8]:
            print(f"   LLM: {q!r}  | rules: {e.question!r}  | human: {h[0]!r}")

        candidates = []
        by_id = {c.chunk_id: c for c in chunks}
        for e in examples:
            start = e.metadata["answer_start"]
            span = AnswerSpan(e.answer, start, start + len(e.answer), e.metadata["answer_kind"], 0, 0)
            candidates.append(_Candidate(by_id[e.chunk_id], span, e.question))
        rejected: Counter[str] = Counter()
        t0 = time.perf_counter()
        passed = _round_trip(generator, candidates, rejected, 8)
        rt_s = time.perf_counter() - t0
        passed_ids = {id(c) for c in passed}
        kept_sim = [question_similarity(c.question, matching_human_questions(c.span.text, qas_by_chunk[c.chunk.chunk_id]))
                    for c in candidates if id(c) in passed_ids]
        print(f"round trip: the bundled model recovers {len(passed)}/{len(candidates)} rule answers ({rt_s:.1f} s)")
        kept_em, _ = answer_scores([(c.chunk.chunk_id, c.span.text) for c in passed])
        print(f"  answer EM vs human among round-trip survivors {kept_em:.3f} (all: {synth_em:.3f})")

    print()
    print(f"{args.show} synthesized pairs (answer kind | answer | question):")
    for e in examples[: args.show]:
        print(f"  {e.metadata['answer_kind']:7s} | {e.answer[:28]:28s} | {e.question}")
    return 0



class _OneAtATime:
    """The baseline's generator: one conversation per generate call, each generated to its own end (no `done`)."""

    def __init__(self, inner):
        self.inner, self.model_id = inner, inner.model_id

    def generate(self, batch, max_new_tokens=64):
        return [g for messages in batch for g in self.inner.generate([messages], max_new_tokens=max_new_tokens)]


def _every_candidate(generator, queue, kept_by_chunk, per_chunk, rejected, seen):
    """How synthesis asked the model before its candidates were lazy: every candidate of every chunk, in order."""
    from ragtune.train import synth

    for i, candidates in queue:
        replies = generator.generate([synth.question_messages(synth._sentence(c), c.span.text) for c in candidates],
                                     max_new_tokens=synth.QUESTION_TOKENS)
        for candidate, reply in zip(candidates, replies, strict=True):
            candidate.question, candidate.method = synth.clean_question(reply.text), "llm"
            if len(kept_by_chunk[i]) < per_chunk and synth._accept(candidate, rejected, seen):
                kept_by_chunk[i].append(candidate)


def speed(paragraphs: int, per_chunk: int, batch_size: int, seed: int) -> None:
    """LLM question synthesis + one paraphrase each: the baseline vs the current code (module doc)."""
    import resource

    from ragtune.config import GenerateConfig
    from ragtune.generate import load_generator
    from ragtune.progress import set_progress
    from ragtune.train import synth

    set_progress(False)
    chunks = [chunk for chunk, _ in load_paragraphs(paragraphs)]
    generator = load_generator(GenerateConfig(model="bundled", batch_size=batch_size))
    runs = (("one at a time, every candidate (baseline)", True, False),
            (f"batch {batch_size}, whole prompts", False, False), (f"batch {batch_size}, shared prefix (default)", False, True))
    timed: dict[str, dict[str, float]] = {}
    questions: dict[str, list[str]] = {}
    original_paraphrase, original_questions = synth.paraphrase_with_model, synth._llm_questions
    for label, baseline, share in runs:
        clock = {"paraphrase": 0.0}

        def paraphrase_timed(*args, _clock=clock, **kwargs):
            t = time.perf_counter()
            try:
                return original_paraphrase(*args, **kwargs)
            finally:
                _clock["paraphrase"] += time.perf_counter() - t

        synth.paraphrase_with_model = paraphrase_timed
        if baseline:
            synth._llm_questions = _every_candidate
        generator.share_prefix = share
        try:
            t0 = time.perf_counter()
            result = synth.synthesize_qa(chunks, _OneAtATime(generator) if baseline else generator, per_chunk=per_chunk,
                                         paraphrases=1, seed=seed, questions="llm",
                                         batch_size=1 if baseline else batch_size)
            total = time.perf_counter() - t0
        finally:
            synth.paraphrase_with_model, synth._llm_questions = original_paraphrase, original_questions
        kept = sum(1 for e in result.examples if e.metadata["kind"] == "original")
        timed[label] = {"synth_s": total - clock["paraphrase"], "paraphrase_s": clock["paraphrase"],
                        "kept": kept, "examples": len(result.examples)}
        questions[label] = [e.question for e in result.examples]
    print(f"LLM synthesis on {len(chunks)} SQuAD paragraphs (questions='llm', per_chunk={per_chunk}, 1 paraphrase), "
          f"bundled model, {os.cpu_count()} CPU(s)")
    print(f"{'':42s} {'synth s':>8s} {'chunks/s':>9s} {'paraphrase s':>13s} {'questions/s':>12s} {'examples':>9s}")
    for label, row in timed.items():
        print(f"{label:42s} {row['synth_s']:8.1f} {len(chunks) / row['synth_s']:9.2f} {row['paraphrase_s']:13.1f} "
              f"{row['kept'] / max(row['paraphrase_s'], 1e-9):12.2f} {row['examples']:9d}")
    base = timed[runs[0][0]]
    baseline_questions = questions[runs[0][0]]
    for label, _, _ in runs[1:]:
        row = timed[label]
        same = sum(a == b for a, b in zip(baseline_questions, questions[label]))
        print(f"{label}: synthesis {base['synth_s'] / row['synth_s']:.2f}x chunks/s, paraphrasing "
              f"{base['paraphrase_s'] / max(row['paraphrase_s'], 1e-9):.2f}x, both "
              f"{(base['synth_s'] + base['paraphrase_s']) / (row['synth_s'] + row['paraphrase_s']):.2f}x the baseline; "
              f"same questions {same}/{max(len(baseline_questions), len(questions[label]))} "
              f"(greedy; padding can change a few near-ties)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


def downstream(train_paragraphs: int, eval_questions: int, epochs: int, seed: int, out_dir: str) -> None:
    """Does training on synthesized questions teach the bundled model to read? SFT-with-context (the gold
    paragraph as source [1]) on questions synthesized from the first articles' paragraphs; token F1 on the
    human questions of the last articles' paragraphs (never trained on), gold paragraph in the prompt."""
    from ragtune.config import GenerateConfig
    from ragtune.evaluate.answer_metrics import f1
    from ragtune.generate import clear_generator_cache, load_generator
    from ragtune.generate.prompts import build_messages, parse_answer
    from ragtune.progress import set_progress
    from ragtune.train.builders import build_sft_examples
    from ragtune.train.config import FinetuneConfig
    from ragtune.train.synth import synthesize_qa
    from ragtune.train.trainer import finetune
    from ragtune.types import Chunk, Hit

    set_progress(False)
    data = json.loads(SQUAD.read_text())["data"]
    train_articles, eval_articles = data[:16], data[16:]
    train_chunks = [Chunk(chunk_id=f"{a['title']}#{j}", doc_id=a["title"], text=p["context"])
                    for a in train_articles for j, p in enumerate(a["paragraphs"])][:train_paragraphs]
    eval_rows = [(Chunk(chunk_id=f"{a['title']}#{j}", doc_id=a["title"], text=p["context"]), p["qas"][0])
                 for a in eval_articles for j, p in enumerate(a["paragraphs"])][:eval_questions]
    t0 = time.perf_counter()
    synth = synthesize_qa(train_chunks, None, per_chunk=2, seed=seed)
    train = build_sft_examples(synth.examples, with_context=True)
    print(f"downstream: {len(synth.examples)} synthesized questions from {len(train_chunks)} paragraphs "
          f"({time.perf_counter() - t0:.1f} s); evaluating on {len(eval_rows)} human questions of other articles")

    def score(adapter: str | None) -> float:
        clear_generator_cache()
        gen = load_generator(GenerateConfig(model="bundled", adapter=adapter, max_new_tokens=32))
        messages = [build_messages(qa["question"], [Hit(chunk=chunk, score=1.0)]) for chunk, qa in eval_rows]
        replies = []
        for start in range(0, len(messages), 8):
            replies += [g.text for g in gen.generate(messages[start : start + 8], max_new_tokens=32)]
        scores = [f1(parse_answer(r).answer, [a["text"] for a in qa["answers"]]) for r, (_, qa) in zip(replies, eval_rows)]
        for r, (_, qa) in list(zip(replies, eval_rows))[:3]:
            print(f"   {qa['question']!r} -> {parse_answer(r).answer!r} (gold {qa['answers'][0]['text']!r})")
        return sum(scores) / len(scores)

    t0 = time.perf_counter()
    base = score(None)
    print(f"base model, gold paragraph in the prompt: F1 {base:.3f} ({time.perf_counter() - t0:.0f} s)")
    t0 = time.perf_counter()
    info = finetune(train, out_dir, FinetuneConfig(epochs=epochs, checkpoint_every=0, seed=seed), overwrite=True)
    print(f"trained {epochs} epoch(s) of LoRA on {len(train)} synthesized examples in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    tuned = score(str(out_dir))
    print(f"tuned on synthesized questions:        F1 {tuned:.3f} ({time.perf_counter() - t0:.0f} s)  "
          f"gain {tuned - base:+.3f}")


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
