"""Fine-tuning: training data (QA / chat / SQuAD), SFT and RAFT builders, the LoRA trainer, adapter folders.

Importing this package is cheap; torch, transformers and peft load only when training or loading a model.
"""

from ragtune.train.adapter import AdapterInfo, check_adapter, load_adapted_model, merge_adapter, read_manifest
from ragtune.train.builders import (
    TrainExample,
    build_raft_examples,
    build_sft_examples,
    export_jsonl,
    load_train_jsonl,
)
from ragtune.train.config import FinetuneConfig
from ragtune.train.data import LoadedExamples, load_examples, split_by_document
from ragtune.train.trainer import finetune

__all__ = [
    "AdapterInfo",
    "FinetuneConfig",
    "LoadedExamples",
    "TrainExample",
    "build_raft_examples",
    "build_sft_examples",
    "check_adapter",
    "export_jsonl",
    "finetune",
    "load_adapted_model",
    "load_examples",
    "load_train_jsonl",
    "merge_adapter",
    "read_manifest",
    "split_by_document",
]
