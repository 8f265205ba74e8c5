"""Import-time benchmark: `python -c "import tracemark"` against bare `python -c pass`.

Each command runs in a fresh interpreter (the one running this script), alternately, and
the median of the runs is reported. The budget of issue 3: importing tracemark costs at
most 50 ms more than starting Python.

    python bench/import_time.py            # median of 10 runs each
    python bench/import_time.py --detail   # also the slowest imports, from -X importtime
    python bench/import_time.py --json     # also print the figures as JSON (or --json FILE)
    python bench/import_time.py --check    # exit 1 when the budget is missed
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

BUDGET_MS = 50.0
BASELINE = "pass"
SUBJECT = "import tracemark"


def wall_ms(code: str) -> float:
    """Run `python -c code` once and return its wall time in milliseconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - start) * 1000


def measure(runs: int) -> tuple[list[float], list[float]]:
    """Time both commands `runs` times, alternating so drift affects both alike."""
    wall_ms(BASELINE)  # warm the file system cache before anything counts
    wall_ms(SUBJECT)
    bare, imported = [], []
    for _ in range(runs):
        bare.append(wall_ms(BASELINE))
        imported.append(wall_ms(SUBJECT))
    return bare, imported


def import_offenders(top: int) -> list[tuple[str, int, int]]:
    """Return the `top` modules by cumulative import time: (module, self µs, cumulative µs)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", SUBJECT],
        check=True,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package"
        if not line.startswith("import time:") or "[us]" in line:
            continue
        self_us, cumulative_us, module = line.removeprefix("import time:").split("|", 2)
        rows.append((module.rstrip(), int(self_us), int(cumulative_us)))
    rows.sort(key=lambda row: row[2], reverse=True)
    return rows[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each command (10)")
    parser.add_argument("--detail", action="store_true", help="show the slowest imports")
    parser.add_argument("--top", type=int, default=15, help="how many imports --detail shows")
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="write the figures as JSON to FILE (stdout when no FILE is given)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when the budget is missed")
    args = parser.parse_args(argv)

    bare, imported = measure(args.runs)
    bare_ms, imported_ms = statistics.median(bare), statistics.median(imported)
    extra_ms = imported_ms - bare_ms
    passed = extra_ms <= BUDGET_MS

    print(f"import benchmark: Python {platform.python_version()}, median of {args.runs} runs")
    lines = [
        (f'python -c "{BASELINE}"', bare_ms),
        (f'python -c "{SUBJECT}"', imported_ms),
        ("difference", extra_ms),
    ]
    width = max(len(label) for label, _ in lines)
    for label, ms in lines:
        print(f"  {label:<{width}}  {ms:7.1f} ms")
    print()
    verdict = "PASS" if passed else "FAIL"
    print(f"{verdict}  import tracemark <= {BUDGET_MS:g} ms over bare python: {extra_ms:.1f} ms")

    offenders = import_offenders(args.top) if args.detail else []
    if offenders:
        print()
        print(f"slowest imports (python -X importtime, top {len(offenders)} by cumulative time)")
        print(f"  {'cumulative':>10}  {'self':>8}  module")
        for module, self_us, cumulative_us in offenders:
            print(f"  {cumulative_us / 1000:8.1f} ms  {self_us / 1000:5.1f} ms  {module}")

    if args.json:
        payload = {
            "python": platform.python_version(),
            "runs": args.runs,
            "bare_ms": bare_ms,
            "import_ms": imported_ms,
            "extra_ms": extra_ms,
            "budget_ms": BUDGET_MS,
            "passed": passed,
            "bare_samples_ms": bare,
            "import_samples_ms": imported,
            "offenders": [
                {"module": m.strip(), "self_us": s, "cumulative_us": c} for m, s, c in offenders
            ],
        }
        text = json.dumps(payload, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
