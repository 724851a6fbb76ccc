"""The command line's forced run, ``python -m pipeline run DB --force -q``, against a base tree, interleaved.

For each database: a copy per tree, run once (not timed) so that each holds the same stage records and
outputs; then ``--rounds`` rounds, each one forced run per tree in alternating order, timed as whole
processes (wall time, and the CPU time of the process and its children). Prints per database and tree
the best and median wall time, median CPU, and the ratio to the base tree's (same rounds, same hold:
run it under ``/work/bin/cpu-bench``). Then checks what a forced run writes is the same in both
copies: ``channel_reporting`` (every row, to the bit) and the stored cost profile
(``pipeline_input_scans``, the JSON text, byte for byte).

    git archive main | tar -x -C /tmp/base        # the base tree
    /work/bin/cpu-bench python3 bench/bench_forced_run.py --base /tmp/base DB.db [DB2.db …] --rounds 7
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def forced_run(tree: Path, db: Path, model: str, force: bool = True) -> tuple[float, float]:
    """(wall s, CPU s of the process and its children) of one ``run`` of tree ``tree`` on ``db``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    args = [sys.executable, "-m", "pipeline", "run", str(db), "--model", model, "-q", *(["--force"] if force else [])]
    r = subprocess.run(args, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"{tree}: run {db} failed: {r.stderr.strip()[-400:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def written(db: Path) -> tuple[list, list]:
    con = sqlite3.connect(db)
    try:
        report = con.execute("SELECT * FROM channel_reporting ORDER BY 1, 2, 3, 4, 5").fetchall()
        costs = con.execute("SELECT rows FROM pipeline_input_scans WHERE name = 'cost_profile'").fetchall()
        return report, costs
    finally:
        con.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dbs", nargs="+", type=Path)
    ap.add_argument("--base", type=Path, required=True, help="the base tree (e.g. main, from git archive)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--model", default="linear")
    ap.add_argument("--keep", type=Path, help="a folder for the copies (default: a temporary one)")
    args = ap.parse_args()
    trees = {"base": args.base.resolve(), "this": ROOT}
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-forced-"))
    work.mkdir(parents=True, exist_ok=True)
    rows, same = [], []
    try:
        for db in args.dbs:
            copies = {name: work / f"{db.stem}.{name}.db" for name in trees}
            for name, copy in copies.items():
                shutil.copy(db, copy)
                forced_run(trees[name], copy, args.model, force=False)
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
            for i in range(args.rounds):
                order = list(trees) if i % 2 == 0 else list(reversed(trees))
                for name in order:
                    times[name].append(forced_run(trees[name], copies[name], args.model))
            base_median = statistics.median(w for w, _ in times["base"])
            for name in trees:
                walls = [w for w, _ in times[name]]
                cpus = [c for _, c in times[name]]
                rows.append(
                    (
                        db.name,
                        name,
                        min(walls),
                        statistics.median(walls),
                        statistics.median(cpus),
                        statistics.median(walls) / base_median,
                        ", ".join(f"{w:.2f}" for w in walls),
                    )
                )
            a, b = written(copies["base"]), written(copies["this"])
            same.append((db.name, a[0] == b[0], len(a[0]), a[1] == b[1] and bool(a[1])))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"run DB --model {args.model} --force -q, {args.rounds} rounds, load at the end {os.getloadavg()[0]:.2f}")
    print(f"{'db':<14} {'tree':<5} {'best s':>7} {'median s':>9} {'cpu s':>6} {'ratio':>6}  walls")
    for db_name, name, best, median, cpu, ratio, walls in rows:
        print(f"{db_name:<14} {name:<5} {best:7.2f} {median:9.2f} {cpu:6.2f} {ratio:6.2f}  {walls}")
    for db_name, report_same, n, costs_same in same:
        print(
            f"{db_name}: channel_reporting identical: {report_same} ({n:,} rows); stored cost profile identical: {costs_same}"
        )
    return 0 if all(r and c for _, r, _, c in same) else 1


if __name__ == "__main__":
    sys.exit(main())
