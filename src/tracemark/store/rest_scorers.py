"""The registered-scorer half of the REST store: one request per call to the server's routes.

`RestStore` inherits these methods. A worker pointed at a server commits each batch in one
request, and the server applies it in one transaction, as the SQL store does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from tracemark.entities.scorer import RegisteredScorer
from tracemark.entities.trace import Assessment


def _q(part: Any) -> str:
    return quote(str(part), safe="")


def cursor_wire(cursor: tuple[int, str | None] | None) -> dict[str, Any] | None:
    """The JSON form of a scoring cursor."""
    return None if cursor is None else {"timestamp_ms": cursor[0], "trace_id": cursor[1]}


def assessment_wire(a: Assessment) -> dict[str, Any]:
    """The JSON form of an assessment a worker commits."""
    return {
        "trace_id": a.trace_id,
        "name": a.name,
        "value": a.value,
        "rationale": a.rationale,
        "error": a.error,
        "source_type": a.source.source_type,
        "source_id": a.source.source_id,
        "span_id": a.span_id,
        "metadata": a.metadata,
    }


class RestScorersMixin:
    """Registered-scorer methods of `RestStore` (which provides `request`)."""

    request: Callable[..., Any]

    def _scorer_path(self, experiment_id: str, name: str | None = None) -> str:
        path = f"/api/v1/experiments/{_q(experiment_id)}/scorers"
        return path if name is None else f"{path}/{_q(name)}"

    def create_registered_scorer(
        self,
        experiment_id: str,
        name: str,
        spec: dict[str, Any],
        sample_rate: float = 1.0,
        filter_string: str | None = None,
        status: str = "ACTIVE",
    ) -> RegisteredScorer:
        """Register a scorer on the server."""
        body = {
            "name": name,
            "spec": spec,
            "sample_rate": sample_rate,
            "filter_string": filter_string,
            "status": status,
        }
        data = self.request("POST", self._scorer_path(experiment_id), json=body)
        return RegisteredScorer.from_dict(data)

    def get_registered_scorer(self, experiment_id: str, name: str) -> RegisteredScorer:
        """Fetch a registered scorer."""
        return RegisteredScorer.from_dict(
            self.request("GET", self._scorer_path(experiment_id, name))
        )

    def list_registered_scorers(self, experiment_id: str | None = None) -> list[RegisteredScorer]:
        """List the scorers of one experiment, or of all."""
        path = "/api/v1/scorers" if experiment_id is None else self._scorer_path(experiment_id)
        return [RegisteredScorer.from_dict(s) for s in self.request("GET", path)["scorers"]]

    def update_registered_scorer(
        self,
        experiment_id: str,
        name: str,
        *,
        sample_rate: float | None = None,
        filter_string: str | None = None,
        status: str | None = None,
        last_error: str | None = None,
    ) -> RegisteredScorer:
        """Change a registered scorer's settings."""
        changes = {
            "sample_rate": sample_rate,
            "filter_string": filter_string,
            "status": status,
            "last_error": last_error,
        }
        body = {k: v for k, v in changes.items() if v is not None}
        data = self.request("PATCH", self._scorer_path(experiment_id, name), json=body)
        return RegisteredScorer.from_dict(data)

    def delete_registered_scorer(self, experiment_id: str, name: str) -> None:
        """Unregister a scorer."""
        self.request("DELETE", self._scorer_path(experiment_id, name))

    def acquire_scorer_lease(
        self, scorer_id: str, owner: str, lease_ms: int
    ) -> RegisteredScorer | None:
        """Take or renew a scorer's lease; None while another worker holds it."""
        body = {"owner": owner, "lease_ms": lease_ms}
        data = self.request("POST", f"/api/v1/scorers/{_q(scorer_id)}/lease", json=body)
        return None if data["scorer"] is None else RegisteredScorer.from_dict(data["scorer"])

    def release_scorer_lease(self, scorer_id: str, owner: str) -> None:
        """Give a scorer's lease back."""
        path = f"/api/v1/scorers/{_q(scorer_id)}/lease/release"
        self.request("POST", path, json={"owner": owner})

    def commit_scorer_batch(
        self,
        scorer_id: str,
        expected_cursor: tuple[int, str | None] | None,
        new_cursor: tuple[int, str | None],
        assessments: Sequence[Assessment] = (),
    ) -> bool:
        """Move the cursor and store a batch's assessments, if no one else did first."""
        body = {
            "expected_cursor": cursor_wire(expected_cursor),
            "new_cursor": cursor_wire(new_cursor),
            "assessments": [assessment_wire(a) for a in assessments],
        }
        data = self.request("POST", f"/api/v1/scorers/{_q(scorer_id)}/commit", json=body)
        return bool(data["committed"])
