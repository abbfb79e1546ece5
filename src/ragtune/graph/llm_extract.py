"""The optional LLM extractor: a capable model (local folder or OpenAI-compatible endpoint) lists the entities
of each chunk. Only names that really occur in the chunk are kept (no invented nodes); relations are still
sentence/chunk co-occurrences, so the rest of the graph works unchanged.

Chosen by name: extractor spec "rules" (default, ragtune.graph.extract) or "llm:<model>" where <model> is what
GenerateConfig.model accepts ('bundled', a local HF folder, an http(s) URL). The spec is recorded in the graph
manifest, so later index commits keep using the same extractor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from ragtune.errors import ConfigError
from ragtune.graph.extract import Mention, merge_document_aliases, normalize_name
from ragtune.registry import Registry
from ragtune.text import split_clauses

RULES = "rules"
LLM_PREFIX = "llm:"
SYSTEM = (
    "You extract named entities (people, organisations, places, projects, facilities, vessels, products, codes) "
    "from a passage. Answer with one entity per line, exactly as written in the passage, and nothing else."
)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")

DocumentExtractor = Callable[[Sequence[str]], list[list[Mention]]]


def parse_entity_lines(text: str, passage: str) -> list[Mention]:
    """Mentions from a model's answer: one name a line, kept only if the passage contains it (case-insensitive)."""
    sentences = split_clauses(passage)
    lowered = [s.lower() for s in sentences]
    out: list[Mention] = []
    seen: set[str] = set()
    for line in text.splitlines():
        name = _BULLET.sub("", line).strip().strip("\"'`").split(" - ")[0].split(":")[0].strip()
        if not name or len(name) > 80:
            continue
        key = normalize_name(name)
        where = next((i for i, s in enumerate(lowered) if name.lower() in s), None)
        if not key or where is None or key in seen:
            continue
        seen.add(key)
        out.append(Mention(key, name, where))
    return out


class LLMExtractor:
    """Entities per chunk from a Generator (ragtune.generate), batched; aliases merged per document."""

    def __init__(self, generator: Any, max_new_tokens: int = 96, batch_size: int = 8):
        self.generator = generator
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def __call__(self, chunk_texts: Sequence[str]) -> list[list[Mention]]:
        out: list[list[Mention]] = []
        for start in range(0, len(chunk_texts), self.batch_size):
            batch = list(chunk_texts[start : start + self.batch_size])
            messages = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}] for text in batch]
            generations = self.generator.generate(messages, max_new_tokens=self.max_new_tokens)
            out.extend(parse_entity_lines(g.text, text) for g, text in zip(generations, batch))
        merged = merge_document_aliases(out)
        # "Rafferty Dunmore" and "Dunmore" listed for one sentence are one mention once merged
        return [list({(m.key, m.sentence): m for m in ms}.values()) for ms in merged]


ExtractorFactory = Callable[[str], DocumentExtractor]  # the spec's argument ('' when none) -> extractor
EXTRACTORS: Registry[ExtractorFactory] = Registry("entity extractor")


def register_extractor(name: str, factory: ExtractorFactory) -> None:
    """Make `name` an extractor spec ('name' or 'name:<argument>'); ConfigError if taken.

    >>> register_extractor("capitals", lambda arg: my_capitalised_words_extractor)  # doctest: +SKIP
    """
    EXTRACTORS.register(name, factory)


def get_extractor(spec: str) -> DocumentExtractor:
    """The document extractor for a spec: 'rules', 'llm:<model>' or a registered name; ConfigError otherwise."""
    name, _, argument = spec.partition(":")
    if name not in EXTRACTORS:
        raise ConfigError(
            f"unknown entity extractor {spec!r}: use 'rules' or 'llm:<model>' (bundled, folder or URL)"
            f" or one of {', '.join(EXTRACTORS.names())}"
        )
    return EXTRACTORS.get(name)(argument)


def _rules(argument: str) -> DocumentExtractor:
    if argument:
        raise ConfigError(f"the rules extractor takes no argument, got 'rules:{argument}'")
    from ragtune.graph.extract import extract_document

    return extract_document


def _llm(model: str) -> DocumentExtractor:
    if not model:
        raise ConfigError("unknown entity extractor 'llm:': give the model, 'llm:<model>' (bundled, folder or URL)")
    from ragtune.config import GenerateConfig
    from ragtune.generate.registry import load_generator

    return LLMExtractor(load_generator(GenerateConfig(model=model)))


register_extractor(RULES, _rules)
register_extractor(LLM_PREFIX.rstrip(":"), _llm)
