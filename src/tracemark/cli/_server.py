"""`tracemark server`: run the REST API, OTLP ingest and UI."""

from __future__ import annotations

import os

import click

from tracemark.server.settings import DEFAULT_MAX_BODY_BYTES


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--backend-store-uri",
    envvar="TRACEMARK_BACKEND_STORE_URI",
    default="sqlite:///tracemark.db",
    show_default=True,
    help="Database: sqlite:///path.db or postgresql://user@host/db.",
)
@click.option(
    "--artifacts-destination",
    envvar="TRACEMARK_ARTIFACTS_DESTINATION",
    default=None,
    help="Folder for artifacts [default: tracemark-artifacts beside the SQLite file].",
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--auth-token",
    envvar="TRACEMARK_SERVER_AUTH_TOKEN",
    default=None,
    help="Require 'Authorization: Bearer <token>' on every API request.",
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
@click.option("--cors-origin", "cors_origins", multiple=True, help="Origins allowed by CORS.")
@click.option(
    "--max-body-bytes",
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    type=click.IntRange(1),
    help="Largest request body accepted (413 beyond).",
)
@click.option(
    "--score",
    is_flag=True,
    envvar="TRACEMARK_SERVER_SCORE",
    show_envvar=True,
    help="Also run the registered scorers on new traces, in the background of each worker "
    "(as `tracemark score` does; TRACEMARK_SCORE_* variables tune it).",
)
def server(
    host: str,
    port: int,
    backend_store_uri: str,
    artifacts_destination: str | None,
    workers: int,
    auth_token: str | None,
    insecure_no_auth: bool,
    allowed_hosts: tuple[str, ...],
    cors_origins: tuple[str, ...],
    max_body_bytes: int,
    score: bool,
) -> None:
    """Start the tracemark server (REST API, OTLP ingest at /v1/traces)."""
    from tracemark.server.run import migrate_on_start, serve, settings_for

    settings = settings_for(
        host=host,
        port=port,
        backend_store_uri=backend_store_uri,
        artifacts_destination=artifacts_destination,
        auth_token=auth_token,
        insecure_no_auth=insecure_no_auth,
        allowed_hosts=allowed_hosts,
        cors_origins=cors_origins,
        max_body_bytes=max_body_bytes,
    )
    migrated = migrate_on_start(backend_store_uri)
    if migrated is not None and migrated[0] != migrated[1]:
        click.echo(f"Database schema: {migrated[0] or 'new'} -> {migrated[1]}", err=True)
    # Worker processes read it from the environment (evaluation/worker.py SERVER_SCORE).
    os.environ["TRACEMARK_SERVER_SCORE"] = "true" if score else "false"
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"tracemark server listening on http://{shown}:{port}", err=True)
    serve(settings, host=host, port=port, workers=workers)
