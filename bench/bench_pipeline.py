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
import statistics
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


ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # every command runs this checkout's package


def timed(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10], help="multiples of the default database")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--model", default="linear")
    ap.add_argument("--keep", type=Path, help="folder to keep the generated databases in")
    args = ap.parse_args()

    from pipeline.demo_size import DemoSize

    py = sys.executable
    # Steady state: Python normally caches compiled modules (__pycache__) on first import, but some
    # environments set PYTHONDONTWRITEBYTECODE and would recompile the package on every run.
    subprocess.run([py, "-m", "compileall", "-q", str(ROOT / "pipeline")], check=True)
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
                [
                    py,
                    "-m",
                    "pipeline",
                    "demo-db",
                    str(db),
                    "--sessions",
                    str(size.sessions),
                    "--conversions",
                    str(size.conversions),
                ],
                check=True,
                env=ENV,
                stdout=subprocess.DEVNULL,
            )
            print(f"built {db.name} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        copy = work / f"run_x{k}.db"

        def fresh_copy(db=db, copy=copy):
            # Synced, like a file at rest: otherwise the first commit's fsync (ours or the naive
            # script's) would also write the 47 MB the copy just left dirty in the page cache.
            shutil.copy(db, copy)
            with open(copy, "rb+") as fh:
                os.fsync(fh.fileno())

        run_cmd = [py, "-m", "pipeline", "run", str(copy), "--model", args.model, "-q"]
        commands = {  # name: (command, prepare)
            "sqlite3 read (reference)": ([py, "-c", READ_ALL, str(db)], None),
            "naive pandas (reference)": ([py, "-c", NAIVE, str(copy)], fresh_copy),
            f"run --model {args.model} (fresh db)": (run_cmd, fresh_copy),
            "run, everything up to date": (run_cmd, None),
            "run --force": (run_cmd + ["--force"], None),
        }
        # Rounds interleave every command, so a slower or faster machine (shared cores) affects
        # all of them alike; ratios are taken within a round and their median is reported.
        times = {name: [] for name in commands}
        peaks = {name: 0.0 for name in commands}
        for _ in range(args.repeat):
            for name, (cmd, prepare) in commands.items():
                if prepare:
                    prepare()
                t, m = timed(cmd)
                times[name].append(t)
                peaks[name] = max(peaks[name], m)
        read_name, naive_name, cold_name = list(commands)[:3]
        stages = json.loads(
            subprocess.run(
                [py, "-m", "pipeline", "status", str(copy), "--json"],
                capture_output=True,
                text=True,
                env=ENV,
                check=True,
            ).stdout
        )
        sessions = size.sessions
        n = args.repeat
        ratio_read = {c: statistics.median(times[c][i] / times[read_name][i] for i in range(n)) for c in times}
        ratio_naive = {c: statistics.median(times[naive_name][i] / times[c][i] for i in range(n)) for c in times}
        print(
            f"\n## demo database ×{k}: {sessions:,} sessions, {size.conversions:,} conversions, {n} interleaved rounds\n"
        )
        print(
            f"| {'command':<34} | {'best s':>6} | {'median s':>8} | {'sessions/s':>11} | {'peak MB':>7} | {'× sqlite3 read':>14} | {'naive ÷ this':>12} |"
        )
        print(f"|{'-' * 36}|{'-' * 8}|{'-' * 10}|{'-' * 13}|{'-' * 9}|{'-' * 16}|{'-' * 14}|")
        for name in commands:
            best, med = min(times[name]), statistics.median(times[name])
            print(
                f"| {name:<34} | {best:6.2f} | {med:8.2f} | {sessions / med:11,.0f} | {peaks[name]:7.0f} "
                f"| {ratio_read[name]:14.2f} | {ratio_naive[name]:12.2f} |"
            )
        print(
            "\n(ratios: median over rounds of this command's time against the reference's in the same round;"
            " peak MB: the largest resident set of the process or any child process it waited for)"
        )
        print(
            "\nstage times inside the last forced run (s): "
            + ", ".join(f"{s} {v['record']['seconds']:.2f}" for s, v in stages.items() if v["record"])
        )
        verdict = {}
        if k == 1:  # the speed targets are set on the default database
            verdict["run ≤ 1.0× sqlite3 read"] = ratio_read[cold_name] <= 1.0
            verdict["run ≥ 3× faster than naive"] = ratio_naive[cold_name] >= 3.0
            # How much the verdicts owe to the median: the worst round of each ratio.
            worst_read = max(times[cold_name][i] / times[read_name][i] for i in range(n))
            worst_naive = min(times[naive_name][i] / times[cold_name][i] for i in range(n))
            print(f"worst round: run {worst_read:.2f}× the sqlite3 read; naive {worst_naive:.2f}× slower than run")
        if k == 10:  # our commands only (the references are not ours to bound)
            ours = [name for name in commands if name.startswith("run")]
            verdict["10× peak memory < 2 GB"] = max(peaks[name] for name in ours) < 2048
        if verdict:
            print("targets: " + "; ".join(f"{t}: {'met' if ok else 'NOT met'}" for t, ok in verdict.items()))
        results.append(
            {
                "size": k,
                "times": times,
                "peak_mb": peaks,
                "ratio_to_read": ratio_read,
                "naive_over_this": ratio_naive,
                "targets": verdict,
            }
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_pipeline.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
