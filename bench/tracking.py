"""Tracking benchmark: tracemark against MLflow, on SQLite, in one process.

Three workloads, each run against a fresh temporary SQLite database per library:

  log_metric   N metrics logged one call at a time to one run
  log_batch    N metrics logged to one run in batches of 1,000 (MLflow's per-call limit)
  runs+params  R runs, each created, given 20 params in one call and ended

Both databases are created, migrated and warmed up (one run, one of each call) before
anything is timed. Afterwards every run is read back and counted, so a fast result that
lost data fails loudly. The budget of issue 3 is checked at the end: one `log_metric`
call must take at most a fifth of MLflow's.

    python bench/tracking.py            # full size: N=10,000, R=100
    python bench/tracking.py --quick    # smoke run: N=1,000, R=10
    python bench/tracking.py --json     # also print the figures as JSON (or --json FILE)
    python bench/tracking.py --check    # exit 1 when a budget is missed
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

BATCH_SIZE = 1_000  # MLflow refuses more than 1,000 metrics in one log_batch call
PARAMS_PER_RUN = 20
LOG_METRIC_MIN_SPEEDUP = 5.0  # issue 3: per-call log_metric at least 5x faster than MLflow
BASE_TIMESTAMP = 1_700_000_000_000


# -- the two libraries behind one small interface ------------------------------------------


class Backend:
    """What a workload needs from a tracking library; one subclass per library."""

    name = ""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.uri = f"sqlite:///{os.path.join(folder, 'tracking.db')}"

    def new_run(self, name: str) -> str:
        raise NotImplementedError

    def log_metric(self, run_id: str, key: str, value: float, timestamp: int, step: int) -> None:
        raise NotImplementedError

    def metric_batch(self, metrics: list[tuple[str, float, int, int]]) -> Any:
        """Build the library's metric entities (outside the timed part)."""
        raise NotImplementedError

    def param_batch(self, params: dict[str, str]) -> Any:
        raise NotImplementedError

    def log_batch(self, run_id: str, metrics: Any = (), params: Any = ()) -> None:
        raise NotImplementedError

    def end_run(self, run_id: str) -> None:
        raise NotImplementedError

    def history_length(self, run_id: str, key: str) -> int:
        raise NotImplementedError

    def run_summary(self, run_id: str) -> tuple[str, int]:
        """Return (status, number of params) of a run."""
        raise NotImplementedError

    def warm_up(self) -> None:
        """Create and migrate the database and exercise every call once."""
        run_id = self.new_run("warm-up")
        self.log_metric(run_id, "warm", 1.0, BASE_TIMESTAMP, 0)
        self.log_batch(
            run_id,
            metrics=self.metric_batch([("warm_batch", 1.0, BASE_TIMESTAMP, 0)]),
            params=self.param_batch({"warm": "1"}),
        )
        self.end_run(run_id)
        self.history_length(run_id, "warm")
        self.run_summary(run_id)


class Tracemark(Backend):
    name = "tracemark"

    def __init__(self, folder: str) -> None:
        super().__init__(folder)
        from tracemark import Metric, Param, TracemarkClient

        self._metric, self._param = Metric, Param
        self.client = TracemarkClient(self.uri)
        self.experiment_id = self.client.create_experiment("bench")

    def new_run(self, name: str) -> str:
        return self.client.create_run(self.experiment_id, run_name=name).run_id

    def log_metric(self, run_id: str, key: str, value: float, timestamp: int, step: int) -> None:
        self.client.log_metric(run_id, key, value, timestamp, step)

    def metric_batch(self, metrics: list[tuple[str, float, int, int]]) -> Any:
        return [self._metric(k, v, ts, step) for k, v, ts, step in metrics]

    def param_batch(self, params: dict[str, str]) -> Any:
        return [self._param(k, v) for k, v in params.items()]

    def log_batch(self, run_id: str, metrics: Any = (), params: Any = ()) -> None:
        self.client.log_batch(run_id, metrics=metrics, params=params)

    def end_run(self, run_id: str) -> None:
        self.client.set_terminated(run_id)

    def history_length(self, run_id: str, key: str) -> int:
        return len(self.client.get_metric_history(run_id, key))

    def run_summary(self, run_id: str) -> tuple[str, int]:
        run = self.client.get_run(run_id)
        return run.status, len(run.params)


class Mlflow(Backend):
    name = "MLflow"

    def __init__(self, folder: str) -> None:
        super().__init__(folder)
        import mlflow
        from mlflow.entities import Metric, Param

        self._metric, self._param = Metric, Param
        self.client = mlflow.MlflowClient(tracking_uri=self.uri)
        self.experiment_id = self.client.create_experiment(
            "bench", artifact_location=os.path.join(self.folder, "artifacts")
        )

    def new_run(self, name: str) -> str:
        return self.client.create_run(self.experiment_id, run_name=name).info.run_id

    def log_metric(self, run_id: str, key: str, value: float, timestamp: int, step: int) -> None:
        self.client.log_metric(run_id, key, value, timestamp=timestamp, step=step)

    def metric_batch(self, metrics: list[tuple[str, float, int, int]]) -> Any:
        return [self._metric(k, v, ts, step) for k, v, ts, step in metrics]

    def param_batch(self, params: dict[str, str]) -> Any:
        return [self._param(k, v) for k, v in params.items()]

    def log_batch(self, run_id: str, metrics: Any = (), params: Any = ()) -> None:
        self.client.log_batch(run_id, metrics=metrics, params=params)

    def end_run(self, run_id: str) -> None:
        self.client.set_terminated(run_id)

    def history_length(self, run_id: str, key: str) -> int:
        return len(self.client.get_metric_history(run_id, key))

    def run_summary(self, run_id: str) -> tuple[str, int]:
        run = self.client.get_run(run_id)
        return run.info.status, len(run.data.params)


def quiet_mlflow() -> bool:
    """Turn off MLflow's telemetry and chatter; return False when MLflow is not installed."""
    # Telemetry would add network calls and a background thread to the timed section.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    warnings.filterwarnings("ignore", module="mlflow")
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    # After the import: MLflow configures its own loggers when imported.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return True


# -- workloads -----------------------------------------------------------------------------


@dataclass
class Figure:
    """One workload's timing for one library."""

    seconds: float
    calls: int

    @property
    def us_per_call(self) -> float:
        return self.seconds / self.calls * 1e6


def _timed(action: Callable[[], int]) -> Figure:
    start = time.perf_counter()
    calls = action()
    return Figure(time.perf_counter() - start, calls)


def bench_log_metric(backend: Backend, n: int) -> Figure:
    run_id = backend.new_run("log_metric")

    def action() -> int:
        log = backend.log_metric
        for i in range(n):
            log(run_id, "loss", 1.0 / (i + 1), BASE_TIMESTAMP + i, i)
        return n

    figure = _timed(action)
    backend.end_run(run_id)
    _expect(backend, "log_metric history", backend.history_length(run_id, "loss"), n)
    return figure


def bench_log_batch(backend: Backend, n: int) -> Figure:
    run_id = backend.new_run("log_batch")
    batches = [
        backend.metric_batch(
            [
                ("loss", 1.0 / (i + 1), BASE_TIMESTAMP + i, i)
                for i in range(start, min(start + BATCH_SIZE, n))
            ]
        )
        for start in range(0, n, BATCH_SIZE)
    ]

    def action() -> int:
        for batch in batches:
            backend.log_batch(run_id, metrics=batch)
        return len(batches)

    figure = _timed(action)
    backend.end_run(run_id)
    _expect(backend, "log_batch history", backend.history_length(run_id, "loss"), n)
    return figure


def bench_runs_with_params(backend: Backend, runs: int) -> Figure:
    params = [
        backend.param_batch({f"param_{j}": f"value-{i}-{j}" for j in range(PARAMS_PER_RUN)})
        for i in range(runs)
    ]
    run_ids: list[str] = []

    def action() -> int:
        for i in range(runs):
            run_id = backend.new_run(f"run-{i}")
            backend.log_batch(run_id, params=params[i])
            backend.end_run(run_id)
            run_ids.append(run_id)
        return runs

    figure = _timed(action)
    _expect(backend, "runs created", len(run_ids), runs)
    for run_id in run_ids:
        status, count = backend.run_summary(run_id)
        _expect(backend, f"params of run {run_id}", count, PARAMS_PER_RUN)
        _expect(backend, f"status of run {run_id}", status, "FINISHED")
    return figure


def _expect(backend: Backend, what: str, got: object, want: object) -> None:
    if got != want:
        raise SystemExit(f"{backend.name}: {what} is {got!r}, expected {want!r}: data was lost")


# -- running and reporting -----------------------------------------------------------------


@dataclass
class Row:
    """One line of the report."""

    workload: str
    calls: int
    unit: str
    tracemark_s: float
    tracemark_us: float
    mlflow_s: float | None
    mlflow_us: float | None

    @property
    def ratio(self) -> float | None:
        if self.mlflow_s is None:
            return None
        return self.mlflow_s / self.tracemark_s


@contextlib.contextmanager
def _scratch(prefix: str) -> Iterator[str]:
    """A temporary folder that is also the working directory, removed afterwards."""
    folder = tempfile.mkdtemp(prefix=prefix)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(cwd)
        shutil.rmtree(folder, ignore_errors=True)


def run(n: int, runs: int, with_mlflow: bool) -> list[Row]:
    workloads = [
        (f"log_metric x {n:,}", "call", lambda b: bench_log_metric(b, n)),
        (
            f"log_batch {n:,} ({BATCH_SIZE:,}/call)",
            "call",
            lambda b: bench_log_batch(b, n),
        ),
        (
            f"{runs} runs x {PARAMS_PER_RUN} params",
            "run",
            lambda b: bench_runs_with_params(b, runs),
        ),
    ]
    figures: dict[str, list[Figure]] = {}
    backends: list[type[Backend]] = [Tracemark] + ([Mlflow] if with_mlflow else [])
    for cls in backends:
        with _scratch(f"bench-{cls.name.lower()}-") as folder:
            backend = cls(folder)
            backend.warm_up()
            figures[cls.name] = [bench(backend) for _, _, bench in workloads]
            print(f"  {cls.name}: done", file=sys.stderr)
    rows = []
    for i, (label, unit, _) in enumerate(workloads):
        ours = figures["tracemark"][i]
        theirs = figures["MLflow"][i] if with_mlflow else None
        rows.append(
            Row(
                workload=label,
                calls=ours.calls,
                unit=unit,
                tracemark_s=ours.seconds,
                tracemark_us=ours.us_per_call,
                mlflow_s=None if theirs is None else theirs.seconds,
                mlflow_us=None if theirs is None else theirs.us_per_call,
            )
        )
    return rows


def budgets(rows: list[Row]) -> list[tuple[str, bool | None, str]]:
    """Return (budget, passed or None when not measurable, detail)."""
    ratio = rows[0].ratio
    name = f"log_metric per call >= {LOG_METRIC_MIN_SPEEDUP:g}x faster than MLflow"
    if ratio is None:
        return [(name, None, "MLflow not measured")]
    return [(name, ratio >= LOG_METRIC_MIN_SPEEDUP, f"{ratio:.1f}x")]


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(rows: list[Row]) -> None:
    header = (
        "workload",
        "tracemark",
        "MLflow",
        "tracemark/call",
        "MLflow/call",
        "MLflow/tracemark",
    )
    lines = [
        (
            row.workload,
            f"{row.tracemark_s:.3f} s",
            _fmt(row.mlflow_s, ".3f") + (" s" if row.mlflow_s is not None else ""),
            f"{row.tracemark_us:,.0f} µs/{row.unit}",
            _fmt(row.mlflow_us, ",.0f") + (f" µs/{row.unit}" if row.mlflow_us is not None else ""),
            _fmt(row.ratio, ".1f") + ("x" if row.ratio is not None else ""),
        )
        for row in rows
    ]
    widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(len(header))]

    def render(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    print(render(header))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(render(line))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="write the figures as JSON to FILE (stdout when no FILE is given)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a budget is missed")
    parser.add_argument("--no-mlflow", action="store_true", help="time tracemark only")
    args = parser.parse_args(argv)

    n, runs = (1_000, 10) if args.quick else (10_000, 100)
    with_mlflow = not args.no_mlflow and quiet_mlflow()
    if not args.no_mlflow and not with_mlflow:
        print("MLflow is not installed (pip install 'tracemark[bench]'): tracemark only.")

    import tracemark

    mlflow_version = None
    if with_mlflow:
        import mlflow

        mlflow_version = mlflow.__version__
    print(
        f"tracking benchmark: tracemark {tracemark.__version__}"
        + (f", MLflow {mlflow_version}" if mlflow_version else "")
        + f", Python {platform.python_version()}, SQLite files in {tempfile.gettempdir()}"
    )
    rows = run(n, runs, with_mlflow)
    print()
    print_table(rows)
    print()
    results = budgets(rows)
    for name, passed, detail in results:
        verdict = {True: "PASS", False: "FAIL", None: "SKIP"}[passed]
        print(f"{verdict}  {name}: {detail}")

    if args.json:
        payload = {
            "tracemark": tracemark.__version__,
            "mlflow": mlflow_version,
            "python": platform.python_version(),
            "n_metrics": n,
            "batch_size": BATCH_SIZE,
            "runs": runs,
            "params_per_run": PARAMS_PER_RUN,
            "rows": [{**asdict(row), "ratio": row.ratio} for row in rows],
            "budgets": [{"budget": b, "passed": p, "detail": d} for b, p, d in results],
        }
        text = json.dumps(payload, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
    missed = any(passed is False for _, passed, _ in results)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
