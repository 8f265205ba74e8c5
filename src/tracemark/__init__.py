"""tracemark: trace, track, evaluate and version LLM applications and agents.

Every public name is loaded on first use, so ``import tracemark`` stays instant and pulls
in neither SQLAlchemy nor pandas.

Example:
    import tracemark as tm

    tm.set_experiment("support-agent")
    with tm.start_run(run_name="prompt-v2"):
        tm.log_param("model", "gpt-4o-mini")
        tm.log_metric("accuracy", 0.91)
"""

from __future__ import annotations

import importlib

from tracemark._version import __version__

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs 15 ms at start-up
if TYPE_CHECKING:
    from typing import Any

_TRACKING = "tracemark.tracking.fluent"
_TRACING = "tracemark.tracing.fluent"
_REGISTRY = "tracemark.registry.fluent"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "ActiveModel": "tracemark.registry.active_model",
    "ActiveRun": _TRACKING,
    "Assessment": "tracemark.entities.trace",
    "AssessmentSource": "tracemark.entities.trace",
    "EvaluationResult": "tracemark.evaluation.results",
    "Experiment": "tracemark.entities",
    "Feedback": "tracemark.evaluation.scorers",
    "LoggedModel": "tracemark.entities.model",
    "Metric": "tracemark.entities",
    "ModelVersion": "tracemark.entities.model",
    "PagedList": "tracemark.entities",
    "Param": "tracemark.entities",
    "Prompt": "tracemark.entities.prompt",
    "PromptVersion": "tracemark.entities.prompt",
    "PythonModel": "tracemark.registry.python_model",
    "RegisteredModel": "tracemark.entities.model",
    "RegisteredScorer": "tracemark.entities.scorer",
    "Run": "tracemark.entities",
    "RunStatus": "tracemark.entities",
    "RunTag": "tracemark.entities",
    "Scorer": "tracemark.evaluation.scorers",
    "ScorerStatus": "tracemark.entities.scorer",
    "Span": "tracemark.entities.trace",
    "SpanEvent": "tracemark.entities.trace",
    "SpanType": "tracemark.entities.trace",
    "Trace": "tracemark.entities.trace",
    "TraceInfo": "tracemark.entities.trace",
    "TraceStatus": "tracemark.entities.trace",
    "TracemarkClient": "tracemark.client",
    "TracemarkError": "tracemark.exceptions",
    "Webhook": "tracemark.entities.webhook",
    "WebhookDelivery": "tracemark.entities.webhook",
    "WebhookEvent": "tracemark.entities.webhook",
    "active_run": _TRACKING,
    "autolog": "tracemark.integrations",
    "clear_active_model": _REGISTRY,
    "create_experiment": _TRACKING,
    "delete_assessment": _TRACING,
    "delete_experiment": _TRACKING,
    "delete_prompt_alias": _REGISTRY,
    "delete_run": _TRACKING,
    "delete_scorer": "tracemark.evaluation.production",
    "delete_tag": _TRACKING,
    "delete_trace_tag": _TRACING,
    "delete_traces": _TRACING,
    "download_artifacts": _TRACKING,
    "end_run": _TRACKING,
    "evaluate": "tracemark.evaluation.harness",
    "flush": _TRACING,
    "get_active_model_id": _REGISTRY,
    "get_assessment": _TRACING,
    "get_current_active_span": _TRACING,
    "get_experiment": _TRACKING,
    "get_experiment_by_name": _TRACKING,
    "get_last_active_trace_id": _TRACING,
    "get_model_config": "tracemark.registry.python_model",
    "get_prompt": _REGISTRY,
    "get_run": _TRACKING,
    "get_scorer": "tracemark.evaluation.production",
    "get_trace": _TRACING,
    "get_trace_attachment": _TRACING,
    "get_tracking_uri": _TRACKING,
    "last_active_run": _TRACKING,
    "list_artifacts": _TRACKING,
    "list_scorers": "tracemark.evaluation.production",
    "load_dict": _TRACKING,
    "load_model": _REGISTRY,
    "load_prompt": _REGISTRY,
    "load_table": _TRACKING,
    "load_text": _TRACKING,
    "log_artifact": _TRACKING,
    "log_artifacts": _TRACKING,
    "log_dict": _TRACKING,
    "log_expectation": _TRACING,
    "log_feedback": _TRACING,
    "log_image": _TRACKING,
    "log_metric": _TRACKING,
    "log_metrics": _TRACKING,
    "log_model": _REGISTRY,
    "log_param": _TRACKING,
    "log_params": _TRACKING,
    "log_table": _TRACKING,
    "log_text": _TRACKING,
    "make_judge": "tracemark.evaluation.judges",
    "override_feedback": _TRACING,
    "register_model": _REGISTRY,
    "register_prompt": _REGISTRY,
    "register_scorer": "tracemark.evaluation.production",
    "rename_experiment": _TRACKING,
    "restore_experiment": _TRACKING,
    "scorer": "tracemark.evaluation.scorers",
    "search_experiments": _TRACKING,
    "search_model_runs": _REGISTRY,
    "search_model_traces": _REGISTRY,
    "search_model_versions": _REGISTRY,
    "search_prompt_versions": _REGISTRY,
    "search_prompts": _REGISTRY,
    "search_registered_models": _REGISTRY,
    "search_runs": _TRACKING,
    "search_traces": _TRACING,
    "set_active_model": _REGISTRY,
    "set_experiment": _TRACKING,
    "set_experiment_tag": _TRACKING,
    "set_experiment_tags": _TRACKING,
    "set_model": "tracemark.registry.python_model",
    "set_prompt_alias": _REGISTRY,
    "set_tag": _TRACKING,
    "set_tags": _TRACKING,
    "set_trace_tag": _TRACING,
    "set_tracking_uri": _TRACKING,
    "start_run": _TRACKING,
    "start_span": _TRACING,
    "trace": _TRACING,
    "update_assessment": _TRACING,
    "update_current_trace": _TRACING,
    "update_scorer": "tracemark.evaluation.production",
    "verify_webhook_signature": "tracemark.registry.webhooks",
}

__all__ = [
    "ActiveModel",
    "ActiveRun",
    "Assessment",
    "AssessmentSource",
    "EvaluationResult",
    "Experiment",
    "Feedback",
    "LoggedModel",
    "Metric",
    "ModelVersion",
    "PagedList",
    "Param",
    "Prompt",
    "PromptVersion",
    "PythonModel",
    "RegisteredModel",
    "RegisteredScorer",
    "Run",
    "RunStatus",
    "RunTag",
    "Scorer",
    "ScorerStatus",
    "Span",
    "SpanEvent",
    "SpanType",
    "Trace",
    "TraceInfo",
    "TraceStatus",
    "TracemarkClient",
    "TracemarkError",
    "Webhook",
    "WebhookDelivery",
    "WebhookEvent",
    "__version__",
    "active_run",
    "autolog",
    "clear_active_model",
    "create_experiment",
    "delete_assessment",
    "delete_experiment",
    "delete_prompt_alias",
    "delete_run",
    "delete_scorer",
    "delete_tag",
    "delete_trace_tag",
    "delete_traces",
    "download_artifacts",
    "end_run",
    "evaluate",
    "flush",
    "get_active_model_id",
    "get_assessment",
    "get_current_active_span",
    "get_experiment",
    "get_experiment_by_name",
    "get_last_active_trace_id",
    "get_model_config",
    "get_prompt",
    "get_run",
    "get_scorer",
    "get_trace",
    "get_trace_attachment",
    "get_tracking_uri",
    "last_active_run",
    "list_artifacts",
    "list_scorers",
    "load_dict",
    "load_model",
    "load_prompt",
    "load_table",
    "load_text",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_expectation",
    "log_feedback",
    "log_image",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "make_judge",
    "override_feedback",
    "register_model",
    "register_prompt",
    "register_scorer",
    "rename_experiment",
    "restore_experiment",
    "scorer",
    "search_experiments",
    "search_model_runs",
    "search_model_traces",
    "search_model_versions",
    "search_prompt_versions",
    "search_prompts",
    "search_registered_models",
    "search_runs",
    "search_traces",
    "set_active_model",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_model",
    "set_prompt_alias",
    "set_tag",
    "set_tags",
    "set_trace_tag",
    "set_tracking_uri",
    "start_run",
    "start_span",
    "trace",
    "update_assessment",
    "update_current_trace",
    "update_scorer",
    "verify_webhook_signature",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        # Subpackages such as tracemark.tracing are importable attributes too.
        if name in ("tracing", "testing", "exceptions", "entities", "integrations", "evaluation"):
            return importlib.import_module(f"tracemark.{name}")
        if name == "datasets":  # tm.datasets.create_dataset(...)
            return importlib.import_module("tracemark.evaluation.datasets")
        if not name.startswith("_"):
            # tm.openai, tm.anthropic, ...: any registered integration, plugins included.
            from tracemark.integrations import get

            try:
                value = get(name)
            except KeyError:
                pass
            else:
                globals()[name] = value
                return value
        raise AttributeError(f"module 'tracemark' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
