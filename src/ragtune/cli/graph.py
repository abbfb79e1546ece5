"""`ragtune graph build|show --index DIR [--extractor rules|llm:MODEL] [--entity NAME] [--json] [--html FILE]`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    graph_app = typer.Typer(help="The entity graph of an index (used by --mode graph-local|graph-global|graph-hybrid).",
                            no_args_is_help=True)
    app.add_typer(graph_app, name="graph")

    @graph_app.command("build")
    def build(
        index_dir: Path = typer.Option(..., "--index", help="Index folder."),
        extractor: Optional[str] = typer.Option(
            None, "--extractor", help="'rules' (default, offline) or 'llm:<model>' (bundled, HF folder or http(s) URL)."),
    ) -> None:
        """Extract entities for new or changed documents; later ingests then keep the graph up to date."""
        from ragtune.graph.communities import load_communities
        from ragtune.graph.store import load_graph, sync_graph
        from ragtune.index import Index

        index = Index.open(index_dir)
        sync_graph(index, extractor=extractor)
        state, graph = load_graph(index)
        load_communities(index.path, state, graph)  # cached now: `graph show` and graph-global only read them
        typer.echo(f"graph of {getattr(index, 'uri', index_dir)}: {graph.n_entities} entities, {graph.n_edges} edges over {graph.n_chunks} chunks")

    @graph_app.command("show")
    def show(
        index_dir: Path = typer.Option(..., "--index", help="Index folder."),
        entity: Optional[str] = typer.Option(None, "--entity", help="Show this entity's neighbourhood."),
        limit: int = typer.Option(20, "--limit", min=1, help="Neighbours (or top entities) to list."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
        html_out: Optional[Path] = typer.Option(None, "--html", help="Also write an HTML view of the neighbourhood."),
    ) -> None:
        """Without --entity: counts, top entities and communities. With it: neighbours and supporting chunks.

        Writes nothing to the index: a graph not built (or behind the index) is completed in memory."""
        from ragtune.cli.common import print_json
        from ragtune.errors import InputError
        from ragtune.graph.view import neighbourhood, neighbourhood_html, overview
        from ragtune.index import Index

        index = Index.open(index_dir)
        if entity is None:
            if html_out is not None:
                raise InputError("--html needs --entity NAME")
            data = overview(index, top=limit, persist=False)
            if as_json:
                return print_json(data)
            typer.echo(f"{data['entities']} entities, {data['edges']} edges over {data['chunks']} chunks "
                       f"({data['chunks_without_entities']} without entities; hubs above {data['hub_df']} chunks)")
            for e in data["top_entities"]:
                typer.echo(f"  {e['chunks']:5d}  {e['name']}{'  [hub]' if e['hub'] else ''}")
            for c in data["communities"]:
                typer.echo(f"community {c['id']} ({c['size']} entities): {', '.join(c['top'])}\n    {c['summary'][:200]}")
            return
        data = neighbourhood(index, entity, limit=limit, persist=False)
        if html_out is not None:
            html_out.write_text(neighbourhood_html(data), encoding="utf-8")
        if as_json:
            return print_json(data)
        typer.echo(f"{data['entity']}{' [hub]' if data['hub'] else ''}: {len(data['chunks'])} chunk(s) "
                   f"{', '.join(data['chunks'][:10])}")
        for n in data["neighbours"]:
            typer.echo(f"  {n['weight']:7.4f}  {n['name']}  <- {', '.join(n['chunks'][:5])}")
