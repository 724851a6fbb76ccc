"""Benchmark of the pipeline core (issue: pipeline core), timed as whole processes.

For the default demo database (≈450k sessions, 2,000 conversions) and a 10× one (≈4.5M sessions, 20,000
conversions) it prints, per command: wall time (best of N), sessions/s, peak memory (max RSS of the
process), and the ratio to the two reference figures measured in the same run:

- ``sqlite3 read``: a Python process that reads the three input tables once with ``fetchall``;
- ``naive pandas``: ``read_sql`` of every table, merge on user_id, filter, groupby (the usual script).

Targets: ``run --model linear`` on a fresh copy of the default database ≤ 1.0× the sqlite3 read and
≥ 3× faster than naive pandas; the 10× database under 2 GB peak memory.

    python bench/bench_pipeline.py              # both sizes (the 10× database takes ~1 min to build)
    python bench/bench_pipeline.py --sizes 1    # the default size only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

READ_ALL = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
for t in ("session_sources", "conversions", "session_costs"):
    con.execute(f"SELECT * FROM {t}").fetchall()
"""

NAIVE = """
import sqlite3, sys
import pandas as pd
con = sqlite3.connect(sys.argv[1])
s = pd.read_sql("SELECT * FROM session_sources", con)
c = pd.read_sql("SELECT * FROM conversions", con)
k = pd.read_sql("SELECT * FROM session_costs", con)
s["ts"] = s["event_date"] + " " + s["event_time"]
c["conv_ts"] = c["conv_date"] + " " + c["conv_time"]
j = c.merge(s, on="user_id")
j = j[j["ts"] < j["conv_ts"]]
j["ihc"] = 1.0 / j.groupby("conv_id")["session_id"].transform("size")
j["ihc_revenue"] = j["ihc"] * j["revenue"]
credit = j.groupby(["channel_name", "event_date"])[["ihc", "ihc_revenue"]].sum()
cost = s.merge(k, on="session_id", how="left").groupby(["channel_name", "event_date"])["cost"].sum()
report = cost.to_frame().join(credit, how="left").fillna(0)
report.to_sql("channel_reporting_naive", con, if_exists="replace")
"""


def timed(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one process."""
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024


def best_of(n: int, make_cmd, prepare=None) -> tuple[float, float]:
    runs = []
    for _ in range(n):
        if prepare:
            prepare()
        runs.append(timed(make_cmd()))
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10], help="multiples of the default database")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--model", default="linear")
    ap.add_argument("--keep", type=Path, help="folder to keep the generated databases in")
    args = ap.parse_args()

    from pipeline.demo import DemoSize

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    py = sys.executable
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for k in args.sizes:
        size = DemoSize(sessions=450_000 * k, conversions=2_000 * k)
        db = work / f"demo_x{k}.db"
        if not db.exists():
            # In a child process: this process must stay small, or its children inherit its peak RSS.
            t0 = time.perf_counter()
            subprocess.run(
                [py, "-m", "pipeline", "demo-db", str(db), "--sessions", str(size.sessions),
                 "--conversions", str(size.conversions)], check=True, env=env, stdout=subprocess.DEVNULL,
            )
            print(f"built {db.name} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        copy = work / f"run_x{k}.db"

        def fresh_copy():
            shutil.copy(db, copy)

        read_t, read_m = best_of(args.repeat, lambda: [py, "-c", READ_ALL, str(db)])
        naive_t, naive_m = best_of(max(1, args.repeat - 1), lambda: [py, "-c", NAIVE, str(copy)], fresh_copy)
        run_cmd = lambda: [py, "-m", "pipeline", "run", str(copy), "--model", args.model, "-q"]  # noqa: E731
        cold_t, cold_m = best_of(args.repeat, run_cmd, fresh_copy)
        warm_t, warm_m = best_of(args.repeat, run_cmd)
        forced = lambda: [py, "-m", "pipeline", "run", str(copy), "--model", args.model, "-q", "--force"]  # noqa: E731
        force_t, force_m = best_of(args.repeat, forced)
        stages = json.loads(subprocess.run(
            [py, "-m", "pipeline", "status", str(copy), "--json"], capture_output=True, text=True, env=env, check=True
        ).stdout)
        sessions = size.sessions
        rows = [
            ("sqlite3 read (reference)", read_t, read_m),
            ("naive pandas (reference)", naive_t, naive_m),
            (f"run --model {args.model} (fresh db)", cold_t, cold_m),
            ("run, everything up to date", warm_t, warm_m),
            ("run --force", force_t, force_m),
        ]
        print(f"\n## demo database ×{k}: {sessions:,} sessions, {size.conversions:,} conversions\n")
        print(f"| {'command':<34} | {'time s':>7} | {'sessions/s':>11} | {'peak MB':>8} | {'× sqlite3 read':>14} | {'naive ÷ this':>12} |")
        print(f"|{'-' * 36}|{'-' * 9}|{'-' * 13}|{'-' * 10}|{'-' * 16}|{'-' * 14}|")
        for name, t, m in rows:
            print(f"| {name:<34} | {t:7.2f} | {sessions / t:11,.0f} | {m:8.0f} | {t / read_t:14.2f} | {naive_t / t:12.2f} |")
        print("\nstage times inside the last forced run (s): " + ", ".join(
            f"{s} {v['record']['seconds']:.2f}" for s, v in stages.items() if v["record"]))
        verdict = {
            "run ≤ 1.0× sqlite3 read": cold_t <= read_t,
            "run ≥ 3× faster than naive": naive_t / cold_t >= 3,
        }
        if k == 10:
            verdict["10× peak memory < 2 GB"] = max(cold_m, force_m) < 2048
        print("targets: " + "; ".join(f"{n}: {'met' if ok else 'NOT met'}" for n, ok in verdict.items()))
        results.append({"size": k, "rows": [dict(zip(("command", "seconds", "peak_mb"), r)) for r in rows], "targets": verdict})
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_pipeline.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
