"""`ragtune compare`: every arm side by side on the same questions."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ragtune.cli.common import ANSWER_FORM_HELP, ANSWER_PICK_HELP, MODES_HELP, RERANK_DEPTH_HELP, RERANK_WEIGHT_HELP, SCREENING_HELP


def register(app: typer.Typer) -> None:
    @app.command()
    def compare(
        index: Path = typer.Option(..., "--index", help="Index folder (ragtune ingest)."),
        questions: Path = typer.Option(..., "--questions", help="ragtune QA JSONL or SQuAD JSON."),
        out: Path = typer.Option(..., "--out", help="Run folder to write (atomically)."),
        arms: str = typer.Option("base,rag,ft,ft_rag,raft", "--arms", help="Comma-separated arms: base, rag, ft, ft_rag, raft, and rag_tr, raft_tr (retrieval with a tuned embedder)."),
        adapter: Optional[Path] = typer.Option(None, "--adapter", help="SFT adapter for ft / ft_rag."),
        raft_adapter: Optional[Path] = typer.Option(None, "--raft-adapter", help="RAFT adapter for raft."),
        tuned_embedder: Optional[Path] = typer.Option(None, "--tuned-embedder", help="Embedder folder (ragtune finetune-embedder) the rag_tr / raft_tr arms retrieve with: the index is re-embedded with it into RUN/index_tr."),
        train: bool = typer.Option(False, "--train", help="Train the adapters (and, for rag_tr / raft_tr, the embedder) the arms need and were not given; with --search, the tuned arms' epochs and learning rate are searched too."),
        train_data: Optional[Path] = typer.Option(None, "--train-data", help="QA file to train on (default: synthesised from the index)."),
        train_epochs: Optional[float] = typer.Option(None, "--train-epochs", help="Epochs for --train (default: per mode)."),
        train_minutes: Optional[float] = typer.Option(None, "--train-minutes", min=0.1, help="Budget for --train: examples and epochs are cut to fit about M minutes per adapter (speed probed on this machine; default: no budget)."),
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N questions."),
        seed: int = typer.Option(0, "--seed"),
        k: int = typer.Option(3, "-k", "--k", min=1, help="Passages retrieved per question."),
        mode: str = typer.Option("hybrid", "--mode", help=MODES_HELP),
        rerank_depth: Optional[int] = typer.Option(None, "--rerank-depth", min=2, max=200, help=RERANK_DEPTH_HELP),
        rerank_weight: Optional[float] = typer.Option(None, "--rerank-weight", min=0, max=1, help=RERANK_WEIGHT_HELP),
        model: str = typer.Option("bundled", "--model", help="'bundled', a local HF model folder or an OpenAI-compatible URL."),
        model_name: Optional[str] = typer.Option(None, "--model-name", help="Remote model name of the untuned arms for an http(s) --model."),
        adapter_model_names: list[str] = typer.Option([], "--adapter-model-name", help="KIND=NAME (repeatable; KIND sft or raft): the model an http(s) --model serves that adapter as, e.g. a vLLM --lora-modules name."),
        max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1, max=4096),
        prompt_style: str = typer.Option("auto", "--prompt-style", help="auto | guided | plain: guided puts worked examples before the question (auto: guided for arms without an adapter)."),
        context_sentences: Optional[int] = typer.Option(None, "--context-sentences", min=0, help="Cut passages to the N sentences closest to the question (0: whole; default: 3 for local models, whole for endpoints)."),
        answer_form: str = typer.Option("free", "--answer-form", help=ANSWER_FORM_HELP),
        answer_pick: str = typer.Option("joint", "--answer-pick", help=ANSWER_PICK_HELP),
        screening: str = typer.Option("neutralise", "--screening", help=SCREENING_HELP),
        freshness: Optional[Path] = typer.Option(None, "--freshness", help="Folder of updated documents + questions.jsonl on the changed facts."),
        resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in the same --out."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run folder."),
        knowledge_change: str = typer.Option("monthly", "--knowledge-change", help="Scenario: static | monthly | weekly | daily."),
        latency_budget_ms: Optional[float] = typer.Option(None, "--latency-budget-ms", help="Scenario: p95 latency allowed."),
        queries_per_day: float = typer.Option(1000, "--queries-per-day", help="Scenario: expected traffic."),
        training_budget_usd: Optional[float] = typer.Option(None, "--training-budget-usd", help="Scenario: training budget."),
        needs_citations: bool = typer.Option(False, "--needs-citations", help="Scenario: answers must cite sources."),
        ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS", help="Answer on Ray workers (with --search: run the search's trials there, in parallel, and the test run here): 'local' (a loopback instance), 'auto', 'ray://HOST:PORT' or 'HOST:PORT' (extra ragtune[ray])."),
        ray_workers: int = typer.Option(2, "--ray-workers", min=1, help="Answering actors with --ray (each loads the model)."),
        cpu_hour_usd: float = typer.Option(0.10, "--cpu-hour-usd", help="Cost model: $ per CPU machine hour."),
        gpu_hour_usd: float = typer.Option(2.50, "--gpu-hour-usd", help="Cost model: $ per GPU machine hour."),
        search: Optional[int] = typer.Option(None, "--search", min=1, metavar="TRIALS", help="Search each arm's settings with up to TRIALS trials on a validation split first; report only the test split (extra ragtune\\[search])."),
        validation_share: float = typer.Option(0.3, "--validation-share", min=0.01, max=0.99, help="With --search: share of the questions searched on (split by document)."),
        max_p95_ms: Optional[float] = typer.Option(None, "--max-p95-ms", min=0.001, help="With --search: settings slower than this p95 on validation are never chosen."),
        max_cost_per_1k: Optional[float] = typer.Option(None, "--max-cost-per-1k", min=0.000001, metavar="USD", help="With --search: settings that cost more than this per 1,000 queries to serve (the cost model on validation latency) are never chosen."),
        validation: str = typer.Option("split", "--validation", help="With --search: split (search on part of --questions, split by document) or synth (all of --questions are test; validation questions are synthesised from the documents none of them is about)."),
        validation_questions: Optional[int] = typer.Option(None, "--validation-questions", min=1, help="With --validation synth: questions to synthesise (default: by --validation-share)."),
        search_train_minutes: Optional[float] = typer.Option(None, "--search-train-minutes", min=0.01, help="With --search and --train: the search's training budget; a trial whose adapter would train beyond M minutes in all is skipped (estimated from the adapters trained so far)."),
        search_train_usd: Optional[float] = typer.Option(None, "--search-train-usd", min=0.000001, metavar="USD", help="The same budget in $ (training time at the cost model's hourly price)."),
    ) -> None:
        """Run every arm on the same questions; write results.json, predictions.jsonl and report.html."""
        from ragtune.arms import parse_adapter_model_names, parse_arms
        from ragtune.cli.common import check_adapter_folder, check_output_folder, rerank_options
        from ragtune.workflows.compare import CompareConfig, run_compare
        from ragtune.evaluate.cost import CostModel

        options = rerank_options(mode, rerank_depth, rerank_weight)
        check_output_folder(out, "--out")
        check_adapter_folder(adapter, "--adapter")
        check_adapter_folder(raft_adapter, "--raft-adapter")
        config = CompareConfig(
            index=str(index), questions=str(questions), out=str(out), arms=tuple(parse_arms(arms)),
            adapter=str(adapter) if adapter else None, raft_adapter=str(raft_adapter) if raft_adapter else None,
            tuned_embedder=str(tuned_embedder) if tuned_embedder else None,
            train=train, train_data=str(train_data) if train_data else None, train_epochs=train_epochs,
            train_minutes=train_minutes,
            limit=limit, seed=seed, k=k, mode=mode, model=model, model_name=model_name,
            adapter_model_names=parse_adapter_model_names(adapter_model_names), max_new_tokens=max_new_tokens,
            prompt_style=prompt_style, context_sentences=context_sentences, answer_form=answer_form, answer_pick=answer_pick, screening=screening, freshness=str(freshness) if freshness else None, resume=resume, overwrite=overwrite,
            scenario={"knowledge_change": knowledge_change, "latency_budget_ms": latency_budget_ms,
                      "queries_per_day": queries_per_day, "training_budget_usd": training_budget_usd,
                      "needs_citations": needs_citations},
            cost=CostModel(cpu_hour_usd=cpu_hour_usd, gpu_hour_usd=gpu_hour_usd),
            search=search, validation_share=validation_share, max_p95_ms=max_p95_ms, max_cost_per_1k=max_cost_per_1k,
            validation=validation, validation_questions=validation_questions,
            search_train_minutes=search_train_minutes, search_train_usd=search_train_usd, **options,
        )
        if overwrite:
            from ragtune.workflows.compare_inputs import check_replaceable

            check_replaceable(config)  # never the index it reads, or a folder of other files
        executor = trials_on = None
        if ray is not None and search:  # the search's trials on Ray; the test run answers here, with each arm's winner
            from ragtune.distributed.ray_cluster import check_address
            from ragtune.distributed.ray_trials import RayTrials

            trials_on = RayTrials(check_address(ray), workers=ray_workers)
        elif ray is not None:
            from ragtune.distributed.ray_cluster import check_address
            from ragtune.distributed.ray_compare import RayAnswerExecutor

            executor = RayAnswerExecutor(check_address(ray), workers=ray_workers)
        run_dir = run_compare(config, executor=executor, trials_on=trials_on,
                              on_train_plan=lambda kind, plan: typer.echo(plan.summary(kind), err=True))
        from ragtune.cli.summary import print_run_summary

        print_run_summary(run_dir)
