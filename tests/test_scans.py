"""The whole-table scans give the same rows however they run: in this process, threads, or children."""

import os
import sqlite3

import pytest

from pipeline.db import open_database
from pipeline.scans import ALL_SCANS, InputScans, open_scans


def all_results(scans: InputScans) -> dict:
    return {
        "profile": sorted(map(tuple, (r.values() for r in scans.session_profile())), key=repr),
        "days": sorted(scans.channel_days()),
        "costs": scans.channel_day_costs(),
        "checks": scans.cost_checks(),
        "without": scans.without_earlier_sessions(),
    }


def test_threads_and_children_agree_with_in_process(small_demo, tmp_path):
    con = open_database(small_demo)
    expected = all_results(InputScans({n: (lambda q=q: con.execute(q).fetchall()) for n, q in ALL_SCANS.items()}))
    assert expected["checks"]["rows"] > 0 and expected["days"]
    assert all_results(open_scans(con)) == expected
    forked = open_scans(str(small_demo), fork=True)
    assert all_results(forked) == expected
    forked.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # every child was reaped


def test_a_failing_child_reports_the_error(tmp_path):
    db = tmp_path / "broken.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE session_sources (x)")  # no session_costs: the cost scans fail
    con.commit()
    con.close()
    scans = open_scans(str(db), fork=True)
    with pytest.raises(sqlite3.DatabaseError, match="no such (table|column)"):
        scans.cost_checks()
    scans.cancel()


def test_cancel_kills_running_children(small_demo):
    scans = open_scans(str(small_demo), fork=True)
    scans.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


BAD_COST_DDL = """CREATE TABLE session_sources (session_id TEXT PRIMARY KEY, user_id TEXT, event_date TEXT,
    event_time TEXT, channel_name TEXT, holder_engagement INT, closer_engagement INT, impression_interaction INT);
  CREATE TABLE conversions (conv_id TEXT PRIMARY KEY, user_id TEXT, conv_date TEXT, conv_time TEXT, revenue REAL);
  CREATE TABLE session_costs (session_id TEXT, cost);"""  # no affinity: text and blobs stay what they are


@pytest.mark.parametrize(
    "cost_rows, expected",
    [
        ([("s1", 2.0), ("s2", 0), ("s5", 1e300)], {}),  # fine: the screen alone answers
        ([("s1", -0.5)], {"negative_cost": 1}),
        ([("s1", None), ("s2", None)], {"null_cost": 2}),
        ([(None, 1.0)], {"null_session_id": 1}),
        ([("s1", "12"), ("s2", "abc"), ("s5", b"\x01")], {"cost_not_number": 3}),
        ([("s1", "-1"), ("s2", -1)], {"cost_not_number": 1, "negative_cost": 1}),  # text sorts above numbers: not < 0
    ],
)
def test_cost_checks_count_each_problem_in_every_mode(tmp_path, cost_rows, expected):
    from tests.helpers import TINY_CONVERSIONS, TINY_SESSIONS, make_db

    db = make_db(tmp_path / "costs.db", TINY_SESSIONS, TINY_CONVERSIONS, [("s6", 3.0), *cost_rows], ddl=BAD_COST_DDL)
    want = {
        "rows": len(cost_rows) + 1,
        "null_session_id": 0,
        "null_cost": 0,
        "cost_not_number": 0,
        "negative_cost": 0,
        **expected,
    }
    con = open_database(db)
    threaded = open_scans(con)
    assert threaded.cost_checks() == want  # threads
    all_results(threaded)  # every scan thread done with SQLite before this process forks (a fork
    # while another thread is inside SQLite or malloc can leave the child waiting on a copied lock)
    assert InputScans({n: (lambda q=q: con.execute(q).fetchall()) for n, q in ALL_SCANS.items()}).cost_checks() == want
    forked = open_scans(str(db), fork=True)
    assert forked.cost_checks() == want
    forked.cancel()


def test_a_provided_result_is_used_and_the_scan_never_runs(small_demo):
    ran = []
    scans = InputScans({"without_earlier_sessions": lambda: ran.append(1) or [("x", 1)]})
    scans.provide("without_earlier_sessions", [("c1", 0), ("c2", 1)])
    assert scans.without_earlier_sessions() == [("c1", False), ("c2", True)] and ran == []


def test_the_cost_profile_in_parts_gives_the_one_query_rows_to_the_bit(small_demo, monkeypatch):
    from pipeline import scans

    con = open_database(small_demo)
    whole = con.execute(scans.COST_PROFILE_SQL).fetchall()
    monkeypatch.setattr(scans, "SPLIT_FROM_ROWS", 0)  # the demo's 10k cost rows: split them too
    cut = scans._cost_cut(con)
    assert cut is not None
    parts = [con.execute(scans.COST_PART_SQL.format(part=p), (cut,)).fetchall() for p in scans.COST_PARTS]
    assert sum(n for rows in parts for *_, n in rows) == sum(n for *_, n in whole)  # every cost row once
    assert all(parts) and scans._merged_costs(parts) == whole  # same rows, same order, same floats
    threaded = open_scans(con)
    assert threaded._get("cost_profile") == whole
    threaded.cancel()


def test_parts_add_fixed_point_units_not_floats(tmp_path, monkeypatch):
    """0.1 and 0.2 euro of one channel-day in two parts: 0.3 (units added), not 0.30000000000000004."""
    from pipeline import scans
    from tests.helpers import TINY_CONVERSIONS, TINY_SESSIONS, make_db

    db = make_db(tmp_path / "p.db", TINY_SESSIONS, TINY_CONVERSIONS, [("s1", 0.1), ("s5", 0.5), ("s6", 0.2)])
    monkeypatch.setattr(scans, "SPLIT_FROM_ROWS", 0)
    con = open_database(db)
    assert scans._cost_cut(con) == 2  # rowids 1..3: the first part 1-2 (s1, s5), the other 3 (s6)
    threaded = open_scans(con)
    assert threaded.channel_day_costs() == {("Paid Search Brand", "2023-09-01"): 0.3, ("Display", "2023-09-02"): 0.5}
    assert threaded.matched_cost_rows() == 3
    threaded.cancel()


def test_a_cost_table_without_rowid_is_scanned_in_one_query(tmp_path, monkeypatch):
    from pipeline import scans
    from pipeline.schema import INPUT_DDL
    from tests.helpers import TINY_CONVERSIONS, TINY_COSTS, TINY_SESSIONS, make_db

    ddl = INPUT_DDL.replace(
        "CREATE TABLE session_costs (session_id TEXT PRIMARY KEY, cost REAL)",
        "CREATE TABLE session_costs (session_id TEXT PRIMARY KEY, cost REAL) WITHOUT ROWID",
    )
    assert "WITHOUT ROWID" in ddl
    db = make_db(tmp_path / "w.db", TINY_SESSIONS, TINY_CONVERSIONS, TINY_COSTS, ddl=ddl)
    monkeypatch.setattr(scans, "SPLIT_FROM_ROWS", 0)
    con = open_database(db)
    assert scans._cost_cut(con) is None
    threaded = open_scans(con)
    assert threaded.channel_day_costs()[("Paid Search Brand", "2023-09-01")] == 5.0  # s1 2 + s6 3
    threaded.cancel()


def test_channel_days_come_from_the_cheaper_scan_only_when_validation_does_not_need_the_profile(small_demo):
    from pipeline import scans

    con = open_database(small_demo)
    report_only = open_scans(con, names=scans.REPORT_SCANS)
    profile = open_scans(con)
    assert report_only.channel_days() == profile.channel_days()
    assert set(report_only.computed()) == {"channel_days"}  # the session profile never ran
    assert "channel_days" not in profile.computed()
    report_only.cancel()
    profile.cancel()
