"""Where RAFT's gain is won or lost (issue 18): RAFT variants on the SAME corpus, questions and rag baseline.

On SQuAD articles of the CHOOSE split (bench_raft_defaults.py's rule: articles 0-11 may be used to choose
defaults, 12-23 only to confirm them) or on the sample handbook, the index is built once (`ragtune ingest`), the
rag arm answered once (`ragtune compare --arms rag`), and each variant then: synthesises its training questions
from the index (cached per synthesis setting), trains a RAFT adapter (`train_adapters`, as `compare --train`
does, on the layout the raft arm answers with) and answers the same questions with it (`ragtune compare --arms
raft --raft-adapter`, the one answer path). Prints per variant: examples, epochs, training seconds, raft F1 with
its 95% CI, raft - rag with the paired sign-flip p-value (per question, on the same questions), p50 latency.

Variants are named settings (VARIANTS below; `--list` prints them):
  synthesis: per_chunk, paraphrases, questions    data: distractors, p_oracle, context_sentences, max_examples
  training:  any FinetuneConfig field (epochs, lr, lora_dropout, ...)

    .venv/bin/python bench/bench_raft_mix.py --offset 4 --articles 3 --questions 100 --variants default,former,cut3
    .venv/bin/python bench/bench_raft_mix.py --corpus handbook --variants default,p1

Everything is cached under --work (index, rag run, synthesised questions, adapters, runs): a variant already
run is reported again without work; delete its folder to rerun it. Skips cleanly when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench_raft_defaults import (
    SQUAD,
    handbook_corpus,
    run_cli,
    squad_corpus,
    write_questions,
)

# compare --train's defaults (workflows/train_arms.SYNTHESIS["raft"], compare.py, FinetuneConfig): rule-written
# questions (up to 4 per chunk, no paraphrases), k-1 = 2 retrieved distractors, P(oracle) 0.8, whole passages,
# 2 epochs at lr 1e-3, no LoRA dropout. "former" is the default before issue 18 (LLM questions + paraphrases).
DEFAULT = {"per_chunk": 4, "paraphrases": 0, "questions": "rules", "distractors": 2, "p_oracle": 0.8,
           "context_sentences": 0, "max_examples": None, "epochs": 2, "lr": 1e-3, "lora_dropout": 0.0}
VARIANTS = {
    "default": {},
    "former": {"per_chunk": 2, "paraphrases": 1, "questions": "auto", "lora_dropout": 0.05},
    "dropout": {"lora_dropout": 0.05},
    "cloze-e1": {"questions": "cloze", "epochs": 1},
    "cut3": {"context_sentences": 3},
    "p1": {"p_oracle": 1.0},
    "d1": {"distractors": 1},
    "e1": {"epochs": 1},
    "e3": {"epochs": 3},
    "lr3e-4": {"lr": 3e-4},
    "pc8": {"per_chunk": 8},
    "para1-rules": {"paraphrases": 1},
}
_SYNTH = ("per_chunk", "paraphrases", "questions")


def settings_of(name: str) -> dict:
    if name not in VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    return {**DEFAULT, **VARIANTS[name]}


def synthesised(index, settings: dict, work: Path, seed: int) -> list:
    """The variant's training questions: synthesised from the index once per synthesis setting, then cached."""
    from ragtune.train.data import load_examples
    from ragtune.train.synth import write_qa_jsonl
    from ragtune.workflows.train_arms import training_examples

    key = "synth-pc{per_chunk}-para{paraphrases}-{questions}".format(**settings)
    path = work / "synth" / f"{key}.jsonl"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        examples = training_examples(index, None, synthesis={k: settings[k] for k in _SYNTH}, seed=seed)
        write_qa_jsonl(examples, path)
        print(f"  synthesised {len(examples)} questions ({key}) in {time.perf_counter() - t0:.0f} s")
    return list(load_examples(path).examples)


def run_variant(name: str, index_dir: Path, questions: Path, work: Path, seed: int) -> dict:
    """Synthesise, train and answer one variant (each step skipped when its output exists)."""
    from ragtune.index import Index
    from ragtune.workflows.train_arms import train_adapters

    settings = settings_of(name)
    folder = work / "variants" / name
    info_path = folder / "training.json"
    if not info_path.is_file():
        index = Index.open(index_dir)
        examples = synthesised(index, settings, work, seed)
        options = {k: v for k, v in settings.items() if k not in _SYNTH and v is not None}
        trained = train_adapters(index, ["raft"], folder / "adapters", examples=examples, seed=seed,
                                 settings={"raft": {**options, "retrieve_mode": "hybrid"}})
        folder.mkdir(parents=True, exist_ok=True)
        info_path.write_text(json.dumps({"settings": settings, "questions": len(examples), **trained["raft"]},
                                        default=str), encoding="utf-8")
    run = folder / "run"
    if not (run / "results.json").is_file():
        adapter = json.loads(info_path.read_text(encoding="utf-8"))["path"]
        run_cli(["compare", "--index", str(index_dir), "--questions", str(questions), "--out", str(run), "--arms",
                 "raft", "--raft-adapter", adapter, "--seed", str(seed), "--overwrite"], folder / "compare.log")
    return json.loads(info_path.read_text(encoding="utf-8"))


def f1_by_question(run: Path, arm: str) -> dict[str, float]:
    from ragtune.evaluate.answer_metrics import f1
    from ragtune.evaluate.run_files import read_predictions

    return {r["qid"]: f1(r["answer"], r["gold_answers"]) for r in read_predictions(run) if r["arm"] == arm}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=("squad", "handbook"), default="squad")
    parser.add_argument("--articles", type=int, default=3)
    parser.add_argument("--offset", type=int, default=4, help="first article within the choose split")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--variants", default="default,former")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=None, help="default runs/raft-mix/CORPUS[-OFFSET-ARTICLES]")
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    args = parser.parse_args()
    if args.list:
        for name, overrides in VARIANTS.items():
            print(f"{name:14} {overrides or '(compare --train defaults)'}")
        return 0
    names = [v for v in args.variants.split(",") if v]
    for name in names:
        settings_of(name)
    tag = f"squad-{args.offset}-{args.articles}" if args.corpus == "squad" else "handbook"
    work = Path(args.work or f"runs/raft-mix/{tag}")
    work.mkdir(parents=True, exist_ok=True)
    if args.corpus == "squad":
        if not SQUAD.is_file():
            print(f"SQuAD data not found at {SQUAD}; skipping.")
            return 0
        docs, rows, line = squad_corpus(work, "choose", args.articles, args.offset, None)
    else:
        docs, rows, line = handbook_corpus(work, None)
    print(line)
    questions, index_dir = work / "questions.jsonl", work / "index"
    if not (index_dir.is_dir() and questions.is_file()):
        n = write_questions(rows, args.questions, args.seed, questions)
        print(f"{n} questions; ingest {docs}")
        run_cli(["ingest", str(docs), "--index", str(index_dir)], work / "ingest.log", ok=(0, 1))
    rag_run = work / "rag"
    if not (rag_run / "results.json").is_file():
        run_cli(["compare", "--index", str(index_dir), "--questions", str(questions), "--out", str(rag_run), "--arms",
                 "rag", "--seed", str(args.seed), "--overwrite"], work / "rag.log")
    from ragtune.evaluate.results import RunResults
    from ragtune.evaluate.stats import bootstrap_ci, paired_test

    rag = f1_by_question(rag_run, "rag")
    rag_p50 = RunResults.from_dict(json.loads((rag_run / "results.json").read_text()))
    rag_p50 = rag_p50.arms["rag"].metric("latency_ms_p50")
    ids = sorted(rag)
    rag_mean = sum(rag.values()) / len(rag)
    lo, hi = bootstrap_ci([rag[i] for i in ids], seed=args.seed)
    print(f"\n{'variant':14} {'qs':>4} {'ex':>4} {'ep':>3} {'train s':>7} {'F1':>6} {'95% CI':>13} "
          f"{'vs rag':>7} {'p':>7} {'p50 ms':>7}")
    print(f"{'rag':14} {'':>4} {'':>4} {'':>3} {'':>7} {rag_mean:6.3f} {f'{lo:.3f}-{hi:.3f}':>13} {'':>7} {'':>7} "
          f"{rag_p50:7.0f}")
    for name in names:
        t0 = time.perf_counter()
        info = run_variant(name, index_dir, questions, work, args.seed)
        run = work / "variants" / name / "run"
        raft = f1_by_question(run, "raft")
        a, b = [raft[i] for i in ids], [rag[i] for i in ids]
        test = paired_test(a, b, seed=args.seed)
        lo, hi = bootstrap_ci(a, seed=args.seed)
        p50 = RunResults.from_dict(json.loads((run / "results.json").read_text())).arms["raft"].metric("latency_ms_p50")
        print(f"{name:14} {info['questions']:4d} {info['examples']:4d} {info['epochs']:3d} {info['train_s']:7.0f} "
              f"{sum(a) / len(a):6.3f} {f'{lo:.3f}-{hi:.3f}':>13} {test.delta:+7.3f} {test.p_value:7.4f} {p50:7.0f}"
              f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
