"""`ragtune serve --index DIR [--arm rag] [--adapter A] [--host 127.0.0.1] [--port 8000]`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ragtune.cli.common import ANSWER_FLAGS, ANSWER_FORM_HELP, ANSWER_PICK_HELP, MODES_HELP, RERANK_DEPTH_HELP, RERANK_WEIGHT_HELP, SCREENING_HELP


# ServeSettings fields -> the flags that set them, so a bad value's error names what the user typed
SETTING_FLAGS = {
    **ANSWER_FLAGS, "port": "--port", "k": "-k", "retrieve_mode": "--mode",
    "max_batch": "--max-batch", "batch_wait_ms": "--batch-wait-ms", "queue_size": "--queue-size",
    "rate_limit_per_minute": "--rate-limit", "rate_limit_burst": "--rate-burst", "request_timeout_s": "--request-timeout",
}


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        index: Optional[Path] = typer.Option(None, "--index", help="Index folder (needed by arms that retrieve)."),
        arms: list[str] = typer.Option(["rag"], "--arm", help="Arm to serve (repeatable): base, rag, ft, ft_rag, raft (for rag_tr: serve rag over a reindexed index)."),
        model: str = typer.Option("bundled", "--model", help="'bundled', a local HF model folder or an OpenAI-compatible URL."),
        model_name: Optional[str] = typer.Option(None, "--model-name", help="Remote model name of the untuned arms for an http(s) --model."),
        adapter_model_names: list[str] = typer.Option([], "--adapter-model-name", help="KIND=NAME (repeatable; KIND sft or raft): the model an http(s) --model serves that adapter as, e.g. a vLLM --lora-modules name."),
        adapter: Optional[Path] = typer.Option(None, "--adapter", help="SFT adapter for ft / ft_rag."),
        raft_adapter: Optional[Path] = typer.Option(None, "--raft-adapter", help="RAFT adapter for raft."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; non-loopback needs API keys."),
        port: int = typer.Option(8000, "--port", min=0, max=65535),
        api_keys: Optional[Path] = typer.Option(None, "--api-keys", help="File of 'KEY=group1,group2' lines."),
        mode: str = typer.Option("hybrid", "--mode", help=f"Retrieval: {MODES_HELP}"),
        rerank_depth: Optional[int] = typer.Option(None, "--rerank-depth", min=2, max=200, help=RERANK_DEPTH_HELP),
        rerank_weight: Optional[float] = typer.Option(None, "--rerank-weight", min=0, max=1, help=RERANK_WEIGHT_HELP),
        k: int = typer.Option(3, "-k", "--k", min=1, help="Passages per question."),
        prompt_style: str = typer.Option("auto", "--prompt-style", help="auto | guided | plain, as in `ask` (auto: guided for arms without an adapter)."),
        context_sentences: Optional[int] = typer.Option(None, "--context-sentences", min=0, help="Cut passages to the N sentences closest to the question, as in `ask` (0: whole; default: 3 for local models)."),
        answer_form: str = typer.Option("free", "--answer-form", help=ANSWER_FORM_HELP),
        answer_pick: str = typer.Option("joint", "--answer-pick", help=ANSWER_PICK_HELP),
        screening: str = typer.Option("neutralise", "--screening", help=SCREENING_HELP),
        max_batch: int = typer.Option(8, "--max-batch", help="Concurrent questions answered in one generate call."),
        batch_wait_ms: float = typer.Option(5.0, "--batch-wait-ms", help="How long a batch waits for more questions."),
        queue_size: int = typer.Option(64, "--queue-size", help="Waiting questions before answering 429."),
        rate_limit: float = typer.Option(120.0, "--rate-limit", help="Requests per minute per API key."),
        rate_burst: int = typer.Option(60, "--rate-burst", help="Requests a key may make at once before the limit applies."),
        request_timeout: float = typer.Option(120.0, "--request-timeout", help="Seconds before a request answers 504."),
    ) -> None:
        """Serve the chosen arms over an OpenAI-compatible HTTP API with live document updates and a web UI."""
        import uvicorn

        from ragtune.arms import parse_adapter_model_names
        from ragtune.cli.common import check_adapter_folder, rerank_options
        from ragtune.config import validation_message
        from ragtune.errors import ConfigError
        from ragtune.progress import set_progress
        from ragtune.serve.app import create_app
        from ragtune.serve.settings import ServeSettings

        options = rerank_options(mode, rerank_depth, rerank_weight)
        check_port_free(host, port)  # before loading anything: a busy port is not worth a minute of model loading
        check_adapter_folder(adapter, "--adapter")
        check_adapter_folder(raft_adapter, "--raft-adapter")
        set_progress(False)  # per-request progress bars would flood the server log
        try:
            settings = ServeSettings(
                index=str(index) if index else None, arms=tuple(arms), model=model, model_name=model_name,
                adapter_model_names=parse_adapter_model_names(adapter_model_names),
                adapter=str(adapter) if adapter else None, raft_adapter=str(raft_adapter) if raft_adapter else None,
                host=host, port=port, api_keys_file=str(api_keys) if api_keys else None, retrieve_mode=mode, k=k,
                **options,
                prompt_style=prompt_style, context_sentences=context_sentences, answer_form=answer_form, answer_pick=answer_pick,
                screening=screening, max_batch=max_batch, batch_wait_ms=batch_wait_ms, queue_size=queue_size,
                rate_limit_per_minute=rate_limit,
                rate_limit_burst=rate_burst, request_timeout_s=request_timeout,
            )
        except ValueError as exc:
            raise ConfigError(f"bad serve option: {validation_message(exc, SETTING_FLAGS)}") from None
        typer.echo(f"loading {', '.join(settings.arms)} ...", err=True)
        application = create_app(settings)
        typer.echo(f"ragtune serving {', '.join(settings.arms)} on http://{host}:{port}/ (web UI at /)", err=True)
        uvicorn.run(application, host=host, port=port, log_level="warning")


def check_port_free(host: str, port: int) -> None:
    """ConfigError (exit 2) naming the port when HOST:PORT cannot be bound, as uvicorn would bind it."""
    import errno
    import socket

    from ragtune.errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: cannot resolve it ({exc.strerror})") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is not "in use"
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is in use: stop the other server or pass --port") from exc
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
