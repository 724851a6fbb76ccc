"""The non-converting paths grouped over Arrow columns (``pipeline.arrow_paths``) give exactly the SQL
path's summary (``path_summary.non_converting_summary`` with the fast path switched off): on random
database files (ties at one second, hostile channel names, ids of every length, batches of a few rows),
on paths too long for one integer, and on the input this reading hands back to SQL (non-text user ids,
a collation, a time that is not a real one, a user id longer than 64 bytes)."""

from __future__ import annotations

import itertools
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import arrow_paths
from pipeline.models.weighted_paths import PathSummary
from pipeline.path_summary import non_converting_summary
from pipeline.schema import INPUT_DDL
from pipeline.window import Window
from tests.helpers import assert_same_summary
from tests.test_path_summary import WINDOWS, databases, write

NUMBERS = itertools.count()  # one file per example (hypothesis reuses tmp_path)


def sql_summary(con: sqlite3.Connection, window: Window, monkeypatch) -> PathSummary:
    with monkeypatch.context() as m:
        m.setattr(arrow_paths, "counts", lambda path, window: None)
        return non_converting_summary(con, window)


def assert_fast_path_matches(con, path, window, monkeypatch, ran: bool = True) -> None:
    assert (arrow_paths.counts(str(path), window) is not None) == ran
    assert_same_summary(non_converting_summary(con, window), sql_summary(con, window, monkeypatch))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(databases(), WINDOWS, st.sampled_from([2, 3, 65_536]), st.sampled_from([1, arrow_paths.PART_BYTES]))
def test_same_summary_as_sql_on_random_database_files(tmp_path, monkeypatch, db, window, batch_rows, part_bytes):
    path = tmp_path / f"r{next(NUMBERS)}.db"
    con = write(path, *db)
    try:
        monkeypatch.setattr(arrow_paths, "BATCH_ROWS", batch_rows)  # ids of other widths in other batches
        monkeypatch.setattr(arrow_paths, "PART_BYTES", part_bytes)  # 1: a part per sampled id
        monkeypatch.setattr(
            arrow_paths, "MAX_PART_BYTES", max(part_bytes, arrow_paths.MAX_PART_BYTES * (part_bytes > 1))
        )
        assert_fast_path_matches(con, path, window, monkeypatch)
    finally:
        con.close()


def long_user_sessions(n: int, user: str = "u1") -> list[tuple]:
    return [(f"s{user}{k}", user, f"2024-03-0{1 + k % 5}", f"{k % 24:02d}:00:00", f"ch{k % 13}") for k in range(n)]


@pytest.mark.parametrize("window", [Window(), Window(lookback_days=2)], ids=["all", "lookback"])
def test_paths_too_long_for_one_integer_and_ids_of_growing_width(tmp_path, monkeypatch, window):
    sessions = long_user_sessions(80) + long_user_sessions(80, "u2") + long_user_sessions(40, "L" * 64)
    sessions += long_user_sessions(3, "u3") + [("x", "u4", "2024-03-02", "10:00:00", "ch1")]
    assert 80 > arrow_paths._fits(13)
    con = write(tmp_path / "long.db", sessions, [])
    try:
        monkeypatch.setattr(arrow_paths, "BATCH_ROWS", 7)  # the 64-byte id comes after narrower ones
        assert_fast_path_matches(con, tmp_path / "long.db", window, monkeypatch)
        summary = non_converting_summary(con, window)
        assert summary.non_conversions.sum() == 5 and sorted(summary.length.tolist())[-1] > 16
    finally:
        con.close()


SESSIONS = [
    ("s1", "u1", "2024-03-01", "10:00:00", "A"),
    ("s2", "u1", "2024-03-01", "10:00:00", "B"),  # a tie: session_id order
    ("s3", "u2", "2024-03-02", "11:00:00", "A"),
]


@pytest.mark.parametrize(
    "case",
    ["integer user ids", "nocase collation", "february 30", "null session id", "hour 24", "a 65-byte user id"],
)
def test_input_it_does_not_handle_goes_to_sql(tmp_path, monkeypatch, case):
    sessions, ddl = list(SESSIONS), INPUT_DDL
    if case == "integer user ids":
        ddl = INPUT_DDL.replace("user_id TEXT, event_date", "user_id, event_date")
        sessions.append(("s4", 5, "2024-03-02", "12:00:00", "B"))
        sessions.append(("s5", "5", "2024-03-02", "12:00:00", "A"))
    elif case == "nocase collation":
        ddl = INPUT_DDL.replace("user_id TEXT, event_date", "user_id TEXT COLLATE NOCASE, event_date")
        sessions.append(("s4", "U1", "2024-03-02", "12:00:00", "B"))
    elif case == "february 30":
        sessions.append(("s4", "u3", "2023-02-30", "12:00:00", "B"))
    elif case == "a 65-byte user id":
        sessions.append(("s4", "u" * 65, "2024-03-02", "12:00:00", "B"))
    elif case == "null session id":
        sessions.append((None, "u3", "2024-03-02", "12:00:00", "B"))
    else:
        sessions.append(("s4", "u3", "2024-03-02", "24:00:00", "B"))
    path = tmp_path / "odd.db"
    con = write(path, sessions, [], ddl)
    try:
        assert arrow_paths.counts(str(path), Window()) is None
        if case != "null session id":  # (the SQL path's own answer there is not a path: validation refuses it)
            assert_same_summary(non_converting_summary(con, Window()), sql_summary(con, Window(), monkeypatch))
    finally:
        con.close()


def test_ties_at_one_second_follow_session_id_then_channel(tmp_path, monkeypatch):
    sessions = [
        ("b", "u1", "2024-03-01", "10:00:00", "X"),
        ("a", "u1", "2024-03-01", "10:00:00", "Y"),
        ("ab", "u1", "2024-03-01", "10:00:00", "Z"),
        ("c", "u1", "2024-03-01", "09:00:00", "W"),
    ]
    path = tmp_path / "ties.db"
    con = write(path, sessions, [])
    try:
        assert arrow_paths.counts(str(path), Window()) == {"57,59,5A,58": 1}  # W, then a, ab, b
        assert_fast_path_matches(con, path, Window(), monkeypatch)
    finally:
        con.close()


def test_two_tie_groups_side_by_side_are_ordered_apart(tmp_path, monkeypatch):
    sessions = [  # (found by hypothesis) two ties in a row: each is ordered within itself only
        ("s1-0", "u1", "2024-03-01", "00:00:00", "A"),
        ("s1-1", "u1", "2024-03-02", "00:00:00", "A"),
        ("s1-2", "u1", "2024-03-02", "00:00:00", "A"),
        ("s1-3", "u1", "2024-03-01", "00:00:00", "B"),
    ]
    path = tmp_path / "ties2.db"
    con = write(path, sessions, [])
    try:
        monkeypatch.setattr(arrow_paths, "BATCH_ROWS", 2)
        assert arrow_paths.counts(str(path), Window()) == {"41,42,41,41": 1}
        assert_fast_path_matches(con, path, Window(), monkeypatch)
    finally:
        con.close()


def test_sparse_rowids_and_an_empty_table(tmp_path, monkeypatch):
    path = tmp_path / "sparse.db"
    con = write(path, [], [])
    try:
        assert arrow_paths.counts(str(path), Window()) == {}
        con.execute("INSERT INTO session_sources (rowid, session_id, user_id, event_date, event_time, channel_name,"
                    " holder_engagement, closer_engagement, impression_interaction)"
                    " VALUES (-5, 's1', 'u1', '2024-03-01', '10:00:00', 'A', 0, 0, 0),"
                    " (1000000, 's2', 'u1', '2024-03-02', '10:00:00', 'B', 0, 0, 0)")  # fmt: skip
        con.commit()
        assert arrow_paths.counts(str(path), Window()) == {"41,42": 1}
        monkeypatch.setattr(arrow_paths, "MAX_SPAN", 10)  # a span too wide: the rows are counted
        assert arrow_paths.counts(str(path), Window()) == {"41,42": 1}
        assert_fast_path_matches(con, path, Window(), monkeypatch)
    finally:
        con.close()


def test_users_read_in_parts_add_up_to_one_read(tmp_path, monkeypatch):
    """Parts cut between sampled ids cover every row once: the summary is the same in one part as in
    one part per sampled id, and the parts really are several."""
    import adbc_driver_sqlite.dbapi as adbc

    sessions = [(f"s{k}", f"user{k % 7}", "2024-03-01", f"{k % 24:02d}:00:00", f"ch{k % 3}") for k in range(40)]
    path = tmp_path / "parts.db"
    con = write(path, sessions, [("c1", "user3", "2024-03-02", "00:00:00", 1.0)])
    try:
        whole = arrow_paths.counts(str(path), Window())
        monkeypatch.setattr(arrow_paths, "PART_BYTES", 1)
        monkeypatch.setattr(arrow_paths, "MAX_PART_BYTES", 1)
        reader = adbc.connect(f"file:{path}?mode=ro")
        try:
            parts = arrow_paths._parts(reader)
        finally:
            reader.close()
        assert parts[0] == (None, "user0") and parts[-1] == ("user6", None) and len(parts) == 8  # cut at every id
        assert arrow_paths.counts(str(path), Window()) == whole
        assert sum(whole.values()) == 6  # user3 converted
        assert_fast_path_matches(con, path, Window(), monkeypatch)
    finally:
        con.close()


@pytest.mark.parametrize(
    "rows, parts",
    [
        (1_000, 1),  # one part holds it
        (4 * 160 * 2**20 // 140, 4),  # the 10x demo's size: parts of PART_BYTES, up to FEW_PARTS
        (13_500_000, 5),  # the 30x demo's: more than FEW_PARTS of PART_BYTES, so parts of MAX_PART_BYTES
    ],
)
def test_the_number_of_parts_follows_the_rows(monkeypatch, rows, parts):
    ids = [f"{k:064x}" for k in range(2_000)]  # 64-byte ids: 9 words, 140 bytes a row
    answers = iter([[(1, rows)], [(u,) for u in ids]])
    monkeypatch.setattr(arrow_paths, "_fetch", lambda con, sql, params=None: next(answers))
    assert len(arrow_paths._parts(None)) == parts
