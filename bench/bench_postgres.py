"""Benchmark of the Postgres engine (issue 14) against the SQLite engine, on a real server started here
(Debian's postgresql, tests/pg_server.py: a fresh cluster on a loopback port, fsync off).

For the demo databases of bench/bench_engines.py (x1 ≈ 450k sessions, x10 ≈ 4.5M), after a SQLite ``run
--model linear``, each step runs as a whole child process and prints: wall time (best of N), the client's
CPU time (user + sys), the SERVER's CPU time for that step (the postmaster's own and its reaped backends'
CPU from /proc, before and after — the set work runs there), the client's peak memory (max RSS), sessions/s
and the ratio of wall time to the SQLite engine's same step measured in the same run. Steps:

- ``convert``: ``python -m pipeline convert DB.db postgres://… --outputs --overwrite`` (ADBC COPY);
- ``validate``: all findings (SQLite ``validate.validate`` / ``engines.postgres.validate``);
- ``journeys``: every journey, as numpy columns (SQLite ``build_journeys`` / all ``journey_batches``);
  ``journeys-pg3``: the same rows fetched with psycopg 3 instead (a server-side cursor, 200k rows per
  fetch, turned into the same columns) — the driver comparison; skipped when psycopg is not installed
  (it is not a requirement: ``pip install psycopg==3.3.9 psycopg-binary==3.3.9`` to get that row);
- ``report``: the channel-day report from the stored attribution;
- ``run``: the whole parity run — validate, journeys in batches, linear credit per batch, the report from
  that credit, both output tables written (SQLite: ``run_pipeline(force=True)`` on a copy, the copy not
  timed; Postgres: the engine functions in that order, ``write_outputs`` staged and swapped).

    python bench/bench_postgres.py --sizes 1 10 --repeat 3
    python bench/bench_postgres.py --sizes 30 --steps run --repeat 1 --keep DIR   # DIR/x30_real.db: the x30 demo
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_engines import ENV, SIZES, SQLITE_STEP, STEP, prepare, timed  # noqa: E402

from tests.pg_server import PASSWORD, start_server  # noqa: E402

# The journeys read with psycopg 3 instead of ADBC (bench_engines.STEP: the engine's steps, SQLITE_STEP: the
# SQLite reference's).
PG3_STEP = """
import sys
source = sys.argv[3]
import numpy as np, psycopg
from pipeline.engines import postgres as P, duckdb as D
from pipeline.engines.dialects import transpile
from pipeline.journeys import journey_columns
from pipeline.window import Window
e = P.open_engine(source)
sql = transpile(D._journeys_sql(e)[0], "postgres", D._params(Window()))
e.close()
with psycopg.connect(source.replace("postgres://", "postgresql://")) as con:
    con.execute("SET TIME ZONE 'UTC'")
    with con.cursor(name="journeys") as cur:
        cur.itersize = 200_000
        cur.execute(sql)
        n = 0
        while rows := cur.fetchmany(200_000):
            cols = [np.asarray(c, dtype=object) for c in zip(*rows)]
            n += len(journey_columns(cols)["ts"])
"""


def server_cpu(pid: int) -> float:
    """CPU seconds of the postmaster and of its children it has reaped (the backends of finished sessions)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


STEPS = ("validate", "journeys", "report", "run")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10], choices=sorted(SIZES))
    ap.add_argument("--repeat", type=int, default=3, help="runs per step (best wall/CPU, worst memory)")
    ap.add_argument("--keep", type=Path, help="folder to keep the generated databases in")
    ap.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS), help="steps after convert (always run)")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_postgres-"))
    folder.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    try:
        import psycopg  # noqa: F401

        pg3 = True
    except ImportError:
        pg3 = False
    server = start_server()
    ENV["PGPASSWORD"] = PASSWORD  # the children's environment (bench_engines.timed)
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    header = (
        f"{'db':>4} {'step':<12} {'engine':<8} {'wall s':>7} {'cpu s':>7} {'srv cpu':>8} {'peak MB':>8} "
        f"{'sessions/s':>11} {'wall×':>6}"
    )
    print(f"PostgreSQL server on 127.0.0.1:{server.port}; 'srv cpu' = the server's CPU seconds in that step")
    print(header)
    print("-" * len(header))
    try:
        for size in args.sizes:
            db = prepare(folder, size, "real")
            sessions = SIZES[size][0]
            url = server.url(password=False, database=f"x{size}")  # the password goes by PGPASSWORD
            server._run(
                str(server.bin / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "analyst", f"x{size}",
                env={**os.environ, "PGPASSWORD": PASSWORD},
            )  # fmt: skip

            def measure(cmd, before=None):
                runs = []
                for _ in range(args.repeat):
                    if before:
                        before()
                    cpu0 = server_cpu(postmaster)
                    wall, cpu, mb = timed(cmd)
                    time.sleep(0.2)  # the backend is reaped just after the client disconnects
                    runs.append((wall, cpu, server_cpu(postmaster) - cpu0, mb))
                return tuple(min(r[i] for r in runs) for i in range(3)) + (max(r[3] for r in runs),)

            def row(step, engine, figures, ref=None, size=size, sessions=sessions):
                wall, cpu, srv, mb = figures
                ratio = f"{wall / ref[0]:6.2f}" if ref else f"{'—':>6}"
                print(
                    f"{'x' + str(size):>4} {step:<12} {engine:<8} {wall:7.2f} {cpu:7.2f} {srv:8.2f} {mb:8.0f} "
                    f"{sessions / wall:11,.0f} {ratio}",
                    flush=True,
                )

            cmd = [py, "-m", "pipeline", "convert", str(db), url, "--outputs", "--overwrite", "-q"]
            row("convert", "postgres", measure(cmd))
            copy = folder / f"x{size}_run_copy.db"
            for step in [s for s in STEPS if s in args.steps]:
                source = str(copy) if step == "run" else str(db)

                def fresh(step=step, db=db, copy=copy):
                    if step == "run":
                        shutil.copy(db, copy)

                ref = measure([py, "-c", SQLITE_STEP, step, "sqlite", source], fresh)
                row(step, "sqlite", ref)
                row(step, "postgres", measure([py, "-c", STEP, step, "postgres", url]), ref)
                if step == "journeys" and pg3:
                    row("journeys-pg3", "postgres", measure([py, "-c", PG3_STEP, "journeys-pg3", "postgres", url]), ref)
    finally:
        server.stop()
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
