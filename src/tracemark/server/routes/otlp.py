"""OTLP/HTTP trace ingest: `POST /v1/traces`, protobuf or JSON, gzip or not.

Any OpenTelemetry SDK, collector or instrumentation (OpenInference, OpenLLMetry) can send
here. The experiment comes from the `x-tracemark-experiment-id` (or `-name`) header, else
from the resource attributes `tracemark.experiment_id` / `tracemark.experiment_name`,
else it is the default experiment "0"; a name that does not exist yet is created.
Conversion is in `tracemark.server.otlp`.

A write the store fails for a reason of its own (not the request's) answers 503 with
`Retry-After`: OTLP exporters retry 429/502/503/504 but drop a batch answered 500.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from tracemark.entities.experiment import LifecycleStage
from tracemark.exceptions import AlreadyExistsError, InvalidInputError, TracemarkError
from tracemark.server.otlp import (
    EXPERIMENT_ID_HEADER,
    EXPERIMENT_NAME_HEADER,
    RESOURCE_EXPERIMENT_ID,
    RESOURCE_EXPERIMENT_NAME,
    Converted,
    ExperimentFor,
    convert_request,
    decode_json,
    decode_protobuf,
    encode_response,
)

logger = logging.getLogger("tracemark.server")
router = APIRouter(tags=["opentelemetry"])

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# "application/protobuf" is what some SDKs send; the OTLP spec says x-protobuf.
_CONTENT_TYPES = {PROTOBUF: False, "application/protobuf": False, JSON: True}
_DEFAULT_EXPERIMENT = "0"

_ERROR = {
    "content": {
        JSON: {
            "schema": {
                "type": "object",
                "properties": {
                    "error_code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                },
                "required": ["error_code", "message"],
            }
        }
    }
}
_OPENAPI = {
    "requestBody": {
        "required": True,
        "description": "An OTLP ExportTraceServiceRequest, protobuf or OTLP JSON.",
        "content": {
            PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
            JSON: {"schema": {"type": "object"}},
        },
    },
    "responses": {
        "200": {
            "description": "An ExportTraceServiceResponse in the request's encoding.",
            "content": {
                PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                JSON: {"schema": {"type": "object"}},
            },
        },
        "400": {"description": "The body or an id in it is malformed.", **_ERROR},
        "404": {"description": "The experiment named by the header does not exist.", **_ERROR},
        "413": {"description": "The body is too large.", **_ERROR},
        "415": {"description": "Unsupported content type or encoding.", **_ERROR},
        "503": {"description": "The store could not write; retry later.", **_ERROR},
    },
}


@router.post("/v1/traces", openapi_extra=_OPENAPI, response_class=Response)
async def export_traces(request: Request) -> Response:
    """Store the spans of an OTLP/HTTP export request (protobuf or JSON) as traces."""
    as_json = _is_json(request.headers.get("content-type"))
    try:
        import opentelemetry.proto  # noqa: F401  (the `server` extra)
    except ImportError:
        return JSONResponse(
            {
                "error_code": "NOT_IMPLEMENTED",
                "message": "OTLP ingest needs opentelemetry-proto: pip install 'tracemark[server]'",
            },
            status_code=501,
        )
    body = await request.body()
    body = _inflate(body, request.headers.get("content-encoding"), request)
    try:
        converted = await run_in_threadpool(
            _ingest, request.app.state.store, body, as_json, request.headers
        )
    except _StoreUnavailable as exc:
        return JSONResponse(
            {"error_code": "TEMPORARILY_UNAVAILABLE", "message": str(exc)},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    return Response(
        encode_response(converted.rejected_spans, converted.error_message, as_json=as_json),
        media_type=JSON if as_json else PROTOBUF,
    )


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in _CONTENT_TYPES:
        raise HTTPException(
            415,
            f"content type {media or '(none)'!r} is not supported: send OTLP as "
            f"{PROTOBUF!r} or {JSON!r}",
        )
    return _CONTENT_TYPES[media]


def _inflate(body: bytes, encoding: str | None, request: Request) -> bytes:
    """Undo a `deflate` content encoding (gzip is undone by the middleware), within bounds."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding != "deflate":
        raise HTTPException(
            415, f"content encoding {encoding!r} is not supported: use gzip, deflate or none"
        )
    limit = request.app.state.settings.max_body_bytes
    # HTTP's "deflate" is zlib-wrapped, but some senders use raw deflate.
    for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS):
        inflater = zlib.decompressobj(wbits)
        try:
            data = inflater.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(data) > limit or inflater.unconsumed_tail:
            raise HTTPException(413, f"request body exceeds {limit} bytes once decompressed")
        if inflater.eof:
            return data
    raise InvalidInputError("request body is not valid deflate data", field="body")


def _ingest(store: Any, body: bytes, as_json: bool, headers: Mapping[str, str]) -> Converted:
    experiment_for = _experiment_resolver(store, headers)
    otlp_request = decode_json(body) if as_json else decode_protobuf(body)
    converted = convert_request(otlp_request, experiment_for)
    if converted.traces:
        try:
            store.log_traces(converted.traces)
        except TracemarkError as exc:
            if exc.http_status < 500:
                raise
            logger.error("OTLP ingest: the store failed: %s", exc.message)
            raise _StoreUnavailable(f"the store could not write the spans: {exc.message}") from exc
        except Exception as exc:
            logger.exception("OTLP ingest: the store failed")
            raise _StoreUnavailable("the store could not write the spans; retry later") from exc
    return converted


class _StoreUnavailable(Exception):
    """The store failed on a valid request: answered 503 so that exporters retry."""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None or not value.strip():
        return None
    try:  # HTTP headers arrive as latin-1; an experiment name may be UTF-8
        return value.strip().encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value.strip()


def _experiment_resolver(store: Any, headers: Mapping[str, str]) -> ExperimentFor:
    """Return the function giving a resource's experiment id; header choices apply to all."""
    by_id = _header(headers, EXPERIMENT_ID_HEADER)
    by_name = _header(headers, EXPERIMENT_NAME_HEADER)
    if by_id is not None or by_name is not None:
        chosen = _resolve(store, by_id, by_name, "header")
        return lambda _resource: chosen
    known: dict[tuple[str | None, str | None], str] = {}

    def from_resource(resource: Mapping[str, Any]) -> str:
        rid, rname = resource.get(RESOURCE_EXPERIMENT_ID), resource.get(RESOURCE_EXPERIMENT_NAME)
        key = (None if rid is None else str(rid), None if rname is None else str(rname))
        if key == (None, None):
            return _DEFAULT_EXPERIMENT
        if key not in known:
            known[key] = _resolve(store, key[0], key[1], "resource attribute")
        return known[key]

    return from_resource


def _resolve(store: Any, experiment_id: str | None, name: str | None, source: str) -> str:
    """Return the id of an existing experiment, or of the named one (created if missing)."""
    if experiment_id is not None:
        where = EXPERIMENT_ID_HEADER if source == "header" else RESOURCE_EXPERIMENT_ID
        if not experiment_id.isdigit() or len(experiment_id) > 18:
            raise InvalidInputError(
                f"{source} {where} must be an experiment id (digits), got {experiment_id!r}",
                field=where,
            )
        experiment = store.get_experiment(experiment_id)
    else:
        where = EXPERIMENT_NAME_HEADER if source == "header" else RESOURCE_EXPERIMENT_NAME
        if not name or "\x00" in name:
            raise InvalidInputError(
                f"{source} {where} must be a name without NUL characters, got {name!r}",
                field=where,
            )
        experiment = store.get_experiment_by_name(name)
        if experiment is None:
            try:
                return str(store.create_experiment(name))
            except AlreadyExistsError:  # another request created it meanwhile
                experiment = store.get_experiment_by_name(name)
            except InvalidInputError as exc:
                raise InvalidInputError(f"{source} {where}: {exc.message}", field=where) from None
    if experiment.lifecycle_stage == LifecycleStage.DELETED:
        raise InvalidInputError(
            f"experiment {experiment.name!r} (id {experiment.experiment_id}) is deleted; "
            "restore it or send to another experiment",
            field=where,
        )
    return experiment.experiment_id
