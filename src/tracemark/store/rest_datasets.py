"""The evaluation-dataset half of the REST store: one request per operation.

`RestStore` inherits these methods. Records are checked here before they are sent, so a
record that cannot even be encoded as JSON fails with the same error as on a database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from tracemark.entities.dataset import Dataset, DatasetRecord, check_record
from tracemark.exceptions import InvalidInputError
from tracemark.store import registry_validation as check


def _path(name: Any) -> str:
    """The URL path of a dataset (a '/' in its name would change the route)."""
    return "/api/v1/datasets/" + quote(check.name(name, "dataset"), safe="")


def _version(version: int | None) -> dict[str, Any]:
    return {} if version is None else {"version": check.version(version)}


class RestDatasetsMixin:
    """Dataset methods of `RestStore` (which provides `request`)."""

    request: Callable[..., Any]

    def create_dataset(
        self,
        name: str,
        experiment_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> Dataset:
        """Create an empty dataset on the server."""
        body = {
            "name": check.name(name, "dataset"),
            "experiment_id": None if experiment_id is None else str(experiment_id),
            "description": description,
            "tags": {str(k): str(v) for k, v in (tags or {}).items()},
        }
        return Dataset.from_dict(self.request("POST", "/api/v1/datasets", json=body))

    def get_dataset(self, name: str, version: int | None = None) -> Dataset:
        """Fetch a dataset as of a version (None: the newest)."""
        return Dataset.from_dict(self.request("GET", _path(name), params=_version(version)))

    def get_dataset_records(self, name: str, version: int | None = None) -> list[DatasetRecord]:
        """Fetch exactly the records of a version (None: the newest)."""
        data = self.request("GET", f"{_path(name)}/records", params=_version(version))
        return [DatasetRecord.from_dict(r) for r in data["records"]]

    def search_datasets(
        self,
        filter_string: str | None = None,
        experiment_ids: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[Dataset], str | None]:
        """Search datasets on the server."""
        if experiment_ids is not None and not experiment_ids:
            return [], None
        params: dict[str, Any] = {"max_results": max_results}
        if filter_string:
            params["filter"] = filter_string
        if experiment_ids is not None:
            params["experiment_ids"] = [str(e) for e in experiment_ids]
        if page_token:
            params["page_token"] = page_token
        data = self.request("GET", "/api/v1/datasets", params=params)
        return [Dataset.from_dict(d) for d in data["datasets"]], data["next_page_token"]

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset on the server."""
        self.request("DELETE", _path(name))

    def merge_dataset_records(self, name: str, records: Sequence[Mapping[str, Any]]) -> Dataset:
        """Send records to merge as one new version; returns the dataset as it now is."""
        if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Sequence):
            raise InvalidInputError(
                f"records must be a list of dicts, got {type(records).__name__}", field="records"
            )
        body = {"records": [check_record(r, i) for i, r in enumerate(records)]}
        return Dataset.from_dict(self.request("POST", f"{_path(name)}/records", json=body))
