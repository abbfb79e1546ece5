"""`ragtune reindex INDEX --embedder EMB_DIR --out NEW_INDEX [--precision fp32|int8] [--windows N]` (folders or store
URIs)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("reindex")
    def reindex(
        index_dir: Path = typer.Argument(..., help="The index to re-embed (left unchanged): a folder or a store URI."),
        embedder: str = typer.Option(..., "--embedder", help="'bundled' or a sentence-transformers folder (e.g. from finetune-embedder)."),
        out: Path = typer.Option(..., "--out", help="New index: a folder (must not exist or be empty) or a store URI naming a new collection."),
        precision: str = typer.Option(None, "--precision", help="int8 (quantised ONNX Runtime encoder; the default for a sentence-transformers model) or fp32."),
        windows: int = typer.Option(None, "--windows", min=0, max=8, help="Sentence windows of the new index (0: none; default: as the source has them; folder indexes only)."),
    ) -> None:
        """Re-embed an index's chunks with another embedder into a new folder (no re-parsing; atomic)."""
        from ragtune.index.onnx_encoder import check_precision
        from ragtune.index.reembed import reembed_index
        from ragtune.store.registry import store_uri

        stats = reembed_index(index_dir, out, embedder, check_precision(precision), windows=windows)
        windows = f", windows of {stats.windows} sentences" if stats.windows else ""
        typer.echo(f"re-embedded {stats.documents} documents, {stats.chunks} chunks with {stats.embedder_id} "
                   f"({stats.dim} dims, {stats.precision}{windows}) into {store_uri(out) or out}")
