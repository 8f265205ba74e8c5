"""Application versions in the client: log a model from code, register it, load it back.

`log_model` writes the model's files (see `_packaging`) among a run's artifacts and
records a `LoggedModel`; `register_model` gives it a numbered version under a name;
`load_model` resolves ``models:/name/1``, ``models:/name@alias`` or ``runs:/<id>/<path>``.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracemark.entities.model import LoggedModel, ModelVersion, RegisteredModel
from tracemark.entities.paging import PagedList
from tracemark.exceptions import InvalidInputError
from tracemark.registry._uri import parse_registry_uri, parse_run_uri
from tracemark.registry.active_model import ModelLinksClient, link_loaded_model, model_run_tag
from tracemark.store import registry_validation as check
from tracemark.tracking.client import now_ms

if TYPE_CHECKING:
    from tracemark.registry._packaging import LoadedModel
    from tracemark.store.base import Store


class ModelsClient(ModelLinksClient):
    """Logged models and the model registry: methods of `TracemarkClient`."""

    store: Store

    # Provided by TrackingClient.
    get_run: Any
    log_artifacts: Any
    set_tag: Any
    download_artifacts: Any

    # -- logging and loading --------------------------------------------------------

    def log_model(
        self,
        run_id: str,
        python_model: Any,
        name: str,
        *,
        code_paths: Sequence[str | os.PathLike[str]] | None = None,
        model_config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        pip_requirements: Sequence[str] | str | os.PathLike[str] | None = None,
        input_example: Any = None,
        registered_model_name: str | None = None,
    ) -> LoggedModel:
        """Store an application version (code, requirements, config) in a run's artifacts.

        Example:
            model = client.log_model(run_id, "agent.py", "agent", model_config={"k": 3})
            client.load_model(model.model_uri).predict("hi")

        Args:
            run_id: the run whose artifacts hold the model.
            python_model: a path to a .py file that calls ``tm.set_model(obj)``, a
                `tm.PythonModel` instance, or a callable defined at the top level of a module.
            name: the folder under the run's artifacts (``runs:/<run_id>/<name>``).
            code_paths: more files or folders the model imports, copied with it.
            model_config: a dict, or a YAML/JSON file, given back by ``tm.get_model_config()``
                and ``PythonModelContext.model_config``.
            pip_requirements: a list, or a requirements file; inferred from imports if absent.
            input_example: a JSON-serializable input, stored with the model's signature.
            registered_model_name: also register the model as a new version of this name.
        """
        from tracemark.registry._packaging import save_model

        name = _artifact_name(name)
        run = self.get_run(run_id)
        model_id = uuid.uuid4().hex
        with tempfile.TemporaryDirectory(prefix="tracemark-model-") as tmp:
            folder = Path(tmp) / name
            save_model(
                folder,
                python_model,
                model_id=model_id,
                code_paths=code_paths,
                model_config=model_config,
                pip_requirements=pip_requirements,
                input_example=input_example,
            )
            self.log_artifacts(run_id, folder, name)
        logged = self.store.create_logged_model(
            LoggedModel(
                model_id=model_id,
                name=name,
                experiment_id=run.experiment_id,
                run_id=run_id,
                artifact_path=name,
                creation_time=now_ms(),
            )
        )
        # Lets `set_active_model(name=...)` find the newest model of this name.
        self.set_tag(run_id, model_run_tag(name), model_id)
        if registered_model_name is not None:
            self.register_model(logged.model_uri, registered_model_name)
        return logged

    def load_model(self, model_uri: str, dst_path: str | os.PathLike[str] | None = None) -> Any:
        """Load a logged model; it works in a process that never imported its code.

        Example:
            model = tm.load_model("models:/support-agent@production")
            model.predict("Where is my parcel?")
            for chunk in model.predict_stream("Where is my parcel?"):
                print(chunk, end="")

        Args:
            model_uri: ``models:/name/<version>``, ``models:/name@<alias>`` (``@latest`` too)
                or ``runs:/<run_id>/<name>``.
            dst_path: where to download the model's files; a new temporary folder by default.
        """
        from tracemark.registry._packaging import load_model_dir

        source = self.resolve_model_uri(model_uri)
        ref = parse_run_uri(source)
        dst = dst_path if dst_path is not None else tempfile.mkdtemp(prefix="tracemark-model-")
        local = self.download_artifacts(ref.run_id, ref.path, dst)
        loaded: LoadedModel = load_model_dir(Path(local))
        # Traces its predictions start are linked to this version.
        return link_loaded_model(loaded)

    def resolve_model_uri(self, model_uri: str) -> str:
        """Return the ``runs:/<run_id>/<path>`` URI a model URI stands for."""
        if not isinstance(model_uri, str):
            raise InvalidInputError(f"model URI must be a string, got {model_uri!r}", field="uri")
        if model_uri.startswith("models:"):
            return self._model_version(model_uri).source
        parse_run_uri(model_uri)
        return model_uri

    def _model_version(self, model_uri: str) -> ModelVersion:
        ref = parse_registry_uri(model_uri, "models")
        if ref.version is not None:
            return self.store.get_model_version(ref.name, ref.version)
        assert ref.alias is not None
        return self.store.get_model_version_by_alias(ref.name, ref.alias)

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """Return a logged model by id."""
        return self.store.get_logged_model(model_id)

    def search_logged_models(self, run_id: str) -> list[LoggedModel]:
        """Return the models a run logged."""
        return self.store.search_logged_models(run_id)

    # -- registry -------------------------------------------------------------------

    def register_model(
        self,
        model_uri: str,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register a logged model as the next version of `name` (created if new).

        Example:
            version = tm.register_model("runs:/<run_id>/agent", "support-agent")

        Args:
            model_uri: ``runs:/<run_id>/<name>``, or ``models:/...`` to copy another version.
            name: the registered model's name.
            description: a note on this version.
            tags: key/value labels of this version.
        """
        source = self.resolve_model_uri(model_uri)
        ref = parse_run_uri(source)
        model_id = next(
            (
                m.model_id
                for m in self.store.search_logged_models(ref.run_id)
                if m.artifact_path == ref.path
            ),
            None,
        )
        return self.store.create_model_version(
            name, source, ref.run_id, model_id, description, dict(tags or {})
        )

    def create_registered_model(
        self, name: str, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        """Create an empty registered model; the name must be unused."""
        return self.store.create_registered_model(name, description, dict(tags or {}))

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return a registered model with its tags and aliases."""
        return self.store.get_registered_model(name)

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Change a registered model's description."""
        return self.store.update_registered_model(name, description)

    def delete_registered_model(self, name: str, *, force: bool = False) -> None:
        """Delete a registered model and its versions; one with aliases needs ``force=True``."""
        self.store.delete_registered_model(name, force=force)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Set a tag on a registered model."""
        self.store.set_registered_model_tag(name, key, str(value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model."""
        self.store.delete_registered_model_tag(name, key)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList:
        """Return registered models by name, filtered on ``name``, ``tags.<key>`` and times."""
        found, token = self.store.search_registered_models(filter_string, max_results, page_token)
        return PagedList(found, token)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """Return one version of a registered model."""
        return self.store.get_model_version(name, version)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Return the version an alias points at (``latest``: the newest)."""
        return self.store.get_model_version_by_alias(name, alias)

    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion:
        """Change a version's description."""
        return self.store.update_model_version(name, version, description)

    def set_model_version_tag(self, name: str, version: int, key: str, value: Any) -> None:
        """Set a tag on a model version."""
        self.store.set_model_version_tag(name, version, key, str(value))

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        """Remove a tag from a model version."""
        self.store.delete_model_version_tag(name, version, key)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList:
        """Return model versions, filtered on ``name``, ``version``, ``run_id``, ``tags.<key>``.

        Example:
            tm.search_model_versions(filter_string="name = 'support-agent'")
        """
        found, token = self.store.search_model_versions(filter_string, max_results, page_token)
        return PagedList(found, token)

    def set_registered_model_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias (``production``) at a version; an existing alias moves.

        Example:
            client.set_registered_model_alias("support-agent", "production", 2)
        """
        self.store.set_registered_model_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias from a registered model."""
        self.store.delete_registered_model_alias(name, alias)

    def delete_model_version(self, name: str, version: int, *, force: bool = False) -> None:
        """Delete a version; one an alias points at needs ``force=True``."""
        self.store.delete_model_version(name, version, force=force)


def _artifact_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInputError(
            f"model name must be a non-empty string, got {name!r}", field="name"
        )
    return check.name(name, "model")
