"""Log the demo sweep: a parent run and one nested run per configuration.

Each part of what a run logs has its own function, so new parts (demo traces) slot in.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field
from typing import Any

import tracemark as tm
from tracemark.demo._dataset import (
    BATCH_SIZE,
    CONFIGS,
    DATASET,
    DEMO_EXPERIMENT,
    JUDGE_MODEL,
    PROMPTS,
    QUESTIONS,
    DemoConfig,
)
from tracemark.entities import Experiment, LifecycleStage, Run
from tracemark.exceptions import InvalidInputError


@dataclass(slots=True)
class DemoResult:
    """What `run_demo` logged: the experiment, the sweep's parent run and its nested runs."""

    tracking_uri: str
    experiment: Experiment
    parent_run: Run
    runs: list[Run] = field(default_factory=list)
    database: str | None = None  # the SQLite file, when the store is one

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "tracking_uri": self.tracking_uri,
            "database": self.database,
            "experiment": self.experiment.to_dict(),
            "parent_run": self.parent_run.to_dict(),
            "runs": [run.to_dict() for run in self.runs],
        }


class SimulatedProviderError(RuntimeError):
    """The error the failing demo configuration raises, as a model provider would."""


def run_demo(
    tracking_uri: str | None = None,
    *,
    runs: int | None = None,
    seed: int = 0,
    experiment_name: str = DEMO_EXPERIMENT,
) -> DemoResult:
    """Log the demo experiment and return what was logged.

    Points the fluent API at `tracking_uri` when given (as `tm.set_tracking_uri` does) and
    makes the demo experiment the active one. Each call adds a new sweep to the experiment.

    Example:
        result = run_demo("sqlite:///demo.db", runs=3)
        assert [r.run_name for r in result.runs] == ["baseline", "grounded-mini", "grounded-haiku"]

    Args:
        tracking_uri: where to log; the current tracking URI by default (`./tracemark.db`).
        runs: how many configurations to evaluate, 1 to 5; all of them by default.
        seed: seeds the simulated answers, so the same seed logs the same numbers.
        experiment_name: the experiment to log into, created when missing.
    """
    configs = _select_configs(runs)
    if tracking_uri is not None:
        tm.set_tracking_uri(tracking_uri)
    experiment = _prepare_experiment(experiment_name)
    with tm.start_run(
        run_name="prompt-sweep",
        tags={"tracemark.demo": "true", "team": "support"},
        description=f"Compare {len(configs)} prompt/model configurations on {DATASET}.",
    ) as parent:
        _log_sweep_params(len(configs))
        children = [tm.get_run(_evaluate_config(config, seed)) for config in configs]
        _log_sweep_summary(children)
    from tracemark.demo._traces import log_demo_traces

    log_demo_traces(seed=seed)  # after the sweep, so the agent's traces link to no run
    from tracemark.demo._evaluations import log_demo_evaluations

    log_demo_evaluations(seed=seed)
    return DemoResult(
        tracking_uri=tm.get_tracking_uri(),
        experiment=tm.get_experiment(experiment.experiment_id),
        parent_run=tm.get_run(parent.run_id),
        runs=children,
        database=_sqlite_file(tm.get_tracking_uri()),
    )


def _select_configs(runs: int | None) -> tuple[DemoConfig, ...]:
    if runs is None:
        return CONFIGS
    if not 1 <= runs <= len(CONFIGS):
        raise InvalidInputError(
            f"the demo has {len(CONFIGS)} configurations; runs must be 1 to {len(CONFIGS)}, "
            f"got {runs}",
            field="runs",
        )
    return CONFIGS[:runs]


def _prepare_experiment(name: str) -> Experiment:
    """Reuse the demo experiment (new runs are added), or create it with its tags."""
    existing = tm.get_experiment_by_name(name)
    if existing is not None and existing.lifecycle_stage == LifecycleStage.DELETED:
        raise InvalidInputError(
            f"experiment {name!r} is deleted; restore it with "
            f"`tracemark experiments restore {existing.experiment_id}` or log elsewhere",
            field="experiment",
        )
    experiment = tm.set_experiment(name)
    if existing is None:
        tm.set_experiment_tags(
            {"project": "support-bot", "dataset": DATASET, "tracemark.demo": "true"}
        )
    return experiment


def _log_sweep_params(n_configs: int) -> None:
    tm.log_params(
        {
            "dataset": DATASET,
            "n_questions": len(QUESTIONS),
            "batch_size": BATCH_SIZE,
            "judge_model": JUDGE_MODEL,
            "n_configs": n_configs,
        }
    )


def _log_sweep_summary(children: list[Run]) -> None:
    finished = [r for r in children if r.status == "FINISHED" and "accuracy" in r.metrics]
    if not finished:
        return
    best = max(finished, key=lambda r: (r.metrics["accuracy"], -r.metrics.get("cost_usd", 0)))
    tm.log_metric("best_accuracy", best.metrics["accuracy"])
    tm.set_tags({"best_run": best.run_name, "best_run_id": best.run_id})


def _evaluate_config(config: DemoConfig, seed: int) -> str:
    """Log one nested run (params, artifacts, then the evaluation batches); return its id."""
    rng = random.Random(f"{seed}:{config.run_name}")
    active = tm.start_run(
        run_name=config.run_name,
        nested=True,
        tags={"stage": "prompt-exploration", "provider": _provider(config.model)},
        description=(
            f"{config.model} with the {config.prompt_template} prompt "
            f"at temperature {config.temperature}"
        ),
    )
    try:
        with active:
            _log_config(config)
            _log_config_artifacts(config, seed)
            _run_evaluation(config, rng)
    except SimulatedProviderError:
        pass  # the run ended as FAILED with what it logged so far; the sweep goes on
    return active.run_id


def _run_evaluation(config: DemoConfig, rng: random.Random) -> None:
    """Answer the questions batch by batch, logging one step of each metric per batch."""
    state = _EvalState()
    batches = [QUESTIONS[i : i + BATCH_SIZE] for i in range(0, len(QUESTIONS), BATCH_SIZE)]
    for step, batch in enumerate(batches, start=1):
        if config.fails_at_batch == step:
            message = (
                f"{config.model}: context window exceeded (8412 > 8192 tokens) "
                f"in evaluation batch {step}"
            )
            tm.set_tag("error", message)
            raise SimulatedProviderError(message)
        rows = _answer_batch(config, batch, rng)
        _log_batch_metrics(state, rows, step)
        _log_predictions(rows)


def _provider(model: str) -> str:
    if model.startswith("gpt"):
        return "openai"
    if model.startswith("claude"):
        return "anthropic"
    return "self-hosted"


def _log_config(config: DemoConfig) -> None:
    tm.log_params(
        {
            "model": config.model,
            "prompt_template": config.prompt_template,
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
            "dataset": DATASET,
        }
    )


def _log_config_artifacts(config: DemoConfig, seed: int) -> None:
    """Log the prompt template as text and the evaluation config as YAML."""
    tm.log_text(PROMPTS[config.prompt_template], f"prompts/{config.prompt_template}.txt")
    tm.log_dict(
        {
            "dataset": {"name": DATASET, "questions": len(QUESTIONS), "batch_size": BATCH_SIZE},
            "model": {
                "name": config.model,
                "temperature": config.temperature,
                "max_tokens": config.max_tokens,
            },
            "judge": {"model": JUDGE_MODEL, "criteria": ["correctness", "faithfulness"]},
            "metrics": ["accuracy", "faithfulness", "latency_p50_ms", "cost_usd"],
            "seed": seed,
        },
        "eval_config.yaml",
    )


def _answer_batch(
    config: DemoConfig, batch: tuple[tuple[str, str, str], ...], rng: random.Random
) -> list[dict[str, Any]]:
    """Simulate the model answering a batch and the judge scoring each answer."""
    prompt_tokens = 120 if config.prompt_template == "concise-v1" else 940
    rows = []
    for question, expected, wrong in batch:
        correct = rng.random() < config.accuracy
        mean = config.faithfulness if correct else config.faithfulness - 0.35
        completion_tokens = rng.randint(28, 70)
        rows.append(
            {
                "question": question,
                "expected": expected,
                "answer": expected if correct else wrong,
                "correct": correct,
                "faithfulness": round(min(1.0, max(0.0, rng.gauss(mean, 0.06))), 3),
                "latency_ms": round(config.latency_ms * rng.lognormvariate(0.0, 0.25), 1),
                "cost_usd": (prompt_tokens * config.price_in + completion_tokens * config.price_out)
                / 1e6,
            }
        )
    return rows


@dataclass(slots=True)
class _EvalState:
    """Running totals across batches, so accuracy and cost are cumulative."""

    answered: int = 0
    correct: int = 0
    faithfulness: list[float] = field(default_factory=list)
    cost_usd: float = 0.0


def _log_batch_metrics(state: _EvalState, rows: list[dict[str, Any]], step: int) -> None:
    """Log one point of each history: running accuracy/faithfulness/cost, batch p50 latency."""
    state.answered += len(rows)
    state.correct += sum(row["correct"] for row in rows)
    state.faithfulness.extend(row["faithfulness"] for row in rows)
    state.cost_usd += sum(row["cost_usd"] for row in rows)
    tm.log_metrics(
        {
            "accuracy": round(state.correct / state.answered, 4),
            "faithfulness": round(statistics.fmean(state.faithfulness), 4),
            "latency_p50_ms": round(statistics.median(row["latency_ms"] for row in rows), 1),
            "cost_usd": round(state.cost_usd, 6),
        },
        step=step,
    )


def _log_predictions(rows: list[dict[str, Any]]) -> None:
    """Append the batch's rows to the run's prediction table."""
    columns = ("question", "expected", "answer", "correct", "faithfulness", "latency_ms")
    tm.log_table({c: [row[c] for row in rows] for c in columns}, "predictions.json")


def _sqlite_file(uri: str) -> str | None:
    from tracemark.store.sql.engine import normalize_url, sqlite_path

    try:
        return sqlite_path(normalize_url(uri))
    except InvalidInputError:
        return None
