"""Benchmark of a fresh run's peak memory (issue 12: journeys in batches of whole journeys).

For each database, a fresh copy gets ``python -m pipeline run COPY --model MODEL -q`` in a child process,
once per setting:

- ``batches``: the default batch size (``ATTRIBUTION_JOURNEY_BATCH_ROWS`` unset, 100,000 journey rows);
- ``whole``: ``ATTRIBUTION_JOURNEY_BATCH_ROWS=2000000000`` — every journey in one batch, as before batches;
- ``rows=N``: batches of N journey rows (how the peak follows the batch size);
- with ``--code DIR``: the same command run from another checkout (e.g. the commit before batches).

It prints wall time, CPU time (user + system: the machine is shared, CPU is the steadier figure), peak
RSS (the process's high-water mark, which counts the pages of the database file SQLite reads through
its memory map, at most ``db.MMAP_BYTES`` = 1 GiB, pages the system can drop), peak anonymous memory
(the process's own heap, sampled every 20 ms from /proc: what batches bound) and the journey rows.

Target: with batches, the anonymous peak no longer grows with the journey rows once they pass one
batch (≈0.75 KB per row before).

    python bench/bench_memory.py --db x10.db --db many_conversions.db
    python bench/bench_memory.py                      # builds the demo, 10× and a 10× with 400k conversions
    python bench/bench_memory.py --db x10.db --code /path/to/old/checkout
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH_ENV = "ATTRIBUTION_JOURNEY_BATCH_ROWS"
BUILDS = {  # name: demo-db options
    "demo": [],
    "10x": ["--sessions", "4500000", "--conversions", "20000"],
    "10x-400k-conversions": ["--sessions", "4500000", "--conversions", "400000"],
}


def _anon_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(db: Path, model: str, env: dict, cwd: Path, work: Path) -> dict:
    copy = work / "run.db"
    shutil.copy(db, copy)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(copy), "--model", model, "-q"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(cwd), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peak_anon = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak_anon[0] = max(peak_anon[0], _anon_kb(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    con = sqlite3.connect(copy)
    try:
        row = con.execute("SELECT summary FROM pipeline_stages WHERE stage = 'journeys'").fetchone()
    except sqlite3.DatabaseError:
        row = None
    finally:
        con.close()
    copy.unlink()
    return {
        "exit": proc.returncode,
        "error": err.strip().splitlines()[-1] if proc.returncode and err.strip() else "",
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,
        "anon_mb": peak_anon[0] / 1024,
        "rows": json.loads(row[0])["sessions"] if row else None,
    }


def _env_of(setting: str) -> dict:
    if setting == "whole":
        return {BATCH_ENV: str(2_000_000_000)}
    if setting.startswith("rows="):
        return {BATCH_ENV: setting.split("=", 1)[1]}
    return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", action="append", type=Path, help="a database to measure (repeatable)")
    ap.add_argument("--model", default="linear")
    ap.add_argument("--code", type=Path, help="also run from this checkout (e.g. before batches)")
    ap.add_argument("--settings", default="batches,whole", help="comma-separated: batches, whole, rows=N")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        work = Path(tmp)
        dbs = args.db or []
        if not dbs:
            for name, options in BUILDS.items():
                path = work / f"{name}.db"
                subprocess.run([sys.executable, "-m", "pipeline", "demo-db", str(path), *options], cwd=ROOT, check=True)
                dbs.append(path)
        runs = [(s, _env_of(s), ROOT) for s in args.settings.split(",")]
        if args.code:
            runs.append((f"code {args.code.name}", {}, args.code.resolve()))
        print(f"model {args.model}; CPU = user + system of the run's process; machine shared (timings noisy)")
        header = f"{'database':<28} {'setting':<16} {'journey rows':>12} {'wall s':>7} {'CPU s':>7}"
        print(f"{header} {'peak RSS MB':>11} {'peak anon MB':>12}")
        for db in dbs:
            for setting, env, cwd in runs:
                m = measure(db, args.model, env, cwd, work)
                rows = f"{m['rows']:,}" if m["rows"] is not None else "-"
                line = f"{db.name:<28} {setting:<16} {rows:>12} {m['wall']:>7.2f} {m['cpu']:>7.2f}"
                line += f" {m['peak_mb']:>11.0f} {m['anon_mb']:>12.0f}"
                if m["exit"]:
                    line += f"  exit {m['exit']}: {m['error']}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
