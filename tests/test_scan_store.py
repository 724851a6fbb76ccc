"""The run's input scans stored in the database (``pipeline.scan_store``): reused while the inputs are
unchanged, scanned again when an input table changed or the run is forced, never stored for a BLOB
result, a result too large or a VIEW input, and never half-stored by a run that fails or is killed."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import scan_store, scans
from pipeline.db import open_database
from pipeline.schema import INPUT_DDL
from tests.helpers import ROOT, TINY_CONVERSIONS, TINY_COSTS, TINY_SESSIONS, make_db, run_db, tiny_db

EAGER = set(scans.SCANS)


@pytest.fixture
def ran(tmp_path):
    path = tiny_db(tmp_path / "tiny.db")
    run_db(path)  # the default model (offline IHC)
    return path


@pytest.fixture
def scanned(monkeypatch):
    """The names of the scans that read the input tables from now on (any thread)."""
    names = {sql: name for name, sql in scans.ALL_SCANS.items()}
    names.update({scans.COST_PART_SQL.format(part=part): "cost_profile" for part in scans.COST_PARTS})
    seen: list[str] = []
    real = scans._rows

    def counting(con, sql, params=()):
        seen.append(names.get(sql, "?"))
        return real(con, sql, params)

    monkeypatch.setattr(scans, "_rows", counting)
    return seen


def stored(path: Path) -> dict[str, str]:
    con = sqlite3.connect(path)
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'pipeline_input_scans'").fetchone():
            return {}
        return dict(con.execute("SELECT name, rows FROM pipeline_input_scans"))
    finally:
        con.close()


def report(path: Path) -> dict:
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT channel_name, date, cost, ihc, ihc_revenue FROM channel_reporting").fetchall()
    finally:
        con.close()
    return {(c, d): (cost, round(ihc, 6), round(rev, 6)) for c, d, cost, ihc, rev in rows}


def test_a_run_stores_its_scans_and_the_next_run_on_the_same_inputs_reuses_them(ran, scanned):
    assert EAGER <= set(stored(ran))  # the first run scanned and stored them
    result = run_db(ran, model="linear")  # another model: the report is redone, the inputs are the same
    assert not result.outcomes[-1].skipped
    assert scanned == []  # not one scan of the input tables
    got = report(ran)
    # Hand-computed (tests/test_core_pipeline.py): Paid Search Brand 09-01 holds s1 and s6, cost 2 + 3;
    # Display 09-02 s5, cost 0.5; the five channel-days with sessions.
    assert got[("Paid Search Brand", "2023-09-01")][0] == 5.0
    assert got[("Display", "2023-09-02")][0] == 0.5
    assert len(got) == 5
    fresh = shutil.copyfile(ran, ran.with_name("fresh.db"))
    run_db(fresh, model="linear", force=True)  # the same run, scanning
    assert report(fresh) == got


def test_an_input_table_changed_is_scanned_again(ran, scanned):
    con = sqlite3.connect(ran)
    con.execute("UPDATE session_costs SET cost = 9.0 WHERE session_id = 's1'")
    con.commit()
    con.close()
    run_db(ran, model="linear")
    assert "cost_profile" in scanned and "session_profile" in scanned
    assert report(ran)[("Paid Search Brand", "2023-09-01")][0] == 12.0  # 9 + 3, not the stored 5
    scanned.clear()
    run_db(ran, model="first-click")  # and the new scans are the stored ones now
    assert scanned == []
    assert report(ran)[("Paid Search Brand", "2023-09-01")][0] == 12.0


def test_a_forced_run_scans_again(ran, scanned):
    before = stored(ran)
    run_db(ran, force=True)
    # Validation is current (the inputs did not change): the report's scans ran again, the stored
    # ones notwithstanding — the channel-days (not the whole session profile) and the cost profile.
    assert sorted(scanned) == ["channel_days", "cost_profile"]
    after = stored(ran)
    assert {name: after[name] for name in before} == before  # same inputs: the same rows
    assert sorted(json.loads(after["channel_days"])) == [  # the five channel-days of TINY_SESSIONS
        ["Direct Traffic", "2023-09-02"],
        ["Display", "2023-09-02"],
        ["FB & IG Ads", "2023-09-02"],
        ["Newsletter & Email", "2023-09-03"],
        ["Paid Search Brand", "2023-09-01"],
    ]


def test_a_forced_run_on_changed_inputs_validates_and_scans_everything(ran, scanned):
    con = sqlite3.connect(ran)
    con.execute("UPDATE session_costs SET cost = 9.0 WHERE session_id = 's1'")
    con.commit()
    con.close()
    run_db(ran, force=True)
    assert EAGER <= set(scanned)  # validation is stale: its scans run too
    assert "channel_days" not in scanned  # the session profile gives the report its channel-days
    assert report(ran)[("Paid Search Brand", "2023-09-01")][0] == 12.0  # 9 + 3


def test_a_blob_result_is_not_stored_and_removes_a_stored_one(ran):
    con = open_database(ran, write=True)
    try:
        fps = {"session_sources": "p:a", "conversions": "p:b", "session_costs": "p:c"}
        with con:
            scan_store.save(con, fps, {"session_profile": [("Display", "2023-09-02", 1, "text", "text")]})
        assert scan_store.load(con, fps) == {"session_profile": [("Display", "2023-09-02", 1, "text", "text")]}
        with con:
            scan_store.save(con, fps, {"session_profile": [(b"\x00Display", "2023-09-02", 1, "text", "text")]})
        assert scan_store.load(con, fps) == {}
        assert "session_profile" not in stored(ran)
    finally:
        con.close()


def test_a_result_of_more_rows_than_the_limit_is_not_stored(tmp_path, monkeypatch):
    path = tiny_db(tmp_path / "t.db")
    monkeypatch.setattr(scan_store, "MAX_ROWS", 1)
    run_db(path)
    kept = stored(path)
    assert "session_profile" not in kept  # 5 channel-days of sessions: more than 1 row
    assert "cost_screen" in kept  # one row


def test_nothing_is_stored_while_an_input_is_a_view(tmp_path, scanned):
    ddl = INPUT_DDL.replace("CREATE TABLE conversions", "CREATE TABLE conversions_data")
    path = make_db(tmp_path / "v.db", TINY_SESSIONS, (), TINY_COSTS, ddl=ddl)
    con = sqlite3.connect(path)
    con.executemany("INSERT INTO conversions_data VALUES (?, ?, ?, ?, ?)", TINY_CONVERSIONS)
    con.execute("CREATE VIEW conversions AS SELECT * FROM conversions_data")
    con.commit()
    con.close()
    run_db(path)
    assert stored(path) == {}
    scanned.clear()
    run_db(path, model="linear")
    assert "cost_profile" in scanned  # scanned again: nothing was stored to reuse


def test_a_failed_run_leaves_no_scan_stored(tmp_path, monkeypatch):
    path = tiny_db(tmp_path / "t.db")
    from pipeline import status

    def fail(*args):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(status, "remember_inputs", fail)  # after the scans' rows, in the same commit
    with pytest.raises(RuntimeError, match="disk gone"):
        run_db(path)
    assert stored(path) == {}


KILLED = """
import os, signal, sys
from pipeline import runner, scan_store
real = scan_store.save
def save_and_die(con, fingerprints, results):
    real(con, fingerprints, results)
    con.execute("PRAGMA cache_spill = ON")  # (let the pages reach the file, as a large write would)
    os.kill(os.getpid(), signal.SIGKILL)
runner.save_scans = save_and_die
from tests.helpers import run_db
run_db(sys.argv[1])
"""


def test_a_run_killed_while_storing_its_scans_leaves_none_stored(tmp_path):
    path = tiny_db(tmp_path / "t.db")
    done = subprocess.run(
        [sys.executable, "-c", KILLED, str(path)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert done.returncode == -9
    open_database(path).close()  # (a hot journal is rolled back on open)
    assert stored(path) == {}


def test_the_keys_are_computed_once_per_load_and_are_the_stored_ones():
    """The key hashes ``[[[table, fingerprint], ...], sql]`` (the text of earlier versions: their stored
    scans stay valid); a load computes the keys of all scans in one go."""
    import hashlib

    fps = {"session_sources": "p:a", "conversions": "p:b", "session_costs": "p:c"}
    sql = scans.ALL_SCANS["cost_profile"]
    text = '[[["conversions", "p:b"], ["session_costs", "p:c"], ["session_sources", "p:a"]], ' + json.dumps(sql) + "]"
    assert scan_store.scan_key(fps, sql) == hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    assert set(scan_store.scan_keys(fps)) == set(scans.ALL_SCANS.values())
    assert scan_store.scan_keys({**fps, "conversions": "v:view"}) == {}  # a VIEW: nothing is stored
