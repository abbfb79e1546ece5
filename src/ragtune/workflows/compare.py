"""`ragtune compare`: every arm on the same questions, scored, reported, recorded — crash-safe and resumable.

The run is built in RUN_DIR.partial (predictions appended batch by batch, so `--resume` skips what is done)
and renamed to RUN_DIR only when results.json, predictions.jsonl and report.html are all written.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from collections.abc import Callable
from typing import Any, Protocol


from ragtune.version import __version__
from ragtune.arms import ARMS
from ragtune.atomic import place_dir
from ragtune.config import GenerateConfig
from ragtune.errors import ConfigError, InputError, RagtuneError
from ragtune.evaluate.efficiency import dir_size_bytes, peak_memory_mb, reset_peak_memory, trim_memory
from ragtune.evaluate.harness import run_arm
from ragtune.evaluate.results import RunResults
from ragtune.evaluate.run_files import dumps_predictions, write_text_atomic
from ragtune.evaluate.scoring import score_run
from ragtune.generate import load_generator, release_generators
from ragtune.graph import follow_index_commits
from ragtune.index import Index
from ragtune.index.store import index_location
from ragtune.ingest import load_documents
from ragtune.pipeline import AnswerSettings
from ragtune.progress import progress_task
from ragtune.report.recommend import with_recommendation
from ragtune.report.render import render_report
from ragtune.retrieve import open_retriever
from ragtune.runs_db import record_run
from ragtune.types import Example
from ragtune.workflows.compare_inputs import (  # noqa: F401  (CompareConfig, load_questions: the public names)
    CompareConfig,
    CompareInputs,
    arm_generate_config,
    check_gold,
    check_inputs,
    is_endpoint,
    load_questions,
    remote_model,
    tuned_retriever_arms,
)
from ragtune.workflows.train_arms import raft_layout, train_adapters

logger = logging.getLogger(__name__)

TUNED_INDEX = "index_tr"  # RUN.partial/index_tr: the index re-embedded for the *_tr arms (kept by --resume)
FRESH_TUNED_INDEX = "fresh_index_tr"


class _PartialRun:
    """RUN_DIR.partial: rows appended and fsync'd per batch so a crash loses at most one batch."""

    def __init__(self, out: Path, resume: bool):
        self.out = out
        self.dir = out.with_name(out.name + ".partial")
        self.rows_path = self.dir / "predictions.partial.jsonl"
        if self.dir.exists() and not resume:
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.done: dict[tuple[str, str, bool], dict[str, Any]] = {}
        if self.rows_path.exists():
            for line in self.rows_path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a torn last line from a kill: that batch is redone
                    continue
                self.done[(row["arm"], row["qid"], bool(row["freshness"]))] = row

    def append(self, rows: list[dict[str, Any]]) -> None:
        with self.rows_path.open("a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                self.done[(row["arm"], row["qid"], bool(row["freshness"]))] = row
            fh.flush()
            os.fsync(fh.fileno())

    def todo(self, arm: str, examples: list[Example], freshness: bool) -> list[Example]:
        return [e for e in examples if (arm, e.qid, freshness) not in self.done]

    def rows(self, arms: tuple[str, ...], examples: list[Example], freshness: bool) -> list[dict[str, Any]]:
        return [self.done[(a, e.qid, freshness)] for a in arms for e in examples]

    def commit(self) -> Path:
        self.rows_path.unlink(missing_ok=True)
        place_dir(self.dir, self.out, overwrite=True)
        return self.out


def _freshness_index(index_dir: Path, updates: Path, work: Path) -> tuple[Any, list[Example]]:
    """Copy the index, apply the update documents to the copy only, and load the freshness questions."""
    questions = updates / "questions.jsonl"
    if not questions.is_file():
        raise InputError(f"freshness folder {str(updates)!r} has no questions.jsonl")
    roots = sorted(p for p in updates.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not roots:
        raise InputError(f"freshness folder {str(updates)!r} has no document folder beside questions.jsonl")
    target = work / "fresh_index"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(index_dir, target, ignore=shutil.ignore_patterns("*.lock", "lock"))
    follow_index_commits()  # the copy's entity graph (if any) takes the updates in the same commit, before timing
    index = Index.open(target)
    loaded = load_documents(roots)
    if loaded.skipped:
        raise InputError(f"freshness update {loaded.skipped[0].path}: {loaded.skipped[0].reason}")
    stats = index.add_documents(loaded.documents)
    logger.info("freshness: %s", stats)
    examples = load_questions(questions)
    check_gold(examples, index, str(questions))
    return index, examples


@dataclass(frozen=True)
class AnswerJob:
    """One arm's unanswered questions over one index: the unit a shard executor is given."""

    arm: str
    generate: GenerateConfig  # the arm's generator (model, adapter, decoding)
    index_path: str  # the index its retriever opens (the freshness copy for freshness questions)
    examples: list[Example]
    freshness: bool


class AnswerExecutor(Protocol):
    """Answers jobs elsewhere (e.g. ragtune.distributed.ray_compare): rows go to `on_rows` as shards finish, as
    `run_arm` gives them (so --resume works), and `advance(n)` moves the progress bar. Returns the peak memory
    (MiB) per arm it measured. Raises if a shard could not be answered, after every other shard's rows are given."""

    def __call__(self, config: CompareConfig, jobs: list[AnswerJob], on_rows: Callable[[list[dict[str, Any]]], None],
                 advance: Callable[[int], Any]) -> dict[str, float]: ...


def run_compare(config: CompareConfig, executor: AnswerExecutor | None = None, *,
                on_train_plan: Callable[[str, Any], None] | None = None, trials_on: Any = None) -> Path:
    """Run the comparison described by `config`; returns the finished run folder.

    Steps: check every input (fails fast, before any long work) → open RUN_DIR.partial → train the adapters
    that are missing (--train) → answer with every arm, batch by batch (resumable) → score, recommend →
    write results, predictions and the report → rename into place → record in the runs DB.
    With an `executor` the answering runs through it (shards on Ray workers) instead of in this process.
    With `config.search`, each arm's settings are first searched on a validation split of the questions
    (ragtune.workflows.tune) and the arms answer only the test split, each with its winner; `trials_on` runs the
    search's trials in parallel (ragtune.distributed.ray_trials.RayTrials), the test run staying in this process.
    With config.train_minutes, `on_train_plan(kind, plan)` hears each adapter's training plan before it trains.
    """
    if config.search and executor is not None:
        raise ConfigError("--search answers its test run in this process: give its trials to trials_on, not an "
                          "executor")
    inputs = check_inputs(config)
    partial = _PartialRun(Path(config.out), config.resume)
    write_text_atomic(partial.dir / "config.json", config.model_dump_json(indent=2))
    setup = _describe_setup(config, inputs.index)
    training = None
    if config.search and config.train:  # the search trains its trials' adapters on the same examples
        from ragtune.workflows.trained_adapters import SearchTraining

        training = SearchTraining(config, inputs.index, partial.dir / "search")
    adapters = _train_missing_adapters(config, inputs, partial.dir / "adapters", setup, on_train_plan,
                                       training.examples if training else None)
    tuned_index = _tuned_retriever_index(config, inputs.index, partial.dir, setup)
    _describe_arms(config, adapters, setup)
    examples, search = inputs.examples, None
    if config.search:
        from ragtune.workflows.tune import search_for_compare

        arm_configs = {arm: arm_generate_config(config, adapters, arm) for arm in config.arms}
        arm_indexes = {arm: tuned_index for arm in config.arms if ARMS[arm].tuned_retriever}
        if training is not None:
            training.trained = setup.get("training", {})  # the defaults' adapters, not trained again
        search = search_for_compare(config, inputs.index, examples, arm_configs, partial.dir / "search",
                                    arm_indexes=arm_indexes, training=training, trials_on=trials_on)
        examples = search.split.test
    groups = [_Group.over(examples, inputs.index, tuned_index, config, freshness=False)]
    if config.freshness:
        fresh_index, fresh_examples = _freshness_index(Path(config.index), Path(config.freshness), partial.dir)
        fresh_tuned = None
        if tuned_index is not None:  # the updated copy re-embedded: the same chunks, the tuned embedder's vectors
            fresh_tuned, _ = _reembedded(fresh_index, partial.dir / FRESH_TUNED_INDEX, tuned_index.config.embed.model)
        groups.append(_Group.over(fresh_examples, fresh_index, fresh_tuned, config, freshness=True))
    if executor is None:
        searched = {arm: search.params(arm) for arm in config.arms} if search else {}
        rechunked = {arm: search.index(arm) for arm in config.arms} if search else {}
        for arm in config.arms if search else ():
            setup["arms"][arm]["index"] = _searched_index(search.arms[arm].search.index, rechunked[arm],
                                                          bool(config.freshness))
            if search.adapter(arm):  # the adapter its searched epochs and lr trained
                trained = search.arms[arm].search.chosen_training()
                setup["arms"][arm].update(adapter=search.adapter(arm), train_s=trained["adapter_train_s"] or 0.0,
                                          search_train_s=trained["train_s"])
        _answer(config, adapters, groups, partial, setup, searched,
                {arm: index for arm, index in rechunked.items() if index is not None},
                {arm: search.adapter(arm) for arm in config.arms if search and search.adapter(arm)})
    else:
        _answer_with(executor, config, adapters, groups, partial, setup)
    rows = [row for group in groups for row in partial.rows(config.arms, group.examples, group.freshness)]
    _record_final_paths(setup, partial.dir, Path(config.out))
    results = score_run(rows, setup=setup, scenario=config.scenario, cost_model=config.cost, seed=config.seed,
                        k=config.k)
    if search:  # a top-level key RunResults keeps as-is; unsearched runs keep the results.json they had
        summary = search.summary({arm: m.metrics for arm, m in results.arms.items()}, results.per_question,
                                 seed=config.seed)
        results = replace(results, extra={**results.extra, "search": summary})
    return _publish(config, partial, rows, with_recommendation(results, config.scenario))


@dataclass(frozen=True)
class _Group:
    """Questions answered over one index: the main questions, or the freshness ones over the updated copy.
    The tuned-retriever arms answer over `tuned_index`, the same chunks embedded with the tuned embedder."""

    examples: list[Example]
    index: Any
    retriever: Any
    freshness: bool
    tuned_index: Any = None
    tuned_retriever: Any = None

    @classmethod
    def over(cls, examples: list[Example], index: Any, tuned_index: Any, config: CompareConfig,
             freshness: bool) -> _Group:
        options = config.retrieve_options()
        tuned = open_retriever(tuned_index, config.mode, **options) if tuned_index is not None else None
        return cls(examples, index, open_retriever(index, config.mode, **options), freshness, tuned_index, tuned)

    def source(self, arm: str) -> tuple[Any, Any]:
        """(index, retriever) the arm retrieves from."""
        if ARMS[arm].tuned_retriever:
            return self.tuned_index, self.tuned_retriever
        return self.index, self.retriever


def _describe_setup(config: CompareConfig, index: Any) -> dict[str, Any]:
    """results.json's "setup": models, index, retrieval and decoding; the arms are filled in as they run."""
    is_store = getattr(index, "is_store", False)  # a store's URI as the index names it: its password redacted
    return {
        "models": {"llm": config.model, "embedder": index.config.embed.model, "package_version": __version__},
        "index": {"path": index_location(index) if is_store else str(config.index), "chunks": len(index),
                  "documents": len(index.documents()),
                  "size_bytes": None if is_store else dir_size_bytes(config.index)},  # a store's size is the engine's
        "retrieval": {"mode": config.mode, "k": config.k},
        "decoding": {"max_new_tokens": config.max_new_tokens, "greedy": True},
        "arms": {},
    }


def _train_missing_adapters(config: CompareConfig, inputs: CompareInputs, out_dir: Path, setup: dict[str, Any],
                            on_plan: Callable[[str, Any], None] | None = None,
                            examples: Callable[[str], list[Example]] | None = None) -> dict[str, str | None]:
    """The adapter folder per kind: with --train, the ones the arms need and were not given are trained into
    out_dir (recorded in setup["training"]), on `examples(kind)` when given (the ones the search trains on).

    RAFT trains on the layout the raft arm answers with: k passages (the oracle and k-1 distractors, or k
    distractors) whose distractors come from the run's retrieval mode and +rerank settings (raft_layout)."""
    adapters = dict(inputs.adapters)
    needed = {ARMS[a].adapter for a in config.arms} - {None}
    missing = sorted(kind for kind in needed if adapters[kind] is None)
    if not (config.train and missing):
        return adapters
    settings = {"raft": raft_layout(config)}
    chosen = {kind: examples(kind) for kind in missing} if examples else None
    trained = train_adapters(inputs.index, kinds=missing, out_dir=out_dir, model=config.model,
                             train_data=config.train_data, examples=chosen, epochs=config.train_epochs,
                             seed=config.seed, settings=settings, train_minutes=config.train_minutes, on_plan=on_plan)
    for kind, info in trained.items():
        adapters[kind] = str(info["path"])
        setup.setdefault("training", {})[kind] = info
    return adapters


def _tuned_retriever_index(config: CompareConfig, index: Any, partial_dir: Path, setup: dict[str, Any]) -> Any:
    """RUN/index_tr, the index re-embedded with the tuned embedder (chunks reused, no re-parsing), or None when no
    arm retrieves with it. The embedder is --tuned-embedder, else (--train) trained into RUN/adapters/embedder with
    finetune-embedder's defaults. A resumed run reuses both. Recorded in setup["tuned_retriever"]."""
    if not tuned_retriever_arms(config):
        return None
    from ragtune.train import embedder_tuning

    if config.tuned_embedder:
        embedder_dir = Path(config.tuned_embedder)
    else:
        embedder_dir = partial_dir / "adapters" / "embedder"
        if not (embedder_dir / embedder_tuning.MANIFEST).is_file():  # written last: else a crash left a half folder
            shutil.rmtree(embedder_dir, ignore_errors=True)
            embedder_dir.parent.mkdir(parents=True, exist_ok=True)
            embedder_tuning.tune_embedder(index, embedder_dir, embedder_tuning.EmbedderTuneConfig(seed=config.seed))
    manifest = embedder_tuning.read_manifest(embedder_dir)
    embedder = str(embedder_dir.resolve())
    info: dict[str, Any] = {"embedder": embedder, "base_embedder": manifest.get("base_embedder"),
                            "validation": manifest.get("validation"), "train_s": float(manifest.get("seconds") or 0.0),
                            "index": str(partial_dir / TUNED_INDEX)}
    if not config.tuned_embedder:
        setup.setdefault("training", {})["embedder"] = {
            "path": embedder, "train_s": info["train_s"], "examples": (manifest.get("pairs") or {}).get("train"),
            "epochs": manifest.get("epochs_run"), "metrics": manifest.get("validation")}
    tuned, info["reembed_s"] = _reembedded(index, partial_dir / TUNED_INDEX, embedder)
    setup["tuned_retriever"] = info
    return tuned


def _reembedded(source: Any, target: Path, embedder: str) -> tuple[Any, float]:
    """`target` re-embedded from the folder index `source` with `embedder` at the source's precision (ragtune
    reindex's path, atomic), or kept as it is when a resumed run already wrote it so; with the seconds the
    re-embedding took (0: kept)."""
    from ragtune.index.reembed import reembed_index

    precision = source.config.embed.precision  # rag_tr differs from rag by its embedder only
    if target.is_dir():
        try:
            kept = Index.open(target)
            if (kept.config.embed.model, kept.config.embed.precision) == (embedder, precision):
                return kept, 0.0
        except RagtuneError:
            pass
        shutil.rmtree(target)
    t0 = time.perf_counter()
    reembed_index(source.path, target, embedder, precision)
    return Index.open(target), round(time.perf_counter() - t0, 2)


def _record_final_paths(setup: dict[str, Any], partial_dir: Path, out: Path) -> None:
    """Adapters trained in this run are answered with from RUN.partial but recorded where they end up: RUN."""
    def final(path: str | None) -> str | None:
        for base, target in ((partial_dir, out), (partial_dir.resolve(), out.resolve())):  # as given, or absolute
            if path and Path(path).is_relative_to(base):
                return str(target / Path(path).relative_to(base))
        return path

    for info in setup.get("training", {}).values():
        info["path"] = final(info.get("path"))
    for arm in setup.get("arms", {}).values():
        arm["adapter"] = final(arm.get("adapter"))
        if "embedder" in arm:
            arm["embedder"] = final(arm["embedder"])
    if "tuned_retriever" in setup:
        tuned = setup["tuned_retriever"]
        tuned["embedder"] = final(tuned["embedder"])
        tuned.pop("index", None)  # RUN.partial/index_tr is scratch, removed on publish; this rebuilds it:
        tuned["reindex"] = f"ragtune reindex {setup['index']['path']} --embedder {tuned['embedder']} --out INDEX_TR"


def _describe_arms(config: CompareConfig, adapters: dict[str, str | None], setup: dict[str, Any]) -> None:
    """setup["arms"][arm]: its adapter and training seconds (this run's training, else the adapter's manifest)."""
    for arm in config.arms:
        kind = ARMS[arm].adapter
        info = setup.get("training", {}).get(kind, {}) if kind else {}
        train_s = info.get("train_s") if info else (_adapter_train_seconds(adapters[kind]) if kind else 0.0)
        setup["arms"][arm] = {"adapter": adapters.get(kind) if kind else None, "train_s": train_s or 0.0}
        if ARMS[arm].tuned_retriever:  # the embedder's training is this arm's cost too
            setup["arms"][arm]["embedder"] = setup["tuned_retriever"]["embedder"]
            setup["arms"][arm]["train_s"] += setup["tuned_retriever"]["train_s"]
        if is_endpoint(config.model):
            setup["arms"][arm]["remote_model"] = remote_model(config, arm)


def _describe_settings(arm_config: GenerateConfig, arm_setup: dict[str, Any],
                       searched: dict[str, Any] | None = None) -> AnswerSettings:
    """The arm's AnswerSettings (with the searched ones when given), recorded in its setup."""
    settings = AnswerSettings.resolve(arm_config)
    if searched:
        from ragtune.workflows.search_space import with_params

        settings = with_params(settings, searched)
        arm_setup["searched"] = dict(searched)
    arm_setup["prompt_style"] = settings.prompt_style
    arm_setup["context_sentences"] = settings.context_sentences
    arm_setup["answer_form"] = settings.answer_form
    arm_setup["answer_pick"] = settings.answer_pick
    arm_setup["screening"] = settings.screening
    return settings


def _answer_with(executor: AnswerExecutor, config: CompareConfig, adapters: dict[str, str | None],
                 groups: list[_Group], partial: _PartialRun, setup: dict[str, Any]) -> None:
    """As _answer, with the arms' unanswered questions handed to `executor` as jobs."""
    jobs = []
    for arm in config.arms:
        arm_config = arm_generate_config(config, adapters, arm)
        _describe_settings(arm_config, setup["arms"][arm])
        for group in groups:
            todo = partial.todo(arm, group.examples, group.freshness)
            if todo:
                jobs.append(AnswerJob(arm, arm_config, str(group.source(arm)[0].path), todo, group.freshness))
    t_start = time.perf_counter()
    with progress_task("Answering", total=sum(len(j.examples) for j in jobs)) as task:
        peaks = executor(config, jobs, partial.append, task.advance)
    for arm, peak in peaks.items():
        setup["arms"][arm]["peak_memory_mb"] = round(peak, 1)  # the largest worker's high-water mark
    setup["answer_s"] = round(time.perf_counter() - t_start, 2)


def _searched_index(chosen: dict[str, Any] | None, rechunked: Any, freshness: bool) -> dict[str, Any] | None:
    """setup["arms"][arm]["index"]: the chunking and folder the arm's test questions were answered from (a
    re-chunked copy lies in RUN/search/), and that freshness questions keep the index's own chunking."""
    if chosen is None:
        return None
    info = dict(chosen)
    if rechunked is not None:
        info["index"] = str(Path("search") / info["index"])
        info["gold"] = "by document (gold chunk ids name passages of the index's own chunking)"
        if freshness:
            info["freshness"] = "answered on the index's own chunking (the re-chunked copy lacks the updates)"
    return info


def _answer(config: CompareConfig, adapters: dict[str, str | None], groups: list[_Group], partial: _PartialRun,
            setup: dict[str, Any], searched: dict[str, dict[str, Any]],
            rechunked: dict[str, Any] | None = None, trained: dict[str, str] | None = None) -> None:
    """Every arm answers every group's questions not yet answered; rows are appended to the partial run.
    `searched[arm]`: the settings its search chose (retrieval mode and k included), else the run's own;
    `rechunked[arm]`: the re-chunked index its chosen chunk size answers the (non-freshness) questions from;
    `trained[arm]`: the adapter its chosen epochs and lr trained."""
    from ragtune.workflows.chunk_indexes import doc_level_gold

    total = sum(len(partial.todo(a, g.examples, g.freshness)) for a in config.arms for g in groups)
    t_start = time.perf_counter()

    def arm_config_of(arm: str) -> GenerateConfig:
        arm_config = arm_generate_config(config, adapters, arm)
        if arm in (trained or {}):
            arm_config = arm_config.model_copy(update={"adapter": trained[arm]})
        return arm_config

    configs = {arm: arm_config_of(arm) for arm in config.arms}
    with progress_task("Answering", total=total) as task:
        for position, arm in enumerate(config.arms):
            arm_config = configs[arm]
            # Arms run one after another: only the models this and later arms use stay loaded (the demo's base,
            # SFT and RAFT models would otherwise all be in memory by the last arm).
            generator = None  # our reference to the previous arm's model goes first, so a released one is freed
            if release_generators(keep=[configs[later] for later in config.arms[position:]]):
                trim_memory()
            generator = load_generator(arm_config)
            chosen = searched.get(arm) or {}
            settings = _describe_settings(arm_config, setup["arms"][arm], chosen)
            mode, k = str(chosen.get("mode", config.mode)), int(chosen.get("k", config.k))
            task.update(description=f"Answering [{arm}]")
            reset_peak_memory()
            for group in groups:
                todo = partial.todo(arm, group.examples, group.freshness)
                if todo:  # passages are cut with the embedder of the index they come from, as `ask` does
                    index, retriever = group.source(arm)
                    if arm in (rechunked or {}) and not group.freshness:  # the chunk size its search chose
                        index, retriever, todo = rechunked[arm], None, doc_level_gold(todo)
                    embedder = index.embedder if ARMS[arm].retrieval else None
                    if retriever is None or mode != config.mode:
                        retriever = open_retriever(index, mode, **config.retrieve_options())
                    run_arm(arm, todo, generator, retriever, dataclasses.replace(settings, embedder=embedder),
                            k=k, batch_size=config.batch_size, freshness=group.freshness,
                            on_rows=partial.append, progress=task)
            setup["arms"][arm]["peak_memory_mb"] = round(peak_memory_mb(), 1)  # this arm's high-water mark (Linux)
    setup["answer_s"] = round(time.perf_counter() - t_start, 2)


def _publish(config: CompareConfig, partial: _PartialRun, rows: list[dict[str, Any]], results: RunResults) -> Path:
    """Write predictions, results and the report, rename the run into place and record it in the runs DB."""
    write_text_atomic(partial.dir / "predictions.jsonl", dumps_predictions(rows))
    write_text_atomic(partial.dir / "results.json", results.to_json())
    for scratch in ("fresh_index", FRESH_TUNED_INDEX, TUNED_INDEX):  # index_tr names RUN.partial's embedder path;
        shutil.rmtree(partial.dir / scratch, ignore_errors=True)  # `ragtune reindex` rebuilds it from the run
    render_report(partial.dir, title=f"ragtune report — {Path(config.out).name}")
    run_dir = partial.commit()
    try:
        record_run(run_dir, results.to_dict(), db_path=config.runs_db)
    except Exception as exc:  # noqa: BLE001 - the run itself is complete; a DB problem must not lose it
        logger.warning("could not record the run in the runs database: %s", exc)
    return run_dir


def _adapter_train_seconds(adapter: str | None) -> float:
    """Training time recorded in a given adapter's manifest (ragtune finetune writes it), for the cost model."""
    if not adapter:
        return 0.0
    try:
        manifest = json.loads((Path(adapter) / "ragtune_adapter.json").read_text(encoding="utf-8"))
        return float((manifest.get("metrics") or {}).get("train_seconds") or 0.0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0.0
