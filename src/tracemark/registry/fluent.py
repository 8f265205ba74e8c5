"""The module-level registry API: methods of the default client, bound once.

`tm.load_prompt(...)` calls `load_prompt` of the client for the current tracking URI,
exactly as `TracemarkClient().load_prompt(...)` would: one code path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from tracemark.entities.model import LoggedModel
from tracemark.registry.active_model import (
    clear_active_model,
    get_active_model_id,
    set_active_model,
)
from tracemark.registry.client import RegistryClient
from tracemark.tracing.fluent import _on_default_client

__all__ = [
    "clear_active_model",
    "delete_prompt_alias",
    "get_active_model_id",
    "get_prompt",
    "load_model",
    "load_prompt",
    "log_model",
    "register_model",
    "register_prompt",
    "search_model_runs",
    "search_model_traces",
    "search_model_versions",
    "search_prompt_versions",
    "search_prompts",
    "search_registered_models",
    "set_active_model",
    "set_prompt_alias",
]

register_prompt = _on_default_client(RegistryClient.register_prompt)
load_prompt = _on_default_client(RegistryClient.load_prompt)
get_prompt = _on_default_client(RegistryClient.get_prompt)
search_prompts = _on_default_client(RegistryClient.search_prompts)
search_prompt_versions = _on_default_client(RegistryClient.search_prompt_versions)
set_prompt_alias = _on_default_client(RegistryClient.set_prompt_alias)
delete_prompt_alias = _on_default_client(RegistryClient.delete_prompt_alias)

load_model = _on_default_client(RegistryClient.load_model)
register_model = _on_default_client(RegistryClient.register_model)
search_registered_models = _on_default_client(RegistryClient.search_registered_models)
search_model_versions = _on_default_client(RegistryClient.search_model_versions)
search_model_traces = _on_default_client(RegistryClient.search_model_traces)
search_model_runs = _on_default_client(RegistryClient.search_model_runs)


def log_model(
    python_model: Any,
    name: str,
    *,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    model_config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    pip_requirements: Sequence[str] | str | os.PathLike[str] | None = None,
    input_example: Any = None,
    registered_model_name: str | None = None,
) -> LoggedModel:
    """Store an application version (code, requirements, config) in the active run.

    A run is started when none is active, as `tm.log_param` does.

    Example:
        with tm.start_run():
            model = tm.log_model("agent.py", name="agent", model_config={"temperature": 0})
        tm.load_model(model.model_uri).predict("hi")

    Args:
        python_model: a path to a .py file that calls ``tm.set_model(obj)``, a
            `tm.PythonModel` instance, or a callable defined at the top level of a module.
        name: the folder under the run's artifacts (``runs:/<run_id>/<name>``).
        code_paths: more files or folders the model imports, copied with it.
        model_config: a dict, or a YAML/JSON file, read back with ``tm.get_model_config()``.
        pip_requirements: a list, or a requirements file; inferred from imports if absent.
        input_example: a JSON-serializable input, stored with the model's signature.
        registered_model_name: also register the model as a new version of this name.
    """
    from tracemark.tracking.fluent import DEFAULT_TRACKER

    run = DEFAULT_TRACKER.active_run() or DEFAULT_TRACKER.start_run()
    return DEFAULT_TRACKER.client.log_model(
        run.run_id,
        python_model,
        name,
        code_paths=code_paths,
        model_config=model_config,
        pip_requirements=pip_requirements,
        input_example=input_example,
        registered_model_name=registered_model_name,
    )
