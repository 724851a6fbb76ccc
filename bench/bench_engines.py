"""Benchmark of the engines (issue 14): ``convert`` and the DuckDB engine's set work against the SQLite
engine's equivalent step, each step timed as a whole child process.

For the default demo database (≈450k sessions, 2,000 conversions) and a 10× one (4.5M sessions, 20,000
conversions), after a SQLite ``run --model linear`` (so the output tables exist), it prints per step and
engine: wall time (best of N), CPU time (user + sys of that process: the machine is shared, CPU time is
the steadier figure), peak memory (max RSS of the process), sessions/s, and the ratio of wall and CPU time
to the SQLite engine's same step measured in the same run. Steps:

- ``convert``: ``python -m pipeline convert`` to a Parquet folder and to a DuckDB file (target: x10 ≤ 10 s);
- ``validate``: all findings (SQLite: ``validate.validate``; DuckDB: ``engines.duckdb.validate``);
- ``journeys``: every journey of all conversions (SQLite: ``journeys.build_journeys``; DuckDB: all batches
  of ``journey_batches``, converted to the same numpy columns);
- ``report``: the channel-day report from the stored attribution (SQLite: ``report.build_report``;
  DuckDB: ``channel_report``, fixed-point sums);
- ``run:MODEL``: the whole ``python -m pipeline run SRC --model MODEL --force -q`` per engine (validate,
  journeys, the model, report, outputs written), the ratio against the SQLite engine's own ``run``.
  Targets (issue 14): DuckDB engine on x30 ≤ 0.5× the SQLite run's time, peak memory ≤ 1 GB.

    python bench/bench_engines.py                 # both sizes (building the 10× database takes ~1 min)
    python bench/bench_engines.py --sizes 1 --repeat 1
    python bench/bench_engines.py --keep /tmp/bench_engines   # reuse the databases between runs
    python bench/bench_engines.py --ids real                  # one id shape
    python bench/bench_engines.py --sizes 30 --steps run --models linear markov --ids real --repeat 1

Each size is measured in both id shapes (``--ids``, the ``ids`` column): ``real``, the real data's 64-hex
session/conversion ids and 40-hex user ids (the demo's default), and ``short`` ones (``--short-ids``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}

SIZES = {1: (450_000, 2_000), 10: (4_500_000, 20_000), 30: (13_500_000, 60_000)}
STEPS = ("convert", "validate", "journeys", "report", "run")

# One step in a child process: `python -c SCRIPT STEP ENGINE SOURCE`. The SQLite engine's (also the
# reference of bench_postgres.py; "run": a forced linear run of a copy), then the DuckDB engine's.
SQLITE_STEP = """
import sys
step, source = sys.argv[1], sys.argv[3]
from pipeline.db import open_database
if step == "run":
    from pipeline.runner import RunOptions, run_pipeline
    con = open_database(source, write=True)
    run_pipeline(con, RunOptions(model="linear", force=True))
    con.close()
    raise SystemExit
con = open_database(source)
if step == "validate":
    from pipeline.validate import validate
    validate(con)
elif step == "journeys":
    from pipeline.journeys import build_journeys
    build_journeys(con)
elif step == "report":
    from pipeline.report import build_report
    build_report(con)
"""
# ENGINE: the module's name in pipeline.engines ("duckdb", "postgres"); "run" (bench_postgres.py): a
# linear run, batch by batch, its outputs written.
STEP = """
import importlib, sys
step, engine, source = sys.argv[1:4]
E = importlib.import_module(f"pipeline.engines.{engine}")
e = E.open_engine(source, write=(step == "run"))
if step == "validate":
    E.validate(e)
elif step == "journeys":
    n = sum(len(b["ts"]) for b in E.journey_batches(e))
elif step == "report":
    E.channel_report(e)
elif step == "run":
    import numpy as np
    from pipeline.journey_index import JourneyIndex
    from pipeline.models import get_model
    E.validate(e)
    model, parts = get_model("linear"), []
    for batch in E.journey_batches(e):
        index = JourneyIndex.from_columns(batch)
        parts.append((index.column("conversion_id"), index.column("session_id"), np.asarray(model.credits(index).ihc)))
    credits = {k: np.concatenate([p[i] for p in parts]) for i, k in enumerate(("conv_id", "session_id", "ihc"))}
    E.write_outputs(e, credits, E.channel_report(e, credits))
e.close()
"""


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.read().decode()}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def best(cmd: list[str], repeat: int, before=None) -> tuple[float, float, float]:
    runs = []
    for _ in range(repeat):
        if before:
            before()
        runs.append(timed(cmd))
    return min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs)


def prepare(folder: Path, size: int, shape: str = "real") -> Path:
    """The demo database of ``size`` and id ``shape``, run once by the SQLite engine (outputs present);
    reused if there."""
    db = folder / f"x{size}_{shape}.db"
    if not db.exists():
        sessions, conversions = SIZES[size]
        tmp = folder / f"x{size}_{shape}.building.db"
        short = ["--short-ids"] if shape == "short" else []
        subprocess.run(
            [sys.executable, "-m", "pipeline", "demo-db", str(tmp), "--sessions", str(sessions), "--conversions",
             str(conversions), "--force", *short],
            check=True, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "pipeline", "run", str(tmp), "--model", "linear", "-q"],
            check=True, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        tmp.rename(db)
    return db


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10], choices=sorted(SIZES))
    ap.add_argument("--repeat", type=int, default=3, help="runs per step (best wall/CPU, worst memory)")
    ap.add_argument("--keep", type=Path, help="folder to keep the generated databases in")
    ap.add_argument("--ids", nargs="+", choices=["real", "short"], default=["real", "short"], help="id shapes")
    ap.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS), help="steps to measure")
    ap.add_argument("--models", nargs="+", default=["linear", "markov"], help="models of the run step")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_engines-"))
    folder.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    header = (
        f"{'db':>4} {'ids':<5} {'step':<12} {'engine':<8} {'wall s':>7} {'cpu s':>7} {'peak MB':>8} "
        f"{'sessions/s':>11} {'wall×':>6} {'cpu×':>6}"
    )
    print(header)
    print("-" * len(header))
    try:
        for size, shape in [(size, shape) for size in args.sizes for shape in args.ids]:
            db = prepare(folder, size, shape)
            sessions = SIZES[size][0]
            targets = {
                "parquet": f"parquet:///{folder / f'x{size}_{shape}_lake'}",
                "duckdb": f"duckdb:///{folder / f'x{size}_{shape}.duckdb'}",
            }

            def row(step, engine, figures, ref=None, size=size, sessions=sessions, shape=shape):
                wall, cpu, mb = figures
                ratio = f"{wall / ref[0]:6.2f} {cpu / ref[1]:6.2f}" if ref else f"{'—':>6} {'—':>6}"
                print(
                    f"{'x' + str(size):>4} {shape:<5} {step:<12} {engine:<8} {wall:7.2f} {cpu:7.2f} {mb:8.0f} "
                    f"{sessions / wall:11,.0f} {ratio}",
                    flush=True,
                )

            for kind, target in targets.items():
                path = Path(target.split(":///", 1)[1])

                def clear(path=path):
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

                cmd = [py, "-m", "pipeline", "convert", str(db), target, "--outputs", "--overwrite", "-q"]
                if "convert" in args.steps or not path.exists():
                    figures = best(cmd, args.repeat, clear)
                    if "convert" in args.steps:
                        row("convert", kind, figures)
            for model in args.models if "run" in args.steps else []:
                run = [py, "-m", "pipeline", "run"]
                ref = best([*run, str(db), "--model", model, "--force", "-q"], args.repeat)
                row(f"run:{model}", "sqlite", ref)
                for kind, target in targets.items():
                    row(f"run:{model}", kind, best([*run, target, "--model", model, "--force", "-q"], args.repeat), ref)
            for step in [s for s in ("validate", "journeys", "report") if s in args.steps]:
                ref = best([py, "-c", SQLITE_STEP, step, "sqlite", str(db)], args.repeat)
                row(step, "sqlite", ref)
                for kind, target in targets.items():
                    row(step, kind, best([py, "-c", STEP, step, "duckdb", target], args.repeat), ref)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
