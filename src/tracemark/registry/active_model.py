"""Link traces to an application version: `set_active_model`, and reading the links back.

Every trace that starts while a model is active carries its id in the write-once metadata key
``tracemark.model_id``, so the traces of a version are found with
``tm.search_traces(filter_string="metadata.`tracemark.model_id` = '<id>'")`` or
``client.search_model_traces(model)``, and the runs that produced them (evaluations) with
``client.search_model_runs(model)``.

A model logged by name only (``set_active_model(name=...)`` with no such model yet) is
recorded in a run of the current experiment, like a model from ``log_model`` but without
files; the run tag ``tracemark.model.<name>`` names the newest model of that name in a run.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tracemark.entities.model import LoggedModel, ModelVersion
from tracemark.entities.paging import PagedList
from tracemark.exceptions import InvalidInputError, NotFoundError
from tracemark.registry._packaging import LoadedModel
from tracemark.registry._uri import parse_run_uri
from tracemark.store import registry_validation as check
from tracemark.tracing._tracer import ACTIVE_MODEL_ID, DEFAULT_TRACER, MODEL_ID_KEY

if TYPE_CHECKING:
    from contextvars import Token

    from tracemark.entities.run import Run
    from tracemark.store.base import Store

__all__ = [
    "MODEL_ID_KEY",
    "ActiveModel",
    "LinkedModel",
    "ModelLinksClient",
    "clear_active_model",
    "get_active_model_id",
    "model_run_tag",
    "set_active_model",
    "use_model_id",
]

_RUN_TAG_PREFIX = "tracemark.model."
# A run made to hold a model logged by name only says so (as evaluation runs do).
_RUN_TYPE_TAG = "tracemark.run_type"


def model_run_tag(name: str) -> str:
    """Return the run tag naming the newest model called `name` that the run logged."""
    return _RUN_TAG_PREFIX + name


def model_filter(model_id: str) -> str:
    """Return the trace filter matching the traces linked to `model_id`."""
    quoted = model_id.replace("'", "''")
    return f"metadata.`{MODEL_ID_KEY}` = '{quoted}'"


# -- the active model -------------------------------------------------------------------


class ActiveModel:
    """The model `set_active_model` made active; leaving a `with` block restores the previous.

    Example:
        with tm.set_active_model(name="support-agent-v2") as active:
            agent("Where is my parcel?")  # this trace carries active.model_id
    """

    __slots__ = ("model", "_previous", "_token")

    def __init__(self, model: LoggedModel, token: Token[str | None], previous: str | None) -> None:
        self.model = model
        self._token = token
        self._previous = previous

    @property
    def model_id(self) -> str:
        """The id traces are linked to."""
        return self.model.model_id

    @property
    def name(self) -> str:
        """The logged model's name."""
        return self.model.name

    def __enter__(self) -> ActiveModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        DEFAULT_TRACER.active_model_id = self._previous
        try:
            ACTIVE_MODEL_ID.reset(self._token)
        except ValueError:  # left in another context than the one it was set in
            ACTIVE_MODEL_ID.set(None)

    def __repr__(self) -> str:
        return f"<ActiveModel model_id={self.model_id!r} name={self.name!r}>"


def set_active_model(name: str | None = None, *, model_id: str | None = None) -> ActiveModel:
    """Link every trace started afterwards (in this process and context) to a logged model.

    With a name only, the newest model of that name in the current experiment is used, and
    one is created (without files) when there is none, so an application version can be
    named before, or without, logging its code.

    Example:
        tm.set_active_model(name="support-agent-v2")
        agent("Where is my parcel?")  # metadata tracemark.model_id = the model's id
        with tm.set_active_model(model_id=logged.model_id):
            agent("And my refund?")

    Args:
        name: the logged model's name (letters, digits, '_', '-', '.').
        model_id: the id of a logged model (``tm.log_model(...).model_id``).
    """
    from tracemark.tracking.fluent import DEFAULT_TRACKER

    if name is None and model_id is None:
        raise InvalidInputError("set_active_model needs a name or a model_id", field="name")
    client = DEFAULT_TRACKER.client
    if model_id is not None:
        model = client.get_logged_model(str(model_id))
        if name is not None and name != model.name:
            raise InvalidInputError(
                f"logged model {model.model_id!r} is named {model.name!r}, not {name!r}",
                field="name",
            )
    else:
        model = _model_named(client, check.name(name, "model"))
    previous = DEFAULT_TRACER.active_model_id
    token = ACTIVE_MODEL_ID.set(model.model_id)
    DEFAULT_TRACER.active_model_id = model.model_id
    return ActiveModel(model, token, previous)


def get_active_model_id() -> str | None:
    """Return the id of the model new traces are linked to, or None.

    Example:
        tm.set_active_model(name="support-agent-v2")
        tm.get_active_model_id()  # '3f2a...'
    """
    return ACTIVE_MODEL_ID.get() or DEFAULT_TRACER.active_model_id


def clear_active_model() -> None:
    """Stop linking new traces to a model, in this context and process-wide.

    Example:
        tm.clear_active_model()
    """
    ACTIVE_MODEL_ID.set(None)
    DEFAULT_TRACER.active_model_id = None


@contextlib.contextmanager
def use_model_id(model_id: str | None) -> Iterator[None]:
    """Link the traces started inside the block to `model_id` (this context only)."""
    if not model_id:
        yield
        return
    token = ACTIVE_MODEL_ID.set(model_id)
    try:
        yield
    finally:
        ACTIVE_MODEL_ID.reset(token)


def _model_named(client: Any, name: str) -> LoggedModel:
    """Return the newest model called `name` in the current experiment, created if missing."""
    from tracemark.tracking.fluent import DEFAULT_TRACKER

    run = DEFAULT_TRACKER.active_run()
    experiment_id = DEFAULT_TRACKER.current_experiment_id() if run is None else run.experiment_id
    tag = model_run_tag(name)
    runs, _ = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{tag}` IS NOT NULL",
        max_results=1,
        order_by=["start_time DESC"],
    )
    if runs:
        with contextlib.suppress(NotFoundError):
            return client.get_logged_model(runs[0].tags[tag])
    if run is not None:
        run_id = run.run_id
    else:
        run_id = client.create_run(
            experiment_id, run_name=name, tags={_RUN_TYPE_TAG: "model"}
        ).run_id
        client.set_terminated(run_id)
    model = client.store.create_logged_model(
        LoggedModel(
            model_id=uuid.uuid4().hex,
            name=name,
            experiment_id=experiment_id,
            run_id=run_id,
            artifact_path=name,
            flavor="external",
        )
    )
    client.set_tag(run_id, tag, model.model_id)
    return model


# -- loaded models trace as themselves --------------------------------------------------


class LinkedModel(LoadedModel):
    """A loaded model whose predictions start traces linked to its own id.

    Example:
        model = tm.load_model("models:/support-agent@production")
        model.predict("hi")  # a trace it starts carries the version's model id
    """

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Return the model's prediction for one input."""
        with use_model_id(self.model_id):
            return LoadedModel.predict(self, model_input, params)

    def predict_stream(
        self, model_input: Any, params: dict[str, Any] | None = None
    ) -> Iterator[Any]:
        """Yield the prediction in chunks (one chunk when the model does not stream)."""
        stream = LoadedModel.predict_stream(self, model_input, params)
        try:
            while True:
                # Linked around each step: the consumer may resume the stream in another
                # context (a server's worker threads), where a token set earlier is unknown.
                with use_model_id(self.model_id):
                    try:
                        chunk = next(stream)
                    except StopIteration:
                        return
                yield chunk
        finally:
            stream.close()


def link_loaded_model(model: LoadedModel) -> LinkedModel:
    """Return `model` as a `LinkedModel`."""
    return LinkedModel(model.unwrap_python_model(), model.metadata, model.model_config)


# -- finding what a model produced ------------------------------------------------------


class ModelLinksClient:
    """The traces and runs linked to a logged model: methods of `TracemarkClient`."""

    store: Store

    # Provided by the other parts of the client.
    search_traces: Any
    search_runs: Any
    search_experiments: Any
    get_run: Any
    resolve_model_uri: Any
    _model_version: Any

    def search_model_traces(
        self,
        model: Any,
        *,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList:
        """Return the traces linked to a model version, newest first, in every experiment.

        Example:
            traces = client.search_model_traces("models:/support-agent@production")
            errors = client.search_model_traces(model_id, filter_string="status = 'ERROR'")

        Args:
            model: a model id, a `LoggedModel`, a `ModelVersion`, a loaded model, or a URI
                (``models:/name/1``, ``models:/name@alias``, ``runs:/<run_id>/<name>``).
            filter_string: more conditions, as in `search_traces`.
            order_by: e.g. ``["execution_time_ms DESC"]``.
            max_results: page size.
            page_token: the `token` of the previous page.
        """
        condition = model_filter(self._linked_model_id(model))
        if filter_string and filter_string.strip():
            condition = f"{condition} AND ({filter_string})"
        return self.search_traces(
            self._experiment_ids(),
            filter_string=condition,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
        )

    def search_model_runs(self, model: Any) -> list[Run]:
        """Return the runs of a model version: the one that logged it, then its evaluations.

        An evaluation run is one holding traces linked to the model (run with the model
        active); each run carries its metrics.

        Example:
            for run in client.search_model_runs("models:/support-agent/2"):
                print(run.run_name, run.metrics)

        Args:
            model: a model id, a `LoggedModel`, a `ModelVersion`, a loaded model, or a URI.
        """
        model_id = self._linked_model_id(model)
        found: list[str] = []
        with contextlib.suppress(NotFoundError):
            found.append(self.store.get_logged_model(model_id).run_id)
        experiments = self._experiment_ids()
        condition = f"{model_filter(model_id)} AND run_id IS NOT NULL"
        while True:
            # One indexed lookup per run, however many traces each evaluation made.
            seen = ", ".join(f"'{run_id}'" for run_id in found)
            page = self.search_traces(
                experiments,
                filter_string=f"{condition} AND run_id NOT IN ({seen})" if seen else condition,
                max_results=1,
            )
            if not page or page[0].run_id is None:
                break
            found.append(page[0].run_id)
        runs = []
        for run_id in found:
            with contextlib.suppress(NotFoundError):
                runs.append(self.get_run(run_id))
        return runs

    def _experiment_ids(self) -> list[str]:
        return [e.experiment_id for e in self.search_experiments(max_results=50_000)]

    def _linked_model_id(self, model: Any) -> str:
        if isinstance(model, ModelVersion):
            return model.model_id or self._model_id_of_source(model.source)
        if isinstance(model, str) and ":" in model:
            if model.startswith("models:"):
                version = self._model_version(model)
                return version.model_id or self._model_id_of_source(version.source)
            return self._model_id_of_source(model)
        model_id = getattr(model, "model_id", model)
        if not isinstance(model_id, str) or not model_id:
            raise InvalidInputError(
                f"expected a model id, a logged model or a model URI, got {model!r}",
                field="model",
            )
        return model_id

    def _model_id_of_source(self, uri: str) -> str:
        ref = parse_run_uri(self.resolve_model_uri(uri))
        for logged in self.store.search_logged_models(ref.run_id):
            if logged.artifact_path == ref.path:
                return logged.model_id
        raise NotFoundError(f"no logged model at {uri!r}")
