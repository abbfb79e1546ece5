"""The arms of a comparison — which model an arm uses and whether it retrieves — shared by compare and serve."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ragtune.errors import ConfigError, InputError


@dataclass(frozen=True)
class ArmSpec:
    """An arm: does it retrieve, which kind of adapter (None = the untuned base model) it needs, and does it
    retrieve from the index re-embedded with a tuned embedder (ragtune finetune-embedder) instead of the given one."""

    name: str
    retrieval: bool
    adapter: str | None  # "sft" | "raft" | None
    description: str
    tuned_retriever: bool = False

    @property
    def tuned(self) -> bool:
        """Something was trained for this arm: an adapter, or the embedder it retrieves with."""
        return self.adapter is not None or self.tuned_retriever


ARMS: dict[str, ArmSpec] = {
    spec.name: spec
    for spec in (
        ArmSpec("base", False, None, "untuned model, closed-book"),
        ArmSpec("rag", True, None, "untuned model + retrieval"),
        ArmSpec("ft", False, "sft", "fine-tuned (SFT) model, closed-book"),
        ArmSpec("ft_rag", True, "sft", "fine-tuned (SFT) model + retrieval"),
        ArmSpec("raft", True, "raft", "RAFT-tuned model + retrieval"),
        ArmSpec("rag_tr", True, None, "untuned model + retrieval with a tuned embedder", tuned_retriever=True),
        ArmSpec("raft_tr", True, "raft", "RAFT-tuned model + retrieval with a tuned embedder", tuned_retriever=True),
    )
}
DEFAULT_ARMS = ("base", "rag", "ft", "ft_rag", "raft")  # the tuned-retriever arms are asked for by name


def parse_arms(text: str | Sequence[str]) -> list[str]:
    """'base,rag' → ['base', 'rag'], validated and de-duplicated in the given order.

    >>> parse_arms("rag, base,rag")
    ['rag', 'base']
    """
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise InputError("no arms given (choose from " + ", ".join(ARMS) + ")")
    unknown = [n for n in names if n not in ARMS]
    if unknown:
        raise InputError(f"unknown arm {unknown[0]!r} (choose from {', '.join(ARMS)})")
    return list(dict.fromkeys(names))


def untuned_retriever_sibling(arm: str) -> str:
    """The arm that answers as `arm` does over the untuned index: rag for rag_tr, raft for raft_tr.

    >>> untuned_retriever_sibling("raft_tr")
    'raft'
    """
    spec = ARMS[arm]
    return next(s.name for s in ARMS.values() if s.adapter == spec.adapter and s.retrieval and not s.tuned_retriever)


def check_untuned_retriever(arm: str, command: str) -> None:
    """ConfigError for a tuned-retriever arm where `command` has only the index it is given (serve, tune): that
    arm's index is the given one re-embedded, which `ragtune reindex` makes and its untuned sibling then uses."""
    if ARMS[arm].tuned_retriever:
        sibling = untuned_retriever_sibling(arm)
        raise ConfigError(f"{command} answers from the index it is given, so arm {arm!r} is arm {sibling!r} over a "
                          f"re-embedded index: `ragtune reindex INDEX --embedder EMB_DIR --out INDEX_TR`, then "
                          f"{command} {sibling} with --index INDEX_TR")


ADAPTER_KINDS = ("sft", "raft")


def parse_adapter_model_names(items: Sequence[str]) -> dict[str, str]:
    """['raft=raft-lora', 'sft=sft-lora'] → {'raft': 'raft-lora', 'sft': 'sft-lora'}: the model name an
    OpenAI-compatible endpoint serves each adapter kind under (e.g. a vLLM `--lora-modules` name).

    >>> parse_adapter_model_names(["raft = raft-lora"])
    {'raft': 'raft-lora'}
    """
    names: dict[str, str] = {}
    for item in items:
        kind, sep, name = (part.strip() for part in item.partition("="))
        if not sep or not name or kind not in ADAPTER_KINDS:
            raise ConfigError(f"--adapter-model-name {item!r}: expected KIND=NAME with KIND one of "
                              f"{', '.join(ADAPTER_KINDS)} (e.g. raft=raft-lora)")
        if kind in names and names[kind] != name:
            raise ConfigError(f"--adapter-model-name: {kind} given twice ({names[kind]!r}, {name!r})")
        names[kind] = name
    return names


def endpoint_model_name(arm: str, model_name: str | None, adapter_model_names: Mapping[str, str]) -> str | None:
    """The remote model name an arm asks an endpoint for: its adapter kind's name, or `model_name` for the
    untuned arms. ConfigError when a tuned arm has no name (an endpoint cannot load a local adapter folder)."""
    kind = ARMS[arm].adapter
    if kind is None:
        return model_name
    name = adapter_model_names.get(kind)
    if name is None:
        raise ConfigError(f"arm {arm!r} on an endpoint needs the name the server gives the {kind} adapter: "
                          f"pass --adapter-model-name {kind}=NAME (e.g. a vLLM --lora-modules name)")
    return name
