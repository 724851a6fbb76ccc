"""Fingerprints change with any content change, whichever method computes them."""

import sqlite3

import pytest

from pipeline.db import open_database
from pipeline.fingerprint import _page_hash, _sql_checksum, input_fingerprints


@pytest.mark.parametrize("method", [_page_hash, _sql_checksum])
def test_one_character_edit_changes_the_fingerprint(tiny, tmp_path, method):
    con = open_database(tiny)
    before = method(con, "session_sources")
    assert method(con, "session_sources") == before  # stable
    w = sqlite3.connect(tiny)
    w.execute("UPDATE session_sources SET channel_name = 'Display!' WHERE session_id = 's5'")
    w.commit()
    assert method(con, "session_sources") != before


def test_swapping_two_values_changes_the_sql_checksum(tiny):
    con = open_database(tiny)
    before = _sql_checksum(con, "session_costs")
    w = sqlite3.connect(tiny)
    w.execute(
        "UPDATE session_costs SET cost = CASE session_id WHEN 's1' THEN 1.0 WHEN 's2' THEN 2.0 END"
        " WHERE session_id IN ('s1', 's2')"
    )
    w.commit()
    assert _sql_checksum(con, "session_costs") != before


def test_unrelated_writes_do_not_change_input_fingerprints(tiny):
    con = open_database(tiny)
    before = input_fingerprints(con)
    w = sqlite3.connect(tiny)
    w.execute("CREATE TABLE analyst_notes (x TEXT)")
    w.executemany("INSERT INTO analyst_notes VALUES (?)", [("n" * 500,)] * 200)
    w.commit()
    assert input_fingerprints(con) == before


def test_wal_database_falls_back_to_sql(tiny, tmp_path):
    w = sqlite3.connect(tiny)
    w.execute("PRAGMA journal_mode=WAL")
    w.execute("UPDATE session_costs SET cost = 7 WHERE session_id = 's1'")
    w.commit()
    fps = input_fingerprints(open_database(tiny))
    assert all(v.startswith("s:") for v in fps.values())
