"""The floor of a fresh ``run --model linear`` (issue 18): the work it cannot skip, each part timed alone.

A fresh run must read every input row at least once to validate it and to fingerprint it, look up the
session of every cost row, and find the sessions of the converting users. This script times each of
those parts alone, in a fresh process of its own (so each has an idle machine to itself), against
the plain ``sqlite3`` read of the three tables (the reference of bench_pipeline.py), and the whole
fresh run beside them, interleaved over rounds (run it under ``cpu-bench`` on a shared machine):

- ``imports``: the interpreter and the modules a fresh run loads (the CLI, the runner, numpy);
- ``fingerprints``: ``fingerprint.input_fingerprints`` (every table page read and hashed, no stored state);
- ``session profile``, ``cost screen``, ``cost per channel-day``: the scans of ``pipeline/scans.py``;
- ``journeys``: the journeys and conversions queries of ``pipeline/journeys.py``.

Each part's figure is the part alone inside its process (the process start is counted once, in
``imports``). The floor on this machine's cores: the sum of the parts' CPU over the cores, or the
longest part when that is longer, against the whole run and the read: no layout of these queries
over the cores can be faster. Writing the outputs (a few thousand rows), the model and the report are
not counted: the true floor is higher still.

    python bench/bench_run_floor.py                    # the real-shaped default demo (built once)
    python bench/bench_run_floor.py --db demo.db --repeat 5
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
# One OpenBLAS thread, as the command line sets it (pipeline/__main__.py): its idle threads count as CPU.
ENV = {"OPENBLAS_NUM_THREADS": "1", **os.environ, "PYTHONPATH": str(ROOT)}

READ_ALL = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
for t in ("session_sources", "conversions", "session_costs"):
    con.execute(f"SELECT * FROM {t}").fetchall()
"""

# One part, timed inside its process: prints {"wall": s, "cpu": s}.
PART = """
import json, os, sys, time
from pipeline import journeys as jr  # (imports numpy: counted in ``imports``, not here)
from pipeline.db import open_database
from pipeline.fingerprint import input_fingerprints
from pipeline.scans import ALL_SCANS
from pipeline.window import Window
part, path = sys.argv[1], sys.argv[2]
con = open_database(path)
def run():
    if part == "fingerprints":
        input_fingerprints(con)
    elif part == "journeys":
        params = Window().sql_params()
        con.execute(jr.JOURNEYS_SQL, params).fetchall()
        con.execute(jr.CONVERSIONS_SQL, params).fetchall()
    else:
        con.execute(ALL_SCANS[part]).fetchall()
t, c = time.perf_counter(), sum(os.times()[:2])
run()
print(json.dumps({"wall": time.perf_counter() - t, "cpu": sum(os.times()[:2]) - c}))
"""

IMPORTS = """
import json, os, sys, time
t, c = time.perf_counter(), sum(os.times()[:2])
import numpy, pipeline.cli, pipeline.runner, pipeline.journey_batches, pipeline.models
print(json.dumps({"wall": time.perf_counter() - t, "cpu": sum(os.times()[:2]) - c}))
"""

PARTS = {  # label: scan name or part
    "fingerprints": "fingerprints",
    "session profile (scans.SESSION_PROFILE_SQL)": "session_profile",
    "cost screen (scans.COST_SCREEN_SQL)": "cost_screen",
    "cost per channel-day (scans.COST_PROFILE_SQL)": "cost_profile",
    "journeys (journeys.JOURNEYS_SQL + CONVERSIONS_SQL)": "journeys",
}


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds with children, stdout) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_utime + usage.ru_stime, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, help="a real-shaped demo database (default: built in a temp folder)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median reported)")
    args = ap.parse_args()
    py = sys.executable
    subprocess.run([py, "-m", "compileall", "-q", str(ROOT / "pipeline")], check=True)
    work = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    db = args.db
    if db is None:
        db = work / "demo.db"
        subprocess.run([py, "-m", "pipeline", "demo-db", str(db)], check=True, env=ENV, stdout=subprocess.DEVNULL)
    copy = work / "run.db"
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.repeat):
        rows.setdefault("read", []).append(timed([py, "-c", READ_ALL, str(db)])[:2])
        shutil.copy(db, copy)
        with open(copy, "rb+") as fh:
            os.fsync(fh.fileno())
        rows.setdefault("run", []).append(
            timed([py, "-m", "pipeline", "run", str(copy), "--model", "linear", "-q"])[:2]
        )
        inside = json.loads(timed([py, "-c", IMPORTS])[2])
        rows.setdefault("imports", []).append((inside["wall"], inside["cpu"]))
        for label, part in PARTS.items():
            inside = json.loads(timed([py, "-c", PART, part, str(db)])[2])
            rows.setdefault(label, []).append((inside["wall"], inside["cpu"]))
    shutil.rmtree(work, ignore_errors=True)

    def med(label: str, i: int) -> float:
        return statistics.median(r[i] for r in rows[label])

    read_wall, read_cpu = med("read", 0), med("read", 1)
    cores = os.cpu_count() or 1
    print(
        f"\n## the floor of a fresh run --model linear: {db.name}, {args.repeat} interleaved rounds, "
        f"{cores} cores; load average before/after: {load_before} / "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
        + "\n"
    )
    print(f"| {'part (alone, in its own process)':<50} | {'wall s':>6} | {'CPU s':>6} | {'× read wall':>11} |")
    print(f"|{'-' * 52}|{'-' * 8}|{'-' * 8}|{'-' * 13}|")
    parts = ["imports", *PARTS]
    for label in parts:
        print(f"| {label:<50} | {med(label, 0):6.3f} | {med(label, 1):6.3f} | {med(label, 0) / read_wall:11.2f} |")
    total_cpu = sum(med(label, 1) for label in parts)
    longest = max(med(label, 0) for label in parts)
    floor = max(total_cpu / cores, longest)
    print(f"| {'sum of the parts':<50} | {'':>6} | {total_cpu:6.3f} | {total_cpu / read_wall:11.2f} |")
    print(
        f"| {f'floor on {cores} cores: max(sum / {cores}, longest part)':<50} | {floor:6.3f} | {'':>6} | {floor / read_wall:11.2f} |"
    )
    print(
        f"| {'whole fresh run (process, children included)':<50} | {med('run', 0):6.3f} | {med('run', 1):6.3f} | {med('run', 0) / read_wall:11.2f} |"
    )
    print(f"| {'sqlite3 read (reference)':<50} | {read_wall:6.3f} | {read_cpu:6.3f} | {1:11.2f} |")
    print(
        f"\ntarget: run ≤ 0.7× the read = {0.7 * read_wall:.3f} s; the parts alone need {total_cpu:.3f} s of CPU "
        f"({total_cpu / read_cpu:.2f}× the read's {read_cpu:.3f} s), so on {cores} cores, with no contention and "
        f"nothing else to do, no layout of these queries takes less than {floor:.3f} s ({floor / read_wall:.2f}× the read)"
    )


if __name__ == "__main__":
    main()
