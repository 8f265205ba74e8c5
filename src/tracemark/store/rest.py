"""The REST store: the Store protocol spoken to a tracemark server over HTTP.

One keep-alive httpx client per store; large bodies are gzip-compressed; connection
failures, 429 and 5xx answers are retried with exponential back-off and jitter; error
answers become the same exceptions the SQL store raises.
"""

from __future__ import annotations

import base64
import gzip
import math
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import orjson

from tracemark import exceptions as exc
from tracemark.entities import Experiment, FileInfo, Metric, Param, Run, RunTag
from tracemark.entities.trace import Assessment, Attachment, Span, Trace, TraceInfo
from tracemark.store.base import ViewType
from tracemark.store.rest_datasets import RestDatasetsMixin
from tracemark.store.rest_registry import RestRegistryMixin
from tracemark.store.rest_scorers import RestScorersMixin

TOKEN_ENV = "TRACEMARK_TRACKING_TOKEN"
_GZIP_ABOVE = 16 * 1024
_RETRY_STATUS = {429, 502, 503, 504}

_ERRORS: dict[str, type[exc.TracemarkError]] = {
    "INVALID_PARAMETER_VALUE": exc.InvalidInputError,
    "INVALID_SCHEMA": exc.InvalidInputError,
    "INVALID_FILTER": exc.InvalidFilterError,
    "INVALID_ARTIFACT_PATH": exc.InvalidArtifactPathError,
    "RESOURCE_DOES_NOT_EXIST": exc.NotFoundError,
    "RESOURCE_ALREADY_EXISTS": exc.AlreadyExistsError,
    "CONFLICT": exc.ConflictError,
    "UNAUTHENTICATED": exc.UnauthorizedError,
    "SCHEMA_VERSION_MISMATCH": exc.SchemaVersionError,
}


def _q(part: str) -> str:
    return quote(part, safe="")


def _experiment(data: dict[str, Any]) -> Experiment:
    return Experiment(**data)


def _run(data: dict[str, Any]) -> Run:
    data["metrics"] = {k: float(v) for k, v in data["metrics"].items()}
    return Run(**data)


def _wire_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _fragment(raw: str | None) -> Any:
    return None if raw is None else orjson.Fragment(raw)


def _trace_wire(trace: Trace) -> dict[str, Any]:
    """The ingest form of a trace; span payloads are spliced in as already-encoded JSON."""
    spans = []
    for span in trace.spans:
        spans.append(
            {
                "trace_id": span.trace_id,
                "span_id": span.span_id,
                "parent_id": span.parent_id,
                "name": span.name,
                "span_type": span.span_type,
                "start_time_ns": span.start_time_ns,
                "end_time_ns": span.end_time_ns,
                "status_code": span.status_code,
                "status_message": span.status_message,
                "inputs": _fragment(span.inputs_json),
                "outputs": _fragment(span.outputs_json),
                "attributes": span.attributes,
                "events": [e.to_dict() for e in span.events],
            }
        )
    wire: dict[str, Any] = {"info": trace.info.to_dict(), "spans": spans}
    if trace.attachments:
        wire["attachments"] = [
            {
                "sha256": a.sha256,
                "media_type": a.media_type,
                "data": base64.b64encode(a.data).decode("ascii"),
            }
            for a in trace.attachments
        ]
    return wire


class RestStore(RestRegistryMixin, RestDatasetsMixin, RestScorersMixin):
    """Talk to a tracemark server at `uri` (http://host:port)."""

    def __init__(
        self,
        uri: str,
        artifact_root: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
    ) -> None:
        import httpx

        self.uri = uri.rstrip("/")
        self.artifact_root = artifact_root or ""
        self.max_retries = max_retries
        token = token or os.environ.get(TOKEN_ENV)
        headers = {"accept": "application/json", "accept-encoding": "gzip"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.uri, headers=headers, timeout=timeout, follow_redirects=False
        )
        self._transport_errors: tuple[type[BaseException], ...] = (httpx.TransportError,)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- transport ------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Any = None,
        raw: bool = False,
        json_body: bool = False,
    ) -> Any:
        """Send one request, retrying transient failures; return decoded JSON (or bytes)."""
        headers = {}
        if json is not None:
            content = orjson.dumps(json)
            json_body = True
        if json_body:
            headers["content-type"] = "application/json"
        if content is not None and len(content) > _GZIP_ABOVE:
            content = gzip.compress(content, compresslevel=5)
            headers["content-encoding"] = "gzip"
        return self._answer(self._send(method, path, content, params, headers), raw)

    def _send(
        self, method: str, path: str, content: bytes | None, params: Any, headers: dict[str, str]
    ) -> Any:
        """Send one request, retrying transient failures; return the last response."""
        delay = 0.2
        for attempt in range(self.max_retries + 1):
            try:
                response = self._http.request(
                    method, path, content=content, params=params, headers=headers
                )
            except self._transport_errors as error:
                if attempt == self.max_retries:
                    raise exc.StoreUnavailableError(
                        f"cannot reach the tracemark server at {self.uri}: {error}"
                    ) from error
            else:
                if response.status_code not in _RETRY_STATUS or attempt == self.max_retries:
                    return response
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")

    def _answer(self, response: Any, raw: bool) -> Any:
        if response.status_code < 400:
            return response.content if raw else response.json()
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:500]}
        code = body.get("error_code", "")
        message = body.get("message") or f"HTTP {response.status_code}"
        error_class = _ERRORS.get(code)
        if response.status_code in _RETRY_STATUS:
            error = exc.StoreUnavailableError(f"server answered {response.status_code}: {message}")
        elif error_class is None:
            error = exc.StoreError(f"server answered {response.status_code}: {message}")
        elif issubclass(error_class, exc.InvalidFilterError):
            error = exc.InvalidFilterError(
                message,
                position=int(body.get("position") or 0),
                field=body.get("field") or "filter_string",
            )
        elif issubclass(error_class, exc.InvalidInputError):
            error = error_class(message, field=body.get("field"))
        else:
            error = error_class(message)
        raise error

    # -- experiments ----------------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        """Create an experiment on the server."""
        body = {"name": name, "artifact_location": artifact_location, "tags": tags or {}}
        return self.request("POST", "/api/v1/experiments", json=body)["experiment_id"]

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Fetch an experiment by id."""
        return _experiment(self.request("GET", f"/api/v1/experiments/{_q(experiment_id)}"))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Fetch an experiment by name, or None."""
        data = self.request("GET", "/api/v1/experiments/by-name", params={"name": name})
        return None if data["experiment"] is None else _experiment(data["experiment"])

    def search_experiments(
        self,
        view_type: str = ViewType.ACTIVE_ONLY,
        filter_string: str | None = None,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
    ) -> list[Experiment]:
        """Search experiments on the server."""
        params: dict[str, Any] = {"view_type": view_type, "max_results": max_results}
        if filter_string:
            params["filter"] = filter_string
        if order_by:
            params["order_by"] = list(order_by)
        data = self.request("GET", "/api/v1/experiments", params=params)
        return [_experiment(e) for e in data["experiments"]]

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        self.request("PATCH", f"/api/v1/experiments/{_q(experiment_id)}", json={"name": new_name})

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment."""
        self.request("DELETE", f"/api/v1/experiments/{_q(experiment_id)}")

    def restore_experiment(self, experiment_id: str) -> None:
        """Restore an experiment."""
        self.request("POST", f"/api/v1/experiments/{_q(experiment_id)}/restore")

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set an experiment tag."""
        path = f"/api/v1/experiments/{_q(experiment_id)}/tags/{_q(key)}"
        self.request("PUT", path, json={"value": value})

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Delete an experiment tag."""
        self.request("DELETE", f"/api/v1/experiments/{_q(experiment_id)}/tags/{_q(key)}")

    # -- runs -----------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        run_name: str | None,
        start_time: int,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        """Create a run."""
        body = {
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": start_time,
            "tags": tags or {},
            "parent_run_id": parent_run_id,
        }
        return _run(self.request("POST", "/api/v1/runs", json=body))

    def get_run(self, run_id: str) -> Run:
        """Fetch a run."""
        return _run(self.request("GET", f"/api/v1/runs/{_q(run_id)}"))

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> Run:
        """Update a run's status, end time or name."""
        body = {"status": status, "end_time": end_time, "run_name": run_name}
        return _run(self.request("PATCH", f"/api/v1/runs/{_q(run_id)}", json=body))

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run."""
        self.request("DELETE", f"/api/v1/runs/{_q(run_id)}")

    def restore_run(self, run_id: str) -> None:
        """Restore a run."""
        self.request("POST", f"/api/v1/runs/{_q(run_id)}/restore")

    def log_metric(self, run_id: str, metric: Metric) -> None:
        """Log one metric."""
        self.log_batch(run_id, metrics=(metric,))

    def log_param(self, run_id: str, param: Param) -> None:
        """Log one param."""
        self.log_batch(run_id, params=(param,))

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        """Set one tag."""
        self.log_batch(run_id, tags=(tag,))

    def delete_tag(self, run_id: str, key: str) -> None:
        """Delete a run tag."""
        self.request("DELETE", f"/api/v1/runs/{_q(run_id)}/tags/{_q(key)}")

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Log metrics, params and tags in one request (one transaction on the server)."""
        from tracemark.store import validation

        # Validate here too, so a bad value fails the same way as with a local store.
        validation.run_id(run_id)
        for m in metrics:
            validation.metric_row(run_id, m)
        validation.param_rows(run_id, params)
        for tag in tags:
            validation.tag_row(run_id, tag)
        body = {
            "metrics": [{**m.to_dict(), "value": _wire_float(float(m.value))} for m in metrics],
            "params": [{"key": p.key, "value": p.value} for p in params],
            "tags": [{"key": t.key, "value": t.value} for t in tags],
        }
        self.request("POST", f"/api/v1/runs/{_q(run_id)}/batch", json=body)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Fetch a metric's full history."""
        data = self.request("GET", f"/api/v1/runs/{_q(run_id)}/metric-history", params={"key": key})
        return [
            Metric(m["key"], float(m["value"]), m["timestamp"], m["step"]) for m in data["metrics"]
        ]

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Run], str | None]:
        """Search runs on the server."""
        body = {
            "experiment_ids": list(experiment_ids),
            "filter": filter_string,
            "view_type": view_type,
            "max_results": max_results,
            "order_by": list(order_by or []),
            "page_token": page_token,
        }
        data = self.request("POST", "/api/v1/runs/search", json=body)
        return [_run(r) for r in data["runs"]], data["next_page_token"]

    # -- traces ---------------------------------------------------------------------

    def log_traces(self, traces: Sequence[Trace]) -> None:
        """Send finished traces in one request; the server stores them in one transaction."""
        body = orjson.dumps({"traces": [_trace_wire(t) for t in traces]})
        self.request("POST", "/api/v1/traces", content=body, json_body=True)

    def get_trace(self, trace_id: str, *, include_payloads: bool = True) -> Trace:
        """Fetch one trace with its spans; see `SqlStore.get_trace` for `include_payloads`."""
        params = None if include_payloads else {"payloads": "false"}
        raw = self.request("GET", f"/api/v1/traces/{_q(trace_id)}", params=params, raw=True)
        data = orjson.loads(raw)
        info = TraceInfo.from_dict(data["info"])
        trace = Trace(info, [Span.from_dict(s) for s in data["spans"]])
        # Notebooks show the server's own view of the trace.
        trace.ui_url = f"{self.uri}/experiments/{_q(info.experiment_id)}/traces/{_q(trace_id)}"
        return trace

    def get_span(self, trace_id: str, span_id: str) -> Span:
        """Fetch one span of a trace with its inputs and outputs."""
        path = f"/api/v1/traces/{_q(trace_id)}/spans/{_q(span_id)}"
        return Span.from_dict(orjson.loads(self.request("GET", path, raw=True)))

    def get_trace_attachment(self, trace_id: str, sha256: str) -> Attachment:
        """Fetch an attachment of a trace (media a span refers to) with its media type."""
        path = f"/api/v1/traces/{_q(trace_id)}/attachments/{_q(sha256)}"
        response = self._send("GET", path, None, None, {})
        data = self._answer(response, True)
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        return Attachment(sha256, media_type or "application/octet-stream", data)

    def search_traces(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        run_id: str | None = None,
    ) -> tuple[list[TraceInfo], str | None]:
        """Search traces on the server."""
        body = {
            "experiment_ids": list(experiment_ids),
            "filter": filter_string,
            "order_by": list(order_by or []),
            "max_results": max_results,
            "page_token": page_token,
            "run_id": run_id,
        }
        data = self.request("POST", "/api/v1/traces/search", json=body)
        return [TraceInfo.from_dict(t) for t in data["traces"]], data["next_page_token"]

    def delete_traces(
        self,
        experiment_id: str,
        max_timestamp_ms: int | None = None,
        trace_ids: Sequence[str] | None = None,
    ) -> int:
        """Delete traces on the server; return how many went."""
        body = {
            "experiment_id": experiment_id,
            "max_timestamp_ms": max_timestamp_ms,
            "trace_ids": None if trace_ids is None else list(trace_ids),
        }
        return self.request("POST", "/api/v1/traces/delete", json=body)["deleted"]

    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        """Set a trace tag."""
        path = f"/api/v1/traces/{_q(trace_id)}/tags/{_q(key)}"
        self.request("PUT", path, json={"value": value})

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        """Delete a trace tag."""
        self.request("DELETE", f"/api/v1/traces/{_q(trace_id)}/tags/{_q(key)}")

    def create_assessment(self, assessment: Assessment) -> Assessment:
        """Attach an assessment; the server assigns its id and times."""
        body = {
            "name": assessment.name,
            "kind": assessment.kind,
            "value": assessment.value,
            "rationale": assessment.rationale,
            "source_type": assessment.source.source_type,
            "source_id": assessment.source.source_id,
            "span_id": assessment.span_id,
            "error": assessment.error,
            "metadata": assessment.metadata,
            "run_id": assessment.run_id,
            "overrides": assessment.overrides,
        }
        path = f"/api/v1/traces/{_q(assessment.trace_id)}/assessments"
        return Assessment.from_dict(self.request("POST", path, json=body))

    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment:
        """Fetch one assessment."""
        path = f"/api/v1/traces/{_q(trace_id)}/assessments/{_q(assessment_id)}"
        return Assessment.from_dict(self.request("GET", path))

    def update_assessment(self, trace_id: str, assessment_id: str, **changes: Any) -> Assessment:
        """Change an assessment (name, value, rationale, metadata)."""
        path = f"/api/v1/traces/{_q(trace_id)}/assessments/{_q(assessment_id)}"
        body = {k: v for k, v in changes.items() if v is not None or k == "value"}
        return Assessment.from_dict(self.request("PATCH", path, json=body))

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        """Delete an assessment."""
        path = f"/api/v1/traces/{_q(trace_id)}/assessments/{_q(assessment_id)}"
        self.request("DELETE", path)

    def artifact_repository(self, run: Run) -> RestArtifactRepository:
        """Return a repository that reads and writes the run's artifacts through the server."""
        return RestArtifactRepository(self, run.run_id)


class RestArtifactRepository:
    """A run's artifacts, proxied by the server."""

    def __init__(self, store: RestStore, run_id: str) -> None:
        self._store = store
        self._base = f"/api/v1/runs/{_q(run_id)}/artifacts"

    def _path(self, artifact_file: str) -> str:
        # Slashes are escaped too, so no '..' segment is normalised away on the way.
        return f"{self._base}/{quote(artifact_file, safe='')}"

    def write_bytes(self, artifact_file: str, data: bytes) -> None:
        """Upload one file."""
        self._store.request("PUT", self._path(artifact_file), content=data)

    def read_bytes(self, artifact_file: str) -> bytes:
        """Download one file."""
        return self._store.request("GET", self._path(artifact_file), raw=True)

    def exists(self, artifact_file: str) -> bool:
        """Tell whether the file exists."""
        try:
            self.read_bytes(artifact_file)
        except exc.NotFoundError:
            return False
        return True

    def log_artifact(self, local_file: str | os.PathLike[str], artifact_path: str | None) -> None:
        """Upload a local file into folder `artifact_path`."""
        source = Path(local_file)
        if not source.is_file():
            raise exc.NotFoundError(f"local file {str(local_file)!r} does not exist")
        dest = f"{artifact_path.rstrip('/')}/{source.name}" if artifact_path else source.name
        self.write_bytes(dest, source.read_bytes())

    def log_artifacts(self, local_dir: str | os.PathLike[str], artifact_path: str | None) -> None:
        """Upload a local folder's files."""
        source = Path(local_dir)
        if not source.is_dir():
            raise exc.NotFoundError(f"local directory {str(local_dir)!r} does not exist")
        base = (artifact_path or "").rstrip("/")
        for path in sorted(source.rglob("*")):
            if path.is_file():
                rel = path.relative_to(source).as_posix()
                self.write_bytes(f"{base}/{rel}" if base else rel, path.read_bytes())

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """List a folder."""
        data = self._store.request("GET", self._base, params={"path": path or ""})
        return [FileInfo(**f) for f in data["files"]]

    def download_artifacts(self, path: str | None, dst_path: str | os.PathLike[str]) -> str:
        """Download a file or folder (recursively) into `dst_path`."""
        dst = Path(dst_path)
        dst.mkdir(parents=True, exist_ok=True)
        entries = self.list_artifacts(path)
        single = len(entries) == 1 and not entries[0].is_dir and entries[0].path == (path or "")
        if single:
            out = dst / PurePosixPath(path or "").name
            out.write_bytes(self.read_bytes(path or ""))
            return str(out)
        if not entries and path:
            raise exc.NotFoundError(f"artifact {path!r} does not exist")
        out = dst / (PurePosixPath(path).name if path else "artifacts")
        self._download_folder(path or "", out)
        return str(out)

    def _download_folder(self, path: str, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        prefix = f"{path.rstrip('/')}/" if path else ""
        for entry in self.list_artifacts(path or None):
            name = entry.path[len(prefix) :] if entry.path.startswith(prefix) else entry.path
            if entry.is_dir:
                self._download_folder(entry.path, out / name)
            else:
                (out / name).write_bytes(self.read_bytes(entry.path))
