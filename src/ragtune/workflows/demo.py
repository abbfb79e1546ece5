"""`ragtune demo`: the whole product on the shipped sample handbook, offline.

Builds the index, trains the SFT and RAFT adapters (cached by content hash after the first run), runs every
arm plus the freshness test and writes the report. The training data is synthesised from the handbook's own
chunks plus the handbook's training questions; the evaluation questions (test split) are never trained on.

With `search` (opt-in: `ragtune demo --search TRIALS`), the comparison is followed by `compare --search` of the
arms that need no training to search (rag, raft with the demo's adapter) on the same questions, into RUN/search:
each arm's settings searched on a validation split of them, the winner and the defaults both run on the rest, so
the demo can say what searching gained on questions the search never saw (the same code as `ragtune tune`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from ragtune.paths import cache_dir
from ragtune.sample import SAMPLE_DIR
from ragtune.version import __version__

logger = logging.getLogger(__name__)

ARMS = ("base", "rag", "ft", "ft_rag", "raft")

# The demo's training budget, so the first run fits in ~8 minutes on 2 CPU cores (measured: an SFT step of 8
# short examples takes ~1.3 s, a RAFT step of 8 three-passage prompts ~14 s). `ragtune compare --train` and
# `ragtune finetune` use the full defaults (10 SFT epochs, 2 RAFT epochs over every example). RAFT checkpoints
# every other layer to keep the whole demo under 3 GB (2.82-2.89 GB measured, bench/bench_demo.py; 3.52 without):
# on its RAFT prompts, 4 steps in a fresh process, peak RSS 2.42 -> 1.98 GB at 14.2 -> 18.6 s a step (all
# layers: 1.51 GB, ~29 s).
DEMO_TRAINING = {
    "sft": {"max_steps": 80},
    "raft": {"epochs": 1, "max_examples": 96, "distractors": 2, "checkpoint_layers": 0.5},
}
# `ragtune demo --quick`: the same path end to end in a few minutes (rule-written questions, a few training
# steps, 8 questions): a smoke run, and the slow test of the demo path. Its figures mean little.
QUICK_TRAINING = {
    "sft": {"max_steps": 6},
    "raft": {"epochs": 1, "max_examples": 16, "distractors": 2},
}
QUICK_LIMIT = 8
DEMO_MAX_NEW_TOKENS = 32  # the handbook's answers are a few words; rambling past that only costs time
SEARCH_ARMS = ("rag", "raft")  # searched by `demo --search`: their trials only answer (no adapter is trained)
SEARCH_FOLDER = "search"  # RUN/search: the searched comparison's own run folder


def sample_dir() -> Path:
    """The sample corpus shipped inside the package."""
    return SAMPLE_DIR


def _split_questions(src: Path, split: str, dst: Path) -> Path:
    lines = [ln for ln in src.read_text(encoding="utf-8").splitlines() if ln.strip()]
    keep = [ln for ln in lines if json.loads(ln).get("split") == split]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(keep) + "\n", encoding="utf-8")
    return dst


def build_demo_index(work: Path) -> Any:
    """Ingest the sample handbook into work/index (idempotent: unchanged documents are not re-embedded), then
    hand the memory bulk embedding held back to the OS: the batch encoder's arena and the freed batches (~0.7 GB)
    would otherwise sit under the model conversion and training that come next (training adds ~1.7 GB).

    The demo's index is fp32, not the int8 a new index gets by default: its table is a reference that must
    reproduce, and int8 vectors reorder the hybrid retrieval the RAFT adapter's training distractors come from
    (measured 2026-11-29: 4 of the 30 raft answers changed, F1 0.733 -> 0.667; rag, ft_rag, ft and base the same).
    On its 72 chunks int8 would save a few seconds at most."""
    from ragtune.config import EmbedConfig, IndexConfig
    from ragtune.evaluate.efficiency import trim_memory
    from ragtune.index import Index
    from ragtune.ingest import load_documents

    index = Index.open_or_create(work / "index", IndexConfig(embed=EmbedConfig(precision="fp32")))
    loaded = load_documents([sample_dir() / "handbook"])
    if loaded.skipped:
        logger.warning("sample corpus: %d file(s) skipped: %s", len(loaded.skipped), loaded.skipped[:3])
    index.add_documents(loaded.documents)
    index.embedder.release_batch_encoder()
    trim_memory()
    return index


def _adapters_key(index: Any, train_file: Path, training: dict[str, Any], seed: int) -> str:
    digest = hashlib.sha256()
    for doc in sorted(index.documents(), key=lambda d: d.doc_id):
        digest.update(f"{doc.doc_id}\0{doc.hash}\n".encode())
    digest.update(train_file.read_bytes())
    digest.update(json.dumps({"training": training, "seed": seed, "version": __version__}, sort_keys=True).encode())
    digest.update(_training_code_digest().encode())
    return digest.hexdigest()[:16]


def _training_code_digest() -> str:
    """A hash of the code that decides what an adapter learns (synthesis and its per-kind settings, example
    builders, trainer and its defaults, prompts, sentence splitting), so a cached demo adapter is retrained when
    that code changes, not only when the package version does."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    code = [*(package / "train").glob("*.py"), package / "workflows" / "train_arms.py",
            package / "generate" / "prompts.py", package / "text.py"]
    for path in sorted(code):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def demo_adapters(index: Any, work: Path, train_file: Path, seed: int = 0, *, quick: bool = False) -> dict[str, str]:
    """SFT and RAFT adapters for the demo, trained once and reused while corpus and settings are unchanged."""
    from ragtune.workflows.train_arms import (
        DEFAULT_EPOCHS,
        train_adapters,
        training_examples,
    )

    training = QUICK_TRAINING if quick else DEMO_TRAINING
    key = _adapters_key(index, train_file, {"epochs": DEFAULT_EPOCHS, "quick": quick, **training}, seed)
    folder = work / "adapters" / key
    paths = {kind: folder / kind for kind in ("sft", "raft")}
    missing = [kind for kind, path in paths.items() if not (path / "ragtune_adapter.json").is_file()]
    if missing:
        logger.info("training demo adapters %s into %s", missing, folder)
        given = training_examples(index, str(train_file))
        examples = {kind: training_examples(index, None, kind=kind, seed=seed, rules_only=quick) + given
                    for kind in missing}
        train_adapters(index, missing, folder, examples=examples, seed=seed, settings=training)
        for stale in (work / "adapters").iterdir():
            if stale.name != key:
                shutil.rmtree(stale, ignore_errors=True)
    return {kind: str(path) for kind, path in paths.items()}


# What the demo tells the user it is doing, numbered "[i/n]" on stderr (the last only with --search); -q silences it.
DEMO_STAGES = (
    "Indexing the sample handbook",
    "Synthesising questions and fine-tuning the SFT and RAFT adapters (cached after the first run)",
    "Comparing the arms on the test questions, then the freshness test and the report",
    "Searching the rag and raft arms' settings",
)


def run_demo(out: str | Path = "runs/demo", *, limit: int | None = None, seed: int = 0, quick: bool = False,
             search: int | None = None) -> Path:
    """Run the demo comparison; returns the run folder (with report.html). quick: see QUICK_TRAINING. search:
    then search SEARCH_ARMS with up to that many trials each (search_demo), into RUN/search."""
    from ragtune.evaluate.cost import Scenario
    from ragtune.progress import Stages
    from ragtune.workflows.compare import CompareConfig, run_compare

    stages = Stages(list(DEMO_STAGES[: 4 if search else 3]))
    work = cache_dir() / "demo"
    sample = sample_dir()
    test_questions = _split_questions(sample / "questions.jsonl", "test", work / "questions_test.jsonl")
    train_questions = _split_questions(sample / "questions.jsonl", "train", work / "questions_train.jsonl")
    stages.start(DEMO_STAGES[0])
    index = build_demo_index(work)
    stages.start(DEMO_STAGES[1])
    adapters = demo_adapters(index, work, train_questions, seed=seed, quick=quick)
    if quick:
        limit = min(limit or QUICK_LIMIT, QUICK_LIMIT)
    config = CompareConfig(
        index=str(work / "index"),
        questions=str(test_questions),
        out=str(out),
        arms=ARMS,
        adapter=adapters["sft"],
        raft_adapter=adapters["raft"],
        freshness=str(sample / "updates"),
        limit=limit,
        seed=seed,
        max_new_tokens=DEMO_MAX_NEW_TOKENS,
        overwrite=True,
        scenario=Scenario(knowledge_change="monthly", needs_citations=False),
    )
    stages.start(DEMO_STAGES[2])
    run_dir = run_compare(config)
    if search:
        stages.start(DEMO_STAGES[3])
        search_demo(config, search, run_dir / SEARCH_FOLDER)
    return run_dir


def search_demo(config: Any, trials: int, out: Path, arms: tuple[str, ...] = SEARCH_ARMS) -> Path:
    """`compare --search` of `arms` with up to `trials` trials each, on the questions of the demo's comparison
    `config` (a CompareConfig), into `out` (its run folder, returned); no freshness test."""
    from ragtune.workflows.compare import run_compare

    searched = config.model_copy(update={"arms": tuple(arms), "search": trials, "freshness": None, "out": str(out),
                                         "overwrite": True, "resume": False})
    return run_compare(searched)


def search_gains(run_dir: Path) -> list[dict[str, Any]]:
    """Per searched arm of a `demo --search` run (RUN/search/results.json): the searched and the default settings'
    test F1 (and their paired test when the search changed the settings), the chosen settings, the trials and the
    search's seconds; `why`: the validation test that switched or kept the settings, as the report words it."""
    from ragtune.report.render import describe_versus_defaults

    results = json.loads((Path(run_dir) / "results.json").read_text(encoding="utf-8"))
    search = results["search"]
    return [{"arm": arm, "searched_f1": found["test"]["f1"], "default_f1": found["default_test"]["f1"],
             "gain_f1": found["gain_f1"], "test_versus": found.get("test_versus_defaults"), "params": found["params"],
             "default_params": found["default_params"], "why": describe_versus_defaults(found.get("versus_defaults")),
             "trials": found["trials"], "search_s": found["search_s"], "test_questions": search["test_questions"],
             "validation_questions": search["validation_questions"]}
            for arm, found in search["arms"].items()]
