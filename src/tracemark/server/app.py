"""Build the FastAPI application: routes, error mapping, guards."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tracemark._version import __version__
from tracemark.exceptions import TracemarkError
from tracemark.server.middleware import BodyTooLarge, GuardMiddleware
from tracemark.server.schemas import ERROR_RESPONSES
from tracemark.server.settings import ServerSettings

logger = logging.getLogger("tracemark.server")

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def _error(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def create_app(settings: ServerSettings | None = None, store: Any = None) -> FastAPI:
    """Create the server app for one backend store.

    Args:
        settings: where data lives and how requests are guarded.
        store: an already-open store (tests); opened from `settings` otherwise.
    """
    settings = settings or ServerSettings()
    if store is None:
        from tracemark.store.registry import store_factory

        uri = settings.backend_store_uri
        store = store_factory(uri.split(":", 1)[0].split("+", 1)[0].lower())(
            uri, artifact_root=settings.artifacts_destination
        )
    from tracemark.server.routes.scorers import background_scoring

    app = FastAPI(
        title="tracemark",
        version=__version__,
        docs_url="/docs",
        redoc_url=None,
        responses=ERROR_RESPONSES,
        lifespan=background_scoring,
    )
    app.state.store = store
    app.state.settings = settings

    @app.exception_handler(TracemarkError)
    async def _tracemark_error(_: Request, exc: TracemarkError) -> JSONResponse:
        if exc.http_status >= 500:
            logger.error("store error: %s", exc.message)
        return _error(exc.http_status, exc.to_dict())

    @app.exception_handler(RequestValidationError)
    async def _schema_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = first.get("msg", "invalid request")
        return _error(
            422,
            {
                "error_code": "INVALID_SCHEMA",
                "message": f"{field}: {message}" if field else message,
                "field": field,
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "BAD_REQUEST")
        return _error(exc.status_code, {"error_code": code, "message": str(exc.detail)})

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return _error(413, {"error_code": "REQUEST_TOO_LARGE", "message": str(exc)})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error")
        return _error(500, {"error_code": "INTERNAL_ERROR", "message": "internal server error"})

    @app.get("/health", tags=["server"])
    def health() -> dict[str, str]:
        """Say the server is up."""
        return {"status": "ok"}

    @app.get("/version", tags=["server"])
    def version() -> dict[str, str]:
        """Return the server's tracemark version."""
        return {"version": __version__}

    from tracemark.server.routes import (
        analytics,
        artifacts,
        datasets,
        models,
        otlp,
        registry,
        scorers,
        traces,
        tracking,
        webhooks,
    )
    from tracemark.server.static import mount_ui

    app.include_router(tracking.router)
    app.include_router(artifacts.router)
    app.include_router(traces.router)
    app.include_router(otlp.router)
    app.include_router(analytics.router)
    app.include_router(registry.router)
    app.include_router(models.router)
    app.include_router(webhooks.router)
    app.include_router(datasets.router)
    app.include_router(scorers.router)
    mount_ui(app)

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(
        GuardMiddleware,
        allowed_hosts=settings.allowed_hosts,
        auth_token=settings.auth_token,
        max_body_bytes=settings.max_body_bytes,
    )
    return app
