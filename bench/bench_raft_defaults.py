"""RAFT with DEFAULT settings on documents nobody tuned for (issue 18): the product's own flow, end to end.

Per corpus, as a new user would: `ragtune ingest` the documents, then
`ragtune compare --arms base,rag,raft --train` with every other setting at its default (training questions
synthesised from the index — never the evaluation questions —, the default RAFT mix and epochs, top-3 hybrid).
Both commands run as the CLI in their own subprocess. Prints per corpus: base / rag / raft F1 with 95% bootstrap
CIs, raft − rag with its paired test (ragtune.evaluate.stats, as compare records it in results.json: the raw
p-value and the Holm-adjusted one over the run's 3 pairs), p50 latency raft vs rag, the RAFT training time
(train_s: synthesis excluded, the --train-minutes probe included) and the peak RSS of the `ragtune compare`
process (ru_maxrss from wait4: the largest single process of its tree, here the compare process itself).

Corpora:
  squad    SQuAD v1.1 dev, the 24 even articles (../shared/data/squad). Split by a fixed rule, printed every run:
           articles 0-11 of the file are the CHOOSE split (defaults may be tuned on them; they include the first 4
           that bench_compare_squad.py and bench_rag_layout.py chose the RAFT and layout settings on), articles
           12-23 the HELD-OUT split (confirm only; bench_prompts.py samples questions of all 24 articles and
           bench_synth.py evaluates on 16-23, so no article is untouched, but no RAFT setting was chosen on these).
           The bench runs --split heldout unless told otherwise; --articles N takes N articles of the split
           from --offset; --questions N draws N of their SQuAD questions with random.Random(--seed).
  handbook the sample handbook (src/ragtune/sample/handbook) and its 90 questions (train and test splits alike:
           compare --train synthesises its own training questions and never reads them), --questions N drawn
           the same way.

    .venv/bin/python bench/bench_raft_defaults.py --articles 3 --questions 100            # the issue's setting
    .venv/bin/python bench/bench_raft_defaults.py --train-minutes 20                      # with a training budget
    .venv/bin/python bench/bench_raft_defaults.py --quick                                 # smoke run, minutes

--quick: 3 paragraphs of 1 held-out article and 2 handbook documents, 6 questions each, --train-minutes 1 (a
smoke test of the path; its figures mean nothing). Skips cleanly when ../shared/data is absent (the handbook
still runs). Work folders and runs go under --out (default runs/raft-defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "squad" / "squad-v1.1-dev-even.json"
HANDBOOK = ROOT / "src" / "ragtune" / "sample"
CHOOSE_ARTICLES = range(0, 12)  # defaults may be chosen on these
HELDOUT_ARTICLES = range(12, 24)  # confirm only: never tune on them
ARMS = "base,rag,raft"
QUICK = {"articles": 1, "paragraphs": 3, "handbook_docs": 2, "questions": 6, "train_minutes": 1.0}


def squad_split(split: str) -> list[int]:
    return list(HELDOUT_ARTICLES if split == "heldout" else CHOOSE_ARTICLES)


def squad_corpus(work: Path, split: str, articles: int, offset: int, paragraphs: int | None) -> tuple[Path, list, str]:
    """The chosen articles as a SQuAD file to ingest (paragraphs: only the first N of each), their QA rows and a
    line naming the split."""
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    chosen = squad_split(split)[offset : offset + articles]
    if len(chosen) < articles:
        raise SystemExit(f"--articles {articles} from --offset {offset}: the {split} split has {len(squad_split(split))}")
    subset = [{**data[i], "paragraphs": data[i]["paragraphs"][:paragraphs]} for i in chosen]
    rows = []
    for article in subset:
        for p, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                answers = list(dict.fromkeys(a["text"] for a in qa["answers"]))
                rows.append({"id": qa["id"], "question": qa["question"], "answer": answers[0], "answers": answers,
                             "doc_id": f"{article['title']}#{p}"})
    path = work / "docs" / "squad_subset.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "1.1", "data": subset}), encoding="utf-8")
    titles = [data[i]["title"] for i in squad_split("choose")], [data[i]["title"] for i in squad_split("heldout")]
    names = ", ".join(f"{i}:{data[i]['title']}" for i in chosen)
    line = (f"SQuAD split rule: choose = articles 0-11 ({', '.join(titles[0])}); held-out = articles 12-23 "
            f"({', '.join(titles[1])}).\nThis run: {split} split, articles [{names}]"
            + (f", first {paragraphs} paragraphs each" if paragraphs else ""))
    return path, rows, line


def handbook_corpus(work: Path, docs: int | None) -> tuple[Path, list, str]:
    """The handbook folder to ingest (docs: a copy of the first N documents that have questions) and its QA rows."""
    rows = [json.loads(line) for line in (HANDBOOK / "questions.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    folder = HANDBOOK / "handbook"
    if docs:
        keep = list(dict.fromkeys(r["doc_id"] for r in rows))[:docs]
        folder = work / "docs" / "handbook"
        shutil.rmtree(folder, ignore_errors=True)
        for doc_id in keep:
            (folder / doc_id).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(HANDBOOK / "handbook" / doc_id, folder / doc_id)
        rows = [r for r in rows if r["doc_id"] in keep]
    rows = [{k: r[k] for k in ("id", "question", "answer", "answers", "doc_id") if k in r} for r in rows]
    return folder, rows, f"handbook: {'first ' + str(docs) if docs else 'all'} documents with questions"


def write_questions(rows: list, n: int, seed: int, path: Path) -> int:
    rows = random.Random(seed).sample(rows, min(n, len(rows)))
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def run_cli(args: list[str], log: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """`python -m ragtune.cli ARGS` in a subprocess (output to log; its plan and ingest lines echoed): (seconds,
    peak RSS MB of its tree's largest process). An exit status outside `ok` stops the bench."""
    env = {**os.environ, "RAGTUNE_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    t0 = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ragtune.cli", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted (Ctrl-C, `timeout`): the child stops with the bench
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    text = log.read_text(encoding="utf-8", errors="replace")
    if proc.returncode not in ok:
        raise SystemExit(f"ragtune {args[0]} failed (exit {proc.returncode}); its output:\n{text[-3000:]}")
    for line in text.splitlines():
        if "training plan" in line or line.startswith(("documents:", "skipped")):
            print(f"  {line}")
    return seconds, usage.ru_maxrss / 1024


def run_corpus(name: str, docs: Path, rows: list, args: argparse.Namespace, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "index", ignore_errors=True)
    questions = work / "questions.jsonl"
    n = write_questions(rows, args.questions, args.seed, questions)
    print(f"[{name}] ingest {docs} ; {n} questions (random.Random({args.seed}).sample of {len(rows)})")
    # exit 1: some file was skipped (e.g. a PDF without the pdf extra); the rest is indexed, as for a user
    ingest_s, _ = run_cli(["ingest", str(docs), "--index", str(work / "index")], work / "ingest.log", ok=(0, 1))
    compare = ["compare", "--index", str(work / "index"), "--questions", str(questions), "--out", str(work / "run"),
               "--arms", ARMS, "--train", "--seed", str(args.seed), "--overwrite"]
    if args.train_minutes:
        compare += ["--train-minutes", str(args.train_minutes)]
    print(f"[{name}] ragtune {' '.join(compare)}")
    compare_s, peak_mb = run_cli(compare, work / "compare.log")
    return {"name": name, "questions": n, "ingest_s": ingest_s, "compare_s": compare_s, "peak_rss_mb": peak_mb,
            "results": json.loads((work / "run" / "results.json").read_text(encoding="utf-8"))}


def report(entry: dict) -> None:
    from ragtune.evaluate.results import RunResults

    results = RunResults.from_dict(entry["results"])
    training = results.setup.get("training", {}).get("raft", {})
    print(f"\n{entry['name']}: {entry['questions']} questions, {results.setup['index']['documents']} documents, "
          f"{results.setup['index']['chunks']} chunks; RAFT trained on {training.get('examples')} examples x "
          f"{training.get('epochs')} epoch(s)" + (f" (plan: {training['plan']})" if "plan" in training else ""))
    print(f"{'arm':6} {'F1':>6} {'95% CI':>15} {'EM':>6} {'p50 ms':>8}")
    for arm in ARMS.split(","):
        m = results.arms[arm]
        lo, hi = m.ci95.get("f1", (float("nan"), float("nan")))
        print(f"{arm:6} {m.metric('f1'):6.3f} {f'({lo:.3f}-{hi:.3f})':>15} {m.metric('exact_match'):6.3f} "
              f"{m.metric('latency_ms_p50'):8.0f}")
    test = results.comparison("raft", "rag", "f1")
    if test is not None:
        ci = f"({test.ci95[0]:+.3f} to {test.ci95[1]:+.3f})" if test.ci95 else ""
        print(f"raft - rag F1 {test.delta:+.3f} {ci}, paired p = {test.p_value:.4f} (Holm over 3 pairs: "
              f"{test.adjusted_p:.4f}, {test.method}); goal: >= +0.15 at p < 0.01")
    raft_p50, rag_p50 = results.arms["raft"].metric("latency_ms_p50"), results.arms["rag"].metric("latency_ms_p50")
    print(f"p50 latency raft / rag: {raft_p50 / rag_p50:.2f}x ({raft_p50:.0f} vs {rag_p50:.0f} ms; goal <= 1.00x)")
    print(f"RAFT training {training.get('train_s', 0):.0f} s; compare process {entry['compare_s']:.0f} s wall, peak "
          f"RSS {entry['peak_rss_mb']:.0f} MB (largest process of its tree); ingest {entry['ingest_s']:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=3, help="SQuAD articles of the split")
    parser.add_argument("--offset", type=int, default=0, help="first article within the split")
    parser.add_argument("--split", choices=("heldout", "choose"), default="heldout")
    parser.add_argument("--questions", type=int, default=100, help="evaluation questions per corpus (at most)")
    parser.add_argument("--corpora", default="squad,handbook")
    parser.add_argument("--train-minutes", type=float, default=None, help="pass --train-minutes to compare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny corpora, 6 questions, 1 training minute")
    parser.add_argument("--out", default="runs/raft-defaults")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` stops the running ragtune child too
    paragraphs = handbook_docs = None
    if args.quick:
        args.articles, args.questions = QUICK["articles"], QUICK["questions"]
        args.train_minutes = args.train_minutes or QUICK["train_minutes"]
        paragraphs, handbook_docs = QUICK["paragraphs"], QUICK["handbook_docs"]
    out = Path(args.out)
    t0 = time.perf_counter()
    for corpus in args.corpora.split(","):
        work = out / corpus
        if corpus == "squad":
            if not SQUAD.is_file():
                print(f"SQuAD data not found at {SQUAD}; skipping the squad corpus.")
                continue
            docs, rows, line = squad_corpus(work, args.split, args.articles, args.offset, paragraphs)
            print(line)
        elif corpus == "handbook":
            docs, rows, line = handbook_corpus(work, handbook_docs)
            print(line)
        else:
            raise SystemExit(f"unknown corpus {corpus!r} (squad, handbook)")
        report(run_corpus(corpus, docs, rows, args, work))  # at once: a later corpus that fails or is cut off keeps this one's figures
    print(f"\ndefaults of this checkout; arms {ARMS}; seed {args.seed}; total {time.perf_counter() - t0:.0f} s"
          + (" (--quick: a smoke run, the figures mean nothing)" if args.quick else ""))
    return 0


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
