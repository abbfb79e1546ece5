"""`ragtune eval ...`: the evaluation sub-commands. `eval retrieval BEIR_DIR` lives here; more may join it."""

from __future__ import annotations

from pathlib import Path

import typer

from ragtune.cli.common import MODES_HELP, RERANK_DEPTH_HELP, RERANK_WEIGHT_HELP

eval_app = typer.Typer(help="Evaluate retrieval (BEIR) and more.", no_args_is_help=True)


@eval_app.command("retrieval")
def retrieval(
    beir_dir: Path = typer.Argument(..., help="BEIR dataset folder (corpus.jsonl, queries.jsonl, qrels/)."),
    split: str = typer.Option("test", "--split", help="qrels split: qrels/<split>.tsv"),
    modes: list[str] = typer.Option(["hybrid"], "--mode", help=f"{MODES_HELP} (repeatable)."),
    rerank_depth: int = typer.Option(None, "--rerank-depth", min=2, max=200, help=RERANK_DEPTH_HELP),
    rerank_weight: float = typer.Option(None, "--rerank-weight", min=0, max=1, help=RERANK_WEIGHT_HELP),
    index_dir: Path = typer.Option(None, "--index", help="Use this index (default: a cached one per corpus and chunking)."),
    chunk_tokens: int = typer.Option(None, "--chunk-tokens", help="Tokens per chunk of the cached index (default 200; BM25 alone does best at 256-300 on SciFact)."),
    overlap: int = typer.Option(None, "--overlap", help="Overlap tokens between chunks of the cached index (default 32)."),
    embedder: str = typer.Option(None, "--embedder", help="'bundled' or a sentence-transformers folder (e.g. from finetune-embedder) for the cached index."),
    precision: str = typer.Option(None, "--precision", help="int8 (the default for a sentence-transformers model) or fp32 embeddings for the cached index."),
    windows: int = typer.Option(None, "--windows", min=0, max=8, help="Sentence windows of the cached index (default 0, off; 2: a chunk's dense score is its best 2-sentence window)."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
) -> None:
    """nDCG@10, Recall@10/100 and MRR@10 (BEIR / pytrec_eval definitions; doc score = max over chunks)."""
    from ragtune.cli.common import print_json, rerank_options
    from ragtune.cli.common import CHUNK_FLAGS
    from ragtune.config import RERANK_SUFFIX, ChunkConfig, EmbedConfig, IndexConfig, RetrieveConfig, validation_message
    from ragtune.errors import ConfigError
    from ragtune.evaluate.retrieval import evaluate_beir

    reranked = [m for m in modes if m.endswith(RERANK_SUFFIX)]  # the settings need one of the modes to rerank
    options = rerank_options((reranked or modes or ["hybrid"])[0], rerank_depth, rerank_weight)
    overrides = {k: v for k, v in (("chunk_tokens", chunk_tokens), ("overlap_tokens", overlap)) if v is not None}
    if (overrides or embedder or precision or windows is not None) and index_dir is not None:
        raise ConfigError("--chunk-tokens/--overlap/--embedder/--precision/--windows shape the cached index; "
                          "an existing --index keeps its own chunking and embedder")
    from ragtune.index.onnx_encoder import check_precision

    embed = EmbedConfig(model=embedder or "bundled", precision=check_precision(precision), windows=windows or 0)
    try:
        shaped = overrides or embedder or precision or windows is not None
        index_config = IndexConfig(chunk=ChunkConfig(**overrides), embed=embed) if shaped else None
    except ValueError as exc:
        raise ConfigError(f"bad chunking options: {validation_message(exc, CHUNK_FLAGS)}") from None
    results = evaluate_beir(beir_dir, split=split, modes=modes, index_dir=index_dir, index_config=index_config,
                            retrieve_config=RetrieveConfig(**options))
    if as_json:
        print_json({r.mode: r.metrics for r in results})
        return
    typer.echo(f"{'mode':8} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7}  queries")
    for r in results:
        m = r.metrics
        typer.echo(f"{r.mode:8} {m['ndcg@10']:8.4f} {m['recall@10']:7.4f} {m['recall@100']:7.4f} {m['mrr@10']:7.4f}  {m['n_queries']}")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
