"""`ragtune synth`: question/answer pairs synthesized from an index's chunks, for fine-tuning (SFT or RAFT)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def synth(
        index: Path = typer.Option(..., "--index", help="Index folder (ragtune ingest)."),
        out: Path = typer.Option(..., "--out", help="QA JSONL file to write (atomically)."),
        per_chunk: int = typer.Option(2, "--per-chunk", min=1, help="Questions per chunk (at most)."),
        paraphrases: int = typer.Option(0, "--paraphrases", min=0, help="Reworded copies of each question."),
        seed: int = typer.Option(0, "--seed", help="Same index + seed → the same file."),
        limit_chunks: Optional[int] = typer.Option(None, "--limit-chunks", min=1, help="Use only the first N chunks."),
        model: str = typer.Option("bundled", "--model", help="'bundled', a local HF model folder or an OpenAI-compatible URL."),
        rules_only: bool = typer.Option(False, "--rules-only", help="No LLM: rule-based questions and paraphrases."),
        questions: str = typer.Option("auto", "--questions", help="auto | rules | llm | cloze: who writes the questions (cloze: rules, then wh-cloze questions; no model)."),
        round_trip: bool = typer.Option(False, "--round-trip", help="Keep only pairs the model answers from the chunk."),
    ) -> None:
        """Generate QA pairs from the indexed chunks (answer spans first), filter them, write QA JSONL."""
        from ragtune.cli.common import check_output_folder, console
        from ragtune.config import GenerateConfig
        from ragtune.index import Index
        from ragtune.train.synth import synthesize_qa, write_qa_jsonl

        from ragtune.errors import ConfigError, InputError

        check_output_folder(out, "--out", kind="file")
        opened = Index.open(index)
        folder = getattr(opened, "path", None) if not getattr(opened, "is_store", False) else None
        if folder is not None and Path(folder).resolve() in out.resolve().parents:
            raise ConfigError(f"--out {out} is inside the index folder {folder}; write the questions elsewhere")
        if rules_only and questions == "llm":
            raise ConfigError("--rules-only writes rule questions; it cannot go with --questions llm")
        chunks = opened.chunks()
        if not chunks:
            raise InputError(f"index {index} is empty: ingest documents first (ragtune ingest)")
        chunks = chunks[:limit_chunks] if limit_chunks else chunks
        needs_llm = not rules_only and (paraphrases > 0 or questions in ("llm", "auto") or round_trip)
        generator = _LazyGenerator(GenerateConfig(model=model)) if needs_llm else None
        result = synthesize_qa(chunks, generator, per_chunk=per_chunk, paraphrases=paraphrases, seed=seed,
                               questions="rules" if rules_only else questions, round_trip=round_trip)
        write_qa_jsonl(result.examples, out)
        kept = ", ".join(f"{n} {kind}" for kind, n in sorted(result.kept.items())) or "0"
        rejected = ", ".join(f"{reason} {n}" for reason, n in result.rejected.items()) or "none"
        console().print(f"wrote {len(result.examples)} QA pairs from {len(chunks)} chunks to {out}")
        console().print(f"kept: {kept}")
        console().print(f"rejected: {rejected}")


class _LazyGenerator:
    """Loads the model on first use: with --questions auto the rules often leave it nothing to do."""

    def __init__(self, config):
        self.config = config
        self.model_id = config.model
        self._generator = None

    def generate(self, batch, max_new_tokens=64):
        if self._generator is None:
            from ragtune.generate import load_generator

            self._generator = load_generator(self.config)
        return self._generator.generate(batch, max_new_tokens=max_new_tokens)
