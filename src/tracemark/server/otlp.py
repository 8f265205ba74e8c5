"""Turn OTLP/HTTP trace requests into tracemark traces, and answer them.

Both encodings of `ExportTraceServiceRequest` are read into the protobuf message: the
binary one directly, the JSON one (hex ids, lowerCamelCase or snake_case names, 64-bit
integers as strings) through protobuf's JSON parser once its hex ids are rewritten to the
base64 that parser expects. One converter then walks the message.

Spans are grouped by trace id; each group becomes a `Trace` whose `TraceInfo` rollups
(name, status, times, previews, token totals, span count) come from its spans. A trace
whose spans come in several requests is assembled by the store, which merges each new
part into the stored row (`store.sql.trace_ingest.merge_info`).

What is rejected how:
- an undecodable body, a malformed id (wrong length, all zeros, not hex): the whole
  request, with `InvalidInputError` naming the field (``resourceSpans[0].scopeSpans[0]
  .spans[3].traceId``), so nothing is half-written;
- spans without a start time, or whose resource names an experiment that cannot be
  used: only those spans, reported in the response's `partial_success`.

opentelemetry-proto (the `server` extra) is imported inside the functions that need it.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracemark.entities.trace import (
    Span,
    SpanEvent,
    SpanStatusCode,
    SpanType,
    Trace,
    TraceInfo,
    TraceStatus,
)
from tracemark.exceptions import InvalidInputError, TracemarkError
from tracemark.store import validation
from tracemark.tracing._rollup import (
    COST,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    PREVIEW_CHARS,
    TOTAL_TOKENS,
)
from tracemark.tracing._semconv import map_otel_attributes

__all__ = [
    "EXPERIMENT_ID_HEADER",
    "EXPERIMENT_NAME_HEADER",
    "RESOURCE_EXPERIMENT_ID",
    "RESOURCE_EXPERIMENT_NAME",
    "Converted",
    "convert_request",
    "decode_json",
    "decode_protobuf",
    "encode_response",
]

EXPERIMENT_ID_HEADER = "x-tracemark-experiment-id"
EXPERIMENT_NAME_HEADER = "x-tracemark-experiment-name"
RESOURCE_EXPERIMENT_ID = "tracemark.experiment_id"
RESOURCE_EXPERIMENT_NAME = "tracemark.experiment_name"
# What tracemark's own OTLP exporter writes on a root span (`tracing.otel`).
_TAG_PREFIX = "tracemark.trace.tag."
_METADATA_PREFIX = "tracemark.trace.metadata."

_STATUS = {0: SpanStatusCode.UNSET, 1: SpanStatusCode.OK, 2: SpanStatusCode.ERROR}
_KINDS = {2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}  # INTERNAL is not recorded
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_JSON_IDS = (
    ("traceId", "trace_id"),
    ("spanId", "span_id"),
    ("parentSpanId", "parent_span_id"),
)
_MAX_PROBLEMS = 5
# Times are stored as signed 64-bit integers; OTLP's are unsigned.
_MAX_TIME_NS = 2**63 - 1
# Larger "token counts" are garbage, and their sums would overflow a 64-bit column.
_MAX_TOKENS = 2**40
_PRICED_TYPES = frozenset((SpanType.LLM, SpanType.CHAT_MODEL, SpanType.EMBEDDING))

ExperimentFor = Callable[[Mapping[str, Any]], str]


# -- decoding -------------------------------------------------------------------------


def decode_protobuf(body: bytes) -> Any:
    """Parse an OTLP protobuf body into an `ExportTraceServiceRequest`."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise InvalidInputError(
            f"body is not a protobuf ExportTraceServiceRequest: {exc}", field="body"
        ) from None
    return request


def decode_json(body: bytes) -> Any:
    """Parse an OTLP JSON body (hex ids, int64 as strings) into an `ExportTraceServiceRequest`."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"body is not valid JSON: {exc}", field="body") from None
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"body must be a JSON object with resourceSpans, got {type(data).__name__}",
            field="body",
        )
    for i, resource_spans in enumerate(_items(data, "resourceSpans", "resource_spans", "")):
        where = f"resourceSpans[{i}]"
        for j, scope_spans in enumerate(_items(resource_spans, "scopeSpans", "scope_spans", where)):
            inner = f"{where}.scopeSpans[{j}]"
            for k, span in enumerate(_items(scope_spans, "spans", "spans", inner)):
                span_where = f"{inner}.spans[{k}]"
                _ids_to_base64(span, span_where)
                for n, link in enumerate(_items(span, "links", "links", span_where)):
                    _ids_to_base64(link, f"{span_where}.links[{n}]")
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise InvalidInputError(f"invalid OTLP JSON: {exc}", field="body") from None
    return request


def _items(parent: dict[str, Any], camel: str, snake: str, where: str) -> list[dict[str, Any]]:
    value = parent.get(camel, parent.get(snake))
    path = f"{where}.{camel}" if where else camel
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidInputError(f"{path} must be a list of objects", field=path)
    return value


def _ids_to_base64(obj: dict[str, Any], where: str) -> None:
    """Rewrite OTLP JSON's hex ids as the base64 protobuf's JSON parser reads bytes in."""
    for camel, snake in _JSON_IDS:
        for key in (camel, snake):
            value = obj.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not _HEX.fullmatch(value):
                raise InvalidInputError(
                    f"{where}.{camel} must be a hex string, got {value!r}",
                    field=f"{where}.{camel}",
                )
            obj[key] = base64.b64encode(bytes.fromhex(value)).decode()


def encode_response(rejected_spans: int, error_message: str, *, as_json: bool) -> bytes:
    """Return the OTLP success answer, with `partial_success` when spans were rejected."""
    if as_json:
        if not rejected_spans:
            return b"{}"
        partial = {"rejectedSpans": str(rejected_spans), "errorMessage": error_message}
        return orjson.dumps({"partialSuccess": partial})
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    response = ExportTraceServiceResponse()
    if rejected_spans:
        response.partial_success.rejected_spans = rejected_spans
        response.partial_success.error_message = error_message
    return response.SerializeToString()


# -- conversion -----------------------------------------------------------------------


@dataclass(slots=True)
class Converted:
    """The traces of one request, and what was rejected from it.

    Attributes:
        traces: One trace per trace id, with the spans this request brought.
        rejected_spans: How many spans were left out.
        problems: Why, one line per rejected span (the first few).
    """

    traces: list[Trace] = field(default_factory=list)
    rejected_spans: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def error_message(self) -> str:
        """The `partial_success.error_message` to answer with ("" when nothing was rejected)."""
        if not self.rejected_spans:
            return ""
        more = self.rejected_spans - len(self.problems)
        tail = f"; and {more} more" if more > 0 else ""
        return f"{self.rejected_spans} spans rejected: {'; '.join(self.problems)}{tail}"

    def reject(self, problem: str) -> None:
        """Count one rejected span, keeping the first few reasons."""
        self.rejected_spans += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(problem)


@dataclass(slots=True)
class _Group:
    """The spans of one trace in this request, and the trace-level data found on them."""

    experiment_id: str
    spans: dict[str, Span] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


def convert_request(request: Any, experiment_for: ExperimentFor) -> Converted:
    """Convert an `ExportTraceServiceRequest` into traces, grouped by trace id.

    Example::

        converted = convert_request(decode_protobuf(body), lambda resource: "0")
        store.log_traces(converted.traces)

    Args:
        request: The decoded request.
        experiment_for: Returns the experiment id for a resource's attributes; a
            `TracemarkError` it raises rejects that resource's spans.

    Raises:
        InvalidInputError: A trace, span or parent id is malformed.
    """
    converted = Converted()
    groups: dict[str, _Group] = {}
    trace_ids: dict[bytes, str] = {}  # the spans of a trace come together: decode each id once
    for i, resource_spans in enumerate(request.resource_spans):
        resource = _attributes(resource_spans.resource.attributes)
        experiment_id: str | None = None
        refusal = ""
        try:
            experiment_id = experiment_for(resource)
        except TracemarkError as exc:
            refusal = exc.message
        service = resource.get("service.name")
        for j, scope_spans in enumerate(resource_spans.scope_spans):
            scope = _scope_attributes(scope_spans.scope)
            for k, otel_span in enumerate(scope_spans.spans):
                raw = otel_span.trace_id
                trace_id = trace_ids.get(raw)
                if trace_id is None:
                    trace_id = trace_ids[raw] = _id(raw, 16, i, j, k, "traceId")
                span_id = _id(otel_span.span_id, 8, i, j, k, "spanId")
                parent = otel_span.parent_span_id
                parent_id = _id(parent, 8, i, j, k, "parentSpanId") if parent else None
                if experiment_id is None:
                    converted.reject(f"span {span_id}: {refusal}")
                    continue
                start, end = otel_span.start_time_unix_nano, otel_span.end_time_unix_nano
                if not start or start > _MAX_TIME_NS or end > _MAX_TIME_NS:
                    problem = "has no start time" if not start else "has a time past the year 2262"
                    converted.reject(f"span {span_id} of trace {trace_id} {problem}")
                    continue
                group = groups.get(trace_id)
                if group is None:
                    group = groups[trace_id] = _Group(experiment_id)
                    if isinstance(service, str) and service:
                        group.metadata["service.name"] = service
                if span_id not in group.spans:
                    group.spans[span_id] = _span(
                        otel_span, trace_id, span_id, parent_id, start, end, scope, group
                    )
    converted.traces = [_trace(tid, group) for tid, group in groups.items()]
    return converted


def _scope_attributes(scope: Any) -> dict[str, str]:
    """The attributes an instrumentation scope adds to each of its spans."""
    if not scope.name:
        return {}
    attributes = {"otel.scope.name": scope.name}
    if scope.version:
        attributes["otel.scope.version"] = scope.version
    return attributes


def _id(raw: bytes, size: int, i: int, j: int, k: int, name: str) -> str:
    if len(raw) == size and any(raw):
        return raw.hex()
    where = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}].{name}"
    if len(raw) != size:
        raise InvalidInputError(
            f"{where} must be {size} bytes ({size * 2} hex characters in OTLP JSON), "
            f"got {len(raw)} bytes",
            field=where,
        )
    raise InvalidInputError(f"{where} is all zeros, which is not a valid id", field=where)


_SCALARS = frozenset(("string_value", "int_value", "double_value", "bool_value"))


def _value(value: Any) -> Any:
    """Return an OTLP `AnyValue` as JSON data (bytes as base64, as OTLP JSON writes them)."""
    kind = value.WhichOneof("value")
    if kind in _SCALARS:
        return getattr(value, kind)
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return base64.b64encode(value.bytes_value).decode()


def _attributes(key_values: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _span(
    otel_span: Any,
    trace_id: str,
    span_id: str,
    parent_id: str | None,
    start: int,
    end: int,
    scope: dict[str, str],
    group: _Group,
) -> Span:
    mapped = map_otel_attributes(_attributes(otel_span.attributes), owned=True)
    attributes = mapped.attributes
    for key in [k for k in attributes if k.startswith("tracemark.trace.")]:
        if _claim(key, attributes[key], _TAG_PREFIX, group.tags) or _claim(
            key, attributes[key], _METADATA_PREFIX, group.metadata
        ):
            del attributes[key]
    if mapped.metadata:
        for key, value in mapped.metadata.items():
            group.metadata.setdefault(key, value)
    for key, value in scope.items():
        attributes.setdefault(key, value)
    span_type = mapped.span_type or SpanType.UNKNOWN
    if span_type in _PRICED_TYPES and COST not in attributes:
        _price(attributes)
    kind = _KINDS.get(otel_span.kind)
    if kind is not None:
        attributes.setdefault("otel.span.kind", kind)
    links = otel_span.links
    if links:
        attributes.setdefault(
            "otel.links",
            [
                {
                    "trace_id": link.trace_id.hex(),
                    "span_id": link.span_id.hex(),
                    "attributes": _attributes(link.attributes),
                }
                for link in links
            ],
        )
    status = otel_span.status
    events = otel_span.events
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        name=otel_span.name,
        span_type=span_type,
        start_time_ns=start,
        end_time_ns=end or None,
        status_code=_STATUS.get(status.code, SpanStatusCode.UNSET),
        status_message=status.message,
        inputs_json=_dumps(mapped.inputs) if mapped.has_inputs else None,
        outputs_json=_dumps(mapped.outputs) if mapped.has_outputs else None,
        attributes=attributes,
        events=[
            SpanEvent(
                event.name, min(event.time_unix_nano, _MAX_TIME_NS), _attributes(event.attributes)
            )
            for event in events
        ]
        if events
        else [],
    )


def _price(attributes: dict[str, Any]) -> None:
    """Set `gen_ai.usage.cost` from the token counts and the price table, as autolog does."""
    provider = attributes.get("gen_ai.provider.name")
    model = attributes.get("gen_ai.response.model") or attributes.get("gen_ai.request.model")
    usage = {
        name: count
        for name, key in (("input_tokens", INPUT_TOKENS), ("output_tokens", OUTPUT_TOKENS))
        if (count := _count(attributes.get(key))) is not None
    }
    if not (isinstance(provider, str) and isinstance(model, str) and usage):
        return
    from tracemark.integrations import _cost

    cost = _cost.cost_usd(provider.lower(), model, usage)
    if cost is not None:
        attributes[COST] = cost


def _claim(key: str, value: Any, prefix: str, into: dict[str, str]) -> bool:
    """Move a `tracemark.trace.tag.*` / `.metadata.*` attribute onto the trace, if valid."""
    if not key.startswith(prefix) or isinstance(value, (dict, list)):
        return False
    name, text = key[len(prefix) :], str(value)
    try:
        validation.key(name, "tag")
    except InvalidInputError:
        return False  # not a key the store takes: it stays a span attribute
    if len(text) > validation.MAX_TAG_VALUE_LENGTH:
        return False
    into.setdefault(name, text)
    return True


# -- rollups --------------------------------------------------------------------------


def _trace(trace_id: str, group: _Group) -> Trace:
    spans = list(group.spans.values())
    ids = group.spans.keys()
    tops = [s for s in spans if s.parent_id is None or s.parent_id not in ids]
    roots = [s for s in tops if s.parent_id is None]
    root = min(roots or tops or spans, key=lambda s: s.start_time_ns)
    if roots:
        start, end = root.start_time_ns, root.end_time_ns
    else:
        # Only part of the trace: cover what came; the request with the root sets the rest.
        start = min(s.start_time_ns for s in spans)
        ends = [s.end_time_ns for s in spans if s.end_time_ns is not None]
        end = max(ends) if ends else None
    input_tokens, output_tokens, total_tokens, cost = _usage_totals(spans)
    info = TraceInfo(
        trace_id=trace_id,
        experiment_id=group.experiment_id,
        timestamp_ms=start // 1_000_000,
        execution_time_ms=None if end is None else max(0, end - start) // 1_000_000,
        status=TraceStatus.ERROR if root.status_code == SpanStatusCode.ERROR else TraceStatus.OK,
        name=root.name,
        request_preview=_preview(root.inputs_json),
        response_preview=_preview(root.outputs_json),
        tags=group.tags,
        metadata=group.metadata,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total_tokens,
        cost=cost,
        span_count=len(spans),
    )
    return Trace(info, spans)


def _preview(text: str | None) -> str | None:
    return None if text is None else text[:PREVIEW_CHARS]


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not (math.isfinite(value) and 0 <= value <= _MAX_TOKENS):
        return None
    return int(value)


def _usage_totals(
    spans: list[Span],
) -> tuple[int | None, int | None, int | None, float | None]:
    """Sum the spans' GenAI token counts and costs as the SDK does (`tracing._rollup`)."""
    found = False
    inputs = outputs = total = 0
    cost: float | None = None
    for span in spans:
        attrs = span.attributes
        c = attrs.get(COST)
        if isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c):
            cost = (cost or 0.0) + float(c)
        i, o, t = attrs.get(INPUT_TOKENS), attrs.get(OUTPUT_TOKENS), attrs.get(TOTAL_TOKENS)
        if i is None and o is None and t is None:
            continue  # most spans are not model calls
        i, o, t = _count(i), _count(o), _count(t)
        if i is None and o is None and t is None:
            continue
        found = True
        inputs += i or 0
        outputs += o or 0
        total += t if t is not None else (i or 0) + (o or 0)
    if not found:
        return None, None, None, cost
    return inputs, outputs, total, cost
