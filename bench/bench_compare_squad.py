"""The comparison on SQuAD v1.1 dev (shared data): base vs rag vs raft (and optionally ft / ft_rag).

The corpus is the paragraphs of the first N articles (the peer uses the first 4: 245 paragraphs); the test
questions are drawn with random.Random(seed).sample; the RAFT adapter is trained on questions *synthesised*
from the same paragraphs by `ragtune.train.synth` — never on the SQuAD questions. Prints the per-arm table
(with 95% CIs) and the LlamaIndex peer's figures on the same data as reference.

    .venv/bin/python bench/bench_compare_squad.py --questions 200 --per-chunk 4 --epochs 2 --distractors 1 --rules-only

    .venv/bin/python bench/bench_compare_squad.py --arms rag,rag_tr        # the tuned retriever's effect (issue #16)
    .venv/bin/python bench/bench_compare_squad.py --arms rag --search 12   # searched vs default settings (issue #17)
    .venv/bin/python bench/bench_compare_squad.py --arms rag --mode hybrid-convex  # score fusion instead of RRF
    .venv/bin/python bench/bench_compare_squad.py --arms rag --answer-form span    # answers copied from the passages
    .venv/bin/python bench/bench_compare_squad.py --arms rag --answer-pick evidence  # the best-backed of k + 1 answers

(the rules write 314 questions from the 245 paragraphs at --per-chunk 4; training them for 2 epochs takes ~30 min
here, the comparison ~10 min; --raft-adapter DIR skips the training.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SQUAD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad" / "squad-v1.1-dev-even.json"
PEER = {"rag": {"f1": 0.095, "exact_match": 0.00}}  # LlamaIndex 0.14, top-3, SmolLM2, measured on this machine


def subset(articles: int, first: int = 0) -> dict:
    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    return {"version": data.get("version", "1.1"), "data": data["data"][first : first + articles]}


def write_questions(squad: dict, n: int, seed: int, path: Path) -> int:
    rows = []
    for article in squad["data"]:
        for p, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                answers = list(dict.fromkeys(a["text"] for a in qa["answers"]))
                rows.append({"id": qa["id"], "question": qa["question"], "answer": answers[0], "answers": answers,
                             "doc_id": f"{article['title']}#{p}"})
    rows = random.Random(seed).sample(rows, min(n, len(rows)))
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def prepare(work: Path, articles: int, n_questions: int, seed: int, first: int = 0):
    """The work folder: the SQuAD subset as a corpus file, the sampled questions (questions.jsonl) and the index
    over the subset (built once, reused). Returns (index, questions path, number of questions)."""
    from ragtune.index import Index
    from ragtune.ingest import load_documents

    work.mkdir(parents=True, exist_ok=True)
    squad = subset(articles, first)
    corpus = work / "squad_subset.json"
    corpus.write_text(json.dumps(squad), encoding="utf-8")
    questions = work / "questions.jsonl"
    n = write_questions(squad, n_questions, seed, questions)
    t0 = time.perf_counter()
    index = Index.open_or_create(work / "index")
    index.add_documents(load_documents([corpus]).documents)
    print(f"index: {len(index)} chunks from {len(index.documents())} paragraphs in {time.perf_counter() - t0:.1f}s")
    return index, questions, n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=4)
    parser.add_argument("--first-article", type=int, default=0,
                        help="skip this many articles first (another sample than the bench's own, e.g. 10)")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--train-examples", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--per-chunk", type=int, default=2, help="synthesised questions per paragraph (at most)")
    parser.add_argument("--distractors", type=int, default=1, help="RAFT distractor chunks per training example")
    parser.add_argument("--arms", default="base,rag,raft")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--mode", default="hybrid", help="retrieval mode of the arms that retrieve (compare --mode)")
    parser.add_argument("--answer-form", default="free", choices=("free", "snap", "span", "free-or-span"),
                        help="compare --answer-form: snap / span answer with a span of the passages shown; "
                             "free-or-span only where no passage holds the free answer")
    parser.add_argument("--answer-pick", default="joint", choices=("joint", "evidence"),
                        help="compare --answer-pick: evidence also answers from each passage alone and keeps the "
                             "answer best backed by a sentence")
    parser.add_argument("--max-new-tokens", type=int, default=32,
                        help="answer length (the figures in the README are at 32; compare's own default is 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/squad-bench-work")
    parser.add_argument("--out", default="runs/squad-bench")
    parser.add_argument("--raft-adapter", default=None, help="reuse a trained RAFT adapter")
    parser.add_argument("--tuned-embedder", default=None, help="embedder folder for rag_tr / raft_tr (default: trained)")
    parser.add_argument("--rules-only", action="store_true", help="synthesise questions without the LLM")
    parser.add_argument("--search", type=int, default=None,
                        help="compare --search: trials per arm on a validation split of the questions (by paragraph); "
                             "prints each arm's searched vs default F1 on the rest")
    parser.add_argument("--validation-share", type=float, default=None,
                        help="with --search: the share of the questions searched on (compare's default 0.3)")
    args = parser.parse_args()
    if not SQUAD.is_file():
        print(f"SQuAD data not found at {SQUAD}; nothing to benchmark.")
        return 0

    from ragtune.arms import ARMS, parse_arms
    from ragtune.cli.summary import print_run_summary
    from ragtune.workflows.compare import CompareConfig, run_compare
    from ragtune.workflows.train_arms import train_adapters

    work = Path(args.work)
    index, questions, n_questions = prepare(work, args.articles, args.questions, args.seed, args.first_article)

    arms = parse_arms(args.arms)
    raft = args.raft_adapter
    if {"raft", "raft_tr"} & set(arms) and raft is None:
        from ragtune.config import GenerateConfig
        from ragtune.generate import load_generator
        from ragtune.train.synth import synthesize_qa

        t0 = time.perf_counter()
        generator = None if args.rules_only else load_generator(GenerateConfig())
        synth = synthesize_qa(index.chunks(), generator, per_chunk=args.per_chunk, paraphrases=0, seed=args.seed)
        examples = list(synth.examples)
        random.Random(args.seed).shuffle(examples)
        examples = examples[: args.train_examples]
        print(f"synthesised {len(synth.examples)} questions ({synth.rejected} rejected) in "
              f"{time.perf_counter() - t0:.0f}s; training RAFT on {len(examples)}")
        trained = train_adapters(index, ["raft"], work / "adapters", examples=examples, epochs=args.epochs,
                                 seed=args.seed, settings={"raft": {"distractors": args.distractors}})
        raft = trained["raft"]["path"]
        print(f"RAFT adapter: {raft} ({trained['raft']['train_s']:.0f}s)")
    # rag_tr / raft_tr: compare trains the embedder with finetune-embedder's defaults (--train; nothing else is
    # missing: the RAFT adapter is given) unless --tuned-embedder names one
    tuned = any(ARMS[a].tuned_retriever for a in arms)
    config = CompareConfig(index=str(work / "index"), questions=str(questions), out=args.out, arms=tuple(arms),
                           raft_adapter=raft, k=args.k, mode=args.mode, seed=args.seed, overwrite=True,
                           max_new_tokens=args.max_new_tokens,
                           answer_form=args.answer_form, answer_pick=args.answer_pick,
                           tuned_embedder=args.tuned_embedder, train=tuned and args.tuned_embedder is None,
                           search=args.search,
                           **({"validation_share": args.validation_share} if args.validation_share else {}))
    t0 = time.perf_counter()
    run_dir = run_compare(config)
    print_run_summary(run_dir)
    if args.search:
        from ragtune.workflows.demo import search_gains

        print(f"\nsettings search ({args.search} trials per arm, {time.perf_counter() - t0:.0f}s in all)")
        for found in search_gains(run_dir):
            versus = found["test_versus"]
            paired = f", paired p={versus['p_value']:.3f}, 95% CI {versus['ci95'][0]:+.3f} to {versus['ci95'][1]:+.3f}" \
                if versus else ""
            print(f"{found['arm']}: test F1 searched {found['searched_f1']:.3f} vs defaults {found['default_f1']:.3f} "
                  f"({found['gain_f1']:+.3f}{paired}) on {found['test_questions']} test questions "
                  f"({found['validation_questions']} validation); chosen {found['params']}; "
                  f"{found['trials']} trials in {found['search_s']:.0f}s")
            if found["why"]:
                print(f"  {found['why']}")
    results = json.loads((run_dir / "results.json").read_text())
    where = f"first {args.articles}" if not args.first_article else \
        f"{args.articles} (from article {args.first_article}; no peer figures for them)"
    print(f"\nSQuAD v1.1 dev, {where} articles, {n_questions} questions, top-{args.k}")
    print(f"{'arm':8} {'F1':>6} {'EM':>6}   peer (LlamaIndex) F1/EM")
    for arm, entry in results["arms"].items():
        peer = PEER.get(arm) if not args.first_article else None
        ref = f"{peer['f1']:.3f}/{peer['exact_match']:.2f}" if peer else ""
        print(f"{arm:8} {entry['metrics']['f1']:6.3f} {entry['metrics']['exact_match']:6.3f}   {ref}")
    return 0


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
