"""Fingerprints change with any content change, whichever method computes them."""

import sqlite3

import pytest

from pipeline.db import open_database
from pipeline.fingerprint import _page_hash, _row_hash, input_fingerprints


@pytest.mark.parametrize("method", [_page_hash, _row_hash])
def test_one_character_edit_changes_the_fingerprint(tiny, tmp_path, method):
    con = open_database(tiny)
    before = method(con, "session_sources")
    assert method(con, "session_sources") == before  # stable
    w = sqlite3.connect(tiny)
    w.execute("UPDATE session_sources SET channel_name = 'Display!' WHERE session_id = 's5'")
    w.commit()
    assert method(con, "session_sources") != before


def test_swapping_two_values_changes_the_row_hash(tiny):
    con = open_database(tiny)
    before = _row_hash(con, "session_costs")
    w = sqlite3.connect(tiny)
    w.execute(
        "UPDATE session_costs SET cost = CASE session_id WHEN 's1' THEN 1.0 WHEN 's2' THEN 2.0 END"
        " WHERE session_id IN ('s1', 's2')"
    )
    w.commit()
    assert _row_hash(con, "session_costs") != before


def test_unrelated_writes_do_not_change_input_fingerprints(tiny):
    con = open_database(tiny)
    before = input_fingerprints(con)
    w = sqlite3.connect(tiny)
    w.execute("CREATE TABLE analyst_notes (x TEXT)")
    w.executemany("INSERT INTO analyst_notes VALUES (?)", [("n" * 500,)] * 200)
    w.commit()
    assert input_fingerprints(con) == before


def test_wal_database_falls_back_to_the_row_hash(tiny, tmp_path):
    w = sqlite3.connect(tiny)
    w.execute("PRAGMA journal_mode=WAL")
    w.execute("UPDATE session_costs SET cost = 7 WHERE session_id = 's1'")
    w.commit()
    fps = input_fingerprints(open_database(tiny))
    assert all(v.startswith("r:") for v in fps.values())


# ---- every realistic edit, both journal modes, tables and views (issue 12, "Stale results") -----

from pipeline.schema import REQUIRED_COLUMNS  # noqa: E402
from tests.helpers import TINY_CONVERSIONS, TINY_COSTS, TINY_SESSIONS, make_db  # noqa: E402

VIEW_DDL = """
CREATE TABLE raw_sessions (session_id TEXT PRIMARY KEY, user_id TEXT, event_date TEXT, event_time TEXT,
    channel_name TEXT, holder_engagement INTEGER, closer_engagement INTEGER, impression_interaction INTEGER);
CREATE TABLE raw_conversions (conv_id TEXT PRIMARY KEY, user_id TEXT, conv_date TEXT, conv_time TEXT, revenue REAL);
CREATE TABLE raw_costs (session_id TEXT PRIMARY KEY, cost REAL);
CREATE VIEW session_sources AS SELECT * FROM raw_sessions;
CREATE VIEW conversions AS SELECT * FROM raw_conversions;
CREATE VIEW session_costs AS SELECT * FROM raw_costs;
"""
UNDER = {"session_sources": "raw_sessions", "conversions": "raw_conversions", "session_costs": "raw_costs"}
KEYS = {"session_sources": "session_id", "conversions": "conv_id", "session_costs": "session_id"}


def _input_db(path, journal_mode: str, views: bool):
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA journal_mode = {journal_mode}")
    con.close()
    if views:
        con = sqlite3.connect(path)
        con.executescript(VIEW_DDL)
        for table, rows in (("raw_sessions", TINY_SESSIONS), ("raw_conversions", TINY_CONVERSIONS)):
            con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
        con.executemany("INSERT INTO raw_costs VALUES (?, ?)", TINY_COSTS)
        con.commit()
        con.close()
        return path
    return make_db(path, TINY_SESSIONS, TINY_CONVERSIONS, TINY_COSTS)


def _one_character_edit(value):
    """The same value with one character changed (a digit for numbers, a letter or digit for text)."""
    if isinstance(value, float):
        return value + 1.0 if value < 9 else value - 1.0  # 2.0 → 3.0: one digit
    if isinstance(value, int):
        return 1 - value if value in (0, 1) else value + 1
    text = str(value)
    last = text[-1]
    swapped = {"1": "2", "0": "1", "9": "8"}.get(last, "X" if last != "X" else "Y")
    return text[:-1] + swapped


@pytest.mark.parametrize("views", [False, True], ids=["tables", "views"])
@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_every_single_character_edit_changes_the_fingerprint(tmp_path, journal_mode, views):
    path = _input_db(tmp_path / "in.db", journal_mode, views)
    reader = open_database(path)
    for table, columns in REQUIRED_COLUMNS.items():
        target = UNDER[table] if views else table
        key = KEYS[table]
        for column in columns:
            before = input_fingerprints(reader)
            w = sqlite3.connect(path)
            row_key, value = w.execute(
                f"SELECT {key}, {column} FROM {target} WHERE {column} IS NOT NULL ORDER BY {key} DESC LIMIT 1"
            ).fetchone()
            edited = _one_character_edit(value)
            w.execute(f"UPDATE {target} SET {column} = ? WHERE {key} = ?", (edited, row_key))
            w.commit()
            w.close()
            after = input_fingerprints(reader)
            assert after[table] != before[table], (table, column, value, edited)
            assert {t: v for t, v in after.items() if t != table} == {t: v for t, v in before.items() if t != table}


def test_wal_one_session_moved_by_ten_days(tiny):
    w = sqlite3.connect(tiny)
    w.execute("PRAGMA journal_mode=WAL")
    w.execute("UPDATE session_sources SET event_date = '2023-09-01' WHERE session_id = 's6'")
    w.commit()
    reader = open_database(tiny)
    before = input_fingerprints(reader)
    w.execute("UPDATE session_sources SET event_date = '2023-09-11' WHERE session_id = 's6'")
    w.commit()
    assert input_fingerprints(reader)["session_sources"] != before["session_sources"]


def test_a_view_is_fingerprinted_by_what_it_returns(tmp_path):
    path = _input_db(tmp_path / "v.db", "delete", views=True)
    reader = open_database(path)
    before = input_fingerprints(reader)
    w = sqlite3.connect(path)
    w.execute("UPDATE raw_sessions SET channel_name = 'Display' WHERE channel_name = 'Paid Search Brand'")
    w.commit()
    assert input_fingerprints(reader)["session_sources"] != before["session_sources"]
    # the same rows in another physical order: the same fingerprint
    w.executescript(
        "CREATE TABLE shuffled AS SELECT * FROM raw_costs ORDER BY session_id DESC;"
        "DROP VIEW session_costs; CREATE VIEW session_costs AS SELECT * FROM raw_costs;"
    )
    again = input_fingerprints(reader)["session_costs"]
    w.executescript("DELETE FROM raw_costs; INSERT INTO raw_costs SELECT * FROM shuffled;")
    assert input_fingerprints(reader)["session_costs"] == again
