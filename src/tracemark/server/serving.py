"""The model server of `tracemark serve`: one logged model over HTTP.

- ``POST /invocations``: MLflow's scoring protocol. The body holds one of
  ``dataframe_records`` (a list of records), ``dataframe_split`` (``columns`` and ``data``),
  ``instances`` (a list of inputs), each predicted one by one, or ``inputs`` (one input,
  predicted once); optional ``params`` go to ``predict``. The answer is ``{"predictions": ...}``.
- ``POST /v1/chat/completions``: OpenAI's chat completions. ``predict`` receives the request
  (``{"messages": [...], "temperature": ...}``); with ``"stream": true`` the chunks of
  ``predict_stream`` go out as server-sent events ending with ``data: [DONE]``.
- ``GET /health`` (200 once the model is loaded) and ``GET /version``.

Each request runs in a trace linked to the model's id (metadata ``tracemark.model_id``).
Bad requests get a 4xx JSON body naming the problem; a failing model a 500 JSON body.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from tracemark._version import __version__
from tracemark.entities.trace import SpanType
from tracemark.exceptions import TracemarkError
from tracemark.registry._packaging import LoadedModel
from tracemark.registry.active_model import use_model_id
from tracemark.server.middleware import BodyTooLarge, GuardMiddleware
from tracemark.server.serving_formats import (
    BadRequest,
    Completion,
    as_delta,
    event,
    parse_chat,
    parse_invocation,
)
from tracemark.server.settings import DEFAULT_MAX_BODY_BYTES
from tracemark.tracing._serialize import to_jsonable
from tracemark.tracing._tracer import DEFAULT_TRACER

logger = logging.getLogger("tracemark.serve")

_OPEN_PATHS = ("/health", "/version")
_CHAT = SpanType.CHAT_MODEL
# Settings handed to the worker processes of `tracemark serve --workers N`.
ENV_MODEL_DIR = "TRACEMARK_SERVE_MODEL_DIR"
ENV_SETTINGS = "TRACEMARK_SERVE_SETTINGS"


@dataclass(frozen=True, slots=True)
class ServingSettings:
    """What the model server needs besides the model."""

    model_uri: str
    model_name: str = "model"
    trace: bool = True
    auth_token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


class _ModelFailed(Exception):
    """The model raised while predicting."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.status = error.http_status if isinstance(error, TracemarkError) else 500
        if self.status < 400:
            self.status = 500


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"request body is not valid JSON: {error}", field="body") from None


# -- the app ------------------------------------------------------------------------------


def create_serving_app(model: LoadedModel, settings: ServingSettings) -> FastAPI:
    """Create the HTTP app serving one loaded model.

    Example:
        app = create_serving_app(tm.load_model("models:/agent@production"),
                                 ServingSettings(model_uri="models:/agent@production"))

    Args:
        model: the model, as `tm.load_model` returns it.
        settings: the model's URI and name, tracing, and request guards.
    """
    app = FastAPI(title="tracemark model server", version=__version__, docs_url=None)
    model_id = model.model_id or None

    def traced(name: str, span_type: str, inputs: Any, call: Callable[[], Any]) -> Any:
        with use_model_id(model_id):
            if not settings.trace:
                return call()
            with DEFAULT_TRACER.start_span(name, span_type=span_type, inputs=inputs) as span:
                user = inputs.get("user") if isinstance(inputs, dict) else None
                if isinstance(user, str) and span.recording:
                    DEFAULT_TRACER.update_current_trace(user_id=user)
                result = call()
                span.set_outputs(result)
                return result

    def predict(model_input: Any, params: dict[str, Any] | None) -> Any:
        try:
            return to_jsonable(model.predict(model_input, params))
        except Exception as error:
            logger.exception("the model failed")
            raise _ModelFailed(error) from error

    def authorize(request: Request) -> None:
        if not settings.auth_token or request.url.path in _OPEN_PATHS:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), settings.auth_token.encode()
        ):
            raise BadRequest("a valid 'Authorization: Bearer <token>' is needed", status=401)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> Response:
        return _error(request.url.path, 413, str(exc), None, "REQUEST_TOO_LARGE")

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> Response:
        code = "UNAUTHENTICATED" if exc.status == 401 else "BAD_REQUEST"
        return _error(request.url.path, exc.status, exc.message, exc.field, code)

    @app.exception_handler(_ModelFailed)
    async def _model_failed(request: Request, exc: _ModelFailed) -> Response:
        return _error(request.url.path, exc.status, str(exc), None, "MODEL_ERROR")

    @app.get("/health")
    def health() -> dict[str, str]:
        """Say the model is loaded and the server is up."""
        return {"status": "ok"}

    @app.get("/version")
    def version() -> dict[str, Any]:
        """Return the tracemark version and the served model."""
        return {"version": __version__, "model_uri": settings.model_uri, "model_id": model_id}

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        """Predict: records, instances or one input in, predictions out."""
        authorize(request)
        inputs, batch, params = parse_invocation(await _body(request))

        def run() -> Any:
            if batch:
                return [predict(item, params) for item in inputs]
            return predict(inputs, params)

        span_inputs = {"inputs": inputs, "params": params} if params else {"inputs": inputs}
        predictions = await run_in_threadpool(
            traced, "invocations", SpanType.CHAIN, span_inputs, run
        )
        return _json({"predictions": predictions})

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        """Answer OpenAI-style chat messages, streamed as server-sent events on request."""
        authorize(request)
        body = await _body(request)
        model_input, stream = parse_chat(body)
        name = body.get("model") if isinstance(body.get("model"), str) else None
        completion = Completion(name or settings.model_name)
        if stream:
            return await stream_completion(model_input, completion)
        call = partial(predict, model_input, None)
        result = await run_in_threadpool(traced, "chat.completions", _CHAT, model_input, call)
        return _json(completion.completion(result))

    async def stream_completion(model_input: dict[str, Any], completion: Completion) -> Response:
        chunks = _Chunks()
        chunks.start(
            lambda: traced(
                "chat.completions",
                _CHAT,
                model_input,
                lambda: _collect(model.predict_stream(model_input), chunks.put),
            )
        )
        kind, first = await chunks.get()
        if kind == "error":
            failed = first if isinstance(first, _ModelFailed) else _ModelFailed(first)
            return _error("/v1/chat/completions", failed.status, str(failed), None, "MODEL_ERROR")

        async def events() -> AsyncIterator[bytes]:
            kind, item = "chunk", first
            role_sent = False
            try:
                while kind == "chunk":
                    delta = as_delta(item)
                    if not role_sent:
                        delta = {"role": "assistant", **delta}
                        role_sent = True
                    yield completion.chunk(delta)
                    kind, item = await chunks.get()
                if kind == "error":
                    message = str(item if isinstance(item, _ModelFailed) else _ModelFailed(item))
                    yield event({"error": {"message": message, "type": "server_error"}})
                else:
                    yield completion.chunk({} if role_sent else {"role": "assistant"}, "stop")
                yield b"data: [DONE]\n\n"
            finally:
                chunks.stop.set()

        return StreamingResponse(events(), media_type="text/event-stream")

    app.add_middleware(
        GuardMiddleware,
        allowed_hosts=settings.allowed_hosts,
        auth_token=None,  # checked per route: the middleware guards the tracking API's paths
        max_body_bytes=settings.max_body_bytes,
    )
    return app


def _error(path: str, status: int, message: str, field: str | None, code: str) -> Response:
    """An error body in the endpoint's protocol: OpenAI's for /v1/, ours elsewhere."""
    if path.startswith("/v1/"):
        kind = "invalid_request_error" if status < 500 else "server_error"
        body = {"error": {"message": message, "type": kind, "param": field, "code": code}}
        return JSONResponse(body, status_code=status)
    body = {"error_code": code, "message": message}
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=status)


def _collect(stream: Iterator[Any], put: Callable[[Any], None]) -> list[Any]:
    """Hand each chunk on as it comes; return them all (the span's outputs)."""
    chunks = []
    try:
        for chunk in stream:
            chunk = to_jsonable(chunk)
            chunks.append(chunk)
            put(chunk)
    except _Stopped:
        pass
    except Exception as error:
        logger.exception("the model failed while streaming")
        raise _ModelFailed(error) from error
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    return chunks


class _Stopped(Exception):
    """The client went away: stop asking the model for chunks."""


class _Chunks:
    """Chunks made on a worker thread, read by the response on the event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.stop = threading.Event()

    def send(self, kind: str, item: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, item))
        except RuntimeError:  # the event loop is gone: the server is stopping
            self.stop.set()

    def put(self, chunk: Any) -> None:
        if self.stop.is_set():
            raise _Stopped
        self.send("chunk", chunk)

    async def get(self) -> tuple[str, Any]:
        return await self.queue.get()

    def start(self, work: Callable[[], Any]) -> None:
        """Run `work` on its own thread, so all steps of a stream share one context."""

        def run() -> None:
            try:
                work()
                self.send("end", None)
            except BaseException as error:
                self.send("error", error)

        thread = threading.Thread(
            target=contextvars.copy_context().run, args=(run,), name="tracemark-stream"
        )
        thread.daemon = True
        thread.start()


def app_from_env() -> FastAPI:  # uvicorn factory, one call per worker process
    """Build the app from what `tracemark serve` exported for its worker processes."""
    from pathlib import Path

    from tracemark.registry._packaging import load_model_dir

    data = orjson.loads(os.environ[ENV_SETTINGS])
    data["allowed_hosts"] = tuple(data["allowed_hosts"])
    settings = ServingSettings(**data)
    if not settings.trace:
        DEFAULT_TRACER.configure(enabled=False)
    return create_serving_app(load_model_dir(Path(os.environ[ENV_MODEL_DIR])), settings)
