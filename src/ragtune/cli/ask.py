"""`ragtune ask "question" --index DIR [--k 3] [--json] [--closed-book] [--model M] [--adapter DIR]`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ragtune.cli.common import ANSWER_FORM_HELP, ANSWER_PICK_HELP, MODES_HELP, RERANK_DEPTH_HELP, RERANK_WEIGHT_HELP, SCREENING_HELP


def register(app: typer.Typer) -> None:
    @app.command("ask")
    def ask(
        question: Optional[str] = typer.Argument(None, help="The question (or use --questions FILE)."),
        index_dir: Optional[Path] = typer.Option(None, "--index", help="Index folder (ragtune ingest)."),
        k: int = typer.Option(3, "-k", "--k", min=1, help="Passages retrieved and shown to the model (3, as compare and serve)."),
        mode: str = typer.Option("hybrid", "--mode", help=MODES_HELP),
        rerank_depth: Optional[int] = typer.Option(None, "--rerank-depth", min=2, max=200, help=RERANK_DEPTH_HELP),
        rerank_weight: Optional[float] = typer.Option(None, "--rerank-weight", min=0, max=1, help=RERANK_WEIGHT_HELP),
        filters: list[str] = typer.Option([], "--filter", help="key=value metadata filter (repeatable)."),
        questions_file: Optional[Path] = typer.Option(None, "--questions", help="File of questions: one per line or JSONL."),
        closed_book: bool = typer.Option(False, "--closed-book", help="Answer without retrieval (the base arm)."),
        model: str = typer.Option("bundled", "--model", help="'bundled', a local HF model folder or an http(s) OpenAI-compatible URL."),
        model_name: Optional[str] = typer.Option(None, "--model-name", help="Remote model name for an http(s) --model."),
        adapter: Optional[Path] = typer.Option(None, "--adapter", help="LoRA adapter folder (ragtune finetune) on top of the model."),
        max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Questions generated together."),
        prompt_style: str = typer.Option("auto", "--prompt-style", help="auto | guided | plain (guided: worked examples before the question; auto: guided for a local model without --adapter)."),
        context_sentences: Optional[int] = typer.Option(None, "--context-sentences", min=0, help="Cut passages to the N sentences closest to the question (0: whole; default: 3 for local models, whole for endpoints)."),
        answer_form: str = typer.Option("free", "--answer-form", help=ANSWER_FORM_HELP),
        answer_pick: str = typer.Option("joint", "--answer-pick", help=ANSWER_PICK_HELP),
        screening: str = typer.Option("neutralise", "--screening", help=SCREENING_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print {answer, citations, timings} as JSON."),
    ) -> None:
        """Answer questions from the index with the LLM, citing the numbered sources it used."""
        from ragtune.cli.common import check_adapter_folder, check_text, print_json, rerank_options
        from ragtune.config import GenerateConfig
        from ragtune.errors import InputError
        from ragtune.generate import load_generator
        from ragtune.pipeline import AnswerSettings, answer, prediction_to_dict, read_questions
        from ragtune.text import has_visible_text

        check_adapter_folder(adapter, "--adapter")
        check_text(question, "the question")
        options = rerank_options(mode, rerank_depth, rerank_weight)
        if model_name and not model.startswith(("http://", "https://")):
            raise InputError("--model-name names the model of an http(s) --model endpoint; a local model has none")
        if closed_book and (filters or options):
            raise InputError("--closed-book answers without retrieval: --filter and --rerank-* do not apply")
        qids, questions = read_questions(questions_file) if questions_file else ([""], [question or ""])
        if questions_file and question:
            raise InputError(f"give either a QUESTION argument or --questions, not both (got {question!r})")
        if not questions_file and not has_visible_text(question or ""):
            raise InputError("no question: pass QUESTION or --questions FILE")
        if index_dir is None and not closed_book:
            raise InputError("--index DIR is required (or pass --closed-book to answer without retrieval)")
        index = retriever = None
        if not closed_book:
            from ragtune.index import Index
            from ragtune.retrieve import open_retriever
            from ragtune.retrieve.filters import parse_filter_args

            index = Index.open(index_dir)
            if len(index) == 0:
                raise InputError(f"index {index_dir} is empty: ingest documents first (or pass --closed-book)")
            retriever = open_retriever(index, mode, **options)
        config = GenerateConfig(
            model=model, model_name=model_name, adapter=str(adapter) if adapter else None,
            max_new_tokens=max_new_tokens, batch_size=batch_size, stop_at_answer_line=True,
            prompt_style=prompt_style, context_sentences=context_sentences, answer_form=answer_form, answer_pick=answer_pick,
            screening=screening,
        )
        generator = load_generator(config)
        settings = AnswerSettings.resolve(config, index.embedder if index is not None else None)
        preds = answer(
            questions, generator, retriever, settings, k=k, qids=qids,
            filters=(parse_filter_args(filters) or None) if retriever is not None else None,
            arm="base" if closed_book else "rag",
        )
        if as_json:
            rows = [prediction_to_dict(p, model=generator.model_id) for p in preds]
            print_json(rows if questions_file else rows[0])
            return
        for pred in preds:
            print_prediction(pred, show_question=questions_file is not None)


def print_prediction(pred, show_question: bool = False) -> None:
    """The answer, then its numbered sources (title, doc id, chunk id, score); '*' marks cited ones."""
    from ragtune.cli.common import one_line
    from ragtune.pipeline import citations

    if show_question:
        typer.secho(f"Q: {pred.question}", bold=True)
    typer.echo(pred.answer or "(no answer)")
    backing = citations(pred)
    if backing:
        how = "cited by the model" if backing[0]["cited"] else "best supporting passage (the model cited none)"
        typer.echo(f"\nSources ({how}):")
        for c in backing:
            typer.echo(one_line(f"  [{c['number']}] {c['title'] or '(untitled)'} — {c['doc_id']} ({c['chunk_id']}) "
                                f"score {c['score']:.4f}"))
    typer.echo(f"\n({pred.retrieve_ms:.0f} ms retrieval, {pred.generate_ms:.0f} ms generation)", err=True)
    if show_question:
        typer.echo("")
