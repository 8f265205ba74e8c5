"""TrackingClient: every tracking operation with explicit ids, for scripts and threads."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tracemark import config
from tracemark.entities import Experiment, FileInfo, Metric, Param, Run, RunStatus, RunTag
from tracemark.exceptions import InvalidInputError, NotFoundError
from tracemark.store.base import ViewType
from tracemark.tracking import formats

if TYPE_CHECKING:
    from tracemark.store.artifacts import ArtifactRepository
    from tracemark.store.base import Store


def now_ms() -> int:
    """Return the current time in integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class TrackingClient:
    """Experiments, runs and artifacts addressed by explicit ids.

    Example:
        client = TracemarkClient("sqlite:///tracemark.db")
        run = client.create_run(client.create_experiment("qa"))
        client.log_metric(run.run_id, "accuracy", 0.9)
        client.set_terminated(run.run_id)

    Args:
        tracking_uri: where to store data; defaults to the URI of `tm.set_tracking_uri`,
            then `TRACEMARK_TRACKING_URI`, then `sqlite:///tracemark.db`.
    """

    def __init__(self, tracking_uri: str | None = None) -> None:
        if tracking_uri is None:
            from tracemark.tracking.fluent import DEFAULT_TRACKER

            tracking_uri = DEFAULT_TRACKER.get_tracking_uri()
        self.tracking_uri = tracking_uri
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The backing store, opened (and migrated if new) on first use."""
        if self._store is None:
            from tracemark.store.registry import get_store

            self._store = get_store(self.tracking_uri, config.ARTIFACT_ROOT.get())
        return self._store

    # -- experiments ----------------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> str:
        """Create an experiment and return its id."""
        return self.store.create_experiment(name, artifact_location, dict(tags or {}))

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return an experiment by id."""
        return self.store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return an experiment by name, or None."""
        return self.store.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> list[Experiment]:
        """Return experiments, optionally filtered (``name LIKE 'qa%'``, ``tags.team = 'x'``)."""
        return self.store.search_experiments(view_type, filter_string, max_results, order_by)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        self.store.rename_experiment(str(experiment_id), new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment and its runs; `restore_experiment` brings them back."""
        self.store.delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        """Restore a deleted experiment."""
        self.store.restore_experiment(str(experiment_id))

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set a tag on an experiment."""
        self.store.set_experiment_tag(str(experiment_id), key, str(value))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Delete a tag from an experiment."""
        self.store.delete_experiment_tag(str(experiment_id), key)

    # -- runs -----------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        run_name: str | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        """Create a RUNNING run; end it with `set_terminated`."""
        return self.store.create_run(
            str(experiment_id),
            run_name,
            start_time if start_time is not None else now_ms(),
            {k: str(v) for k, v in (tags or {}).items()},
            parent_run_id,
        )

    def get_run(self, run_id: str) -> Run:
        """Return a run with its params, tags and latest metric values."""
        return self.store.get_run(run_id)

    def set_terminated(
        self, run_id: str, status: str = RunStatus.FINISHED, end_time: int | None = None
    ) -> Run:
        """End a run with a terminal status (FINISHED, FAILED or KILLED)."""
        if status not in RunStatus.TERMINAL:
            raise InvalidInputError(
                f"a run ends as one of {', '.join(RunStatus.TERMINAL)}, not {status!r}",
                field="status",
            )
        return self.store.update_run(
            run_id, status=status, end_time=end_time if end_time is not None else now_ms()
        )

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> Run:
        """Change a run's status or name."""
        return self.store.update_run(run_id, status=status, run_name=name)

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run."""
        self.store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        """Restore a deleted run."""
        self.store.restore_run(run_id)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
    ) -> None:
        """Append a metric value; the full history is kept."""
        self.store.log_metric(
            run_id, Metric(key, value, timestamp if timestamp is not None else now_ms(), step or 0)
        )

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Log a write-once param (stored as a string)."""
        self.store.log_param(run_id, Param(key, _param_str(value)))

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        """Set a tag on a run."""
        self.store.set_tag(run_id, RunTag(key, str(value)))

    def delete_tag(self, run_id: str, key: str) -> None:
        """Delete a tag from a run."""
        self.store.delete_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Log many metrics, params and tags in one transaction (all or nothing)."""
        self.store.log_batch(run_id, list(metrics), list(params), list(tags))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Return every logged value of a metric, by step then time."""
        return self.store.get_metric_history(run_id, key)

    def search_runs(
        self,
        experiment_ids: str | Sequence[str],
        filter_string: str | None = None,
        run_view_type: str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Run], str | None]:
        """Return one page of matching runs and the next page's token (None when last)."""
        ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
        return self.store.search_runs(
            [str(i) for i in ids], filter_string, run_view_type, max_results, order_by, page_token
        )

    # -- artifacts ------------------------------------------------------------------

    def artifact_repository(self, run_id: str) -> ArtifactRepository:
        """Return the artifact repository of a run (local files, or proxied by a server)."""
        return self.store.artifact_repository(self.get_run(run_id))

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Copy a local file into the run's artifacts (under folder `artifact_path`)."""
        self.artifact_repository(run_id).log_artifact(local_path, artifact_path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Copy a local folder's files into the run's artifacts."""
        self.artifact_repository(run_id).log_artifacts(local_dir, artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Save a string as a text artifact."""
        self.artifact_repository(run_id).write_bytes(artifact_file, text.encode("utf-8"))

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Save a dict as JSON, or YAML when the file ends in .yaml or .yml."""
        data = formats.encode_dict(dictionary, artifact_file)
        self.artifact_repository(run_id).write_bytes(artifact_file, data)

    def log_image(self, run_id: str, image: Any, artifact_file: str) -> None:
        """Save a PIL image or a numpy array (HxW, HxWx3, HxWx4) as an image file."""
        data = formats.encode_image(image, artifact_file)
        self.artifact_repository(run_id).write_bytes(artifact_file, data)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """List the artifacts in a folder of the run (the root by default)."""
        return self.artifact_repository(run_id).list_artifacts(path)

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        """Copy an artifact file or folder to a local folder and return its local path."""
        dst = dst_path if dst_path is not None else tempfile.mkdtemp(prefix="tracemark-")
        return self.artifact_repository(run_id).download_artifacts(path, dst)

    def load_text(self, run_id: str, artifact_file: str) -> str:
        """Read a text artifact."""
        return self.artifact_repository(run_id).read_bytes(artifact_file).decode("utf-8")

    def load_dict(self, run_id: str, artifact_file: str) -> Any:
        """Read a JSON or YAML artifact."""
        raw = self.artifact_repository(run_id).read_bytes(artifact_file)
        return formats.decode_dict(raw, artifact_file)

    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """Save a table (dict of columns or DataFrame) as JSON; rows append to an existing one."""
        repo = self.artifact_repository(run_id)
        new = formats.normalize_table(data)
        if repo.exists(artifact_file):
            new = formats.append_table(formats.decode_table(repo.read_bytes(artifact_file)), new)
        repo.write_bytes(artifact_file, formats.encode_table(new))

    def load_table(
        self,
        artifact_file: str,
        run_ids: Sequence[str] | None = None,
        extra_columns: Sequence[str] | None = None,
        experiment_ids: Sequence[str] | None = None,
    ) -> Any:
        """Read a table logged by several runs back as one table (pandas if installed).

        Args:
            artifact_file: the table's artifact path, as given to `log_table`.
            run_ids: the runs to read; by default every active run of `experiment_ids`
                that logged this table.
            extra_columns: run attributes to add as columns, such as ``["run_id"]``.
            experiment_ids: where to look when `run_ids` is not given.
        """
        if run_ids is None:
            runs, token = self.search_runs(experiment_ids or ["0"], max_results=50_000)
            run_ids = [r.run_id for r in runs]
            explicit = False
        else:
            explicit = True
        rows: list[dict[str, Any]] = []
        columns: list[str] = []
        found = False
        for run_id in run_ids:
            run = self.get_run(run_id)
            repo = self.artifact_repository(run_id)
            if not repo.exists(artifact_file):
                if explicit:
                    raise NotFoundError(f"run {run_id!r} has no table {artifact_file!r}")
                continue
            found = True
            table = formats.decode_table(repo.read_bytes(artifact_file))
            extras = formats.run_columns(run, extra_columns or ())
            for col in [*table["columns"], *extras]:
                if col not in columns:
                    columns.append(col)
            for values in table["data"]:
                rows.append({**dict(zip(table["columns"], values, strict=False)), **extras})
        if not found:
            raise NotFoundError(f"no run logged a table named {artifact_file!r}")
        return formats.as_frame(rows, columns)


def _param_str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)
