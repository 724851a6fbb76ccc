"""The resumable ledger: the API's answers and which conversions are done, in the product's own tables.

Tables (all prefixed ``ihc_api_``):

- ``ihc_api_keys``: one row per run key = (endpoint, conversion type, redistribution parameters). The
  API key is not part of it and never stored.
- ``ihc_api_ledger``: per (run key, conversion): its content fingerprint (``h1``, ``h2``), ``status``
  ``done`` or ``failed`` (with ``reason``), sessions in the journey and sessions sent (fewer when the
  journey was truncated), the run and chunk that produced it.
- ``ihc_api_results``: per (run key, conversion, session) the four values the API returned; sessions
  not sent because of truncation are stored with 0 everywhere and ``sent = 0``.
- ``ihc_api_runs``: one row per call of ``attribute_via_api`` (status running/finished/failed/
  interrupted, counts, the one-line message of a failure, the summary as JSON, the pid, host and
  start of the process, and ``heartbeat_at``: its lease, renewed with every chunk it commits). A run
  whose process died without recording its end (kill -9, a power cut) is marked interrupted by the
  next run that starts (``mark_abandoned``): on this host when its pid is gone or now belongs to a
  process that started at another time (a reused pid); from another host (where its process cannot
  be checked) when its lease expired, ``ATTRIBUTION_API_LEASE_SECONDS`` (default 900) after its
  last sign of life. A live run marked by mistake (a chunk that took longer than the lease) still
  records its own end: its status is then right again.

A conversion counts as done for a run key when its ledger row has the same fingerprint as the journey
being attributed now. Each chunk's results and ledger rows are written in one transaction
(``commit_chunk``), so after any interruption the tables hold whole chunks only.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator, Optional, cast

import numpy as np
import pandas as pd

from ..errors import PipelineError
from ..journey_index import VALUE_COLUMNS
from ..processes import pid_alive

DDL = """
CREATE TABLE IF NOT EXISTS ihc_api_keys (
    key_id INTEGER PRIMARY KEY,
    run_key TEXT NOT NULL UNIQUE,
    api_url TEXT NOT NULL,
    conv_type_id TEXT NOT NULL,
    redistribution_parameter TEXT,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ihc_api_ledger (
    key_id INTEGER NOT NULL REFERENCES ihc_api_keys(key_id),
    conversion_id TEXT NOT NULL,
    h1 INTEGER NOT NULL,
    h2 INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    reason TEXT,
    sessions INTEGER NOT NULL,
    sessions_sent INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    completed_at TEXT NOT NULL,
    PRIMARY KEY (key_id, conversion_id));
CREATE TABLE IF NOT EXISTS ihc_api_results (
    key_id INTEGER NOT NULL REFERENCES ihc_api_keys(key_id),
    conversion_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    initializer REAL NOT NULL,
    holder REAL NOT NULL,
    closer REAL NOT NULL,
    ihc REAL NOT NULL,
    sent INTEGER NOT NULL,
    PRIMARY KEY (key_id, conversion_id, session_id));
CREATE TABLE IF NOT EXISTS ihc_api_runs (
    run_id TEXT PRIMARY KEY,
    key_id INTEGER NOT NULL REFERENCES ihc_api_keys(key_id),
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
    conversions INTEGER NOT NULL,
    already_done INTEGER NOT NULL,
    chunks_total INTEGER NOT NULL,
    chunks_done INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    message TEXT,
    summary TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT);
"""

TABLES = ("ihc_api_keys", "ihc_api_ledger", "ihc_api_results", "ihc_api_runs")


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, ROLLBACK on any exception (KeyboardInterrupt included)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def ensure_tables(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        raise PipelineError(
            "internal: the IHC API client commits each chunk as it arrives and needs a connection "
            "without an open transaction"
        )
    with transaction(conn):
        for statement in DDL.split(";"):
            if statement.strip():
                conn.execute(statement)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(ihc_api_runs)")}
        for column, kind in LATER_COLUMNS:  # added later: older files lack them
            if column not in columns:
                conn.execute(f"ALTER TABLE ihc_api_runs ADD COLUMN {column} {kind}")


LATER_COLUMNS = (("pid", "INTEGER"), ("host", "TEXT"), ("heartbeat_at", "TEXT"), ("process_start", "TEXT"))
LEASE_ENV = "ATTRIBUTION_API_LEASE_SECONDS"
LEASE_SECONDS = 900.0


def lease_seconds() -> float:
    """How long a run of another host counts as alive after its last sign of life."""
    try:
        return max(1.0, float(os.environ.get(LEASE_ENV, LEASE_SECONDS)))
    except ValueError:
        return LEASE_SECONDS


def process_start(pid: int) -> Optional[str]:
    """When process ``pid`` started, as 'boot id:clock ticks since boot' (Linux /proc), or None where
    that cannot be read: with the pid, it names one process even after the pid is reused."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return f"{boot}:{stat[stat.rindex(')') + 2 :].split()[19]}"  # field 22, after the (command)
    except (OSError, ValueError, IndexError):
        return None


def mark_abandoned(conn: sqlite3.Connection) -> int:
    """Mark 'running' runs whose process is gone as interrupted (call inside a write transaction).

    A run records its pid, host and process start, and renews its lease with every chunk; a process
    killed without a chance to record its end (kill -9, a power cut) leaves its row 'running'. On this
    host, a row is abandoned whose pid no longer exists, or belongs to a process that started at
    another time than the run's (a reused pid); a row of an older version without a pid is too. A row
    of another host is abandoned once its lease expired (``lease_seconds`` after its last chunk or its
    start). Returns the number of rows marked."""
    host = socket.gethostname()
    rows = conn.execute(
        "SELECT run_id, pid, host, process_start, coalesce(heartbeat_at, started_at) FROM ihc_api_runs"
        " WHERE status = 'running'"
    ).fetchall()
    lease = lease_seconds()
    expired_before = (datetime.now(timezone.utc) - timedelta(seconds=lease)).strftime("%Y-%m-%d %H:%M:%S")
    marked = 0
    for run_id, pid, run_host, started, beat in rows:
        why = _abandoned(pid, run_host, started, beat, host, expired_before, lease)
        if why is None:
            continue
        conn.execute(
            "UPDATE ihc_api_runs SET status = 'interrupted', finished_at = ?, message = ? WHERE run_id = ?",
            (now(), f"abandoned: {why} without recording an end (killed?); run again to continue", run_id),
        )
        marked += 1
    return marked


def _abandoned(pid, run_host, started, beat, host: str, expired_before: str, lease: float) -> Optional[str]:
    """Why a 'running' row is abandoned (the message's words), or None while its run may be alive."""
    if pid is None:
        return "its process ended"
    if run_host != host:
        if beat is not None and beat >= expired_before:
            return None
        return f"its process ({pid} on {run_host}) gave no sign of life for {_duration(lease)}"
    if not pid_alive(pid):
        return f"its process ({pid} on {run_host}) ended"
    if started is not None and process_start(pid) not in (None, started):
        return f"its process ({pid} on {run_host}) ended (pid {pid} is now another process)"
    return None


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def run_key(api_url: str, conv_type_id: str, redistribution_parameter: Optional[dict]) -> str:
    canonical = json.dumps(
        {"api_url": api_url, "conv_type_id": conv_type_id, "redistribution_parameter": redistribution_parameter},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def key_id_for(conn: sqlite3.Connection, api_url: str, conv_type_id: str, redistribution: Optional[dict]) -> int:
    """The integer id of this run key, created on first use (committed)."""
    key = run_key(api_url, conv_type_id, redistribution)
    row = conn.execute("SELECT key_id FROM ihc_api_keys WHERE run_key = ?", (key,)).fetchone()
    if row:
        return int(row[0])
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO ihc_api_keys (run_key, api_url, conv_type_id, redistribution_parameter, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                key,
                api_url,
                conv_type_id,
                None if redistribution is None else json.dumps(redistribution, sort_keys=True),
                now(),
            ),
        )
        return int(cast(int, cur.lastrowid))


def read_ledger(conn: sqlite3.Connection, key_id: int) -> pd.DataFrame:
    """conversion_id, h1, h2, status, reason for every conversion ever recorded under this key."""
    return pd.read_sql_query(
        "SELECT conversion_id, h1, h2, status, reason FROM ihc_api_ledger WHERE key_id = ?",
        conn,
        params=(key_id,),
        dtype={"conversion_id": str, "h1": np.int64, "h2": np.int64, "status": str, "reason": object},
    )


def read_results(conn: sqlite3.Connection, key_id: int, conversion_ids: pd.Series) -> pd.DataFrame:
    """Stored values of the given conversions (a temporary table does the filtering in SQL)."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS ihc_api_wanted (conversion_id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM temp.ihc_api_wanted")
    conn.executemany("INSERT INTO temp.ihc_api_wanted VALUES (?)", ((c,) for c in conversion_ids.astype(str)))
    frame = pd.read_sql_query(
        "SELECT r.conversion_id, r.session_id, r.initializer, r.holder, r.closer, r.ihc "
        "FROM ihc_api_results r JOIN temp.ihc_api_wanted w ON w.conversion_id = r.conversion_id "
        "WHERE r.key_id = ?",
        conn,
        params=(key_id,),
        dtype={"conversion_id": str, "session_id": str},
    )
    conn.execute("DELETE FROM temp.ihc_api_wanted")
    if conn.in_transaction:
        conn.commit()  # the temp-table writes opened an implicit transaction; it holds nothing else
    return frame


def start_run(
    conn: sqlite3.Connection, key_id: int, fingerprint: str, conversions: int, already_done: int, chunks_total: int
) -> str:
    run_id = uuid.uuid4().hex[:16]
    with transaction(conn):
        mark_abandoned(conn)
        conn.execute(
            "INSERT INTO ihc_api_runs (run_id, key_id, fingerprint, status, conversions, already_done, "
            "chunks_total, chunks_done, requests, retries, failed, started_at, pid, host, heartbeat_at, "
            "process_start) VALUES (?, ?, ?, 'running', ?, ?, ?, 0, 0, 0, 0, ?, ?, ?, ?, ?)",
            (
                run_id,
                key_id,
                fingerprint,
                conversions,
                already_done,
                chunks_total,
                now(),
                os.getpid(),
                socket.gethostname(),
                now(),
                process_start(os.getpid()),
            ),
        )
    return run_id


def commit_chunk(
    conn: sqlite3.Connection,
    *,
    key_id: int,
    run_id: str,
    chunk: int,
    conversions: pd.DataFrame,
    results: pd.DataFrame,
    counters: dict,
) -> None:
    """One transaction: replace the chunk's conversions' results, write their ledger rows, bump the run.

    ``conversions``: conversion_id, h1, h2, status, reason, sessions, sessions_sent (every conversion
    of the chunk, done or failed). ``results``: conversion_id, session_id, the four values, sent, for
    the done ones only.
    """
    stamp = now()
    n = len(conversions)
    conversion_ids = conversions["conversion_id"].astype(str).tolist()
    reasons = conversions["reason"].astype(object)
    ledger_rows = zip(
        [key_id] * n,
        conversion_ids,
        conversions["h1"].astype(np.int64).tolist(),
        conversions["h2"].astype(np.int64).tolist(),
        conversions["status"].astype(str).tolist(),
        reasons.where(reasons.notna(), None).tolist(),
        conversions["sessions"].astype(np.int64).tolist(),
        conversions["sessions_sent"].astype(np.int64).tolist(),
        [run_id] * n,
        [chunk] * n,
        [stamp] * n,
    )
    result_rows = zip(
        [key_id] * len(results),
        results["conversion_id"].astype(str).tolist(),
        results["session_id"].astype(str).tolist(),
        *(results[c].astype(np.float64).tolist() for c in VALUE_COLUMNS),
        results["sent"].astype(np.int64).tolist(),
    )
    ids = [(key_id, c) for c in conversion_ids]
    with transaction(conn):
        conn.executemany("DELETE FROM ihc_api_results WHERE key_id = ? AND conversion_id = ?", ids)
        conn.executemany("INSERT INTO ihc_api_results VALUES (?, ?, ?, ?, ?, ?, ?, ?)", result_rows)
        conn.executemany("INSERT OR REPLACE INTO ihc_api_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ledger_rows)
        conn.execute(
            "UPDATE ihc_api_runs SET chunks_done = ?, requests = ?, retries = ?, failed = ?, heartbeat_at = ?"
            " WHERE run_id = ?",
            (counters["chunks"], counters["requests"], counters["retries"], counters["failed"], stamp, run_id),
        )


def finish_run(
    conn: sqlite3.Connection,
    run_id: str,
    status: str,
    counters: dict,
    message: Optional[str] = None,
    summary: Optional[dict] = None,
) -> None:
    if conn.in_transaction:  # an interrupted statement: nothing of the chunk in flight is kept
        conn.rollback()
    with transaction(conn):
        conn.execute(
            "UPDATE ihc_api_runs SET status = ?, chunks_done = ?, requests = ?, retries = ?, failed = ?, "
            "message = ?, summary = ?, finished_at = ? WHERE run_id = ?",
            (
                status,
                counters["chunks"],
                counters["requests"],
                counters["retries"],
                counters["failed"],
                message,
                None if summary is None else json.dumps(summary, sort_keys=True),
                now(),
                run_id,
            ),
        )


def recent_runs(conn: sqlite3.Connection, limit: int = 20) -> pd.DataFrame:
    """The latest runs with their endpoint and conversion type (for a status display); empty if none."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ihc_api_runs'").fetchone()
    if not exists:
        return pd.DataFrame(
            columns=[
                "run_id",
                "api_url",
                "conv_type_id",
                "status",
                "conversions",
                "already_done",
                "chunks_done",
                "chunks_total",
                "requests",
                "retries",
                "failed",
                "message",
                "started_at",
                "finished_at",
            ]
        )
    return pd.read_sql_query(
        "SELECT r.run_id, k.api_url, k.conv_type_id, r.status, r.conversions, r.already_done, "
        "r.chunks_done, r.chunks_total, r.requests, r.retries, r.failed, r.message, r.started_at, "
        "r.finished_at FROM ihc_api_runs r JOIN ihc_api_keys k USING (key_id) "
        "ORDER BY r.started_at DESC, r.rowid DESC LIMIT ?",
        conn,
        params=(limit,),
    )
