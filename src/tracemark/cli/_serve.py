"""`tracemark serve`: serve a logged model over HTTP (scoring, OpenAI chat completions)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import click

from tracemark import config
from tracemark.exceptions import TracemarkError
from tracemark.server.settings import DEFAULT_MAX_BODY_BYTES


@click.command()
@click.argument("model_uri", required=False, metavar="MODEL_URI")
@click.option(
    "-m",
    "--model-uri",
    "model_uri_option",
    metavar="URI",
    help="models:/name@alias, models:/name/<version>, runs:/<run_id>/<name> or a model folder.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("-p", "--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--auth-token",
    envvar="TRACEMARK_SERVE_AUTH_TOKEN",
    default=None,
    help="Require 'Authorization: Bearer <token>' on every prediction request.",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Allow binding a non-loopback address without an auth token.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="Host header values to accept [default: loopback names when bound to loopback].",
)
@click.option(
    "--max-body-bytes",
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    type=click.IntRange(1),
    help="Largest request body accepted (413 beyond).",
)
@click.option(
    "--experiment-name",
    default=None,
    help="Experiment receiving the request traces [default: the model's own experiment].",
)
@click.pass_context
def serve(
    ctx: click.Context,
    model_uri: str | None,
    model_uri_option: str | None,
    host: str,
    port: int,
    workers: int,
    auth_token: str | None,
    insecure_no_auth: bool,
    allowed_hosts: tuple[str, ...],
    max_body_bytes: int,
    experiment_name: str | None,
) -> None:
    """Serve a logged model: POST /invocations, POST /v1/chat/completions, GET /health.

    Every request is traced to the tracking store, linked to the model version.
    """
    from tracemark.registry._packaging import load_model_dir
    from tracemark.server.run import is_loopback
    from tracemark.server.serving import ServingSettings
    from tracemark.server.settings import LOOPBACK_HOSTS

    if model_uri and model_uri_option and model_uri != model_uri_option:
        raise click.UsageError("give the model URI once: as an argument or with --model-uri")
    uri = model_uri_option or model_uri
    if not uri:
        raise click.UsageError("missing the model URI, e.g. tracemark serve models:/agent@prod")
    if not is_loopback(host) and not auth_token and not insecure_no_auth:
        raise click.UsageError(
            f"binding {host} exposes the model beyond this machine: set --auth-token "
            "(or TRACEMARK_SERVE_AUTH_TOKEN), or pass --insecure-no-auth"
        )
    configured_store = bool(ctx.find_root().params.get("tracking_uri"))
    with tempfile.TemporaryDirectory(prefix="tracemark-serve-") as tmp:
        folder, experiment_id = _fetch(uri, tmp)
        try:
            model = load_model_dir(folder)
        except TracemarkError:
            raise
        except Exception as error:  # the model's own code failed to import or initialize
            message = f"cannot load {uri}: {type(error).__name__}: {error}"
            raise click.ClickException(message) from error
        # A model read from the store traces there; a folder only when a store is named.
        trace = config.TRACING_ENABLED.get() and (experiment_id is not None or configured_store)
        if trace:
            _choose_experiment(experiment_name, experiment_id)
        settings = ServingSettings(
            model_uri=uri,
            model_name=_model_name(uri, folder),
            trace=trace,
            auth_token=auth_token,
            allowed_hosts=tuple(allowed_hosts) or (LOOPBACK_HOSTS if is_loopback(host) else ("*",)),
            max_body_bytes=max_body_bytes,
        )
        shown = f"[{host}]" if ":" in host else host
        click.echo(
            f"tracemark serve: {uri} (model {model.model_id or 'without id'}) "
            f"on http://{shown}:{port}",
            err=True,
        )
        _run(model, folder, settings, host=host, port=port, workers=workers)


def _fetch(uri: str, tmp: str) -> tuple[Path, str | None]:
    """Return the model's local folder and, for a model from the store, its experiment."""
    if uri.startswith(("models:", "runs:")):
        from tracemark.registry._uri import parse_run_uri
        from tracemark.tracking.fluent import DEFAULT_TRACKER

        client = DEFAULT_TRACKER.client
        ref = parse_run_uri(client.resolve_model_uri(uri))
        local = client.download_artifacts(ref.run_id, ref.path, tmp)
        return Path(local), client.get_run(ref.run_id).experiment_id
    path = Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else Path(uri)
    if not path.is_dir():
        raise click.UsageError(
            f"{uri!r} is neither a models:/ or runs:/ URI nor a model folder on this machine"
        )
    return path, None


def _model_name(uri: str, folder: Path) -> str:
    if uri.startswith("models:/"):
        return uri[len("models:/") :].split("/")[0].split("@")[0]
    return folder.name


def _choose_experiment(name: str | None, model_experiment: str | None) -> None:
    # Workers are new processes: they read the experiment from the environment.
    if name:
        os.environ[config.EXPERIMENT_NAME.env] = name
        os.environ.pop(config.EXPERIMENT_ID.env, None)
    elif model_experiment is not None and not (
        config.EXPERIMENT_NAME.get() or config.EXPERIMENT_ID.get()
    ):
        os.environ[config.EXPERIMENT_ID.env] = model_experiment


def _run(model: Any, folder: Path, settings: Any, *, host: str, port: int, workers: int) -> None:
    import dataclasses

    import orjson
    import uvicorn

    from tracemark.server import serving
    from tracemark.tracking.fluent import DEFAULT_TRACKER

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "proxy_headers": False,
        "server_header": False,
    }
    if not settings.trace:
        from tracemark.tracing.fluent import DEFAULT_TRACER

        DEFAULT_TRACER.configure(enabled=False)
    if workers == 1:
        uvicorn.run(serving.create_serving_app(model, settings), **options)
        return
    os.environ[config.TRACKING_URI.env] = DEFAULT_TRACKER.get_tracking_uri()
    os.environ[serving.ENV_MODEL_DIR] = str(folder.resolve())
    os.environ[serving.ENV_SETTINGS] = orjson.dumps(dataclasses.asdict(settings)).decode()
    uvicorn.run("tracemark.server.serving:app_from_env", factory=True, workers=workers, **options)
