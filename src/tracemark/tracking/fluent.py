"""The fluent tracking API: an active experiment and a stack of active runs.

`Tracker` holds that state; `tracemark.set_experiment`, `tracemark.start_run`,
`tracemark.log_metric` and friends are the methods of `DEFAULT_TRACKER`, bound once.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tracemark import config
from tracemark.entities import (
    Experiment,
    FileInfo,
    Metric,
    PagedList,
    Param,
    Run,
    RunStatus,
    RunTag,
)
from tracemark.exceptions import AlreadyExistsError, InvalidInputError, TracemarkError
from tracemark.store.base import ViewType
from tracemark.tracking.client import now_ms

if TYPE_CHECKING:
    from tracemark.client import TracemarkClient
    from tracemark.store.base import Store

DEFAULT_EXPERIMENT_ID = "0"
_DESCRIPTION_TAG = "tracemark.note.content"
_PARENT_TAG = "tracemark.parentRunId"


class ActiveRun:
    """A started run; use it as a context manager to end it (FAILED on an exception).

    Attribute access falls through to the `Run` as it was when started
    (`run_id`, `experiment_id`, `run_name`, ...).
    """

    def __init__(self, run: Run, tracker: Tracker) -> None:
        self.run = run
        self._tracker = tracker

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.run.run_id

    @property
    def experiment_id(self) -> str:
        """The id of the run's experiment."""
        return self.run.experiment_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self.run, name)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        self._tracker._end(self.run_id, status)

    def __repr__(self) -> str:
        return f"<ActiveRun run_id={self.run_id!r} name={self.run.run_name!r}>"


class Tracker:
    """Fluent tracking state: tracking URI, active experiment, active runs."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tracking_uri: str | None = None
        self._client: TracemarkClient | None = None
        self._experiment_id: str | None = None
        # Runs started in this context; a context that never started one (a fresh thread)
        # sees the process-wide stack instead, so worker threads log to the caller's run.
        self._stack: ContextVar[tuple[ActiveRun, ...] | None] = ContextVar(
            "tracemark_active_runs", default=None
        )
        self._global_stack: list[ActiveRun] = []
        atexit.register(self._end_all_at_exit)

    # -- configuration --------------------------------------------------------------

    def set_tracking_uri(self, uri: str | os.PathLike[str]) -> None:
        """Send everything that follows to this store (sqlite:///..., postgresql://...).

        Example:
            tm.set_tracking_uri("sqlite:///experiments.db")

        Args:
            uri: a database URI, or a plain path, which means a SQLite file.
        """
        uri = os.fspath(uri)
        if "://" not in uri:
            uri = f"sqlite:///{os.path.abspath(uri)}"
        with self._lock:
            self._tracking_uri = uri
            self._client = None
            self._experiment_id = None

    def get_tracking_uri(self) -> str:
        """Return the tracking URI in effect (argument, then env, then the default)."""
        return config.TRACKING_URI.get(self._tracking_uri)

    @property
    def client(self) -> TracemarkClient:
        """The client for the current tracking URI."""
        client = self._client
        if client is None:
            from tracemark.client import TracemarkClient

            with self._lock:
                if self._client is None:
                    self._client = TracemarkClient(self.get_tracking_uri())
                client = self._client
        return client

    def get_store(self) -> Store:
        """Return the store for the current tracking URI."""
        return self.client.store

    # -- experiments ----------------------------------------------------------------

    def set_experiment(
        self, experiment_name: str | None = None, experiment_id: str | None = None
    ) -> Experiment:
        """Make an experiment active for the runs and traces that follow, creating it if new.

        Example:
            tm.set_experiment("support-agent")

        Args:
            experiment_name: the experiment's name; created when it does not exist.
            experiment_id: alternatively, the id of an existing experiment.
        """
        if (experiment_name is None) == (experiment_id is None):
            raise InvalidInputError("give exactly one of experiment_name and experiment_id")
        client = self.client
        if experiment_id is not None:
            experiment = client.get_experiment(str(experiment_id))
        else:
            assert experiment_name is not None
            experiment = client.get_experiment_by_name(experiment_name)
            if experiment is None:
                # Another process may create it first; then we use theirs.
                with contextlib.suppress(AlreadyExistsError):
                    client.create_experiment(experiment_name)
                experiment = client.get_experiment_by_name(experiment_name)
                assert experiment is not None
        if experiment.lifecycle_stage != "active":
            raise InvalidInputError(
                f"experiment {experiment.name!r} is deleted; restore it with "
                f"tm.restore_experiment({experiment.experiment_id!r})",
                field="experiment",
            )
        self._experiment_id = experiment.experiment_id
        return experiment

    def current_experiment_id(self) -> str:
        """Return the active experiment's id: set_experiment, then env, then the default."""
        if self._experiment_id is not None:
            return self._experiment_id
        run = self.active_run()
        if run is not None:
            return run.experiment_id
        return self._experiment_for_new_run()

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        """Create an experiment and return its id.

        Example:
            experiment_id = tm.create_experiment("rag-eval", tags={"team": "search"})
        """
        return self.client.create_experiment(name, artifact_location, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return an experiment by id."""
        return self.client.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return an experiment by name, or None."""
        return self.client.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> list[Experiment]:
        """Return experiments, optionally filtered: ``tm.search_experiments(filter_string="name LIKE 'qa%'")``."""  # noqa: E501
        return self.client.search_experiments(view_type, max_results, filter_string, order_by)

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment and its runs."""
        self.client.delete_experiment(experiment_id)
        if self._experiment_id == str(experiment_id):
            self._experiment_id = None

    def restore_experiment(self, experiment_id: str) -> None:
        """Restore a soft-deleted experiment."""
        self.client.restore_experiment(experiment_id)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        self.client.rename_experiment(experiment_id, new_name)

    def set_experiment_tag(self, key: str, value: Any) -> None:
        """Set a tag on the active experiment."""
        self.client.set_experiment_tag(self.current_experiment_id(), key, value)

    def set_experiment_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags on the active experiment."""
        for key, value in tags.items():
            self.set_experiment_tag(key, value)

    # -- runs -----------------------------------------------------------------------

    def _current_stack(self) -> tuple[ActiveRun, ...]:
        stack = self._stack.get()
        if stack is None:
            with self._lock:
                return tuple(self._global_stack)
        return stack

    def active_run(self) -> ActiveRun | None:
        """Return the innermost active run of this context, or None."""
        stack = self._current_stack()
        return stack[-1] if stack else None

    def start_run(
        self,
        run_id: str | None = None,
        experiment_id: str | None = None,
        run_name: str | None = None,
        nested: bool = False,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
        parent_run_id: str | None = None,
    ) -> ActiveRun:
        """Start a run (or resume `run_id`) and make it active; use it in a `with` block.

        Example:
            with tm.start_run(run_name="prompt-v2"):
                tm.log_param("model", "gpt-4o-mini")
                tm.log_metric("accuracy", 0.91)

        Args:
            run_id: resume this existing run instead of creating one.
            experiment_id: the experiment; defaults to the active one.
            run_name: a name; a readable one is generated when omitted.
            nested: allow starting inside another active run (it becomes the parent).
            tags: tags to set on the run.
            description: a free-text note shown with the run.
            parent_run_id: an explicit parent run.
        """
        parent = self.active_run()
        if parent is not None and not nested and parent_run_id is None:
            raise InvalidInputError(
                f"run {parent.run_id!r} is already active; end it with tm.end_run() or start "
                "the new one with nested=True",
                field="nested",
            )
        client = self.client
        if run_id is not None:
            run = client.get_run(run_id)
            if run.status != RunStatus.RUNNING:
                run = client.update_run(run_id, status=RunStatus.RUNNING)
        else:
            if parent_run_id is None and parent is not None:
                parent_run_id = parent.run_id
            run_tags = {k: str(v) for k, v in (tags or {}).items()}
            if description is not None:
                run_tags[_DESCRIPTION_TAG] = description
            if parent_run_id is not None:
                run_tags[_PARENT_TAG] = parent_run_id
            eid = experiment_id if experiment_id is not None else self._experiment_for_new_run()
            run = client.create_run(
                str(eid), tags=run_tags, run_name=run_name, parent_run_id=parent_run_id
            )
        active = ActiveRun(run, self)
        self._stack.set((*self._current_stack(), active))
        with self._lock:
            self._global_stack.append(active)
        return active

    def _experiment_for_new_run(self) -> str:
        if self._experiment_id is not None:
            return self._experiment_id
        name, eid = config.EXPERIMENT_NAME.get(), config.EXPERIMENT_ID.get()
        if eid:
            return self.set_experiment(experiment_id=eid).experiment_id
        if name:
            return self.set_experiment(name).experiment_id
        # Remembered until the tracking URI changes: this runs at every trace's start.
        self._experiment_id = DEFAULT_EXPERIMENT_ID
        return DEFAULT_EXPERIMENT_ID

    def end_run(self, status: str = RunStatus.FINISHED) -> None:
        """End the innermost active run with a terminal status (FINISHED by default)."""
        run = self.active_run()
        if run is not None:
            self._end(run.run_id, status)

    def _end(self, run_id: str, status: str) -> None:
        try:
            self.client.set_terminated(run_id, status)
        finally:
            self._stack.set(tuple(r for r in self._current_stack() if r.run_id != run_id))
            with self._lock:
                self._global_stack[:] = [r for r in self._global_stack if r.run_id != run_id]

    def _end_all_at_exit(self) -> None:
        while self._global_stack:
            run = self._global_stack[-1]
            try:
                self._end(run.run_id, RunStatus.FINISHED)
            except TracemarkError:
                with self._lock:
                    self._global_stack.pop()

    def _run_id(self) -> str:
        """Return the active run's id, starting a run when none is active (as MLflow does)."""
        run = self.active_run()
        if run is None:
            run = self.start_run()
        return run.run_id

    def last_active_run(self) -> Run | None:
        """Return the active run as stored now, or None."""
        run = self.active_run()
        return None if run is None else self.client.get_run(run.run_id)

    def get_run(self, run_id: str) -> Run:
        """Return a run with its params, tags and latest metrics."""
        return self.client.get_run(run_id)

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run."""
        self.client.delete_run(run_id)

    def log_param(self, key: str, value: Any) -> Any:
        """Log a write-once param of the active run and return the value.

        Example:
            tm.log_param("temperature", 0.2)
        """
        self.client.log_param(self._run_id(), key, value)
        return value

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log several params of the active run in one transaction."""
        items = [Param(k, v if isinstance(v, str) else str(v)) for k, v in params.items()]
        self.client.log_batch(self._run_id(), params=items)

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Append a metric value to the active run.

        Example:
            tm.log_metric("accuracy", 0.91, step=3)
        """
        self.client.log_metric(self._run_id(), key, value, timestamp, step)

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Log several metrics of the active run in one transaction."""
        ts = timestamp if timestamp is not None else now_ms()
        items = [Metric(k, v, ts, step or 0) for k, v in metrics.items()]
        self.client.log_batch(self._run_id(), metrics=items)

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag on the active run."""
        self.client.set_tag(self._run_id(), key, value)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags on the active run in one transaction."""
        items = [RunTag(k, str(v)) for k, v in tags.items()]
        self.client.log_batch(self._run_id(), tags=items)

    def delete_tag(self, key: str) -> None:
        """Delete a tag from the active run."""
        self.client.delete_tag(self._run_id(), key)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str | None = None,
        run_view_type: str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        output_format: str = "list",
    ) -> Any:
        """Search runs with MLflow's filter syntax; a list of runs, or a DataFrame.

        Example:
            best = tm.search_runs(filter_string="metrics.accuracy > 0.9 AND params.model = 'x'",
                                  order_by=["metrics.accuracy DESC"], max_results=5)

        Args:
            experiment_ids: where to search; the active experiment by default.
            filter_string: conditions on `metrics.`, `params.`, `tags.` and `attributes.`.
            run_view_type: active_only, deleted_only or all.
            max_results: the page size.
            order_by: clauses such as ``"metrics.accuracy DESC"``.
            page_token: the token of the page to read, from the previous call.
            output_format: "list" (a `PagedList` of runs) or "pandas".
        """
        if output_format not in ("list", "pandas"):
            raise InvalidInputError(
                f"output_format must be 'list' or 'pandas', got {output_format!r}",
                field="output_format",
            )
        ids = list(experiment_ids) if experiment_ids else [self.current_experiment_id()]
        runs, token = self.client.search_runs(
            ids, filter_string, run_view_type, max_results, order_by, page_token
        )
        if output_format == "pandas":
            return runs_to_frame(runs)
        return PagedList(runs, token)

    # -- artifacts ------------------------------------------------------------------

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:  # noqa: E501
        """Copy a local file into the active run's artifacts."""
        self.client.log_artifact(self._run_id(), local_path, artifact_path)

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:  # noqa: E501
        """Copy a local folder into the active run's artifacts."""
        self.client.log_artifacts(self._run_id(), local_dir, artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Save a string as an artifact of the active run."""
        self.client.log_text(self._run_id(), text, artifact_file)

    def log_dict(self, dictionary: Any, artifact_file: str) -> None:
        """Save a dict as JSON (or YAML for .yaml/.yml) in the active run."""
        self.client.log_dict(self._run_id(), dictionary, artifact_file)

    def log_image(self, image: Any, artifact_file: str) -> None:
        """Save a PIL image or numpy array as an image artifact of the active run."""
        self.client.log_image(self._run_id(), image, artifact_file)

    def log_table(self, data: Any, artifact_file: str) -> None:
        """Save a prediction table (dict of columns or DataFrame) in the active run.

        Example:
            tm.log_table({"question": qs, "answer": answers}, artifact_file="predictions.json")
        """
        self.client.log_table(self._run_id(), data, artifact_file)

    def load_table(
        self,
        artifact_file: str,
        run_ids: Sequence[str] | None = None,
        extra_columns: Sequence[str] | None = None,
    ) -> Any:
        """Read a table logged by several runs as one table, to compare them side by side.

        Example:
            df = tm.load_table("predictions.json", extra_columns=["run_id"])
        """
        experiment_ids = None if run_ids is not None else [self.current_experiment_id()]
        return self.client.load_table(artifact_file, run_ids, extra_columns, experiment_ids)

    def list_artifacts(self, path: str | None = None, run_id: str | None = None) -> list[FileInfo]:
        """List the artifacts of a run (the active run by default)."""
        return self.client.list_artifacts(run_id or self._run_id(), path)

    def download_artifacts(
        self,
        artifact_path: str = "",
        run_id: str | None = None,
        dst_path: str | os.PathLike[str] | None = None,
    ) -> str:
        """Copy artifacts of a run to a local folder and return the local path."""
        return self.client.download_artifacts(run_id or self._run_id(), artifact_path, dst_path)

    def load_text(self, artifact_file: str, run_id: str | None = None) -> str:
        """Read a text artifact of a run (the active run by default)."""
        return self.client.load_text(run_id or self._run_id(), artifact_file)

    def load_dict(self, artifact_file: str, run_id: str | None = None) -> Any:
        """Read a JSON or YAML artifact of a run (the active run by default)."""
        return self.client.load_dict(run_id or self._run_id(), artifact_file)


def runs_to_frame(runs: Sequence[Run]) -> Any:
    """Return runs as a pandas DataFrame with metrics.*, params.* and tags.* columns."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise InvalidInputError(
            "output_format='pandas' needs pandas: pip install 'tracemark[pandas]'",
            field="output_format",
        ) from exc
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "run_id": run.run_id,
            "experiment_id": run.experiment_id,
            "run_name": run.run_name,
            "status": run.status,
            "artifact_uri": run.artifact_uri,
            "start_time": pd.to_datetime(run.start_time, unit="ms", utc=True),
            "end_time": None
            if run.end_time is None
            else pd.to_datetime(run.end_time, unit="ms", utc=True),
        }
        row.update({f"metrics.{k}": v for k, v in run.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.params.items()})
        row.update({f"tags.{k}": v for k, v in run.tags.items()})
        rows.append(row)
    return pd.DataFrame(rows)


DEFAULT_TRACKER = Tracker()

set_tracking_uri = DEFAULT_TRACKER.set_tracking_uri
get_tracking_uri = DEFAULT_TRACKER.get_tracking_uri
set_experiment = DEFAULT_TRACKER.set_experiment
create_experiment = DEFAULT_TRACKER.create_experiment
get_experiment = DEFAULT_TRACKER.get_experiment
get_experiment_by_name = DEFAULT_TRACKER.get_experiment_by_name
search_experiments = DEFAULT_TRACKER.search_experiments
delete_experiment = DEFAULT_TRACKER.delete_experiment
restore_experiment = DEFAULT_TRACKER.restore_experiment
rename_experiment = DEFAULT_TRACKER.rename_experiment
set_experiment_tag = DEFAULT_TRACKER.set_experiment_tag
set_experiment_tags = DEFAULT_TRACKER.set_experiment_tags
start_run = DEFAULT_TRACKER.start_run
end_run = DEFAULT_TRACKER.end_run
active_run = DEFAULT_TRACKER.active_run
last_active_run = DEFAULT_TRACKER.last_active_run
get_run = DEFAULT_TRACKER.get_run
delete_run = DEFAULT_TRACKER.delete_run
log_param = DEFAULT_TRACKER.log_param
log_params = DEFAULT_TRACKER.log_params
log_metric = DEFAULT_TRACKER.log_metric
log_metrics = DEFAULT_TRACKER.log_metrics
set_tag = DEFAULT_TRACKER.set_tag
set_tags = DEFAULT_TRACKER.set_tags
delete_tag = DEFAULT_TRACKER.delete_tag
search_runs = DEFAULT_TRACKER.search_runs
log_artifact = DEFAULT_TRACKER.log_artifact
log_artifacts = DEFAULT_TRACKER.log_artifacts
log_text = DEFAULT_TRACKER.log_text
log_dict = DEFAULT_TRACKER.log_dict
log_image = DEFAULT_TRACKER.log_image
log_table = DEFAULT_TRACKER.log_table
load_table = DEFAULT_TRACKER.load_table
list_artifacts = DEFAULT_TRACKER.list_artifacts
download_artifacts = DEFAULT_TRACKER.download_artifacts
load_text = DEFAULT_TRACKER.load_text
load_dict = DEFAULT_TRACKER.load_dict
