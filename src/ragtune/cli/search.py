"""`ragtune search "query" --index DIR -k 10 --mode hybrid [--filter k=v] [--json]`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ragtune.cli.common import MODES_HELP, RERANK_DEPTH_HELP, RERANK_WEIGHT_HELP


def register(app: typer.Typer) -> None:
    @app.command("search")
    def search(
        query: str = typer.Argument(..., help="The search query."),
        index_dir: Path = typer.Option(..., "--index", help="Index folder."),
        k: int = typer.Option(10, "-k", "--top-k", min=1, help="Number of hits."),
        mode: str = typer.Option("hybrid", "--mode", help=MODES_HELP),
        rerank_depth: Optional[int] = typer.Option(None, "--rerank-depth", min=2, max=200, help=RERANK_DEPTH_HELP),
        rerank_weight: Optional[float] = typer.Option(None, "--rerank-weight", min=0, max=1, help=RERANK_WEIGHT_HELP),
        filters: list[str] = typer.Option([], "--filter", help="key=value metadata filter (repeatable)."),
        as_json: bool = typer.Option(False, "--json", help="Print hits as JSON."),
    ) -> None:
        """Print the ranked hits for a query: rank, score, document id, title and a snippet."""
        from ragtune.cli.common import check_text, one_line, print_json, rerank_options
        from ragtune.text import has_visible_text
        from ragtune.errors import InputError
        from ragtune.index import Index
        from ragtune.retrieve import open_retriever
        from ragtune.retrieve.filters import parse_filter_args

        check_text(query, "the query")
        if not has_visible_text(query):  # as the server's /v1/search: a blank query ranks nothing, it would list arbitrary hits
            raise InputError("no query: pass the text to search for")
        options = rerank_options(mode, rerank_depth, rerank_weight)
        index = Index.open(index_dir)
        retriever = open_retriever(index, mode, **options)
        hits = retriever.retrieve([query], k=k, filters=parse_filter_args(filters) or None)[0]
        if as_json:
            print_json([
                {"rank": h.rank + 1, "score": h.score, "chunk_id": h.chunk.chunk_id, "doc_id": h.chunk.doc_id,
                 "title": h.chunk.title, "source": h.chunk.source, "text": h.chunk.text, "metadata": h.chunk.metadata}
                for h in hits
            ])
            return
        if not hits:
            typer.echo("no hits")
        for h in hits:
            snippet = one_line(" ".join(h.chunk.text.split())[:160])  # a document's escape codes never reach the terminal
            typer.echo(f"{h.rank + 1:3d}. {h.score:8.4f}  {one_line(h.chunk.doc_id)}  {one_line(h.chunk.title)}\n"
                       f"     {snippet}")
