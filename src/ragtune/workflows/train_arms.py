"""Training the adapters a comparison needs (`compare --train`, the demo) with the fine-tuning pipeline.

Training data: a QA file the user gives, else questions synthesised from the index's own chunks — never the
evaluation questions. SFT trains closed-book question → short answer (knowledge injection, with paraphrases);
RAFT trains question + oracle/distractor passages → quote-then-answer.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ragtune.config import BUNDLED, GenerateConfig
from ragtune.errors import InputError
from ragtune.types import Example

logger = logging.getLogger(__name__)

# Measured on the bundled 135M model (2 CPU cores): closed-book facts need ~10 epochs at lr 1e-3;
# reading from passages (RAFT) is learnt in 1-2 epochs.
DEFAULT_EPOCHS = {"sft": 10, "raft": 2}
# How each kind's training questions are synthesised when no QA file is given (ragtune.train.synth.synthesize_qa).
# SFT (closed-book facts) adds a paraphrase of each question (a fact learnt in one wording only is not recalled in
# another), written by rules: on the demo (30 held-out questions, same 100 steps) rule questions + rule paraphrases
# gave ft_rag F1 0.378 and ft 0.122 vs 0.330 and 0.058 with the LLM's questions and paraphrases, and no model is
# loaded (1:47 of generation less on the demo's first run). RAFT reads its answer from the passages: measured on
# SQuAD articles 4-6 (bench/bench_raft_mix.py, 100 questions, rag F1 0.233), rule-written questions alone, up to 4 per chunk, gave raft F1 0.392 (+0.159, p = 0.001);
# the LLM's questions and paraphrases (the former default: 2 per chunk, 1 paraphrase) had given +0.05 on new
# articles. Rules need no model: synthesis takes a second instead of minutes.
SYNTHESIS = {
    "sft": {"per_chunk": 4, "paraphrases": 1, "questions": "rules", "paraphraser": "rules"},
    "raft": {"per_chunk": 4, "paraphrases": 0, "questions": "rules"},
}
_DATA_OPTIONS = ("max_examples", "distractors", "p_oracle", "quote", "context_sentences", "retrieve_mode",
                 "retrieve_options")


def raft_layout(config: Any) -> dict[str, Any]:
    """The RAFT data options a comparison trains with (`compare --train` and its search): the layout its raft arm
    answers with — k passages, the distractors retrieved by the run's mode with its +rerank settings."""
    options = config.retrieve_options()
    layout = {"distractors": config.k - 1, "retrieve_mode": config.mode}
    return {**layout, "retrieve_options": options} if options else layout  # no options: the adapter cache keys stay


def training_examples(
    index: Any,
    train_data: str | Sequence[str] | None,
    *,
    model: str = BUNDLED,
    kind: str = "sft",
    synthesis: Mapping[str, Any] | None = None,
    seed: int = 0,
    rules_only: bool = False,
) -> list[Example]:
    """QA examples to train on: the given file(s), or synthesised from every chunk of the index with the
    settings of the adapter kind (SYNTHESIS, or `synthesis`: synthesize_qa's per_chunk, paraphrases and
    questions, and "paraphraser": "llm" (the default) or "rules"; rules_only: no model — the LLM's questions and
    paraphrases are left out)."""
    if train_data:
        from ragtune.train.data import load_examples

        files = [train_data] if isinstance(train_data, str | Path) else list(train_data)
        examples: list[Example] = []
        for path in files:
            loaded = load_examples(path)
            if loaded.errors:
                logger.warning("%s: %d malformed training example(s) skipped", path, len(loaded.errors))
            examples += loaded.examples
        if not examples:
            raise InputError(f"no valid training examples in {files}")
        return examples
    from ragtune.train.synth import synthesize_qa

    if synthesis is None and kind not in SYNTHESIS:
        raise InputError(f"unknown adapter kind {kind!r} (sft or raft)")
    synthesis = dict(SYNTHESIS[kind] if synthesis is None else synthesis)
    paraphraser = synthesis.pop("paraphraser", "llm")
    if paraphraser not in ("llm", "rules"):
        raise InputError(f"paraphraser must be 'llm' or 'rules', not {paraphraser!r}")
    if rules_only and synthesis["questions"] in ("auto", "llm"):
        synthesis["questions"] = "rules"
    generator = None  # without one, synthesize_qa paraphrases by rules
    if not rules_only and (synthesis["questions"] in ("auto", "llm")
                           or (synthesis["paraphrases"] and paraphraser == "llm")):
        from ragtune.generate import load_generator

        generator = load_generator(GenerateConfig(model=model), cache=False)  # training loads its own copy
    result = synthesize_qa(index.chunks(), generator, seed=seed, **synthesis)
    if generator is not None:  # free it before training starts
        from ragtune.evaluate.efficiency import trim_memory

        del generator
        trim_memory()
    if not result.examples:
        raise InputError(f"no training questions could be synthesised from the index (rejected: {result.rejected})")
    logger.info("synthesised %d %s training questions (rejected %s)", len(result.examples), kind, result.rejected)
    return list(result.examples)


def train_adapters(
    index: Any,
    kinds: Sequence[str],
    out_dir: str | Path,
    *,
    model: str = BUNDLED,
    train_data: str | Sequence[str] | None = None,
    examples: Sequence[Example] | Mapping[str, Sequence[Example]] | None = None,
    epochs: float | None = None,
    seed: int = 0,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    train_minutes: float | None = None,
    on_plan: Callable[[str, Any], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Train one adapter per kind ('sft', 'raft') into out_dir/<kind>; returns {kind: {path, train_s, ...}}.

    `settings` tunes a kind: FinetuneConfig fields (e.g. {"sft": {"max_steps": 100}}) plus, for the data,
    "max_examples" (a seeded sample) and, for RAFT, "distractors", "p_oracle", "retrieve_mode" and "retrieve_options"
    (the distractors' retrieval).
    `train_minutes`: each kind's examples and epochs are cut to fit that many minutes on this machine
    (ragtune.train.budget; the plan is given to `on_plan(kind, plan)` before training and recorded as "plan").
    `examples`: the QA examples of every kind, or {kind: examples}; None: `train_data`, else each kind's own
    synthesis (training_examples).
    """
    from ragtune.evaluate.efficiency import trim_memory
    from ragtune.train.builders import build_training_set, export_jsonl
    from ragtune.train.config import FinetuneConfig
    from ragtune.train.trainer import finetune

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if examples is None and train_data:  # one QA file for every kind: loaded once
        examples = training_examples(index, train_data)
    trained: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        if kind not in DEFAULT_EPOCHS:
            raise InputError(f"unknown adapter kind {kind!r} (sft or raft)")
        options = dict((settings or {}).get(kind, {}))
        data_options = {key: options.pop(key) for key in _DATA_OPTIONS if key in options}
        if isinstance(examples, Mapping):
            chosen = list(examples[kind])
        elif examples is not None:
            chosen = list(examples)
        else:
            chosen = training_examples(index, None, model=model, kind=kind, seed=seed)
        if data_options.get("max_examples") and len(chosen) > data_options["max_examples"]:
            chosen = random.Random(seed).sample(chosen, data_options["max_examples"])
        train = build_training_set(chosen, kind, index, seed=seed, distractors=data_options.get("distractors", 3),
                                   p_oracle=data_options.get("p_oracle", 0.8), quote=data_options.get("quote", False),
                                   context_sentences=data_options.get("context_sentences", 0),
                                   retrieve_mode=data_options.get("retrieve_mode", "hybrid"),
                                   retrieve_options=data_options.get("retrieve_options"))
        export_jsonl(train, out_dir / f"{kind}_train.jsonl")
        options.setdefault("epochs", int(epochs or DEFAULT_EPOCHS[kind]))
        config = FinetuneConfig(base_model=model, seed=seed, **options)
        t0 = time.perf_counter()
        plan = None
        if train_minutes:
            from ragtune.train.budget import fit_to_budget

            train, config, plan = fit_to_budget(train, config, train_minutes, seed=seed)
            logger.info(plan.summary(kind))
            if on_plan is not None:
                on_plan(kind, plan)
        info = finetune(train, out_dir / kind, config)
        trim_memory()  # the trained model is gone: hand its memory back before the next kind (or the comparison)
        trained[kind] = {
            "path": str(info.path),
            "train_s": round(time.perf_counter() - t0, 2),
            "examples": len(train),
            "epochs": config.epochs,
            "metrics": info.metrics,
        }
        if plan is not None:
            trained[kind]["plan"] = plan.describe()
    return trained
