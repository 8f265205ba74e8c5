"""How dicts, images and prediction tables are encoded as artifact files."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import orjson

from tracemark.entities import Run
from tracemark.exceptions import InvalidInputError

_ORJSON_OPTS = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _is_yaml(artifact_file: str) -> bool:
    return artifact_file.lower().endswith((".yaml", ".yml"))


def encode_dict(dictionary: Any, artifact_file: str) -> bytes:
    """Encode as YAML for .yaml/.yml files, else as JSON."""
    if _is_yaml(artifact_file):
        import yaml

        return yaml.safe_dump(dictionary, sort_keys=False, allow_unicode=True).encode("utf-8")
    try:
        return orjson.dumps(dictionary, option=_ORJSON_OPTS)
    except TypeError as exc:
        raise InvalidInputError(f"cannot save {artifact_file!r} as JSON: {exc}") from exc


def decode_dict(raw: bytes, artifact_file: str) -> Any:
    """Decode a JSON or YAML artifact."""
    if _is_yaml(artifact_file):
        import yaml

        return yaml.safe_load(raw)
    return orjson.loads(raw)


def encode_image(image: Any, artifact_file: str) -> bytes:
    """Encode a PIL image or numpy array in the format the file extension names."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise InvalidInputError("log_image needs Pillow: pip install pillow") from exc
    if not isinstance(image, Image.Image):
        image = _array_to_image(image, Image)
    fmt = Image.registered_extensions().get("." + artifact_file.rsplit(".", 1)[-1].lower())
    if fmt is None:
        raise InvalidInputError(
            f"cannot tell an image format from {artifact_file!r}; use .png or .jpg",
            field="artifact_file",
        )
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _array_to_image(array: Any, image_module: Any) -> Any:
    try:
        import numpy as np
    except ImportError as exc:
        raise InvalidInputError("log_image takes a PIL image or a numpy array") from exc
    if not isinstance(array, np.ndarray):
        raise InvalidInputError(
            f"log_image takes a PIL image or a numpy array, got {type(array).__name__}"
        )
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise InvalidInputError(
            f"image array must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}"
        )
    if array.dtype.kind == "f":
        if array.min() < 0 or array.max() > 1:
            raise InvalidInputError("float image values must lie in [0, 1]")
        array = (array * 255).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        if array.min() < 0 or array.max() > 255:
            raise InvalidInputError("integer image values must lie in [0, 255]")
        array = array.astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return image_module.fromarray(array)


def normalize_table(data: Any) -> dict[str, list[Any]]:
    """Turn a dict of columns or a pandas DataFrame into {"columns": [...], "data": [[...]]}."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        columns = [str(c) for c in data.columns]
        rows = orjson.loads(data.to_json(orient="values", date_format="iso", default_handler=str))
        return {"columns": columns, "data": rows}
    if not isinstance(data, dict) or not data:
        raise InvalidInputError(
            "log_table takes a non-empty dict of columns or a pandas DataFrame", field="data"
        )
    columns = [str(c) for c in data]
    values = [list(v) if not isinstance(v, (str, bytes)) else [v] for v in data.values()]
    lengths = {len(v) for v in values}
    if len(lengths) != 1:
        sizes = ", ".join(f"{c}={len(v)}" for c, v in zip(columns, values, strict=True))
        raise InvalidInputError(f"table columns differ in length: {sizes}", field="data")
    rows = [list(r) for r in zip(*values, strict=True)]
    # Round-trip through JSON now so a bad cell fails before anything is written.
    try:
        rows = orjson.loads(orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY, default=str))
    except TypeError as exc:
        raise InvalidInputError(f"table cell cannot be stored: {exc}", field="data") from exc
    return {"columns": columns, "data": rows}


def append_table(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Append rows; columns missing on either side are filled with None."""
    columns = list(old["columns"])
    columns += [c for c in new["columns"] if c not in columns]
    rows = [_reorder(old["columns"], r, columns) for r in old["data"]]
    rows += [_reorder(new["columns"], r, columns) for r in new["data"]]
    return {"columns": columns, "data": rows}


def _reorder(src: Sequence[str], row: Sequence[Any], dst: Sequence[str]) -> list[Any]:
    by_name = dict(zip(src, row, strict=False))
    return [by_name.get(c) for c in dst]


def encode_table(table: dict[str, Any]) -> bytes:
    """Encode a normalized table as JSON."""
    return orjson.dumps(table)


def decode_table(raw: bytes) -> dict[str, Any]:
    """Decode a table artifact, checking its shape."""
    table = orjson.loads(raw)
    if not isinstance(table, dict) or "columns" not in table or "data" not in table:
        raise InvalidInputError("artifact is not a table logged by log_table")
    return table


def run_columns(run: Run, names: Sequence[str]) -> dict[str, Any]:
    """Return the requested run attributes (run_id, run_name, params.x, ...) as columns."""
    out: dict[str, Any] = {}
    for name in names:
        if name.startswith("params."):
            out[name] = run.params.get(name[7:])
        elif name.startswith("tags."):
            out[name] = run.tags.get(name[5:])
        elif name.startswith("metrics."):
            out[name] = run.metrics.get(name[8:])
        elif name in ("run_id", "run_name", "experiment_id", "status"):
            out[name] = getattr(run, name)
        else:
            raise InvalidInputError(
                f"unknown extra column {name!r}: use run_id, run_name, experiment_id, status, "
                "params.<key>, tags.<key> or metrics.<key>",
                field="extra_columns",
            )
    return out


def as_frame(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    """Return a pandas DataFrame when pandas is installed, else the list of row dicts."""
    try:
        import pandas as pd
    except ImportError:
        return [{c: r.get(c) for c in columns} for r in rows]
    return pd.DataFrame(rows, columns=columns)
