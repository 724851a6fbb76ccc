"""The whole-table scans give the same rows however they run: in this process, threads, or children."""

import os
import sqlite3

import pytest

from pipeline.db import open_database
from pipeline.scans import SCANS, InputScans


def all_results(scans: InputScans) -> dict:
    return {
        "profile": sorted(map(tuple, (r.values() for r in scans.session_profile())), key=repr),
        "days": sorted(scans.channel_days()),
        "costs": scans.channel_day_costs(),
        "checks": scans.cost_checks(),
        "users": sorted(scans.users_without_sessions()),
    }


def test_threads_and_children_agree_with_in_process(small_demo, tmp_path):
    con = open_database(small_demo)
    expected = all_results(InputScans({n: (lambda q=q: con.execute(q).fetchall()) for n, q in SCANS.items()}))
    assert expected["checks"]["rows"] > 0 and expected["days"]
    assert all_results(InputScans.start(con)) == expected
    forked = InputScans.forked(str(small_demo))
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
    scans = InputScans.forked(str(db))
    with pytest.raises(sqlite3.DatabaseError, match="no such (table|column)"):
        scans.cost_checks()
    scans.cancel()


def test_cancel_kills_running_children(small_demo):
    scans = InputScans.forked(str(small_demo))
    scans.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)
