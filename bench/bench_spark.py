"""Benchmark of the Spark engine (issue 14) in local mode against the SQLite engine, on the same data.

For the default demo database (x1: ≈450k sessions, 2,000 conversions; x10 with ``--sizes 1 10``),
converted to a Parquet folder, one child process per engine runs the set work of a ``run``:
validation, attribution (SQLite: journeys + the numpy model in the process, the credit stored in a copy of the database; Spark: ``attribute``, the
same model on the executors as a grouped Arrow UDF) and the channel-day report from that credit; it
times each step inside the process (Spark's ``start`` is the SparkSession coming up: JVM, py4j).
Printed per engine and step: wall seconds, and for the whole process tree (the Spark driver's JVM and
Python workers included, sampled from /proc every 0.1 s): CPU seconds and peak memory (sum of RSS),
the ratio of wall time to the SQLite engine's same step, and parity — credit max |diff| and whether the
report is bit-identical to SQLite's.

    python bench/bench_spark.py                       # x1, linear and ihc
    python bench/bench_spark.py --sizes 1 10 --models linear --master 'local[2]'

The machine is shared (2 cores, other sessions' load): read the CPU column and the ratios, not wall
time alone.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
SIZES = {1: (450_000, 2_000), 10: (4_500_000, 20_000)}
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

CHILD = """
import json, pickle, sys, time
engine_name, source, model, master, out = sys.argv[1:6]
times = {}
t = time.perf_counter()
def lap(name):
    global t
    now = time.perf_counter(); times[name] = now - t; t = now
from pipeline.window import Window
if engine_name == "sqlite":
    import numpy as np
    from pipeline.db import open_database
    from pipeline.journey_index import JourneyIndex
    from pipeline.journeys import build_journeys
    from pipeline.models import get_model
    from pipeline.report import build_report
    from pipeline.schema import ensure_output_tables
    from pipeline.validate import validate
    con = open_database(source, write=True)  # a copy: the credit is stored, as a run stores it
    lap("start")
    validate(con); lap("validate")
    index = JourneyIndex.from_columns(build_journeys(con, Window()).columns)
    ihc = np.asarray(get_model(model).credits(index).ihc)
    credits = {"conv_id": index.column("conversion_id"), "session_id": index.column("session_id"), "ihc": ihc}
    lap("attribute")
    ensure_output_tables(con)
    with con:
        con.execute("DELETE FROM attribution_customer_journey")
        con.executemany("INSERT INTO attribution_customer_journey VALUES (?, ?, ?)",
                        zip(credits["conv_id"].tolist(), credits["session_id"].tolist(), ihc.tolist()))
    rows = build_report(con)
    lap("report")
else:
    from pipeline.engines import spark as S
    e = S.open_engine(source, master=master)
    lap("start")
    S.validate(e); lap("validate")
    table = S.attribute(e, Window(), model)
    credits = {k: table[k].to_numpy(zero_copy_only=False) for k in ("conv_id", "session_id", "ihc")}
    lap("attribute")
    rows = S.channel_report(e, table)
    lap("report")
with open(out, "wb") as f:
    pickle.dump({"credits": credits, "rows": rows}, f)
print(json.dumps(times))
"""


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _usage(pids: list[int]) -> tuple[float, float]:
    """(CPU seconds, RSS bytes) summed over ``pids``."""
    cpu = rss = 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime (children are in the tree)
            rss += int(fields[21]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return cpu, rss


def measured(args: list[str]) -> tuple[dict, float, float]:
    """(step times, CPU seconds of the process tree, peak RSS MB of the tree) of one child."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT, text=True)
    cpu_by_pid: dict[int, float] = {}
    peak = 0.0
    while proc.poll() is None:
        for p in _tree(proc.pid):
            c, _ = _usage([p])
            cpu_by_pid[p] = max(cpu_by_pid.get(p, 0.0), c)
        peak = max(peak, _usage(_tree(proc.pid))[1])
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]), sum(cpu_by_pid.values()), peak / 2**20


def prepare(folder: Path, size: int) -> tuple[Path, str]:
    db = folder / f"x{size}.db"
    lake = folder / f"x{size}_lake"
    py = sys.executable
    if not db.exists():
        sessions, conversions = SIZES[size]
        subprocess.run(
            [py, "-m", "pipeline", "demo-db", str(db), "--sessions", str(sessions), "--conversions", str(conversions),
             "--force"], check=True, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    if not lake.exists():
        subprocess.run(
            [py, "-m", "pipeline", "convert", str(db), f"parquet:///{lake}", "-q"],
            check=True, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return db, f"parquet:///{lake}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1], choices=sorted(SIZES))
    ap.add_argument("--models", nargs="+", default=["linear", "ihc"])
    ap.add_argument("--master", default="local[*]")
    ap.add_argument("--keep", type=Path, help="folder to keep the generated data in")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_spark-"))
    folder.mkdir(parents=True, exist_ok=True)
    header = (
        f"{'db':>4} {'model':<10} {'engine':<7} {'start':>6} {'validate':>8} {'attribute':>9} {'report':>7} "
        f"{'total s':>8} {'cpu s':>7} {'peak MB':>8} {'total×':>7} {'credit |Δ|':>11} {'report':>9}"
    )
    print(header)
    print("-" * len(header))
    try:
        for size in args.sizes:
            db, lake = prepare(folder, size)
            for model in args.models:
                results = {}
                copy = folder / "sqlite-run.db"
                shutil.copy(db, copy)
                for engine, source in (("sqlite", str(copy)), ("spark", lake)):
                    out = folder / f"{engine}.pickle"
                    times, cpu, peak = measured(
                        [sys.executable, "-c", CHILD, engine, source, model, args.master, str(out)]
                    )
                    with open(out, "rb") as f:
                        results[engine] = (times, cpu, peak, pickle.load(f))
                ref_total = sum(results["sqlite"][0].values())
                for engine, (times, cpu, peak, data) in results.items():
                    total = sum(times.values())
                    parity = ("—", "—")
                    if engine != "sqlite":
                        parity = _parity(results["sqlite"][3], data)
                    print(
                        f"{'x' + str(size):>4} {model:<10} {engine:<7} {times['start']:6.1f} {times['validate']:8.1f} "
                        f"{times['attribute']:9.1f} {times['report']:7.1f} {total:8.1f} {cpu:7.1f} {peak:8.0f} "
                        f"{total / ref_total:7.2f} {parity[0]:>11} {parity[1]:>9}",
                        flush=True,
                    )
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def _parity(ref: dict, got: dict) -> tuple[str, str]:
    a = dict(zip(zip(ref["credits"]["conv_id"], ref["credits"]["session_id"]), ref["credits"]["ihc"]))
    b = dict(zip(zip(got["credits"]["conv_id"], got["credits"]["session_id"]), got["credits"]["ihc"]))
    if a.keys() != b.keys():
        return "keys differ", "—"
    worst = max((abs(a[k] - b[k]) for k in a), default=0.0)
    same = [tuple(r) for r in ref["rows"]] == [tuple(r) for r in got["rows"]]
    return f"{worst:.1e}", "identical" if same else "DIFFERS"


if __name__ == "__main__":
    main()
