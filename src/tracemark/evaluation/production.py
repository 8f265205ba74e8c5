"""Production scoring: register scorers that a worker runs on an experiment's new traces.

`register_scorer` stores how to rebuild a scorer (`Scorer.to_spec()`), a sample rate and a
trace filter; `tracemark score` or `tracemark server --score` (see `evaluation/worker.py`)
then scores each new trace once and stores the verdicts as assessments.

Example:
    >>> import tracemark as tm
    >>> from my_app.quality import is_concise          # a @tm.scorer in an importable module
    >>> tm.register_scorer(is_concise, sample_rate=0.2, filter_string="tags.env = 'prod'")
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tracemark.entities.scorer import RegisteredScorer, ScorerStatus
from tracemark.evaluation import scorers as _scorers
from tracemark.exceptions import InvalidInputError

if TYPE_CHECKING:
    from tracemark.store.base import Store

__all__ = [
    "ScorersClient",
    "delete_scorer",
    "get_scorer",
    "list_scorers",
    "register_scorer",
    "scorer_spec",
    "update_scorer",
]


def scorer_spec(scorer: Any, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return how a worker rebuilds `scorer`: a Scorer's `to_spec()`, or a plugin's spec.

    Example:
        >>> scorer_spec("no_pii", {"block_emails": False})
        {'kind': 'plugin', 'plugin': 'no_pii', 'config': {'block_emails': False}, ...}

    Args:
        scorer: A Scorer (`@tm.scorer` function, judge, Scorer subclass instance) or the
            name of a scorer plugin (entry-point group `tracemark.scorers`).
        config: Keyword arguments for a plugin that is a class; plugins only.
    """
    if isinstance(scorer, str):
        return _plugin_spec(scorer, config)
    if config is not None:
        raise InvalidInputError("config applies to scorer plugins only", field="config")
    if callable(scorer) and not isinstance(scorer, (_scorers.Scorer, type)):
        scorer = _scorers.FunctionScorer(scorer)
    if not isinstance(scorer, _scorers.Scorer):
        raise InvalidInputError(
            f"{scorer!r} is not a scorer: pass a @tm.scorer function, a judge, a Scorer "
            "instance, or the name of an installed scorer plugin",
            field="scorer",
        )
    try:
        spec = scorer.to_spec()
    except InvalidInputError:
        raise
    except Exception as exc:  # a scorer's own to_spec may fail in any way
        raise InvalidInputError(
            f"scorer {scorer.name!r} cannot be registered: {exc}", field="scorer"
        ) from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
        raise InvalidInputError(
            f"scorer {scorer.name!r}: to_spec() must return a dict with a 'kind'", field="scorer"
        )
    return spec


def _plugin_spec(plugin: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    if plugin not in _scorers.load_scorer_plugins():
        raise InvalidInputError(
            f"no installed scorer plugin named {plugin!r} (entry-point group "
            f"{_scorers.ENTRY_POINT_GROUP}); pass a Scorer or install the plugin's package",
            field="scorer",
        )
    spec = {"kind": "plugin", "plugin": plugin, "config": dict(config or {}), "name": plugin}
    try:
        _scorers.from_spec(spec)  # a wrong config fails here, not in every worker pass
    except InvalidInputError:
        raise
    except Exception as exc:
        raise InvalidInputError(
            f"scorer plugin {plugin!r} cannot be built with config {dict(config or {})!r}: {exc}",
            field="config",
        ) from exc
    return spec


class ScorersClient:
    """Registered-scorer methods of `TracemarkClient` (which provides `store`)."""

    store: Store

    def register_scorer(
        self,
        scorer: Any,
        *,
        name: str | None = None,
        experiment_id: str | None = None,
        sample_rate: float = 1.0,
        filter_string: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> RegisteredScorer:
        """Register a scorer to run on the new traces of an experiment.

        Only traces started after registration are scored, each at most once.

        Example:
            >>> import tracemark as tm
            >>> from quality import is_concise
            >>> tm.register_scorer(is_concise, sample_rate=0.5, filter_string="status = 'OK'")

        Args:
            scorer: A scorer defined at the top level of an importable module, or the name
                of an installed scorer plugin.
            name: Unique in the experiment; names the assessments. The scorer's name by
                default.
            experiment_id: The experiment; the current one by default.
            sample_rate: The fraction of traces to score, from 0 to 1 (chosen by a hash of
                the trace id, so a rerun picks the same traces).
            filter_string: Only score traces matching this trace filter.
            config: Keyword arguments for a plugin that is a class.
        """
        spec = scorer_spec(scorer, config)
        name = name or spec.get("name") or getattr(scorer, "name", None)
        if not isinstance(name, str) or not name:
            raise InvalidInputError("the scorer has no name; pass name=...", field="name")
        spec = {**spec, "name": name}
        _check_filter_syntax(filter_string)
        return self.store.create_registered_scorer(
            _experiment(experiment_id),
            name,
            spec,
            sample_rate=sample_rate,
            filter_string=filter_string,
            status=ScorerStatus.ACTIVE,
        )

    def list_scorers(self, experiment_id: str | None = None) -> list[RegisteredScorer]:
        """Return the scorers registered in an experiment, oldest first.

        Example:
            >>> [s.name for s in tm.list_scorers()]

        Args:
            experiment_id: The experiment; the current one by default.
        """
        return self.store.list_registered_scorers(_experiment(experiment_id))

    def get_scorer(self, name: str, *, experiment_id: str | None = None) -> RegisteredScorer:
        """Return one registered scorer, with its settings, status and last error.

        Example:
            >>> tm.get_scorer("is_concise").sample_rate

        Args:
            name: The registered name.
            experiment_id: The experiment; the current one by default.
        """
        return self.store.get_registered_scorer(_experiment(experiment_id), name)

    def update_scorer(
        self,
        name: str,
        *,
        experiment_id: str | None = None,
        sample_rate: float | None = None,
        filter_string: str | None = None,
        status: str | None = None,
    ) -> RegisteredScorer:
        """Change a registered scorer's settings; `status="STOPPED"` pauses it.

        A stopped scorer keeps its place: started again, it scores the traces that arrived
        meanwhile.

        Example:
            >>> tm.update_scorer("is_concise", sample_rate=0.1)
            >>> tm.update_scorer("is_concise", status="STOPPED")

        Args:
            name: The registered name.
            experiment_id: The experiment; the current one by default.
            sample_rate: A new sample rate, from 0 to 1.
            filter_string: A new trace filter; `""` removes the filter.
            status: `"ACTIVE"` or `"STOPPED"`.
        """
        _check_filter_syntax(filter_string)
        return self.store.update_registered_scorer(
            _experiment(experiment_id),
            name,
            sample_rate=sample_rate,
            filter_string=filter_string,
            status=status,
        )

    def delete_scorer(self, name: str, *, experiment_id: str | None = None) -> None:
        """Unregister a scorer; the assessments it wrote stay.

        Example:
            >>> tm.delete_scorer("is_concise")

        Args:
            name: The registered name.
            experiment_id: The experiment; the current one by default.
        """
        self.store.delete_registered_scorer(_experiment(experiment_id), name)


def _experiment(experiment_id: str | None) -> str:
    if experiment_id is not None:
        return str(experiment_id)
    from tracemark.tracking.fluent import DEFAULT_TRACKER

    return str(DEFAULT_TRACKER.current_experiment_id())


def _check_filter_syntax(filter_string: str | None) -> None:
    # The store checks the keys too; parsing here names a syntax error before any request.
    if filter_string:
        from tracemark.store.filter_grammar import parse_filter

        parse_filter(filter_string)


def _on_default_client(method: Callable[..., Any]) -> Callable[..., Any]:
    """Call `method` with the client of the current tracking URI as `self`."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        from tracemark.tracking.fluent import DEFAULT_TRACKER

        return method(DEFAULT_TRACKER.client, *args, **kwargs)

    return call


register_scorer = _on_default_client(ScorersClient.register_scorer)
list_scorers = _on_default_client(ScorersClient.list_scorers)
get_scorer = _on_default_client(ScorersClient.get_scorer)
update_scorer = _on_default_client(ScorersClient.update_scorer)
delete_scorer = _on_default_client(ScorersClient.delete_scorer)
