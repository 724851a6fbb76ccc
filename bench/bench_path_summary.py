"""Benchmark of Markov and Shapley fitted on SQL path summaries (issue 13).

    python bench/bench_path_summary.py --db x10.db            # an existing database (not modified)
    python bench/bench_path_summary.py --scale 10             # builds the 10x demo in a temp dir
    python bench/bench_path_summary.py --db demo.db --compare # + the Compare page's library call
    python bench/bench_path_summary.py --order2-200           # + Markov order 2, 200 channels, 1M journeys
    python bench/bench_path_summary.py --db x10.db --map-budget-mb 64  # with ATTRIBUTION_MAP_BUDGET_MB

Every figure is one child process timed from the outside (wall time and peak RSS of the whole
process, ``os.wait4``: the largest of the process and its scan children), so memory means what the
operating system saw, not what Python allocated; it counts the database file's pages SQLite maps
(``db.MMAP_BYTES``, released with ``--map-budget-mb``: ``pipeline.mapped_pages``). Beside it, the main
process's own peak anonymous memory (sampled every 20 ms), which is what the path summary adds to.
``run`` works on a fresh copy of the database each time (copied outside the timing), so every stage
runs. "ratio" is the time over ``run --model linear`` measured in the same invocation — the machine
is shared, so same-run ratios are what to compare; "CPU (ratio)" is user + sys time of the process
and its scan children (``os.wait4``) and its ratio to linear's, which a loaded machine distorts less
than wall time. Targets: markov and shapley ≤ 1.5× linear; peak memory ≤ 500 MB at 10× (4.5M
sessions), ≤ 1 GB at 30×.

``reading non-converting paths`` compares the library calls alone: the per-session reference
(``journeys.build_non_converting``) with the SQL summary (``path_summary.non_converting_summary``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

READ_REFERENCE = """
import sqlite3, sys
from pipeline.journeys import build_non_converting
build_non_converting(sqlite3.connect(sys.argv[1]))
"""
READ_SUMMARY = """
import sqlite3, sys
from pipeline.path_summary import non_converting_summary
non_converting_summary(sqlite3.connect(sys.argv[1]))
"""
COMPARE = """
import sqlite3, sys, time
from pipeline.compare import ModelSpec, compare_models
con = sqlite3.connect(sys.argv[1])
names = sys.argv[2].split(",")
compare_models(con, [ModelSpec("linear")])  # warm: imports and page cache
t0, c0 = time.perf_counter(), time.process_time()
compare_models(con, [ModelSpec(n) for n in names])
print(time.perf_counter() - t0, time.process_time() - c0)
"""


ANON = [0.0]  # peak anonymous memory (MB) of the last timed process itself, sampled every 20 ms


def _anon_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) / 1024 for line in f if line.startswith("RssAnon:")), 0.0)
    except OSError:
        return 0.0


def timed(cmd: list[str], env: Optional[dict] = None) -> tuple[float, float, str, float]:
    """(seconds, peak RSS in MB, stdout, CPU seconds: user + sys, its children included) of one child
    process. Peak RSS is the operating system's figure (``os.wait4``: the process or its largest
    child), file pages it maps included; ``ANON`` keeps the process's own peak anonymous memory."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**ENV, **(env or {})}, cwd=ROOT)
    done = threading.Event()
    ANON[0] = 0.0

    def sample() -> None:
        while not done.is_set():
            ANON[0] = max(ANON[0], _anon_mb(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    return elapsed, usage.ru_maxrss / 1024, out, usage.ru_utime + usage.ru_stime


def row(what: str, seconds: float, mb: float, ratio: str = "", note: str = "", cpu: str = "") -> None:
    print(f"  {what:<44} {seconds:8.2f} s  {cpu:>15}  {mb:7.0f} MB  {ratio:>7}  {note}", flush=True)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def bench_runs(db: Path, work: Path, models: list[str], repeat: int, mb_target: float, env: dict) -> None:
    setting = " ".join(f"{k}={v}" for k, v in env.items()) or "default settings"
    print(f"\nrun on {db.name} ({db.stat().st_size / 2**20:,.0f} MiB), {setting}, best of {repeat}; load {load()}")
    print(f"  {'what':<44} {'time':>10}  {'CPU (ratio)':>15}  {'peak RSS':>10}  {'ratio':>7}")
    best: dict[str, tuple[float, float, float, float]] = {}  # model: (seconds, MB, CPU seconds, anon MB)
    for _ in range(repeat):
        for model in models:
            copy = work / "run.db"
            shutil.copyfile(db, copy)
            cmd = [sys.executable, "-m", "pipeline", "run", str(copy), "--model", model, "-q"]
            seconds, mb, _, cpu = timed(cmd, env)
            copy.unlink()
            was = best.get(model, (float("inf"), 0.0, float("inf"), 0.0))
            best[model] = (min(seconds, was[0]), max(mb, was[1]), min(cpu, was[2]), max(ANON[0], was[3]))
    base, _, base_cpu, _ = best["linear"]
    for model in models:
        seconds, mb, cpu, anon = best[model]
        ok = "" if model == "linear" else ("ok" if seconds <= 1.5 * base and mb <= mb_target else "MISSED")
        row(
            f"run --model {model}",
            seconds,
            mb,
            f"{seconds / base:.2f}x",
            f"{ok} (≤ 1.5x linear, ≤ {mb_target:.0f} MB); main process anon {anon:.0f} MB",
            f"{cpu:.1f} s ({cpu / base_cpu:.2f}x)",
        )
    print(f"  load after: {load()}")


def bench_reading(db: Path) -> None:
    print(f"\nreading non-converting paths from {db.name}; load {load()}")
    for what, script in (
        ("reference: build_non_converting", READ_REFERENCE),
        ("summary: non_converting_summary", READ_SUMMARY),
    ):
        seconds, mb, _, cpu = timed([sys.executable, "-c", script, str(db)])
        row(what, seconds, mb, note="whole child process (imports included)", cpu=f"{cpu:.2f} s")


def bench_compare(db: Path, work: Path) -> None:
    copy = work / "compare.db"
    shutil.copyfile(db, copy)
    timed([sys.executable, "-m", "pipeline", "run", str(copy), "--model", "linear", "-q"])  # (its figures unused)
    print(f"\nCompare page library call (compare_models) on {db.name}; load {load()}")
    base = base_cpu = None
    for names in ("linear", "linear,markov", "linear,shapley"):
        _, mb, out, _ = timed([sys.executable, "-c", COMPARE, str(copy), names])
        seconds, cpu = (float(x) for x in out.strip().splitlines()[-1].split())
        base = seconds if base is None else base
        base_cpu = cpu if base_cpu is None else base_cpu
        added = "" if names == "linear" else f"adds {seconds - base:.2f} s, CPU {cpu - base_cpu:.2f} s (target ≤ 2 s)"
        row(f"compare {names}", seconds, mb, note=added, cpu=f"{cpu:.2f} s")
    copy.unlink()


def bench_order2_200(repeat: int) -> None:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import numpy as np
    from bench_models import synthetic

    from pipeline.journey_index import JourneyIndex
    from pipeline.models.channel_paths import channel_paths
    from pipeline.models.markov import fit_markov
    from pipeline.models.weighted_paths import PathSummary

    print(f"\nMarkov order 2, 200 channels, 1M converting + 1M non-converting journeys; load {load()}")
    conv = JourneyIndex.from_frame(synthetic(1_000_000, 200, True, seed=1))
    null_frame = synthetic(1_000_000, 200, False, seed=201)
    null = JourneyIndex.from_frame(null_frame)
    paths = channel_paths(conv, null)
    grouped = null_frame.groupby("conversion_id", sort=False)["channel_label"].agg(tuple).value_counts()
    summary = PathSummary.from_paths(list(grouped.index), np.zeros(len(grouped)), grouped.to_numpy())
    summarised = channel_paths(conv, summary)
    both = summarised.distinct()  # what the markov model fits on when given a summary
    runs = (("per-path (reference)", paths), ("non-converting summarised", summarised), ("both summarised", both))
    for what, encoded in runs:
        best = min(_seconds(lambda e=encoded: fit_markov(e, 2)) for _ in range(repeat))
        row(f"order 2 fit, {what}", best, float("nan"), note=f"{summary.n_paths:,} distinct non-converting paths")
    a, b = fit_markov(paths, 2).share, fit_markov(both, 2).share
    print(
        f"  {both.converting.n_journeys:,} distinct converting paths; largest share difference: {np.abs(a - b).max():.1e}"
    )


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, help="an existing database (not modified)")
    parser.add_argument("--scale", type=int, help="build the demo at this multiple of the default size")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--models", default="linear,markov,shapley")
    parser.add_argument("--mb-target", type=float, default=500.0, help="peak RSS target (1024 at 30x)")
    parser.add_argument("--compare", action="store_true", help="time the Compare page's library call")
    parser.add_argument("--no-runs", action="store_true")
    parser.add_argument("--no-reading", action="store_true", help="skip timing the two readers alone")
    parser.add_argument("--order2-200", action="store_true")
    parser.add_argument("--map-budget-mb", help="run with ATTRIBUTION_MAP_BUDGET_MB set (pipeline.mapped_pages)")
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}, load {load()} (shared machine: compare ratios measured in the same run)")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        work = Path(tmp)
        db = args.db
        if db is None and args.scale:
            db = work / f"x{args.scale}.db"
            subprocess.run(
                [sys.executable, "-m", "pipeline", "demo-db", str(db), "--sessions", str(450_000 * args.scale),
                 "--conversions", str(2_000 * args.scale)],
                check=True, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL,
            )  # fmt: skip
        if db is not None:
            if not args.no_runs:
                env = {"ATTRIBUTION_MAP_BUDGET_MB": args.map_budget_mb} if args.map_budget_mb else {}
                bench_runs(db, work, args.models.split(","), args.repeat, args.mb_target, env)
            if not args.no_reading:
                bench_reading(db)
            if args.compare:
                bench_compare(db, work)
        if args.order2_200:
            bench_order2_200(args.repeat)


if __name__ == "__main__":
    main()
