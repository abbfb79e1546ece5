"""`ragtune tune` and `compare --search`: each arm's settings searched on a validation split of the questions.

The questions are split by document, or validation questions are synthesised from documents that hold no
gold of the test questions (ragtune.workflows.validation_split); every arm's space
(ragtune.workflows.search_space) is searched on the validation part (ragtune.workflows.search). `ragtune tune`
stops there (trials.jsonl, best.json, split.json in --out); `compare --search` then answers the test part once
with each arm's winner — the only figures its report compares — and also scores each arm's defaults on test,
so the report can say what the search gained. A chunk size other than the index's own answers from a copy
re-chunked into the search folder (ragtune.workflows.chunk_indexes), shared by the arms searched on one index
and used again for the test run of the arm that chose it. With `--train` and no adapter given, a tuned arm's
epochs and learning rate are searched too: each pair's adapter is trained once into the search folder, within the
training budget (ragtune.workflows.trained_adapters), and the test run answers with the chosen one.
With `trials_on` (`--ray`) the trials of an arm that trains nothing run several at once on Ray workers
(ragtune.distributed.ray_trials); an arm whose search trains adapters keeps its trials here, one at a time (each
trains a model: several at once beside the answering workers would overload a machine), and `compare --search`
answers its test run here.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from ragtune.arms import ARMS, check_untuned_retriever, parse_arms
from ragtune.config import BUNDLED, GenerateConfig, RetrieveMode, StrictModel
from ragtune.errors import ConfigError
from ragtune.evaluate.cost import CostModel
from ragtune.evaluate.run_files import write_text_atomic
from ragtune.generate import load_generator
from ragtune.pipeline import AnswerSettings
from ragtune.types import Example
from ragtune.workflows.chunk_indexes import ChunkIndexes
from ragtune.workflows.compare_inputs import COMPARE_BATCH_SIZE, CompareConfig, arm_generate_config, check_inputs
from ragtune.workflows.answer_trials import AnswerTrials, TrialSpec
from ragtune.workflows.search import SearchResult, Trial, TrialMetrics, require_optuna, search_arm
from ragtune.workflows.search_space import default_params, space_for
from ragtune.workflows.trained_adapters import SearchTraining
from ragtune.workflows.validation_split import (DEFAULT_VALIDATION_SHARE, Split, split_by_document, synth_size,
                                                synthesize_validation)

if TYPE_CHECKING:
    from ragtune.workflows.trial_loop import TrialExecutor, TrialPool

logger = logging.getLogger(__name__)

SPLIT_FILE = "split.json"
VALIDATION_FILE = "validation.jsonl"  # synthesised validation questions, for a reader to check
DEFAULT_TRIALS = 20


class TuneConfig(StrictModel):
    """`ragtune tune`: one arm's settings searched on the validation part of the questions."""

    index: str
    questions: str | None = None  # None: validation questions are synthesised from the corpus
    out: str
    arm: str = "rag"
    trials: int = Field(DEFAULT_TRIALS, ge=1)
    max_p95_ms: float | None = Field(None, gt=0)
    max_cost_per_1k: float | None = Field(None, gt=0)
    cost: CostModel = CostModel()
    validation: Literal["split", "synth"] | None = None  # None: split the questions when given, else synthesise
    validation_share: float = Field(DEFAULT_VALIDATION_SHARE, gt=0, lt=1)
    validation_questions: int | None = Field(None, ge=1)  # synth: how many (default: by share, or 40)
    seed: int = 0
    resume: bool = False
    limit: int | None = Field(None, ge=1)
    model: str = BUNDLED
    adapter: str | None = None  # SFT adapter for ft / ft_rag
    raft_adapter: str | None = None  # RAFT adapter for raft
    train: bool = False  # no adapter given: train it, its epochs and learning rate searched
    train_data: str | None = None  # QA file to train on (default: synthesised from the index)
    train_epochs: int | None = Field(None, ge=1)  # the default epochs (else train_arms.DEFAULT_EPOCHS)
    search_train_minutes: float | None = Field(None, gt=0)  # the training budget of the search
    search_train_usd: float | None = Field(None, gt=0)  # the same, in USD at the cost model's training price
    k: int = Field(3, ge=1)  # the defaults the search starts from (compare's)
    mode: RetrieveMode = "hybrid"
    max_new_tokens: int = Field(64, ge=1)
    batch_size: int = Field(COMPARE_BATCH_SIZE, ge=1)
    runs_db: str | None = None

    @property
    def validation_source(self) -> str:
        """Where validation comes from: "split" (the questions) or "synth" (the corpus)."""
        return self.validation or ("split" if self.questions else "synth")

    def compare_config(self) -> CompareConfig:
        """The one-arm comparison whose inputs and defaults this search shares."""
        return CompareConfig(index=self.index, questions=self.questions or "", out=self.out, arms=(self.arm,),
                             adapter=self.adapter, raft_adapter=self.raft_adapter, train=self.train,
                             train_data=self.train_data, train_epochs=self.train_epochs,
                             search_train_minutes=self.search_train_minutes,
                             search_train_usd=self.search_train_usd, limit=self.limit, seed=self.seed,
                             k=self.k, mode=self.mode, model=self.model, max_new_tokens=self.max_new_tokens,
                             batch_size=self.batch_size, search=self.trials, max_p95_ms=self.max_p95_ms,
                             max_cost_per_1k=self.max_cost_per_1k, cost=self.cost,
                             validation=self.validation_source, validation_share=self.validation_share,
                             validation_questions=self.validation_questions, resume=self.resume, overwrite=True,
                             runs_db=self.runs_db)  # overwrite: --out is checked by run_tune, not as a run folder


def run_tune(config: TuneConfig, trials_on: TrialPool | None = None) -> SearchResult:
    """Split the questions (or synthesise validation questions), search the arm on validation; writes config.json,
    split.json, trials.jsonl and best.json in out (and validation.jsonl when synthesised). `trials_on`: run the
    trials there, several at once (ragtune.distributed.ray_trials.RayTrials), else one at a time here."""
    parse_arms([config.arm])  # a known arm, else InputError naming the choices
    check_untuned_retriever(config.arm, "tune")
    if config.validation_source == "split" and not config.questions:
        raise ConfigError("--validation split divides your questions: pass --questions FILE, or drop --validation "
                          "to synthesise validation questions from the index")
    out = Path(config.out)
    if not config.resume and any((out / name).exists() for name in (SPLIT_FILE, "trials.jsonl", "best.json")):
        raise ConfigError(f"--out {str(out)!r} already holds a search: --resume to continue it, or choose another "
                          "--out")
    compare = config.compare_config()
    require_optuna()  # the extra is there, before any model loads
    inputs = check_inputs(compare, questions_needed=config.questions is not None)
    split = split_questions(inputs.examples, compare, out, inputs.index)
    write_text_atomic(out / "config.json", config.model_dump_json(indent=2))  # what this search was run with
    arm_config = arm_generate_config(compare, inputs.adapters, config.arm)
    chunks = ChunkIndexes.under(inputs.index, out)
    training = SearchTraining(compare, inputs.index, out) if compare.train else None
    return _search(compare, config.arm, arm_config, chunks, split.validation, out, training, trials_on)


def split_questions(examples: list[Example], config: CompareConfig, out: Path, index: Any) -> Split:
    """The validation/test split (config.validation: the questions split by document, or validation synthesised
    from the documents free of their gold), written to out/split.json; on resume it must be the one recorded
    there."""
    if config.validation == "synth":
        size = synth_size(len(examples), config.validation_share, config.validation_questions)
        split = synthesize_validation(index, examples, questions=size, seed=config.seed,
                                      share=config.validation_share)
    else:
        split = split_by_document(examples, config.validation_share, config.seed)
    path = out / SPLIT_FILE
    if config.resume and path.is_file():
        recorded = json.loads(path.read_text(encoding="utf-8"))
        if recorded != split.to_dict():
            raise ConfigError(f"--resume: the questions, --seed or the validation options differ from the search in "
                              f"{str(out)!r} (its split.json); use the same ones, or another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(split.to_dict(), indent=2) + "\n")
    if split.source == "synth":
        from ragtune.train.synth import example_record

        write_text_atomic(out / VALIDATION_FILE, "".join(
            json.dumps({"id": e.qid, **example_record(e)}) + "\n" for e in split.validation))
        if split.synth and split.synth["test_without_gold"]:
            logger.warning("%d test question(s) name no gold document: validation questions synthesised from the "
                           "index may be about the same documents", split.synth["test_without_gold"])
    logger.info("%s: %d validation, %d test questions", "synthesised" if split.source == "synth" else "split",
                len(split.validation), len(split.test))
    return split


def _search(config: CompareConfig, arm: str, arm_config: GenerateConfig, chunks: ChunkIndexes,
            examples: list[Example], out: Path, training: SearchTraining | None = None,
            trials_on: TrialPool | None = None) -> SearchResult:
    """Search one arm: its trials one at a time here, or on `trials_on` — except those that train an adapter,
    which stay here one at a time (each trains a model: too heavy to run several at once beside the answering)."""
    if trials_on is not None and _trains(config, arm, training):
        logger.info("%s: the search trains its adapters, so its trials run here, one at a time", arm)
    if trials_on is None or _trains(config, arm, training):
        return _search_with(config, arm, _runner(config, arm, arm_config, chunks, examples, training), chunks, out,
                            training)
    spec = _spec(config, arm, arm_config, chunks, examples)
    runner = spec.runner(chunks, load_model=False)  # here: only finds (and builds) each chunk size's index
    with trials_on.executor(spec, runner.index_for) as executor:
        return _search_with(config, arm, runner, chunks, out, training, executor)


def _search_with(config: CompareConfig, arm: str, runner: AnswerTrials, chunks: ChunkIndexes, out: Path,
                 training: SearchTraining | None, executor: TrialExecutor | None = None) -> SearchResult:
    trains = runner.adapters is not None
    return search_arm(arm, space_for(arm, train=trains), _defaults(config, arm, runner, chunks.index), runner, out,
                      budget=config.search or 1, seed=config.seed, max_p95_ms=config.max_p95_ms,
                      max_cost_per_1k=config.max_cost_per_1k, cost_model=config.cost,
                      resume=config.resume, runs_db=config.runs_db, describe_index=runner.describe_index,
                      prune=True, describe_training=runner.describe_training if trains else None,
                      training=_training_note(config, arm, training), executor=executor,
                      questions=len(runner.examples))


def _trains(config: CompareConfig, arm: str, training: SearchTraining | None) -> bool:
    """The search trains the arm's adapter: it carries one, --train is on and none was given."""
    kind = ARMS[arm].adapter
    given = {"sft": config.adapter, "raft": config.raft_adapter}
    return training is not None and kind is not None and not given[kind]


def _training_note(config: CompareConfig, arm: str, training: SearchTraining | None) -> dict[str, Any] | None:
    """best.json "training" (before the chosen settings join it): searched and the budget, or why not."""
    kind = ARMS[arm].adapter
    if kind is None:
        return None
    if _trains(config, arm, training):
        return {"searched": True, "kind": kind, "budget_s": training.budget_s}
    flag = "--adapter" if kind == "sft" else "--raft-adapter"
    return {"searched": False, "kind": kind, "reason": f"the {kind} adapter is given ({flag}): its training "
                                                       "settings are not searched (add --train without it to search them)"}


def _runner(config: CompareConfig, arm: str, arm_config: GenerateConfig, chunks: ChunkIndexes,
            examples: list[Example], training: SearchTraining | None = None) -> AnswerTrials:
    if not _trains(config, arm, training):
        return _spec(config, arm, arm_config, chunks, examples).runner(chunks)
    kind = ARMS[arm].adapter
    adapters, defaults = training.adapters(kind), training.defaults(kind)
    # resolved as with the adapter the defaults train (an adapter answers plain prompts), before it is trained
    base = AnswerSettings.resolve(arm_config.model_copy(update={"adapter": str(adapters.path_of(*defaults))}))
    return AnswerTrials(arm, examples, None, chunks.index, base, k=config.k, mode=config.mode,
                        retrieve_options=config.retrieve_options(), batch_size=config.batch_size, chunks=chunks,
                        adapters=adapters,
                        load=lambda path: load_generator(arm_config.model_copy(update={"adapter": path})),
                        defaults=defaults)


def _spec(config: CompareConfig, arm: str, arm_config: GenerateConfig, chunks: ChunkIndexes,
          examples: list[Example]) -> TrialSpec:
    if getattr(chunks.index, "is_store", False):
        index_path = str(config.index)  # as given: the index's own URI is redacted
    else:  # absolute: a worker process need not share this one's working directory
        index_path = str(Path(chunks.index.path).resolve())
    return TrialSpec(arm, examples, arm_config, index_path, str(chunks.root.resolve()), k=config.k,
                     mode=config.mode, batch_size=config.batch_size, retrieve_options=config.retrieve_options())


def _defaults(config: CompareConfig, arm: str, runner: AnswerTrials, index: Any) -> dict[str, Any]:
    base = runner.base
    trained = None if runner.defaults is None else {"epochs": runner.defaults[0], "lr": runner.defaults[1]}
    return default_params(arm, mode=config.mode, k=config.k, prompt_style=base.prompt_style,
                          context_sentences=base.context_sentences, max_new_tokens=base.max_new_tokens,
                          answer_form=base.answer_form, answer_pick=base.answer_pick,
                          chunk_tokens=index.config.chunk.chunk_tokens, training=trained)


@dataclass(frozen=True)
class ArmSearch:
    """One arm's search for a comparison: the search, and its defaults' figures on the test questions."""

    search: SearchResult
    default_test: TrialMetrics | None  # None when the defaults won (the winner's test figures are theirs)
    chunks: ChunkIndexes | None = None  # the index of each chunk size, for the test run
    root: Path | None = None  # the search folder (best.json names a trained adapter relative to it)


@dataclass(frozen=True)
class ComparisonSearch:
    """Every arm searched on validation, ready for the test run of `compare --search`."""

    split: Split
    arms: dict[str, ArmSearch]

    def params(self, arm: str) -> dict[str, Any]:
        """The settings `arm` answers the test questions with."""
        return dict(self.arms[arm].search.best.params)

    def adapter(self, arm: str) -> str | None:
        """The adapter `arm` answers the test questions with when its search trained it (the chosen epochs and
        lr), else None (the run's own)."""
        found = self.arms[arm]
        training = found.search.chosen_training() or {}
        if not training.get("searched") or not training.get("adapter") or found.root is None:
            return None
        return os.path.normpath(found.root / training["adapter"])

    def index(self, arm: str) -> Any:
        """The index `arm` answers the test questions from when its chosen chunk size re-chunked it, else None
        (the arm's own index)."""
        found = self.arms[arm]
        size = found.search.best.params.get("chunk_tokens")
        if found.chunks is None or size is None or size == found.chunks.own.chunk_tokens:
            return None
        return found.chunks.get(int(size))

    def summary(self, test_metrics: dict[str, dict[str, Any]],
                per_question: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
                seed: int = 0) -> dict[str, Any]:
        """results.json's "search" section; `test_metrics` is results.json's arms[arm]["metrics"], `per_question`
        its per_question (arm -> qid -> metrics): with both, each searched arm's test F1 is compared with its
        defaults' question by question (`test_versus_defaults`: delta, bootstrap 95% CI, sign-flip p)."""
        arms = {}
        for arm, found in self.arms.items():
            search = found.search
            test = test_metrics.get(arm) or {}
            default_test = found.default_test.to_dict() if found.default_test else {
                "f1": test.get("f1"), "exact_match": test.get("exact_match")}
            gain = None if test.get("f1") is None or default_test["f1"] is None else test["f1"] - default_test["f1"]
            arms[arm] = {**search.to_dict(), "test": {"f1": test.get("f1"), "exact_match": test.get("exact_match"),
                                                       "latency_ms_p95": test.get("latency_ms_p95"),
                                                       "cost_per_1k": test.get("cost_per_1k_queries")},
                         "default_test": {"f1": default_test["f1"], "exact_match": default_test["exact_match"]},
                         "gain_f1": gain, "test_versus_defaults": self._test_versus(arm, per_question, seed),
                         "default_trial": search.default_trial.number if search.default_trial else None,
                         "trial_results": [_trial_point(t) for t in search.trials
                                           if not (t.skipped or t.pruned)]}
        return {"validation_questions": len(self.split.validation), "test_questions": len(self.split.test),
                "validation_share": self.split.validation_share, "seed": self.split.seed, "by": "document",
                "validation_source": self.split.source, "arms": arms}

    def _test_versus(self, arm: str, per_question: Mapping[str, Mapping[str, Mapping[str, Any]]] | None,
                     seed: int) -> dict[str, Any] | None:
        """The winner vs the defaults on the test questions (paired; None when the defaults won or a score is
        missing): whether the search left the arm better or worse than its defaults beyond noise."""
        from ragtune.evaluate.stats import paired_test

        default = self.arms[arm].default_test
        scores = (per_question or {}).get(arm) or {}
        if default is None or len(default.f1_scores) != len(self.split.test):
            return None
        winner = [(scores.get(str(e.qid)) or {}).get("f1") for e in self.split.test]
        if any(f1 is None for f1 in winner):
            return None
        test = paired_test(winner, default.f1_scores, seed=seed)
        return {"delta_f1": round(test.delta, 4), "ci95": [round(test.ci[0], 4), round(test.ci[1], 4)],
                "p_value": round(test.p_value, 4), "n": test.n}


def _trial_point(trial: Trial) -> dict[str, Any]:
    """One trial as the report plots it (results.json search.arms[arm].trial_results; a skipped trial, which
    has no figures, and a pruned one, whose figures cover only its first questions, are not plotted:
    search.arms[arm].skipped_trials and pruned_trials count them). `train_s`: the training it cost."""
    point = {"trial": trial.number, "params": trial.params, "f1": trial.metrics.f1,
             "latency_ms_p95": trial.metrics.latency_ms_p95, "cost_per_1k": trial.cost_per_1k,
             "feasible": trial.feasible}
    return {**point, "train_s": trial.training.get("train_s")} if trial.training else point


def search_for_compare(config: CompareConfig, index: Any, examples: list[Example],
                       arm_configs: dict[str, GenerateConfig], out: Path,
                       arm_indexes: Mapping[str, Any] | None = None,
                       training: SearchTraining | None = None, trials_on: TrialPool | None = None) -> ComparisonSearch:
    """`compare --search`: split, search every arm on validation (out/<arm>/), score each arm's defaults on test
    when the search chose something else. `arm_indexes[arm]`: the index an arm retrieves from instead of `index`
    (the re-embedded one of the tuned-retriever arms); `training` (with --train): the adapters the search trains
    into out/adapters/, shared by the arms of one kind; `trials_on`: where the trials run (see run_tune), one
    session for every arm."""
    split = split_questions(examples, config, out, index)
    arms = {}
    chunks_of: dict[int, ChunkIndexes] = {}  # by source index: arms over one index share its re-chunked copies
    with trials_on.session() if trials_on is not None else nullcontext():
        for arm in config.arms:
            arm_index = (arm_indexes or {}).get(arm, index)
            chunks = chunks_of.setdefault(id(arm_index), ChunkIndexes.under(arm_index, out))
            search = _search(config, arm, arm_configs[arm], chunks, split.validation, out / arm, training, trials_on)
            default_test = None
            if search.best.params != search.defaults:
                default_test = _runner(config, arm, arm_configs[arm], chunks, split.test, training)(search.defaults)
            arms[arm] = ArmSearch(search, default_test, chunks, out)
    return ComparisonSearch(split, arms)
