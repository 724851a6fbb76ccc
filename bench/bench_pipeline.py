"""Benchmark of the pipeline core (issues: pipeline core; 18, real-shaped ids), timed as whole processes.

For the default demo database (≈450k sessions, 2,000 conversions) and a 10× one (≈4.5M sessions, 20,000
conversions), each in both id shapes — ``real``: the real data's 64-hex session/conversion ids and 40-hex
user ids (the demo's default, 145 MB at the default size); ``short``: the old ``S0000000`` ids (48 MB) —
it prints, per command and shape: wall time (best of N), sessions/s, peak memory (max RSS of the
process), and the ratio to the two reference figures measured in the same round on the same file:

- ``sqlite3 read``: a Python process that reads the three input tables once with ``fetchall``;
- ``naive pandas``: ``read_sql`` of every table, merge on user_id, filter, groupby (the usual script).

Targets (real-shaped default database): ``run --model linear`` on a fresh copy ≤ 0.7× the sqlite3 read
and ≥ 3× faster than naive pandas; the up-to-date run ≤ 0.3× the read; the 10× database under 2 GB peak
memory. The short-id rows are printed for comparison (their verdicts are informational).

    python bench/bench_pipeline.py                       # both sizes, both shapes (the 10× builds take minutes)
    python bench/bench_pipeline.py --sizes 1             # the default size only
    python bench/bench_pipeline.py --sizes 1 --ids real  # one shape
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
SHAPES = {"real": [], "short": ["--short-ids"]}  # id shape: extra demo-db arguments


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """(seconds, peak RSS in MB, CPU seconds: user + sys, children included) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


LOAD_BEFORE = _load()


def _shape_commands(py: str, work: Path, k: int, size, shape: str, model: str) -> dict:
    """The commands of one database size and id shape (building its database when missing)."""
    db = work / f"demo_x{k}_{shape}.db"
    if not db.exists():
        # In a child process: this process must stay small, or its children inherit its peak RSS.
        t0 = time.perf_counter()
        sizes = ["--sessions", str(size.sessions), "--conversions", str(size.conversions)]
        subprocess.run(
            [py, "-m", "pipeline", "demo-db", str(db), *sizes, *SHAPES[shape]],
            check=True,
            env=ENV,
            stdout=subprocess.DEVNULL,
        )
        print(f"built {db.name} ({db.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    copy = work / f"run_x{k}_{shape}.db"

    def fresh_copy(db=db, copy=copy):
        # Synced, like a file at rest: otherwise the first commit's fsync (ours or the naive
        # script's) would also write the file the copy just left dirty in the page cache.
        shutil.copy(db, copy)
        with open(copy, "rb+") as fh:
            os.fsync(fh.fileno())

    run_cmd = [py, "-m", "pipeline", "run", str(copy), "--model", model, "-q"]
    return {  # (shape, name): (command, prepare); the first four names are used by position
        (shape, "sqlite3 read (reference)"): ([py, "-c", READ_ALL, str(db)], None),
        (shape, "naive pandas (reference)"): ([py, "-c", NAIVE, str(copy)], fresh_copy),
        (shape, f"run --model {model} (fresh db)"): (run_cmd, fresh_copy),
        (shape, "run, everything up to date"): (run_cmd, None),
        (shape, "run --force"): (run_cmd + ["--force"], None),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10], help="multiples of the default database")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--model", default="linear")
    ap.add_argument("--ids", nargs="+", choices=list(SHAPES), default=list(SHAPES), help="id shapes")
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
        commands = {}  # (shape, name): (command, prepare)
        for shape in args.ids:
            commands.update(_shape_commands(py, work, k, size, shape, args.model))
        # Rounds interleave every command of every shape, so a slower or faster machine (shared cores)
        # affects all of them alike; ratios are taken within a round (against the same shape's
        # references) and their median is reported.
        times = {key: [] for key in commands}
        cpu = {key: [] for key in commands}
        peaks = {key: 0.0 for key in commands}
        for _ in range(args.repeat):
            for key, (cmd, prepare) in commands.items():
                if prepare:
                    prepare()
                t, m, c = timed(cmd)
                times[key].append(t)
                cpu[key].append(c)
                peaks[key] = max(peaks[key], m)
        n = args.repeat
        print(
            f"\n## demo database ×{k}: {size.sessions:,} sessions, {size.conversions:,} conversions, "
            f"{n} interleaved rounds; load average before/after: {LOAD_BEFORE} / {_load()}\n"
        )
        print(
            f"| {'ids':<5} | {'command':<34} | {'best s':>6} | {'median s':>8} | {'sessions/s':>11} | {'peak MB':>7} "
            f"| {'× sqlite3 read':>14} | {'naive ÷ this':>12} | {'CPU s':>5} | {'CPU × read':>10} |"
        )
        print(
            f"|{'-' * 7}|{'-' * 36}|{'-' * 8}|{'-' * 10}|{'-' * 13}|{'-' * 9}|{'-' * 16}|{'-' * 14}|{'-' * 7}|{'-' * 12}|"
        )
        notes = []
        for shape in args.ids:
            keys = [key for key in commands if key[0] == shape]
            read, naive, cold, current = keys[0], keys[1], keys[2], keys[3]
            ratio_read = {c: statistics.median(times[c][i] / times[read][i] for i in range(n)) for c in keys}
            ratio_naive = {c: statistics.median(times[naive][i] / times[c][i] for i in range(n)) for c in keys}
            cpu_read = {c: statistics.median(cpu[c][i] / cpu[read][i] for i in range(n)) for c in keys}
            for key in keys:
                best, med = min(times[key]), statistics.median(times[key])
                print(
                    f"| {shape:<5} | {key[1]:<34} | {best:6.2f} | {med:8.2f} | {size.sessions / med:11,.0f} "
                    f"| {peaks[key]:7.0f} | {ratio_read[key]:14.2f} | {ratio_naive[key]:12.2f} "
                    f"| {statistics.median(cpu[key]):5.2f} | {cpu_read[key]:10.2f} |"
                )
            verdict, verdict_note = {}, ""
            if k == 1:  # the speed targets are set on the default database
                verdict["run ≤ 0.7× sqlite3 read"] = ratio_read[cold] <= 0.7
                verdict["up-to-date run ≤ 0.3× sqlite3 read"] = ratio_read[current] <= 0.3
                verdict["run ≥ 3× faster than naive"] = ratio_naive[cold] >= 3.0
                # How much the verdicts owe to the median: the worst round of each ratio.
                worst_read = max(times[cold][i] / times[read][i] for i in range(n))
                worst_naive = min(times[naive][i] / times[cold][i] for i in range(n))
                verdict_note = (
                    f"worst round: run {worst_read:.2f}× the sqlite3 read; naive {worst_naive:.2f}× slower than run"
                )
            if k == 10:  # our commands only (the references are not ours to bound)
                verdict["10× peak memory < 2 GB"] = max(peaks[key] for key in keys if key[1].startswith("run")) < 2048
            stages = json.loads(
                subprocess.run(
                    [py, "-m", "pipeline", "status", str(work / f"run_x{k}_{shape}.db"), "--json"],
                    capture_output=True,
                    text=True,
                    env=ENV,
                    check=True,
                ).stdout
            )
            notes.append(
                f"{shape} ids — stage times inside the last forced run (s): "
                + ", ".join(
                    f"{s} {v['record']['seconds']:.2f}"
                    for s, v in stages.items()
                    if isinstance(v, dict) and v.get("record")
                )
            )
            if verdict:
                kind = "targets" if shape == "real" else "for comparison (targets are set on real-shaped ids)"
                notes.append(
                    f"{shape} ids — {verdict_note + '; ' if verdict_note else ''}{kind}: "
                    + "; ".join(f"{t}: {'met' if ok else 'NOT met'}" for t, ok in verdict.items())
                )
            results.append(
                {
                    "size": k,
                    "ids": shape,
                    "times": {key[1]: times[key] for key in keys},
                    "cpu_seconds": {key[1]: cpu[key] for key in keys},
                    "peak_mb": {key[1]: peaks[key] for key in keys},
                    "ratio_to_read": {key[1]: ratio_read[key] for key in keys},
                    "naive_over_this": {key[1]: ratio_naive[key] for key in keys},
                    "targets": verdict,
                }
            )
        print(
            "\n(ratios: median over rounds of this command's time against the same shape's reference in the same"
            " round; peak MB: the largest resident set of the process or any child process it waited for; CPU s:"
            " user + sys of the process and its children, median — steadier than wall time on a shared machine)\n"
        )
        print("\n".join(notes))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_pipeline.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
