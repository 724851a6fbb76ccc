"""Benchmark of the CPO/ROAS bootstrap intervals (issue 15): 200 resamples, target ≤ 1 s on the demo.

Builds (once, under bench/results/) a demo database of the given size, attributes it with ``linear``,
then times ``report_intervals`` for the three groupings the dashboard and the export use — per
channel-day (the CSV's ``--intervals``), per channel (the charts) and overall (the KPI tiles) — best of
``--repeat``, with the number of credit rows per second, the peak memory traced during the call
(tracemalloc, a separate untimed run) and the ratio to the 1 s target.

Both id shapes (``--ids``): ``real``, the demo's default 64/40-hex ids, and ``short`` (``--short-ids``).

Run: ``python bench/bench_intervals.py [--sessions 450000] [--conversions 2000] [--repeat 3] [--ids real short]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.db import open_database  # noqa: E402
from pipeline.export import read_report  # noqa: E402
from pipeline.intervals import RESAMPLES, credit_rows, report_intervals  # noqa: E402

TARGET_SECONDS = 1.0
GROUPINGS = {"channel-day": ("channel_name", "date"), "channel": ("channel_name",), "total": ()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=450_000)
    ap.add_argument("--conversions", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--resamples", type=int, default=RESAMPLES)
    ap.add_argument("--ids", nargs="+", choices=["real", "short"], default=["real", "short"], help="id shapes")
    args = ap.parse_args()
    for shape in args.ids:
        _bench_shape(shape, args)
    return 0


def _bench_shape(shape: str, args) -> None:

    work = ROOT / "bench" / "results"
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"intervals_{args.sessions}_{args.conversions}_{shape}.db"
    if not db.exists():
        py = sys.executable
        subprocess.run(
            [py, "-m", "pipeline", "demo-db", str(db), "--sessions", str(args.sessions)]
            + ["--conversions", str(args.conversions)]
            + (["--short-ids"] if shape == "short" else []),
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run([py, "-m", "pipeline", "run", str(db), "--model", "linear", "-q"], check=True, cwd=ROOT)
    con = open_database(db)
    report = read_report(con)
    n_rows = len(credit_rows(con))
    print(
        f"\n{shape} ids — {db.name}: {len(report):,} channel-days, {n_rows:,} credit rows, {args.resamples} resamples\n"
    )
    print(f"{'grouping':<12} {'groups':>7} {'best s':>8} {'rows/s':>12} {'peak MiB':>9} {'÷ target':>9}")
    for name, by in GROUPINGS.items():
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = report_intervals(con, report, by=by, resamples=args.resamples)
            times.append(time.perf_counter() - t0)
        tracemalloc.start()
        report_intervals(con, report, by=by, resamples=args.resamples)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        best = min(times)
        print(
            f"{name:<12} {len(out):>7,} {best:>8.3f} {n_rows / best:>12,.0f} {peak:>9.1f} {best / TARGET_SECONDS:>8.2f}×"
        )


if __name__ == "__main__":
    sys.exit(main())
