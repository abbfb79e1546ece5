"""`ragtune tune`: search one arm's settings on a validation split of the questions (or synthesised ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def tune(
        index: Path = typer.Option(..., "--index", help="Index folder (ragtune ingest)."),
        questions: Optional[Path] = typer.Option(None, "--questions", help="ragtune QA JSONL or SQuAD JSON (default: validation questions synthesised from the index)."),
        out: Path = typer.Option(..., "--out", help="Folder for split.json, trials.jsonl and best.json."),
        arm: str = typer.Option("rag", "--arm", help="base | rag | ft | ft_rag | raft"),
        trials: int = typer.Option(20, "--trials", min=1, help="Distinct settings to try (the whole grid when it is smaller)."),
        max_p95_ms: Optional[float] = typer.Option(None, "--max-p95-ms", min=0.001, help="Latency constraint: settings slower than this p95 on validation are never chosen."),
        max_cost_per_1k: Optional[float] = typer.Option(None, "--max-cost-per-1k", min=0.000001, metavar="USD", help="Cost constraint: settings that cost more than this per 1,000 queries to serve (cost model, validation mean latency) are never chosen."),
        validation: Optional[str] = typer.Option(None, "--validation", help="split: search on a part of --questions (split by document); synth: synthesise validation questions from documents none of --questions is about (default: split with --questions, else synth)."),
        validation_share: float = typer.Option(0.3, "--validation-share", min=0.01, max=0.99, help="Share of the questions searched on (split by document)."),
        validation_questions: Optional[int] = typer.Option(None, "--validation-questions", min=1, help="With synth: validation questions to synthesise (default: by --validation-share, or 40 without --questions)."),
        cpu_hour_usd: float = typer.Option(0.10, "--cpu-hour-usd", help="Cost model: $ per CPU machine hour."),
        gpu_hour_usd: float = typer.Option(2.50, "--gpu-hour-usd", help="Cost model: $ per GPU machine hour."),
        seed: int = typer.Option(0, "--seed"),
        resume: bool = typer.Option(False, "--resume", help="Continue the search in --out: recorded settings are not run again."),
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N questions."),
        model: str = typer.Option("bundled", "--model", help="'bundled', a local HF model folder or an OpenAI-compatible URL."),
        adapter: Optional[Path] = typer.Option(None, "--adapter", help="SFT adapter for ft / ft_rag."),
        raft_adapter: Optional[Path] = typer.Option(None, "--raft-adapter", help="RAFT adapter for raft."),
        train: bool = typer.Option(False, "--train", help="No adapter given: train the arm's adapter, its epochs and learning rate searched too (each adapter trained once into --out/adapters)."),
        train_data: Optional[Path] = typer.Option(None, "--train-data", help="With --train: QA file to train on (default: synthesised from the index)."),
        train_epochs: Optional[int] = typer.Option(None, "--train-epochs", min=1, help="With --train: the default epochs (default: per adapter kind)."),
        search_train_minutes: Optional[float] = typer.Option(None, "--search-train-minutes", min=0.01, help="With --train: training beyond M minutes in all is skipped (estimated from the first adapter)."),
        search_train_usd: Optional[float] = typer.Option(None, "--search-train-usd", min=0.000001, metavar="USD", help="With --train: the same budget in $ (training time at the cost model's hourly price)."),
        ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS", help="Run trials in parallel on Ray workers (no pruning; trials that train stay here): 'local' (a loopback instance), 'auto', 'ray://HOST:PORT' or 'HOST:PORT' (extra ragtune[ray])."),
        ray_workers: int = typer.Option(2, "--ray-workers", min=1, help="Trials at once with --ray (each worker loads the model once)."),
    ) -> None:
        """Search the arm's settings on validation questions: part of --questions (split by document) or synthesised from the index (extra ragtune\\[search])."""
        import json

        from ragtune.arms import parse_arms
        from ragtune.cli.common import check_adapter_folder, check_output_folder
        from ragtune.errors import InputError
        from ragtune.evaluate.cost import CostModel
        from ragtune.workflows.tune import TuneConfig, run_tune

        check_output_folder(out, "--out")
        check_adapter_folder(adapter, "--adapter")
        check_adapter_folder(raft_adapter, "--raft-adapter")
        arms = parse_arms(arm)
        if len(arms) != 1:
            raise InputError(f"--arm takes one arm, got {arm!r} (run tune once per arm, or compare --search)")
        config = TuneConfig(index=str(index), questions=str(questions) if questions else None, out=str(out),
                            arm=arms[0], trials=trials, max_p95_ms=max_p95_ms, max_cost_per_1k=max_cost_per_1k,
                            cost=CostModel(cpu_hour_usd=cpu_hour_usd, gpu_hour_usd=gpu_hour_usd),
                            validation=validation, validation_share=validation_share,
                            validation_questions=validation_questions, seed=seed, resume=resume,
                            limit=limit, model=model, adapter=str(adapter) if adapter else None,
                            raft_adapter=str(raft_adapter) if raft_adapter else None, train=train,
                            train_data=str(train_data) if train_data else None, train_epochs=train_epochs,
                            search_train_minutes=search_train_minutes, search_train_usd=search_train_usd)
        trials_on = None
        if ray is not None:
            from ragtune.distributed.ray_cluster import check_address
            from ragtune.distributed.ray_trials import RayTrials

            trials_on = RayTrials(check_address(ray), workers=ray_workers)
        result = run_tune(config, trials_on=trials_on)
        best = result.to_dict()
        default = best["default_validation"] or {}
        typer.echo(f"{result.arm}: {len(result.trials)} trial(s) ({result.sampler}), chosen {json.dumps(best['params'])}")
        cost = best["validation"].get("cost_per_1k")
        typer.echo(f"validation F1 {best['validation']['f1']:.3f} (defaults {default.get('f1', float('nan')):.3f}), "
                   f"p95 {best['validation']['latency_ms_p95']:,.0f} ms"
                   + (f", ${cost:.6f} per 1k queries" if cost is not None else "") + f" → {out / 'best.json'}")
        if (best.get("versus_defaults") or {}).get("switched") is False:
            from ragtune.report.render import describe_versus_defaults

            typer.echo(describe_versus_defaults(best["versus_defaults"]))
        training = best.get("training") or {}
        if training.get("searched"):
            typer.echo(f"training: {training['epochs']} epoch(s) at lr {training['lr']:g} → {out / training['adapter']} "
                       f"({training['adapters_trained']} adapter(s) trained, {training['train_s']:.0f} s; "
                       f"{training['over_budget_trials']} trial(s) over the training budget)")
        elif training:
            typer.echo(f"training: {training['reason']}")
        if (best.get("index") or {}).get("rechunked"):
            index = best["index"]
            typer.echo(f"chunk size {index['chunk_tokens']}: the index re-chunked into {out / index['index']}")
