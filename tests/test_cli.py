"""The command line as orchestrators call it: exit codes, one-line messages, no traceback, no writes."""

import hashlib
import os
import shutil
import sqlite3

import pytest

from tests.helpers import TINY_CONVERSIONS, TINY_COSTS, TINY_SESSIONS, cli, make_db


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def assert_clean_failure(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]


def test_run_export_status_round_trip(tiny, tmp_path):
    out = tmp_path / "report.csv"
    r = cli("run", tiny, "--model", "linear", "--csv", out, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "3 conversions" not in r.stderr
    assert (
        "attribute: 2 conversions attributed with linear (not attributed — no session before the conversion: 1)"
        in r.stdout
    )
    assert out.read_text(encoding="utf-8").startswith("channel_name,date,cost,ihc,ihc_revenue,CPO,ROAS\n")
    s = cli("status", tiny)
    assert s.returncode == 0
    assert [line.split()[:2] for line in s.stdout.splitlines()] == [
        ["journeys", "done"],
        ["attribute", "done"],
        ["report", "done"],
        ["models", "linear:"],  # the models in the attribution (tests/test_model_coverage.py)
    ]
    again = cli("run", tiny, "--model", "linear", "--quiet")
    assert "journeys: up to date" in again.stdout and "report: up to date" in again.stdout


def test_export_with_filters_matches_library(tiny, tmp_path):
    assert cli("run", tiny, "--model", "linear", "-q").returncode == 0
    out = tmp_path / "fb.csv"
    r = cli("export", tiny, "--csv", out, "--channel", "FB & IG Ads", "--start", "2023-09-02")
    assert r.returncode == 0, r.stderr
    assert out.read_text().splitlines() == [
        "channel_name,date,cost,ihc,ihc_revenue,CPO,ROAS",
        "FB & IG Ads,2023-09-02,1.00,0.7500,62.50,1.33,62.5000",
    ]


def test_stage_by_stage_like_an_orchestrator(tiny, tmp_path):
    for args in (["journeys", tiny, "--end", "2023-09-03"], ["attribute", tiny, "--model", "linear"], ["report", tiny]):
        r = cli(*args, "-q")
        assert r.returncode == 0, (args, r.stderr)
    out = tmp_path / "r.csv"
    assert cli("export", tiny, "--csv", out).returncode == 0
    assert len(out.read_text().splitlines()) == 6


def test_output_db_leaves_the_input_untouched(tiny, tmp_path):
    before = digest(tiny)
    copy = tmp_path / "copy.db"
    r = cli("run", tiny, "--model", "linear", "--output-db", copy, "-q")
    assert r.returncode == 0, r.stderr
    assert digest(tiny) == before
    con = sqlite3.connect(copy)
    assert con.execute("SELECT count(*) FROM attribution_customer_journey").fetchone()[0] == 6


def test_text_file_named_db(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("this is not a database\n" * 50)
    assert_clean_failure(cli("run", bad), "not a SQLite database")
    assert_clean_failure(cli("validate", bad), "not a SQLite database")


def test_truncated_database(small_demo, tmp_path):
    bad = tmp_path / "truncated.db"
    shutil.copy(small_demo, bad)
    os.truncate(bad, os.path.getsize(bad) // 3)
    assert_clean_failure(cli("run", bad), "truncated")


def test_missing_file_and_directory(tmp_path):
    assert_clean_failure(cli("run", tmp_path / "nope.db"), "no such file")
    assert_clean_failure(cli("status", tmp_path), "is a directory")


def test_missing_table_writes_nothing(tmp_path):
    path = tmp_path / "no_costs.db"
    make_db(path, TINY_SESSIONS, TINY_CONVERSIONS, TINY_COSTS)
    con = sqlite3.connect(path)
    con.execute("DROP TABLE session_costs")
    con.commit()
    con.close()
    before = digest(path)
    assert_clean_failure(cli("run", path), "table session_costs is missing")
    assert digest(path) == before


def test_missing_column(tmp_path):
    ddl = """CREATE TABLE session_sources (session_id TEXT PRIMARY KEY, user_id TEXT, event_date TEXT,
               event_time TEXT, holder_engagement INT, closer_engagement INT, impression_interaction INT);
             CREATE TABLE conversions (conv_id TEXT PRIMARY KEY, user_id TEXT, conv_date TEXT, conv_time TEXT, revenue REAL);
             CREATE TABLE session_costs (session_id TEXT PRIMARY KEY, cost REAL);"""
    path = make_db(tmp_path / "no_channel.db", [], TINY_CONVERSIONS, TINY_COSTS, ddl=ddl)
    assert_clean_failure(cli("run", path), "session_sources lacks column(s) channel_name")


def test_unparseable_dates_write_nothing(tmp_path):
    sessions = list(TINY_SESSIONS)
    sessions[1] = ("s2", "u1", "2023-02-30", "11:00:00", "FB & IG Ads", 1, 1, 0)
    sessions[2] = ("s3", "u1", "02/09/2023", "12:00:00", "Direct Traffic", 0, 1, 0)
    path = make_db(tmp_path / "dates.db", sessions, TINY_CONVERSIONS, TINY_COSTS)
    before = digest(path)
    r = cli("run", path)
    assert_clean_failure(r, "session_sources.event_date: 2 rows have no valid date (YYYY-MM-DD)")
    assert digest(path) == before
    v = cli("validate", path)
    assert v.returncode == 2
    assert "'2023-02-30'" in v.stdout and "'02/09/2023'" in v.stdout


def test_a_fatal_finding_in_a_session_outside_every_journey_writes_nothing(tmp_path):
    # u3's session (no conversion) has a bad time: journeys and credit read fine and are written
    # while validation still runs; its fatal finding must roll them back, on a database run before
    # (children scan, transaction rolled back) as on a new one.
    sessions = list(TINY_SESSIONS)
    sessions[5] = ("s6", "u3", "2023-09-01", "25:00:00", "Paid Search Brand", 0, 0, 0)
    path = make_db(tmp_path / "late.db", sessions, TINY_CONVERSIONS, TINY_COSTS)
    before = digest(path)
    assert_clean_failure(cli("run", path, "--model", "linear"), "event_time: 1 row has no valid time")
    assert digest(path) == before
    good = make_db(tmp_path / "good.db", TINY_SESSIONS, TINY_CONVERSIONS, TINY_COSTS)
    assert cli("run", good, "--model", "linear", "-q").returncode == 0
    con = sqlite3.connect(good)
    con.execute("UPDATE session_sources SET event_time = '25:00:00' WHERE session_id = 's6'")
    con.commit()
    con.close()
    before = digest(good)
    assert_clean_failure(cli("run", good, "--model", "last-click", "--force"), "event_time: 1 row has no valid time")
    assert digest(good) == before


def test_bad_time_and_flags(tmp_path):
    sessions = list(TINY_SESSIONS)
    sessions[0] = ("s1", "u1", "2023-09-01", "10:00", "Paid Search Brand", 2, 0, 0)
    path = make_db(tmp_path / "times.db", sessions, TINY_CONVERSIONS, TINY_COSTS)
    v = cli("validate", path)
    assert v.returncode == 2
    assert "event_time: 1 row has no valid time (HH:MM:SS) (e.g. '10:00')" in v.stdout
    assert "holder_engagement: 1 row has a value other than 0 or 1 (e.g. 2)" in v.stdout


def test_null_flag_on_a_session_of_a_journey(tmp_path):
    # The journeys are read while validation runs: their NULL flag must wait for validation's message.
    sessions = list(TINY_SESSIONS)
    sessions[0] = ("s1", "u1", "2023-09-01", "10:00:00", "Paid Search Brand", None, 0, 0)
    path = make_db(tmp_path / "nullflag.db", sessions, TINY_CONVERSIONS, TINY_COSTS)
    for command in ("run", "journeys"):
        assert_clean_failure(cli(command, path), "holder_engagement: 1 row has a value other than 0 or 1 (e.g. None)")


def test_null_ids(tmp_path):
    conversions = list(TINY_CONVERSIONS) + [(None, "u3", "2023-09-03", "10:00:00", 5.0)]
    path = make_db(tmp_path / "nullid.db", TINY_SESSIONS, conversions, TINY_COSTS)
    assert_clean_failure(cli("run", path), "conversions.conv_id: 1 row has no id")


def test_duplicate_ids_without_a_primary_key(tmp_path):
    ddl = """CREATE TABLE session_sources (session_id TEXT, user_id TEXT, event_date TEXT, event_time TEXT,
               channel_name TEXT, holder_engagement INT, closer_engagement INT, impression_interaction INT);
             CREATE TABLE conversions (conv_id TEXT, user_id TEXT, conv_date TEXT, conv_time TEXT, revenue REAL);
             CREATE TABLE session_costs (session_id TEXT, cost REAL);"""
    costs = list(TINY_COSTS) + [("s1", 2.0)]
    path = make_db(tmp_path / "dups.db", TINY_SESSIONS, TINY_CONVERSIONS, costs, ddl=ddl)
    assert_clean_failure(cli("run", path), "session_costs.session_id: 1 value appears more than once")


def test_warnings_do_not_stop_the_run(tmp_path):
    costs = list(TINY_COSTS) + [("ghost", 9.0)]
    conversions = list(TINY_CONVERSIONS) + [("c9", "nobody", "2023-09-03", "10:00:00", None)]
    path = make_db(tmp_path / "warn.db", TINY_SESSIONS, conversions, costs)
    r = cli("run", path, "--model", "linear", "-q")
    assert r.returncode == 0, r.stderr
    assert "1 cost belongs to no session in session_sources and is not reported" in r.stdout
    assert "conversions.revenue: 1 conversion has no revenue; counted as 0" in r.stdout


def test_usage_errors_exit_2(tiny):
    assert_clean_failure(cli("run", tiny, "--model", "nonsense"), "unknown model 'nonsense'")
    assert_clean_failure(cli("run", tiny, "--start", "2023-13-01"), "not a date")
    assert_clean_failure(cli("run", tiny, "--model", "linear", "--param", "oops"), "not KEY=VALUE")
    r = cli("run", tiny, "--lookback-days", "zero")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert cli("frobnicate").returncode == 2
    assert_clean_failure(cli("export", tiny, "--csv", "x.csv"), "no channel report yet")


@pytest.mark.parametrize(
    "command", ["demo-db", "validate", "journeys", "attribute", "report", "run", "status", "export", "models"]
)
def test_every_command_has_help(command):
    r = cli(command, "--help")
    assert r.returncode == 0
    assert "usage: python -m pipeline " + command in r.stdout
    assert "example: python -m pipeline" in r.stdout


def test_demo_db_command(tmp_path):
    out = tmp_path / "d.db"
    r = cli("demo-db", out, "--sessions", "5000", "--conversions", "100", "--days", "5", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "5,000 session_sources, 100 conversions" in r.stdout
    assert_clean_failure(cli("demo-db", out), "exists")
