"""Evaluation datasets: named, versioned examples to evaluate an application against.

Every merge that changes something makes a new version, and any version reads back
exactly, so an evaluation can name the data it ran on (name, version, digest).

Example:
    >>> import tracemark as tm
    >>> dataset = tm.datasets.create_dataset("support-qa")
    >>> dataset = dataset.merge_records(
    ...     [{"inputs": {"question": "Refund window?"}, "expectations": {"answer": "30 days"}}]
    ... )
    >>> result = tm.evaluate(data=dataset, predict_fn=agent, scorers=[...])
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tracemark.entities.dataset import Dataset, DatasetRecord
from tracemark.entities.paging import PagedList
from tracemark.entities.trace import Trace, TraceInfo
from tracemark.exceptions import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from tracemark.store.base import Store

__all__ = [
    "Dataset",
    "DatasetRecord",
    "DatasetsClient",
    "EvaluationDataset",
    "create_dataset",
    "delete_dataset",
    "get_dataset",
    "search_datasets",
]

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_FRAME_COLUMNS = ("record_id", "inputs", "expectations", "outputs", "tags", "source_trace_id")


class EvaluationDataset:
    """A dataset as of one version, with its records; pass it to `evaluate(data=...)`.

    Iterating yields one dict per record (``inputs``, ``expectations`` and, when
    recorded, ``outputs``). `merge_records` moves the object to the version it creates.

    Example:
        dataset = tm.datasets.get_dataset("support-qa", version=2)
        print(dataset.version, dataset.digest, len(dataset))
        frame = dataset.to_df()
    """

    def __init__(self, dataset: Dataset, client: Any) -> None:
        self._dataset = dataset
        self._client = client  # provides `store` and `get_trace`
        self._records: list[DatasetRecord] | None = None

    @property
    def dataset(self) -> Dataset:
        """The dataset entity (name, version, digest, tags, times) of this version."""
        return self._dataset

    @property
    def name(self) -> str:
        """The dataset's unique name."""
        return self._dataset.name

    @property
    def dataset_id(self) -> str:
        """The dataset's id."""
        return self._dataset.dataset_id

    @property
    def version(self) -> int:
        """The version these records belong to; 0 before the first merge."""
        return self._dataset.version

    @property
    def digest(self) -> str:
        """The sha256 of this version's content: equal content, equal digest."""
        return self._dataset.digest

    @property
    def experiment_id(self) -> str | None:
        """The experiment the dataset belongs to, if any."""
        return self._dataset.experiment_id

    @property
    def description(self) -> str | None:
        """The dataset's description."""
        return self._dataset.description

    @property
    def tags(self) -> dict[str, str]:
        """The dataset's tags."""
        return self._dataset.tags

    @property
    def records(self) -> list[DatasetRecord]:
        """The records of this version, oldest first (read from the store once)."""
        if self._records is None:
            self._records = (
                []
                if self.version == 0
                else self._client.store.get_dataset_records(self.name, self.version)
            )
        return self._records

    def merge_records(self, records: Any) -> EvaluationDataset:
        """Add records, or update those with the same inputs; return the updated dataset.

        Records with inputs already in the dataset are updated: expectations and tags are
        merged (new values win), outputs replaced when given. A merge that changes nothing
        keeps the version; otherwise the dataset gets the next one. All records are
        written, or none.

        Example:
            dataset = dataset.merge_records(
                [{"inputs": {"question": "Refund window?"}, "expectations": {"answer": "30 days"}}]
            )
            dataset = dataset.merge_records(tm.search_traces(filter_string="tags.review = 'ok'"))

        Args:
            records: a list of dicts (``inputs`` required, plus ``expectations``,
                ``outputs``, ``tags``, ``source_trace_id``), a pandas DataFrame with those
                columns, or traces (`Trace`, `TraceInfo` or trace ids), whose root span
                gives inputs and outputs and whose expectations give the expectations.
        """
        rows = _record_dicts(records, self._client.get_trace)
        self._dataset = self._client.store.merge_dataset_records(self.name, rows)
        self._records = None
        return self

    def to_eval_rows(self) -> list[dict[str, Any]]:
        """Return one dict per record: inputs, expectations, outputs (if any), tags, source."""
        rows = []
        for record in self.records:
            row: dict[str, Any] = {"inputs": record.inputs, "expectations": record.expectations}
            if record.outputs is not None:
                row["outputs"] = record.outputs
            row["tags"] = record.tags
            row["source_trace_id"] = record.source_trace_id
            rows.append(row)
        return rows

    def to_df(self) -> pd.DataFrame:
        """Return the records as a pandas DataFrame, one row per record.

        Its columns are those `merge_records` accepts (plus ``record_id``), so a frame
        can be edited and merged back.
        """
        import pandas as pd

        return pd.DataFrame(
            [[getattr(record, column) for column in _FRAME_COLUMNS] for record in self.records],
            columns=list(_FRAME_COLUMNS),
        )

    def __len__(self) -> int:
        return self._dataset.record_count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for record in self.records:
            row = {"inputs": record.inputs, "expectations": record.expectations}
            if record.outputs is not None:
                row["outputs"] = record.outputs
            yield row

    def __repr__(self) -> str:
        return (
            f"<EvaluationDataset name={self.name!r} version={self.version} "
            f"records={len(self)} digest={self.digest[:12]}>"
        )


def _is_missing(value: Any) -> bool:
    # pandas gives NaN (or NA) for a cell a row has no value in: that field is not given.
    if isinstance(value, float):
        return value != value
    return value is None or type(value).__name__ in ("NAType", "NaTType")


def _frame_items(frame: Any) -> list[Any]:
    columns = set(map(str, frame.columns))
    if "trace_id" in columns and "inputs" not in columns:
        return [str(t) for t in frame["trace_id"]]  # a search_traces(return_type="pandas") page
    items = []
    for row in frame.to_dict(orient="records"):
        row.pop("record_id", None)
        items.append({k: v for k, v in row.items() if k == "inputs" or not _is_missing(v)})
    return items


def _trace_record(index: int, trace: Trace) -> dict[str, Any]:
    root = trace.root
    inputs = None if root is None else root.inputs
    if not isinstance(inputs, Mapping):
        raise InvalidInputError(
            f"record {index}: the root span of trace {trace.trace_id!r} has "
            f"{'no inputs' if inputs is None else type(inputs).__name__ + ' inputs'}; "
            "a record's inputs must be a dict",
            field=f"records[{index}].inputs",
        )
    return {
        "inputs": inputs,
        "outputs": root.outputs if root is not None else None,
        "expectations": trace.expectations,
        "source_trace_id": trace.trace_id,
    }


def _record_dicts(records: Any, get_trace: Callable[[str], Trace]) -> list[Any]:
    """Turn what `merge_records` accepts into record dicts; the store checks each one."""
    if type(records).__name__ == "DataFrame" and hasattr(records, "to_dict"):
        records = _frame_items(records)
    elif isinstance(records, (str, bytes, Mapping, Trace, TraceInfo)) or not isinstance(
        records, Iterable
    ):
        raise InvalidInputError(
            "records must be a list of dicts, a pandas DataFrame, or a list of traces "
            f"(Trace, TraceInfo or trace ids), not a {type(records).__name__}",
            field="records",
        )
    items = []
    for index, item in enumerate(records):
        if isinstance(item, str) and not _TRACE_ID.match(item):
            raise InvalidInputError(
                f"record {index} is a string but not a trace id (32 lowercase hex "
                f"characters): {item[:80]!r}",
                field=f"records[{index}]",
            )
        if isinstance(item, (str, TraceInfo)):
            item = get_trace(item if isinstance(item, str) else item.trace_id)
        items.append(_trace_record(index, item) if isinstance(item, Trace) else item)
    return items


class DatasetsClient:
    """Evaluation dataset operations; mixed into a client that has `store` and `get_trace`.

    The module-level functions (`tm.datasets.create_dataset`, ...) are these methods
    called on the default client of the current tracking URI.
    """

    store: Store
    get_trace: Callable[[str], Trace]

    def create_dataset(
        self,
        name: str,
        *,
        experiment_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> EvaluationDataset:
        """Create an empty dataset (version 0); the name must be unused.

        Example:
            dataset = tm.datasets.create_dataset("support-qa", tags={"team": "support"})

        Args:
            name: the unique name (letters, digits, '_', '-', '.').
            experiment_id: the experiment the dataset belongs to, if any.
            description: what the examples are for.
            tags: key/value labels of the dataset.
        """
        dataset = self.store.create_dataset(name, experiment_id, description, tags)
        return EvaluationDataset(dataset, self)

    def get_dataset(self, name: str, *, version: int | None = None) -> EvaluationDataset:
        """Return a dataset as of one version, the newest by default.

        Example:
            first = tm.datasets.get_dataset("support-qa", version=1)

        Args:
            name: the dataset's name.
            version: the version to read exactly; None for the newest.
        """
        return EvaluationDataset(self.store.get_dataset(name, version), self)

    def search_datasets(
        self,
        filter_string: str | None = None,
        *,
        experiment_ids: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList:
        """Return datasets sorted by name, newest versions; `.token` fetches the next page.

        Example:
            found = tm.datasets.search_datasets("name LIKE 'support%' AND tags.team = 'support'")

        Args:
            filter_string: conditions on ``name``, ``description``, ``version``,
                ``creation_time``, ``last_updated_time`` and ``tags.<key>``.
            experiment_ids: only datasets of these experiments.
            max_results: the page size.
            page_token: the `token` of the previous page.
        """
        found, token = self.store.search_datasets(
            filter_string, experiment_ids, max_results, page_token
        )
        return PagedList([EvaluationDataset(d, self) for d in found], token)

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset with every version and record.

        Example:
            tm.datasets.delete_dataset("scratch")

        Args:
            name: the dataset's name.
        """
        self.store.delete_dataset(name)


def _on_default_client(method: Callable[..., Any]) -> Callable[..., Any]:
    """Call `method` with the client of the current tracking URI (which can change)."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        from tracemark.tracking.fluent import DEFAULT_TRACKER

        return method(DEFAULT_TRACKER.client, *args, **kwargs)

    return call


create_dataset = _on_default_client(DatasetsClient.create_dataset)
get_dataset = _on_default_client(DatasetsClient.get_dataset)
search_datasets = _on_default_client(DatasetsClient.search_datasets)
delete_dataset = _on_default_client(DatasetsClient.delete_dataset)
