"""What a comparison run depends on, checked before any long work: its config (config.json), its questions,
its index and adapters, and each arm's generator config. `compare` and the settings search (`tune`) both start
here, so neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ragtune.adapters import check_adapter
from ragtune.arms import ARMS, DEFAULT_ARMS, endpoint_model_name
from ragtune.config import BUNDLED, GenerateConfig, RerankOptions, RetrieveMode
from ragtune.errors import ConfigError, InputError, NotBuiltError, require_input_file
from ragtune.evaluate.cost import CostModel, Scenario
from ragtune.evaluate.harness import gold_doc_ids
from ragtune.index import Index
from ragtune.models import resolve_llm
from ragtune.train.data import load_examples
from ragtune.types import Example


# Questions per generate call in compare and tune. 16, not 8: the demo's 210 answers took 70 s instead of 79 s
# (same answers, shared prefix on; 8 -> 16 measured twice, -8% and -11%), more rows sharing each decode step's
# pass over the weights.
COMPARE_BATCH_SIZE = 16


class CompareConfig(RerankOptions):
    """Everything a comparison run depends on; saved as config.json in the run folder. The retrieval mode's
    +rerank settings (RerankOptions) apply wherever the arms retrieve with it."""

    index: str
    questions: str
    out: str
    arms: tuple[str, ...] = DEFAULT_ARMS
    adapter: str | None = None  # SFT adapter for ft / ft_rag
    raft_adapter: str | None = None  # RAFT adapter for raft
    tuned_embedder: str | None = None  # embedder folder (finetune-embedder) the *_tr arms' re-embedded index uses
    train: bool = False  # train missing adapters as part of the run
    train_data: str | None = None  # QA file to train on (default: synthesised from the index)
    train_epochs: float | None = Field(None, gt=0)
    train_minutes: float | None = Field(None, gt=0)  # --train: fit examples and epochs to this budget
    limit: int | None = Field(None, ge=1)
    seed: int = 0
    k: int = Field(3, ge=1)
    mode: RetrieveMode = "hybrid"
    model: str = BUNDLED
    model_name: str | None = None  # http(s) --model: the remote model of the untuned arms (else URL #fragment)
    adapter_model_names: dict[str, str] = Field(default_factory=dict)  # http(s) --model: "sft"/"raft" -> remote name
    max_new_tokens: int = Field(64, ge=1)  # as ask, compare and serve on the command line (GenerateConfig)
    batch_size: int = Field(COMPARE_BATCH_SIZE, ge=1)
    prompt_style: Literal["auto", "guided", "plain"] = "auto"  # GenerateConfig.prompt_style, for every arm
    context_sentences: int | None = Field(None, ge=0)  # GenerateConfig.context_sentences, for every arm
    answer_form: Literal["free", "snap", "span", "free-or-span"] = "free"  # GenerateConfig.answer_form, for every arm
    answer_pick: Literal["joint", "evidence"] = "joint"  # GenerateConfig.answer_pick, for every arm
    screening: Literal["neutralise", "drop", "off"] = "neutralise"  # GenerateConfig.screening, for every arm
    freshness: str | None = None
    resume: bool = False
    overwrite: bool = False
    runs_db: str | None = None
    search: int | None = Field(None, ge=1)  # trials per arm searched on a validation split (workflows.tune)
    validation_share: float = Field(0.3, gt=0, lt=1)  # with search: the questions searched on, by document
    max_p95_ms: float | None = Field(None, gt=0)  # with search: the latency constraint on each arm's settings
    max_cost_per_1k: float | None = Field(None, gt=0)  # with search: the serving-cost constraint (USD / 1k queries)
    validation: Literal["split", "synth"] = "split"  # with search: split the questions, or synthesise validation
    validation_questions: int | None = Field(None, ge=1)  # with validation synth: how many (default: by share)
    search_train_minutes: float | None = Field(None, gt=0)  # with search and train: the search's training budget
    search_train_usd: float | None = Field(None, gt=0)  # the same in USD (the cost model's training price)
    scenario: Scenario = Field(default_factory=Scenario)
    cost: CostModel = CostModel()

    @model_validator(mode="after")
    def _check(self) -> CompareConfig:
        self.check_mode(self.mode)
        return self


def load_questions(path: str | Path, limit: int | None = None) -> list[Example]:
    """Evaluation questions from ragtune QA JSONL or SQuAD JSON; malformed entries are a clear error."""
    path = Path(path)
    require_input_file(path, "questions file")
    loaded = load_examples(path, allow_empty=True)  # the errors are reported below, as questions (not training)
    if loaded.errors:
        shown = "; ".join(loaded.errors[:3])
        more = f" (and {len(loaded.errors) - 3} more)" if len(loaded.errors) > 3 else ""
        raise InputError(f"{path}: {len(loaded.errors)} malformed question(s): {shown}{more}")
    if not loaded.examples:
        raise InputError(f"no questions in {str(path)!r}: the file is empty")
    examples = [e if e.qid else _with_qid(e, i) for i, e in enumerate(loaded.examples)]
    if len({e.qid for e in examples}) != len(examples):
        raise InputError(f"{path}: question ids are not unique")
    return examples[:limit] if limit else examples


def _with_qid(example: Example, i: int) -> Example:
    return replace(example, qid=f"q{i:05d}")


def check_gold(examples: list[Example], index: Any, what: str) -> None:
    known = {d.doc_id for d in index.documents()}
    missing = sorted({d for e in examples for d in gold_doc_ids(e)} - known)
    if missing:
        raise InputError(
            f"{what}: {len(missing)} gold document id(s) are not in the index, e.g. {missing[:3]} — "
            "ingest the documents the questions are about, or drop doc_id from the questions"
        )


def _adapter_paths(config: CompareConfig, base_dir: Path) -> dict[str, str | None]:
    paths = {"sft": config.adapter, "raft": config.raft_adapter}
    for kind in {ARMS[a].adapter for a in config.arms} - {None}:
        path = paths[kind]
        if path is None:
            if not config.train:
                flag = "--adapter" if kind == "sft" else "--raft-adapter"
                arms = [a for a in config.arms if ARMS[a].adapter == kind]
                raise ConfigError(f"arm(s) {', '.join(arms)} need a {kind} adapter: pass {flag} DIR or --train")
            continue
        if not Path(path).is_dir():
            raise NotBuiltError(f"adapter folder not found: {path!r}")
        check_adapter(path, base_dir)
    return paths


@dataclass(frozen=True)
class CompareInputs:
    """What a run reads, checked: the index, the questions and the adapter folder per kind (None: to train)."""

    index: Any
    examples: list[Example]
    adapters: dict[str, str | None]


def check_replaceable(config: CompareConfig) -> None:
    """For `compare --overwrite` (the CLI; `tune` and the demo overwrite their own folders): ConfigError unless the
    existing --out may be deleted: an empty folder or an earlier run's, never a folder the run reads (the index,
    the questions, an adapter) or holds one, never a folder of other files. And --resume goes without it."""
    out = Path(config.out)
    if config.resume:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    if not out.exists():
        return
    where = out.resolve()
    inputs = {"--index": config.index, "--questions": config.questions, "--adapter": config.adapter,
              "--raft-adapter": config.raft_adapter, "--tuned-embedder": config.tuned_embedder,
              "--freshness": config.freshness, "--train-data": config.train_data}
    for flag, value in inputs.items():
        if value and "://" not in str(value):
            path = Path(value).resolve()
            if path == where or where in path.parents:
                raise ConfigError(f"--out {out} holds the {flag} this run reads; --overwrite would delete it: choose "
                                  "another --out")
    if not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a run folder; --overwrite replaces run folders only")
    entries = {p.name for p in out.iterdir()}
    if entries and not entries & {"results.json", "predictions.jsonl"}:
        raise ConfigError(f"--out {out} is not a ragtune run folder (no results.json or predictions.jsonl); "
                          "--overwrite replaces run folders only: choose another --out")


def check_inputs(config: CompareConfig, questions_needed: bool = True) -> CompareInputs:
    """Everything that can fail fast, checked before any long work. Without `questions_needed` (`ragtune tune`
    synthesising its validation questions) an empty config.questions means no questions."""
    out = Path(config.out)
    if out.exists() and not (config.overwrite or config.resume):
        raise ConfigError(f"run folder {str(out)!r} already exists: choose another --out, or --overwrite")
    from ragtune.retrieve.factory import RETRIEVAL_MODES

    RETRIEVAL_MODES.get(config.mode)  # a registered mode name (ConfigError naming the choices), before training
    _check_search_options(config)
    if config.search:
        from ragtune.workflows.search import require_optuna

        require_optuna()
    examples = load_questions(config.questions, config.limit) if config.questions or questions_needed else []
    if not examples and questions_needed:
        raise InputError(f"{config.questions}: no questions")
    index = Index.open(config.index)
    if len(index) == 0:
        raise InputError(f"index {config.index!r} is empty: ingest documents first (ragtune ingest)")
    check_gold(examples, index, config.questions)
    if config.search:  # validation can be had (ragtune.workflows.tune splits or synthesises it again)
        from ragtune.workflows.validation_split import free_documents, split_by_document

        if config.validation == "synth":
            free_documents(index, examples)
        else:
            split_by_document(examples, config.validation_share, config.seed)
    if is_endpoint(config.model):
        _check_endpoint_arms(config)
        adapters: dict[str, str | None] = {"sft": None, "raft": None}
    else:
        if config.model_name or config.adapter_model_names:
            raise ConfigError("--model-name / --adapter-model-name name models on an http(s) --model endpoint; "
                              f"{config.model!r} is local")
        adapters = _adapter_paths(config, resolve_llm(config.model))
    _check_tuned_retriever(config, index)
    if config.freshness and not Path(config.freshness).is_dir():
        raise InputError(f"freshness folder not found: {config.freshness!r}")
    return CompareInputs(index, examples, adapters)


def tuned_retriever_arms(config: CompareConfig) -> list[str]:
    return [arm for arm in config.arms if ARMS[arm].tuned_retriever]


def _check_tuned_retriever(config: CompareConfig, index: Any) -> None:
    """The *_tr arms need an embedder folder, or --train and an index whose embedder can be tuned."""
    arms = tuned_retriever_arms(config)
    if not arms:
        if config.tuned_embedder:
            raise ConfigError("--tuned-embedder is for the tuned-retriever arms: add rag_tr or raft_tr to --arms, "
                              "or drop --tuned-embedder")
        return
    if config.mode.startswith("graph"):
        raise ConfigError(f"arm(s) {', '.join(arms)} re-embed the index, which keeps no entity graph: "
                          f"use --mode dense, bm25 or hybrid, or drop {', '.join(arms)}")
    if not Path(config.index).is_dir():
        raise ConfigError(f"arm(s) {', '.join(arms)} re-embed the index, which needs an index folder, "
                          f"not {config.index!r}")
    if config.tuned_embedder:
        if not Path(config.tuned_embedder).is_dir():
            raise InputError(f"--tuned-embedder folder not found: {config.tuned_embedder!r}")
        return
    if not config.train:
        raise ConfigError(f"arm(s) {', '.join(arms)} retrieve with a tuned embedder: pass --tuned-embedder EMB_DIR "
                          "(ragtune finetune-embedder) or --train")
    from ragtune.train import embedder_tuning

    embedder_tuning.check_tunable(index)


def _check_search_options(config: CompareConfig) -> None:
    """The options of --search given without it would be ignored in silence: a usage error instead."""
    given = [flag for flag, value in (("--validation synth", config.validation == "synth"),
                                      ("--validation-questions", config.validation_questions is not None),
                                      ("--max-p95-ms", config.max_p95_ms is not None),
                                      ("--max-cost-per-1k", config.max_cost_per_1k is not None)) if value]
    if given and not config.search:
        raise ConfigError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to the settings search: "
                          "add --search TRIALS, or drop them")
    budget = [flag for flag, value in (("--search-train-minutes", config.search_train_minutes),
                                       ("--search-train-usd", config.search_train_usd)) if value is not None]
    if budget and not (config.search and config.train):
        missing = "--train" if config.search else "--search TRIALS and --train"  # `tune` always searches
        raise ConfigError(f"{', '.join(budget)} budgets the training the settings search does: add {missing}, or "
                          "drop it")
    training = [flag for flag, value in (("--train-epochs", config.train_epochs), ("--train-minutes", config.train_minutes))
                if value is not None]
    if training and not config.train:
        raise ConfigError(f"{' and '.join(training)} shape{'s' if len(training) == 1 else ''} the training --train does: "
                          "add --train, or drop " + ("it" if len(training) == 1 else "them"))
    if config.validation_questions is not None and config.validation != "synth":
        raise ConfigError("--validation-questions sizes synthesised validation: add --validation synth, or drop it")


def is_endpoint(model: str) -> bool:
    return model.startswith(("http://", "https://"))


def _check_endpoint_arms(config: CompareConfig) -> None:
    """On an endpoint the tuned arms are models the server serves (vLLM LoRA modules), never local folders."""
    if config.adapter or config.raft_adapter or config.train:
        raise ConfigError(f"adapter folders (--adapter, --raft-adapter, --train) apply to a local model, not "
                          f"{config.model!r}: serve the adapters there (e.g. vLLM --lora-modules) and pass "
                          "--adapter-model-name KIND=NAME")
    for arm in config.arms:
        endpoint_model_name(arm, config.model_name, config.adapter_model_names)


def arm_generate_config(config: CompareConfig, adapters: dict[str, str | None], arm: str) -> GenerateConfig:
    kind = ARMS[arm].adapter
    return GenerateConfig(model=config.model, adapter=adapters[kind] if kind else None,
                          model_name=remote_model(config, arm) if is_endpoint(config.model) else None,
                          max_new_tokens=config.max_new_tokens, batch_size=config.batch_size,
                          stop_at_answer_line=True, prompt_style=config.prompt_style,
                          context_sentences=config.context_sentences, answer_form=config.answer_form,
                          answer_pick=config.answer_pick, screening=config.screening)


def remote_model(config: CompareConfig, arm: str) -> str | None:
    return endpoint_model_name(arm, config.model_name, config.adapter_model_names)
