"""TracemarkClient: the lower-level API with explicit ids, for scripts, threads and callbacks."""

from __future__ import annotations

from tracemark.evaluation.datasets import DatasetsClient
from tracemark.evaluation.production import ScorersClient
from tracemark.registry.client import RegistryClient
from tracemark.tracing.client import TracingClient
from tracemark.tracking.client import TrackingClient


class TracemarkClient(TrackingClient, TracingClient, RegistryClient, DatasetsClient, ScorersClient):
    """Every tracemark operation, addressed by explicit experiment, run and trace ids.

    Example:
        client = TracemarkClient()
        run = client.create_run(experiment_id="0", run_name="baseline")
        client.log_metric(run.run_id, "accuracy", 0.91, step=1)
        client.set_terminated(run.run_id)
    """
