"""Save an application as files (code snapshot, requirements, config) and load it back.

A saved model is a folder::

    tracemark_model.json   what to load and how; signature; versions
    code/                  the code snapshot: the model's file or module, and code_paths
    model.pkl              a pickled object model (its code is in code/)
    requirements.txt       pip requirements, given or inferred from the code's imports
    model_config.json      the configuration (optional)
    input_example.json     an example input (optional)

Loading puts ``code/`` first on ``sys.path``, so it works in a process that never
imported the original code.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import pickle
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from tracemark._version import __version__
from tracemark.exceptions import InvalidInputError
from tracemark.registry.python_model import (
    _LOADING_CONFIG,
    _LOADING_MODEL,
    PythonModel,
    PythonModelContext,
)

MODEL_FILE = "tracemark_model.json"
FORMAT_VERSION = 1


# -- saving -----------------------------------------------------------------------------


def save_model(
    path: Path,
    python_model: Any,
    *,
    model_id: str,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    model_config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    pip_requirements: Sequence[str] | str | os.PathLike[str] | None = None,
    input_example: Any = None,
) -> dict[str, Any]:
    """Write a model folder at `path` and return its description (`tracemark_model.json`)."""
    code = path / "code"
    code.mkdir(parents=True)
    if isinstance(python_model, (str, os.PathLike)):
        source = Path(python_model)
        if source.suffix != ".py" or not source.is_file():
            raise InvalidInputError(
                f"python_model {str(python_model)!r} is not an existing .py file",
                field="python_model",
            )
        shutil.copy2(source, code / source.name)
        loader = {"kind": "file", "entry": f"code/{source.name}"}
    elif isinstance(python_model, PythonModel) or callable(python_model):
        _copy_defining_module(python_model, code)
        (path / "model.pkl").write_bytes(pickle.dumps(python_model))
        loader = {"kind": "pickle", "entry": "model.pkl"}
    else:
        raise InvalidInputError(
            "python_model must be a path to a .py file, a tm.PythonModel or a callable, "
            f"got {type(python_model).__name__}",
            field="python_model",
        )
    for extra in code_paths or ():
        _copy_into(Path(extra), code, field="code_paths")

    config = _read_config(model_config)
    if config is not None:
        (path / "model_config.json").write_bytes(orjson.dumps(config))
    requirements = _requirements(pip_requirements, code)
    (path / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    description: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model_id": model_id,
        "flavor": "python",
        "loader": loader,
        "python_version": "{}.{}.{}".format(*sys.version_info[:3]),
        "tracemark_version": __version__,
        "signature": None,
    }
    if input_example is not None:
        try:
            (path / "input_example.json").write_bytes(orjson.dumps(input_example))
        except TypeError as error:
            raise InvalidInputError(
                f"input_example must be JSON-serializable: {error}", field="input_example"
            ) from None
        description["signature"] = {"inputs": describe(input_example)}
    (path / MODEL_FILE).write_bytes(orjson.dumps(description, option=orjson.OPT_INDENT_2))
    return description


def _copy_into(source: Path, dest: Path, *, field: str) -> None:
    if source.is_dir():
        shutil.copytree(
            source,
            dest / source.name,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    elif source.is_file():
        shutil.copy2(source, dest / source.name)
    else:
        raise InvalidInputError(f"{field}: {str(source)!r} does not exist", field=field)


def _copy_defining_module(obj: Any, code: Path) -> None:
    """Copy the module (or top-level package) that defines `obj` into the snapshot."""
    target = obj if inspect.isfunction(obj) or inspect.isclass(obj) else type(obj)
    module_name = getattr(target, "__module__", None) or ""
    if module_name in ("__main__", "builtins") or "<locals>" in getattr(target, "__qualname__", ""):
        raise InvalidInputError(
            f"cannot snapshot {getattr(target, '__qualname__', target)!r}: it is defined in "
            f"{module_name or 'no module'}, not at the top level of an importable module. Move "
            "it into a module file, or pass the path of a .py file that calls tm.set_model()",
            field="python_model",
        )
    top = module_name.split(".")[0]
    module = sys.modules.get(top)
    if module is None:
        return
    if hasattr(module, "__path__"):  # a package: copy all of it
        _copy_into(Path(next(iter(module.__path__))), code, field="python_model")
    elif getattr(module, "__file__", None):
        if top in sys.stdlib_module_names or "site-packages" in module.__file__:
            return  # installed code comes back through the requirements
        shutil.copy2(module.__file__, code / Path(module.__file__).name)


def _read_config(model_config: Any) -> dict[str, Any] | None:
    if model_config is None:
        return None
    if isinstance(model_config, Mapping):
        config = dict(model_config)
    else:
        source = Path(model_config)
        if not source.is_file():
            raise InvalidInputError(
                f"model_config {str(model_config)!r} is neither a dict nor a file",
                field="model_config",
            )
        import yaml

        config = yaml.safe_load(source.read_text()) or {}
        if not isinstance(config, dict):
            raise InvalidInputError(
                f"model_config file {str(source)!r} must hold a mapping", field="model_config"
            )
    try:
        orjson.dumps(config)
    except TypeError as error:
        raise InvalidInputError(
            f"model_config must be JSON-serializable: {error}", field="model_config"
        ) from None
    return config


def _requirements(given: Any, code: Path) -> list[str]:
    if given is None:
        return infer_requirements(code)
    if isinstance(given, (str, os.PathLike)) and Path(given).is_file():
        lines = Path(given).read_text().splitlines()
    elif isinstance(given, str):
        lines = [given]
    else:
        lines = [str(r) for r in given]
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def infer_requirements(code: Path) -> list[str]:
    """Return ``dist==version`` for every installed distribution the code imports."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    local = {p.stem for p in code.iterdir()}
    imported: set[str] = set()
    for file in code.rglob("*.py"):
        try:
            tree = ast.parse(file.read_bytes())
        except SyntaxError as error:
            raise InvalidInputError(
                f"{file.name} does not parse: {error}", field="python_model"
            ) from None
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    imported -= local | set(sys.stdlib_module_names)
    distributions = packages_distributions()
    found: dict[str, str] = {}
    for name in sorted(imported):
        # Editable installs are missing from packages_distributions(); their distribution
        # usually bears the module's name.
        for dist in distributions.get(name) or [name]:
            try:
                found[dist.lower()] = f"{dist}=={version(dist)}"
            except PackageNotFoundError:
                continue
    return sorted(found.values())


def describe(example: Any) -> Any:
    """Describe the shape of an example input: JSON type names, keys and item shapes."""
    if isinstance(example, bool):
        return "boolean"
    if isinstance(example, int):
        return "integer"
    if isinstance(example, float):
        return "number"
    if isinstance(example, str):
        return "string"
    if example is None:
        return "null"
    if isinstance(example, Mapping):
        return {str(k): describe(v) for k, v in example.items()}
    if isinstance(example, (list, tuple)):
        return [describe(example[0])] if example else []
    return type(example).__name__


# -- loading ----------------------------------------------------------------------------


class LoadedModel:
    """A model loaded by `tm.load_model`: call `predict` or `predict_stream`.

    Example:
        model = tm.load_model("models:/support-agent@production")
        print(model.predict("Where is my parcel?"))
    """

    def __init__(self, model: Any, metadata: dict[str, Any], model_config: dict[str, Any]) -> None:
        self._model = model
        self.metadata = metadata
        self.model_config = model_config

    @property
    def model_id(self) -> str:
        """The id of the logged model."""
        return self.metadata.get("model_id", "")

    def unwrap_python_model(self) -> Any:
        """Return the underlying object (a `PythonModel` or a callable)."""
        return self._model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Return the model's prediction for one input."""
        model = self._model
        call = model.predict if hasattr(model, "predict") else model
        return call(model_input) if params is None else call(model_input, params=params)

    def predict_stream(
        self, model_input: Any, params: dict[str, Any] | None = None
    ) -> Iterator[Any]:
        """Yield the prediction in chunks (one chunk when the model does not stream)."""
        model = self._model
        if hasattr(model, "predict_stream"):
            stream = (
                model.predict_stream(model_input)
                if params is None
                else model.predict_stream(model_input, params=params)
            )
            yield from stream
            return
        result = self.predict(model_input, params)
        # A generator (or any iterator) streams; a str, dict or list is one whole answer.
        if isinstance(result, Iterator):
            yield from result
        else:
            yield result

    def __repr__(self) -> str:
        return f"<LoadedModel model_id={self.model_id!r} model={self._model!r}>"


def load_model_dir(path: Path) -> LoadedModel:
    """Load a saved model folder (downloaded from a run's artifacts)."""
    description_file = path / MODEL_FILE
    if not description_file.is_file():
        raise InvalidInputError(
            f"{path.name!r} is not a model logged by tm.log_model (no {MODEL_FILE})",
            field="model_uri",
        )
    description = orjson.loads(description_file.read_bytes())
    config_file = path / "model_config.json"
    config = orjson.loads(config_file.read_bytes()) if config_file.is_file() else {}
    code = str(path / "code")
    if code not in sys.path:
        sys.path.insert(0, code)
    loader = description["loader"]
    config_token = _LOADING_CONFIG.set(config)
    try:
        if loader["kind"] == "file":
            model = _load_file(path / loader["entry"])
        else:
            model = pickle.loads((path / loader["entry"]).read_bytes())  # noqa: S301 - our own file
    finally:
        _LOADING_CONFIG.reset(config_token)
    if isinstance(model, PythonModel) or hasattr(model, "load_context"):
        model.load_context(PythonModelContext(model_config=dict(config), model_path=str(path)))
    return LoadedModel(model, description, config)


def _load_file(file: Path) -> Any:
    module_name = f"_tracemark_model_{uuid.uuid4().hex[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    slot: list[Any] = []
    token = _LOADING_MODEL.set(slot)
    try:
        spec.loader.exec_module(module)
    finally:
        _LOADING_MODEL.reset(token)
    if slot:
        return slot[-1]
    for name in ("model", "predict"):
        found = getattr(module, name, None)
        if found is not None:
            return found
    raise InvalidInputError(
        f"{file.name} defines no model: call tm.set_model(obj) in it, or define `model` or "
        "`predict` at module level",
        field="python_model",
    )
