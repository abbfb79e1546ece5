"""`ragtune ingest PATH... --index DIR` and `ragtune delete DOC_ID... --index DIR`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest(
        paths: list[Path] = typer.Argument(..., help="Files and folders (recursive): .txt .md .html .pdf .jsonl, BEIR corpus, SQuAD JSON."),
        index_dir: Path = typer.Option(..., "--index", help="Index folder (created if missing)."),
        chunk_tokens: int = typer.Option(None, "--chunk-tokens", help="Tokens per chunk (new index only; default 200)."),
        overlap: int = typer.Option(None, "--overlap", help="Overlap tokens between chunks (new index only; default 32)."),
        embedder: str = typer.Option(None, "--embedder", help="'bundled' or a sentence-transformers folder (new index only)."),
        precision: str = typer.Option(None, "--precision", help="int8 (quantised ONNX Runtime encoder; the default for a sentence-transformers model) or fp32 (new index only)."),
        windows: int = typer.Option(None, "--windows", min=0, max=8, help="Also embed every run of this many sentences of a chunk; dense search scores a chunk by its best window (new folder index only; default 0, off; 2 lifts SciFact dense nDCG@10, see the README)."),
        follow_links: bool = typer.Option(False, "--follow-links", help="Follow symbolic links that leave the given paths, and linked folders."),
        ray: str = typer.Option(None, "--ray", metavar="ADDRESS", help="Read, chunk and embed on Ray: 'local' (a loopback instance), 'auto', 'ray://HOST:PORT' or 'HOST:PORT' (extra ragtune[ray]). On a cluster every node must see the files at the same paths."),
        ray_workers: int = typer.Option(None, "--ray-workers", min=1, help="Loading tasks and embedding actors with --ray (default 2)."),
    ) -> None:
        """Add documents to an index; unchanged ones are skipped, changed ones replaced. Exit 1 if any file was skipped."""
        from ragtune.cli.common import one_line
        from ragtune.cli.common import CHUNK_FLAGS
        from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig, validation_message
        from ragtune.errors import ConfigError
        from ragtune.graph import follow_index_commits
        from ragtune.index import Index
        from ragtune.ingest import load_documents

        if ray is not None:
            from ragtune.distributed.ray_cluster import check_address

            ray = check_address(ray)  # a bad address fails before any work
        elif ray_workers is not None:
            raise ConfigError("--ray-workers applies with --ray only")
        ray_workers = ray_workers or 2
        overrides = {k: v for k, v in (("chunk_tokens", chunk_tokens), ("overlap_tokens", overlap)) if v is not None}
        config = None
        if overrides or embedder or precision or windows is not None:
            from ragtune.index.onnx_encoder import check_precision

            embed = EmbedConfig(model=embedder or "bundled", precision=check_precision(precision), windows=windows or 0)
            try:
                config = IndexConfig(chunk=ChunkConfig(**overrides), embed=embed)
            except ValueError as exc:
                raise ConfigError(f"bad chunking options: {validation_message(exc, CHUNK_FLAGS)}") from None
        follow_index_commits()  # an existing entity graph is updated in the same commit
        index = Index.open_or_create(index_dir, config)
        if ray is not None:
            from ragtune.distributed.ray_cluster import ray_session
            from ragtune.distributed.ray_ingest import load_on_ray, ray_add_documents
            from ragtune.ingest import discover

            files, links = discover(paths, follow_links)  # listed here (a missing path fails before Ray starts), read on Ray
            with ray_session(ray, ray_data=True):
                result = load_on_ray(files, links, workers=ray_workers)
                stats = ray_add_documents(index, result.documents, workers=ray_workers, dedupe_content=True)
        else:
            result = load_documents(paths, follow_links=follow_links)
            if not result.documents and not result.skipped:
                from ragtune.errors import InputError

                raise InputError(f"no documents found in {', '.join(map(str, paths))} (txt, md, html, pdf, jsonl, "
                                 "json); nothing was indexed")
            stats = index.add_documents(result.documents, dedupe_content=True)  # one document per content
        typer.echo(
            f"documents: {stats.added} added, {stats.replaced} replaced, {stats.unchanged} unchanged; "
            f"chunks: +{stats.chunks_added} -{stats.chunks_removed}; index now {len(index.documents())} documents, "
            f"{len(index)} chunks"
        )
        for doc_id, twin in stats.same_content:
            typer.echo(f"{doc_id}: unchanged (same content as {twin})", err=True)
        for skipped in result.skipped:
            typer.secho(one_line(f"skipped {skipped.path}: {skipped.reason}"), fg="yellow", err=True)
        if result.skipped:
            typer.secho(f"{len(result.skipped)} file(s) or line(s) skipped", fg="yellow", err=True)
            raise typer.Exit(1)

    @app.command("delete")
    def delete(
        doc_ids: list[str] = typer.Argument(..., help="Document ids to remove (see `ragtune search --json`)."),
        index_dir: Path = typer.Option(..., "--index", help="Index folder."),
    ) -> None:
        """Remove documents from an index (all or nothing: an unknown id changes nothing)."""
        from ragtune.graph import follow_index_commits
        from ragtune.index import Index

        follow_index_commits()
        index = Index.open(index_dir)
        removed = index.delete_documents(doc_ids)
        typer.echo(f"deleted {len(set(doc_ids))} document(s), {removed} chunk(s); index now {len(index)} chunks")
