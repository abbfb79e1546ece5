"""`ragtune finetune-embedder --index DIR --out EMB_DIR [--per-chunk N] [--epochs E] [--seed S] [--qa FILE] [--resume]`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("finetune-embedder")
    def finetune_embedder(
        index_dir: Path = typer.Option(..., "--index", help="Index whose chunks teach the embedder."),
        out: Path = typer.Option(..., "--out", help="New sentence-transformers folder (must not exist or be empty)."),
        per_chunk: int = typer.Option(2, "--per-chunk", min=0, help="Rule-written questions per chunk (0: only --sentence-queries)."),
        sentence_queries: int = typer.Option(0, "--sentence-queries", min=0, help="Also N sentences per chunk as queries, each matched to its chunk without it (inverse cloze task)."),
        epochs: int = typer.Option(1, "--epochs", min=1, help="Training epochs (stops early when validation recall stops rising)."),
        seed: int = typer.Option(0, "--seed", help="Seed of sampling, split and training."),
        max_chunks: int = typer.Option(2000, "--max-chunks", min=1, help="Chunks sampled for query synthesis."),
        batch_size: int = typer.Option(32, "--batch-size", min=2, help="Queries per step (in-batch negatives)."),
        mini_batch_size: int = typer.Option(8, "--mini-batch-size", min=0, help="Texts embedded with gradients at once (the cached loss: memory bounded, same gradients; 0: the whole batch)."),
        qa: Path = typer.Option(None, "--qa", help="QA JSONL with 'question' and gold 'chunk_id' instead of synthesis."),
        base: str = typer.Option(None, "--base", help="Embedder to start from (default: the index's)."),
        resume: bool = typer.Option(False, "--resume", help="Continue an interrupted training (same --out and settings) from its last finished epoch."),
    ) -> None:
        """Fine-tune the dense embedder on queries from the index's chunks; use it with `ragtune reindex`."""
        from ragtune.index import Index
        from ragtune.store.registry import store_uri
        from ragtune.train.embedder_tuning import EmbedderTuneConfig, tune_embedder

        if per_chunk == 0 and sentence_queries == 0:
            from ragtune.errors import ConfigError

            raise ConfigError("--per-chunk and --sentence-queries cannot both be 0: no queries to tune on")
        config = EmbedderTuneConfig(per_chunk=per_chunk, sentence_queries=sentence_queries, epochs=epochs, seed=seed,
                                    max_chunks=max_chunks, batch_size=batch_size, mini_batch_size=mini_batch_size)
        result = tune_embedder(Index.open(index_dir), out, config, qa_file=qa, base=base, resume=resume)
        typer.echo(f"tuned on {result.pairs} queries ({result.val_pairs} held out) in {result.seconds:.0f}s, "
                   f"{result.epochs_run} epoch(s): validation recall@10 {result.val_recall_before:.3f} -> "
                   f"{result.val_recall_after:.3f}; wrote {out} (re-embed: ragtune reindex {store_uri(index_dir) or index_dir} "
                   f"--embedder {out} --out NEW)")
