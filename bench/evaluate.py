"""Evaluation benchmark: tm.evaluate against mlflow.genai.evaluate on the same rows and judges.

500 rows (inputs, outputs and expectations given, so no predict_fn) are judged by three
LLM judges, Correctness, RelevanceToQuery and Guidelines, whose model is a fake
OpenAI-compatible server (tracemark.testing.llm_server, in its own process) that answers
every call after 50 ms. Both tools run in this one process, tracemark first, each into
its own SQLite tracking store, with 10 workers. Afterwards the verdicts each tool stored
are counted from its store: all 1,500 must be there.

Budgets (issue 8):
  - tracemark at least 2x faster than MLflow (wall time),
  - tracemark within 1.3x of the ideal rows * judges * latency / workers,
  - every one of the rows * judges verdicts stored as an assessment.

    python bench/evaluate.py             # 500 rows, MLflow too when installed
    python bench/evaluate.py --rows 100  # fewer rows
    python bench/evaluate.py --no-mlflow
    python bench/evaluate.py --check     # exit 1 when a budget is missed
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import warnings
from dataclasses import asdict, dataclass

from _shared import fake_llm_server, scratch  # bench/ is on sys.path when run

MODEL = "openai:/gpt-4o-mini"
LATENCY_S = 0.05
WORKERS = 10
JUDGES = 3
ANSWER = '{"rationale": "The response answers the question as expected.", "result": "yes"}'
GUIDELINE = "The response must be polite and answer in English."


@dataclass
class Outcome:
    tool: str
    rows: int
    wall_s: float
    verdicts_stored: int
    verdicts_expected: int


def make_rows(count: int) -> list[dict]:
    return [
        {
            "inputs": {"question": f"What is the refund window for order {i}?"},
            "outputs": f"Order {i} can be refunded within 30 days.",
            "expectations": {"expected_response": f"Order {i}: 30 days."},
        }
        for i in range(count)
    ]


def bench_tracemark(rows: list[dict], base_url: str) -> Outcome:
    import tracemark as tm
    from tracemark.evaluation.judges import Correctness, Guidelines, RelevanceToQuery

    with scratch("bench-evaluate-tracemark-"):
        tm.set_tracking_uri(f"sqlite:///{os.path.abspath('tracemark.db')}")
        tm.set_experiment("bench-evaluate")
        judge = {"model": MODEL, "base_url": base_url, "api_key": "bench"}
        scorers = [
            Correctness(**judge),
            RelevanceToQuery(**judge),
            Guidelines(guidelines=GUIDELINE, **judge),
        ]
        started = time.perf_counter()
        result = tm.evaluate(data=rows, scorers=scorers, max_workers=WORKERS, progress=False)
        wall = time.perf_counter() - started
        stored = 0
        page = tm.search_traces(run_id=result.run_id, max_results=1000)
        for info in page:
            stored += sum(
                1
                for a in info.assessments
                if a.source.source_type == "LLM_JUDGE" and a.error is None
            )

    return Outcome("tracemark", len(rows), wall, stored, len(rows) * JUDGES)


def bench_mlflow(rows: list[dict], base_url: str) -> Outcome:
    import mlflow
    from mlflow.genai.scorers import Correctness, Guidelines, RelevanceToQuery

    os.environ["OPENAI_BASE_URL"] = base_url
    os.environ["OPENAI_API_KEY"] = "bench"
    os.environ.setdefault("MLFLOW_GENAI_EVAL_MAX_WORKERS", str(WORKERS))
    with scratch("bench-evaluate-mlflow-"):
        mlflow.set_tracking_uri(f"sqlite:///{os.path.abspath('mlflow.db')}")
        mlflow.set_experiment("bench-evaluate")
        scorers = [
            Correctness(model=MODEL),
            RelevanceToQuery(model=MODEL),
            Guidelines(guidelines=GUIDELINE, model=MODEL),
        ]
        started = time.perf_counter()
        result = mlflow.genai.evaluate(data=rows, scorers=scorers)
        wall = time.perf_counter() - started
        if hasattr(mlflow, "flush_trace_async_logging"):
            mlflow.flush_trace_async_logging()
        traces = mlflow.search_traces(run_id=result.run_id, return_type="list", max_results=5000)
        stored = sum(
            1
            for trace in traces
            for a in trace.info.assessments
            if a.source.source_type == "LLM_JUDGE" and getattr(a, "error", None) is None
        )
    return Outcome("MLflow", len(rows), wall, stored, len(rows) * JUDGES)


def quiet_mlflow() -> bool:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    warnings.filterwarnings("ignore")
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return True


def budgets(outcomes: list[Outcome], latency: float) -> list[tuple[str, bool | None, str]]:
    by_tool = {o.tool: o for o in outcomes}
    ours = by_tool["tracemark"]
    ideal = ours.rows * JUDGES * latency / WORKERS
    checks: list[tuple[str, bool | None, str]] = [
        (
            "within 1.3x of the ideal",
            ours.wall_s <= 1.3 * ideal,
            f"{ours.wall_s:.2f} s vs ideal {ideal:.2f} s ({ours.wall_s / ideal:.2f}x)",
        ),
        (
            "every verdict stored",
            ours.verdicts_stored == ours.verdicts_expected,
            f"{ours.verdicts_stored} / {ours.verdicts_expected}",
        ),
    ]
    theirs = by_tool.get("MLflow")
    if theirs is None:
        checks.append(("at least 2x faster than MLflow", None, "MLflow not run"))
    else:
        speedup = theirs.wall_s / ours.wall_s
        checks.append(
            (
                "at least 2x faster than MLflow",
                speedup >= 2.0,
                f"{speedup:.1f}x ({ours.wall_s:.2f} s vs {theirs.wall_s:.2f} s); MLflow stored "
                f"{theirs.verdicts_stored} / {theirs.verdicts_expected} verdicts",
            )
        )
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--latency", type=float, default=LATENCY_S)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--json", nargs="?", const="-", help="print figures as JSON (or FILE)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a budget is missed")
    args = parser.parse_args(argv)

    with_mlflow = not args.no_mlflow and quiet_mlflow()
    rows = make_rows(args.rows)
    outcomes: list[Outcome] = []
    with fake_llm_server("--delay", str(args.latency), "--text", ANSWER) as base_url:
        outcomes.append(bench_tracemark(rows, base_url))
        if with_mlflow:
            outcomes.append(bench_mlflow(rows, base_url))

    print(
        f"\nEvaluation: {args.rows} rows x {JUDGES} judges, judge latency "
        f"{args.latency * 1000:.0f} ms, {WORKERS} workers ({platform.python_version()}, "
        f"{os.cpu_count()} CPUs)"
    )
    print(f"{'tool':<10} {'wall s':>8} {'verdicts stored':>16}")
    for o in outcomes:
        print(f"{o.tool:<10} {o.wall_s:>8.2f} {o.verdicts_stored:>9} / {o.verdicts_expected}")
    checks = budgets(outcomes, args.latency)
    print()
    for name, ok, detail in checks:
        mark = "n/a " if ok is None else ("PASS" if ok else "FAIL")
        print(f"[{mark}] {name}: {detail}")
    if args.json:
        payload = json.dumps(
            {"outcomes": [asdict(o) for o in outcomes], "budgets": checks}, indent=2
        )
        if args.json == "-":
            print(payload)
        else:
            with open(args.json, "w") as fh:
                fh.write(payload)
    if args.check and any(ok is False for _, ok, _ in checks):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
