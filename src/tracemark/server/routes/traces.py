"""Traces and assessments under /api/v1: batch ingest, get, search, delete, tags, attachments."""

from __future__ import annotations

import base64
import binascii
import re
import time
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from tracemark.entities.trace import (
    MAX_ATTACHMENT_BYTES,
    Assessment,
    AssessmentSource,
    Attachment,
    Span,
    Trace,
    TraceInfo,
)
from tracemark.exceptions import InvalidInputError
from tracemark.server.schemas import (
    INT64_MAX,
    AssessmentIn,
    AssessmentUpdate,
    DeleteTraces,
    SearchTraces,
    TagValue,
)

router = APIRouter(prefix="/api/v1", tags=["traces"])

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
# Base64 text of an attachment at the size limit, padding included.
_MAX_ATTACHMENT_BASE64 = 4 * -(-MAX_ATTACHMENT_BYTES // 3)
# Media types a browser may show inline; anything else is served as a download.
_INLINE_MEDIA = re.compile(r"^(?:image/(?!svg)|audio/|video/)")


def _store(request: Request) -> Any:
    return request.app.state.store


def parse_traces(payload: Any) -> list[Trace]:
    """Turn an ingest body `{"traces": [...]}` into traces, naming the first bad field."""
    if not isinstance(payload, dict) or not isinstance(payload.get("traces"), list):
        raise InvalidInputError('body must be {"traces": [...]}', field="traces")
    traces = []
    for i, item in enumerate(payload["traces"]):
        where = f"traces[{i}]"
        try:
            info = TraceInfo.from_dict(item["info"])
            spans = [Span.from_dict(s) for s in item["spans"]]
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InvalidInputError(f"{where} is malformed: {error!s}", field=where) from None
        if not isinstance(info.trace_id, str) or not _TRACE_ID.match(info.trace_id):
            raise InvalidInputError(
                f"{where}.info.trace_id must be 32 lowercase hex characters",
                field=f"{where}.info.trace_id",
            )
        for j, span in enumerate(spans):
            field = f"{where}.spans[{j}]"
            if span.trace_id != info.trace_id:
                raise InvalidInputError(f"{field}.trace_id differs from the trace's", field=field)
            if not isinstance(span.span_id, str) or not _SPAN_ID.match(span.span_id):
                raise InvalidInputError(
                    f"{field}.span_id must be 16 lowercase hex characters", field=field
                )
            for name in ("start_time_ns", "end_time_ns"):
                value = getattr(span, name)
                if value is not None and not 0 <= value <= INT64_MAX:
                    raise InvalidInputError(
                        f"{field}.{name} must be between 0 and 2**63 - 1", field=f"{field}.{name}"
                    )
        trace = Trace(info, spans)
        if item.get("attachments") is not None:
            trace.attachments = _parse_attachments(item["attachments"], f"{where}.attachments")
        traces.append(trace)
    return traces


def _parse_attachments(items: Any, where: str) -> list[Attachment]:
    """Decode `[{"sha256", "media_type", "data": base64}]`; the store checks the digests."""
    if not isinstance(items, list):
        raise InvalidInputError(f"{where} must be a list", field=where)
    attachments = []
    for k, item in enumerate(items):
        field = f"{where}[{k}]"
        if not isinstance(item, dict):
            raise InvalidInputError(f"{field} must be an object", field=field)
        sha, media_type, text = item.get("sha256"), item.get("media_type"), item.get("data")
        if not isinstance(sha, str) or not isinstance(media_type, str):
            raise InvalidInputError(
                f"{field}.sha256 and {field}.media_type must be strings", field=field
            )
        if not isinstance(text, str):
            raise InvalidInputError(f"{field}.data must be base64 text", field=f"{field}.data")
        if len(text) > _MAX_ATTACHMENT_BASE64:
            raise InvalidInputError(
                f"{field}.data is larger than the limit of {MAX_ATTACHMENT_BYTES} bytes",
                field=f"{field}.data",
            )
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError(
                f"{field}.data is not valid base64", field=f"{field}.data"
            ) from None
        attachments.append(Attachment(sha, media_type, data))
    return attachments


@router.post("/traces")
async def log_traces(request: Request) -> dict[str, Any]:
    """Store a batch of finished traces in one transaction (body: {"traces": [...]})."""
    raw = await request.body()
    # Decoding is CPU work like the write: both run off the event loop, which stays free
    # to read the next request meanwhile.
    count = await run_in_threadpool(_ingest, _store(request), raw)
    return {"accepted": count}


def _ingest(store: Any, raw: bytes) -> int:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidInputError(f"body is not valid JSON: {error}", field="body") from None
    traces = parse_traces(payload)
    store.log_traces(traces)
    return len(traces)


@router.get("/traces/{trace_id}", response_class=Response)
def get_trace(trace_id: str, request: Request, payloads: bool = True) -> Response:
    """Return one trace with all its spans and assessments.

    With ``payloads=false`` the spans come without inputs and outputs (null) but with their
    sizes in bytes (``inputs_size``, ``outputs_size``); ``GET .../spans/{span_id}`` returns
    one span whole.
    """
    trace = _store(request).get_trace(trace_id, include_payloads=payloads)
    # Serialized by orjson directly: FastAPI's generic encoder takes seconds on 10,000 spans.
    return _json(trace.to_dict(raw_payloads=True))


@router.get("/traces/{trace_id}/spans/{span_id}", response_class=Response)
def get_span(trace_id: str, span_id: str, request: Request) -> Response:
    """Return one span of a trace with its inputs and outputs."""
    return _json(_store(request).get_span(trace_id, span_id).to_dict(raw_payloads=True))


@router.get("/traces/{trace_id}/attachments/{sha256}", response_class=Response)
def get_trace_attachment(trace_id: str, sha256: str, request: Request) -> Response:
    """Return an attachment of a trace (media a span refers to) with its media type.

    Only attachments the trace holds are returned; the others are 404 like unknown ones.
    """
    attachment = _store(request).get_trace_attachment(trace_id, sha256)
    headers = {
        # The content never changes under its digest.
        "cache-control": "private, max-age=31536000, immutable",
        # Stored media comes from traced requests: never run it as a page of this origin.
        "content-security-policy": "default-src 'none'; sandbox",
        "x-content-type-options": "nosniff",
    }
    if not _INLINE_MEDIA.match(attachment.media_type):
        headers["content-disposition"] = f'attachment; filename="{sha256}"'
    return Response(attachment.data, media_type=attachment.media_type, headers=headers)


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


@router.post("/traces/search")
def search_traces(body: SearchTraces, request: Request) -> dict[str, Any]:
    """Search traces with the filter grammar; a page of trace infos and the next token."""
    infos, token = _store(request).search_traces(
        body.experiment_ids,
        body.filter,
        body.order_by or None,
        body.max_results,
        body.page_token,
        body.run_id,
    )
    return {"traces": [i.to_dict() for i in infos], "next_page_token": token}


@router.post("/traces/delete")
def delete_traces(body: DeleteTraces, request: Request) -> dict[str, Any]:
    """Delete traces of an experiment older than a time, or by id."""
    count = _store(request).delete_traces(body.experiment_id, body.max_timestamp_ms, body.trace_ids)
    return {"deleted": count}


@router.put("/traces/{trace_id}/tags/{key:path}")
def set_trace_tag(trace_id: str, key: str, body: TagValue, request: Request) -> dict[str, Any]:
    """Set a tag on a trace."""
    _store(request).set_trace_tag(trace_id, key, body.value)
    return {}


@router.delete("/traces/{trace_id}/tags/{key:path}")
def delete_trace_tag(trace_id: str, key: str, request: Request) -> dict[str, Any]:
    """Delete a tag from a trace."""
    _store(request).delete_trace_tag(trace_id, key)
    return {}


@router.post("/traces/{trace_id}/assessments")
def create_assessment(trace_id: str, body: AssessmentIn, request: Request) -> dict[str, Any]:
    """Attach feedback or an expectation to a trace (or one span of it)."""
    now = time.time_ns() // 1_000_000
    assessment = Assessment(
        assessment_id=uuid.uuid4().hex,
        trace_id=trace_id,
        name=body.name,
        kind=body.kind,
        value=body.value,
        source=AssessmentSource(body.source_type, body.source_id),
        created_time_ms=now,
        last_updated_time_ms=now,
        span_id=body.span_id,
        rationale=body.rationale,
        error=body.error,
        metadata=body.metadata,
        run_id=body.run_id,
        overrides=body.overrides,
    )
    return _store(request).create_assessment(assessment).to_dict()


@router.get("/traces/{trace_id}/assessments/{assessment_id}")
def get_assessment(trace_id: str, assessment_id: str, request: Request) -> dict[str, Any]:
    """Return one assessment."""
    return _store(request).get_assessment(trace_id, assessment_id).to_dict()


@router.patch("/traces/{trace_id}/assessments/{assessment_id}")
def update_assessment(
    trace_id: str, assessment_id: str, body: AssessmentUpdate, request: Request
) -> dict[str, Any]:
    """Change an assessment's name, value, rationale or metadata."""
    changes: dict[str, Any] = {
        "name": body.name,
        "rationale": body.rationale,
        "metadata": body.metadata,
    }
    if "value" in body.model_fields_set:
        changes["value"] = body.value
    updated = _store(request).update_assessment(trace_id, assessment_id, **changes)
    return updated.to_dict()


@router.delete("/traces/{trace_id}/assessments/{assessment_id}")
def delete_assessment(trace_id: str, assessment_id: str, request: Request) -> dict[str, Any]:
    """Delete an assessment."""
    _store(request).delete_assessment(trace_id, assessment_id)
    return {}
