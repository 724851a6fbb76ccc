"""Abandoned IHC API runs from another host, or whose pid now belongs to another process (issue 12): a
run keeps a lease (``heartbeat_at``, refreshed with every chunk it commits) and records its process's
start; the next run marks it interrupted when the lease expired (another host) or the pid's process
started at another time (a reused pid)."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from pipeline.ihc_api import ledger


@pytest.fixture
def con(tmp_path):
    con = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    ledger.ensure_tables(con)
    yield con
    con.close()


def _key(con):
    return ledger.key_id_for(con, "http://127.0.0.1:9/", "type", None)


def _ago(seconds: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def _status(con, run_id):
    return con.execute("SELECT status, message FROM ihc_api_runs WHERE run_id = ?", (run_id,)).fetchone()


def test_a_run_from_another_host_is_interrupted_once_its_lease_expired(con, monkeypatch):
    monkeypatch.setenv(ledger.LEASE_ENV, "600")
    key = _key(con)
    stale = ledger.start_run(con, key, "fp", 5, 0, 1)
    fresh = ledger.start_run(con, key, "fp", 5, 0, 1)
    con.execute(
        "UPDATE ihc_api_runs SET host = 'elsewhere', pid = 1, heartbeat_at = ? WHERE run_id = ?", (_ago(601), stale)
    )
    con.execute(
        "UPDATE ihc_api_runs SET host = 'elsewhere', pid = 1, heartbeat_at = ? WHERE run_id = ?", (_ago(30), fresh)
    )
    ledger.start_run(con, key, "fp", 5, 0, 1)
    status, message = _status(con, stale)
    assert status == "interrupted"
    assert "elsewhere" in message and "no sign of life for 10 min" in message
    assert _status(con, fresh)[0] == "running"  # its lease holds: it may well be running there


def test_a_reused_pid_does_not_keep_a_dead_run_running(con):
    key = _key(con)
    reused = ledger.start_run(con, key, "fp", 5, 0, 1)
    mine = ledger.start_run(con, key, "fp", 5, 0, 1)
    # the row's pid is alive (this very process) but it started at another time: another process now
    con.execute(
        "UPDATE ihc_api_runs SET pid = ?, process_start = 'another-boot:12345' WHERE run_id = ?", (os.getpid(), reused)
    )
    ledger.start_run(con, key, "fp", 5, 0, 1)
    status, message = _status(con, reused)
    assert status == "interrupted" and "now another process" in message
    assert _status(con, mine)[0] == "running"  # same pid, same start: alive, whatever its lease


def test_every_chunk_renews_the_lease(con):
    key = _key(con)
    run = ledger.start_run(con, key, "fp", 1, 0, 1)
    con.execute("UPDATE ihc_api_runs SET heartbeat_at = ? WHERE run_id = ?", (_ago(3600), run))
    conversions = pd.DataFrame(
        {
            "conversion_id": ["c1"],
            "h1": [1],
            "h2": [2],
            "status": ["done"],
            "reason": [None],
            "sessions": [1],
            "sessions_sent": [1],
        }
    )
    results = pd.DataFrame(
        {
            "conversion_id": ["c1"],
            "session_id": ["s1"],
            "initializer": [1.0],
            "holder": [0.0],
            "closer": [0.0],
            "ihc": [1.0],
            "sent": [1],
        }
    )
    counters = {"chunks": 1, "requests": 1, "retries": 0, "failed": 0}
    ledger.commit_chunk(
        con, key_id=key, run_id=run, chunk=0, conversions=conversions, results=results, counters=counters
    )
    (beat,) = con.execute("SELECT heartbeat_at FROM ihc_api_runs WHERE run_id = ?", (run,)).fetchone()
    assert beat >= _ago(60)


def test_an_older_file_gains_the_lease_columns(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(ledger.DDL)  # the tables as first shipped: no pid, host, lease or process start
    old.close()
    con = sqlite3.connect(path, isolation_level=None)
    ledger.ensure_tables(con)
    columns = {row[1] for row in con.execute("PRAGMA table_info(ihc_api_runs)")}
    assert {"pid", "host", "heartbeat_at", "process_start"} <= columns
    con.close()
