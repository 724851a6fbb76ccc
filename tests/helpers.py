"""Small databases built from Python literals, and running the CLI in a subprocess."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from pipeline.schema import INPUT_DDL

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def make_db(path: Path, sessions=(), conversions=(), costs=(), ddl: str = INPUT_DDL) -> Path:
    """sessions: (session_id, user_id, event_date, event_time, channel, h, c, imp);
    conversions: (conv_id, user_id, conv_date, conv_time, revenue); costs: (session_id, cost)."""
    con = sqlite3.connect(path)
    con.executescript(ddl)
    for table, rows in (("session_sources", sessions), ("conversions", conversions), ("session_costs", costs)):
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    con.commit()
    con.close()
    return path


# The hand-computed case used across tests (see test_core_pipeline.py for the expected numbers).
# u1 converts twice (c1 at 09-02 12:00, c2 at 09-03 12:00); s3 is at exactly c1's time; u2's only
# session comes after its conversion c3; u3 never converts.
TINY_SESSIONS = [
    ("s1", "u1", "2023-09-01", "10:00:00", "Paid Search Brand", 1, 0, 0),
    ("s2", "u1", "2023-09-02", "11:00:00", "FB & IG Ads", 1, 1, 0),
    ("s3", "u1", "2023-09-02", "12:00:00", "Direct Traffic", 0, 1, 0),
    ("s4", "u1", "2023-09-03", "09:00:00", "Newsletter & Email", 1, 1, 0),
    ("s5", "u2", "2023-09-02", "09:00:00", "Display", 0, 0, 1),
    ("s6", "u3", "2023-09-01", "15:00:00", "Paid Search Brand", 0, 0, 0),
]
TINY_CONVERSIONS = [
    ("c1", "u1", "2023-09-02", "12:00:00", 100.0),
    ("c2", "u1", "2023-09-03", "12:00:00", 50.0),
    ("c3", "u2", "2023-09-02", "08:00:00", 80.0),
]
TINY_COSTS = [("s1", 2.0), ("s2", 1.0), ("s5", 0.5), ("s6", 3.0)]


def tiny_db(path: Path) -> Path:
    return make_db(path, TINY_SESSIONS, TINY_CONVERSIONS, TINY_COSTS)


def run_db(db: Path, **options):
    """run_pipeline on the database file ``db`` with RunOptions(**options)."""
    from pipeline.db import open_database
    from pipeline.runner import RunOptions, run_pipeline

    con = open_database(db, write=True)
    try:
        return run_pipeline(con, RunOptions(**options))
    finally:
        con.close()


def cli(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """Run ``python -m pipeline ARGS`` and capture its output."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=full_env,
        timeout=600,
    )


SUMMARY_FIELDS = ("labels", "codes", "start", "length", "conversions", "non_conversions", "value")


def assert_same_summary(got, expected, rtol: float = 0.0) -> None:
    """Two path summaries (``models.weighted_paths.PathSummary``: an engine's or the fast path's, and the
    SQLite engine's) are equal, array by array; ``rtol``: the values may differ by that much (an engine
    that sums them in another order)."""
    import numpy as np

    for field in SUMMARY_FIELDS:
        a, b = getattr(got, field), getattr(expected, field)
        assert np.allclose(a, b, rtol=rtol) if field == "value" and rtol else np.array_equal(a, b), field
