"""Validation in process: ``pipeline.validate.validate`` on hand-made databases, its findings' codes,
severities, counts and examples (tests/test_cli.py asserts the same cases through the command line).

The tiny database (tests/helpers.py: TINY_*) has no fatal finding and two warnings, which every case
below keeps: c3's only session comes after it, so no run can attribute it (``C3``), and two of its five
channels (Direct Traffic, s3; Newsletter & Email, s4) have sessions but no cost row (``TINY_WARNING``). Each case changes a few rows by hand, so every other expected count is
the number of rows changed.
"""

import sqlite3

import pytest

from pipeline.db import open_database
from pipeline.errors import InputError
from pipeline.validate import FATAL, WARNING, Finding, check_structure, plain_sentence, start_scans, validate
from tests.helpers import TINY_CONVERSIONS, TINY_COSTS, TINY_SESSIONS, make_db

C3 = ("conversion_without_sessions", WARNING, 1, ["c3"])
TINY_WARNING = ("channel_without_cost", WARNING, 2, [])
NO_KEYS = """CREATE TABLE session_sources (session_id TEXT, user_id TEXT, event_date TEXT, event_time TEXT,
               channel_name TEXT, holder_engagement INT, closer_engagement INT, impression_interaction INT);
             CREATE TABLE conversions (conv_id TEXT, user_id TEXT, conv_date TEXT, conv_time TEXT, revenue REAL);
             CREATE TABLE session_costs (session_id TEXT, cost REAL);"""
NO_CHANNEL_COLUMN = """CREATE TABLE session_sources (session_id TEXT PRIMARY KEY, user_id TEXT, event_date TEXT,
               event_time TEXT, holder_engagement INT, closer_engagement INT, impression_interaction INT);
             CREATE TABLE conversions (conv_id TEXT PRIMARY KEY, user_id TEXT, conv_date TEXT, conv_time TEXT,
               revenue REAL);
             CREATE TABLE session_costs (session_id TEXT PRIMARY KEY, cost REAL);"""


def findings(path) -> list[tuple]:
    con = open_database(path)
    try:
        report = validate(con)
    finally:
        con.close()
    return [(f.code, f.severity, f.count, f.examples) for f in report.findings]


def sessions_with(index: int, row: tuple) -> list[tuple]:
    rows = list(TINY_SESSIONS)
    rows[index] = row
    return rows


def test_the_tiny_database_has_only_its_two_warnings(tmp_path):
    path = make_db(tmp_path / "tiny.db", TINY_SESSIONS, TINY_CONVERSIONS, TINY_COSTS)
    assert findings(path) == [C3, TINY_WARNING]
    con = open_database(path)
    report = validate(con)
    assert report.ok and report.fatal == []
    assert report.rows == {"conversions": 3, "session_sources": 6, "session_costs": 4}
    report.raise_if_fatal()  # nothing to raise


def test_unparseable_dates_are_one_fatal_finding_with_both_examples(tmp_path):
    rows = sessions_with(1, ("s2", "u1", "2023-02-30", "11:00:00", "FB & IG Ads", 1, 1, 0))
    rows[2] = ("s3", "u1", "02/09/2023", "12:00:00", "Direct Traffic", 0, 1, 0)
    path = make_db(tmp_path / "dates.db", rows, TINY_CONVERSIONS, TINY_COSTS)
    assert findings(path) == [C3, ("bad_event_date", FATAL, 2, ["2023-02-30", "02/09/2023"]), TINY_WARNING]


def test_bad_time_and_flag_are_two_findings(tmp_path):
    rows = sessions_with(0, ("s1", "u1", "2023-09-01", "10:00", "Paid Search Brand", 2, 0, 0))
    path = make_db(tmp_path / "times.db", rows, TINY_CONVERSIONS, TINY_COSTS)
    assert findings(path) == [
        C3,
        ("bad_event_time", FATAL, 1, ["10:00"]),
        ("bad_holder_engagement", FATAL, 1, [2]),
        TINY_WARNING,
    ]
    report = validate(open_database(path))
    lines = [f.line() for f in report.findings]
    assert "event_time: 1 row has no valid time (HH:MM:SS) (e.g. '10:00')" in lines[1]
    assert "holder_engagement: 1 row has a value other than 0 or 1 (e.g. 2)" in lines[2]


def test_a_null_flag_is_a_bad_flag(tmp_path):
    rows = sessions_with(0, ("s1", "u1", "2023-09-01", "10:00:00", "Paid Search Brand", None, 0, 0))
    path = make_db(tmp_path / "nullflag.db", rows, TINY_CONVERSIONS, TINY_COSTS)
    assert findings(path) == [C3, ("bad_holder_engagement", FATAL, 1, [None]), TINY_WARNING]


def test_a_session_without_user_or_id_is_found_though_all_else_is_valid(tmp_path):
    # The session profile marks missing ids by their type ('null'), not in row_ok: both must count.
    rows = sessions_with(1, ("s2", None, "2023-09-02", "11:00:00", "FB & IG Ads", 1, 1, 0))
    path = make_db(tmp_path / "nulluser.db", rows, TINY_CONVERSIONS, TINY_COSTS, ddl=NO_KEYS)
    assert findings(path) == [C3, ("null_user_id", WARNING, 1, []), TINY_WARNING]
    rows = sessions_with(1, (None, "u1", "2023-09-02", "11:00:00", "FB & IG Ads", 1, 1, 0))
    path = make_db(tmp_path / "nullid.db", rows, TINY_CONVERSIONS, TINY_COSTS, ddl=NO_KEYS)
    assert ("null_session_id", FATAL, 1, []) in findings(path)


def test_a_session_time_outside_every_journey_is_still_fatal(tmp_path):
    rows = sessions_with(5, ("s6", "u3", "2023-09-01", "25:00:00", "Paid Search Brand", 0, 0, 0))
    path = make_db(tmp_path / "late.db", rows, TINY_CONVERSIONS, TINY_COSTS)
    assert findings(path) == [C3, ("bad_event_time", FATAL, 1, ["25:00:00"]), TINY_WARNING]


def test_a_null_conversion_id(tmp_path):
    conversions = [*TINY_CONVERSIONS, (None, "u3", "2023-09-03", "10:00:00", 5.0)]
    path = make_db(tmp_path / "nullid.db", TINY_SESSIONS, conversions, TINY_COSTS)
    assert findings(path) == [("null_conv_id", FATAL, 1, []), C3, TINY_WARNING]
    with pytest.raises(InputError, match=r"conversions\.conv_id: 1 row has no id"):
        validate(open_database(path)).raise_if_fatal()


def test_duplicate_ids_without_a_primary_key(tmp_path):
    path = make_db(tmp_path / "dups.db", TINY_SESSIONS, TINY_CONVERSIONS, [*TINY_COSTS, ("s1", 2.0)], ddl=NO_KEYS)
    assert findings(path) == [C3, ("duplicate_session_id", FATAL, 1, ["s1"]), TINY_WARNING]
    with pytest.raises(InputError, match=r"session_costs\.session_id: 1 value appears more than once"):
        validate(open_database(path)).raise_if_fatal()


def test_warnings_leave_the_file_usable(tmp_path):
    conversions = [*TINY_CONVERSIONS, ("c9", "nobody", "2023-09-03", "10:00:00", None)]
    path = make_db(tmp_path / "warn.db", TINY_SESSIONS, conversions, [*TINY_COSTS, ("ghost", 9.0)])
    assert findings(path) == [
        ("null_revenue", WARNING, 1, []),
        ("conversion_without_sessions", WARNING, 2, ["c3", "c9"]),  # c3: a session after it; c9: none
        ("orphan_cost", WARNING, 1, ["ghost"]),
        TINY_WARNING,
    ]
    report = validate(open_database(path))
    assert report.ok and report.fatal == []
    report.raise_if_fatal()
    lines = [f.line() for f in report.warnings]
    assert any("1 cost belongs to no session in session_sources and is not reported" in line for line in lines)
    assert any("conversions.revenue: 1 conversion has no revenue; counted as 0" in line for line in lines)


def test_each_check_in_one_plain_sentence_with_its_share_and_no_ids(tmp_path):
    """The dashboard's and the HTML report's wording (issue 16, F5): no "warning: conversions:" prefix, no
    example ids, the count with its table's noun and its share of the table; the CLI's ``line`` unchanged."""
    conversions = [*TINY_CONVERSIONS, ("c9", "nobody", "2023-09-03", "10:00:00", None)]
    path = make_db(tmp_path / "warn.db", TINY_SESSIONS, conversions, [*TINY_COSTS, ("ghost", 9.0)])
    report = validate(open_database(path))
    sentences = {f.code: plain_sentence(f, report.rows) for f in report.findings}
    # 4 conversions, 5 cost rows (hand-counted: TINY_* plus the two added above)
    assert sentences["null_revenue"] == "1 conversion (25.0%) has no revenue; counted as 0."
    assert sentences["conversion_without_sessions"] == (
        "2 conversions (50.0%) have no session of their user before them "
        "(1 of them: the user has no session at all) and cannot be attributed."
    )
    assert sentences["orphan_cost"] == "1 cost (20.0%) belongs to no session in session_sources and is not reported."
    assert not any("c3" in s or "ghost" in s or "warning" in s for s in sentences.values())
    lines = [f.line() for f in report.warnings]  # the command line's format stays as orchestrators parse it
    assert "warning: conversions: 2 conversions have no session of their user before them" in lines[1]
    assert lines[1].endswith("and cannot be attributed (e.g. 'c3', 'c9')")


def test_a_fatal_sentence_names_the_column_to_fix_and_rows_become_the_tables_noun():
    bad = Finding(
        "bad_holder_engagement", FATAL, "session_sources.holder_engagement: 1 row has a value other than 0 or 1"
    )
    assert plain_sentence(bad, {"session_sources": 4_500_000}) == (
        "1 session (<0.1%) has a value other than 0 or 1 — column holder_engagement of session_sources."
    )
    costs = Finding("null_cost", WARNING, "session_costs.cost: 3 rows have no cost; counted as 0", 3)
    assert plain_sentence(costs, {"session_costs": 12}) == "3 cost rows (25.0%) have no cost; counted as 0."
    assert plain_sentence(costs) == "3 cost rows have no cost; counted as 0."  # no row counts: no share
    days = Finding("cost_on_some_days", WARNING, "session_costs: paid x has cost on 8 of its 10 days", 2, ["d"])
    assert plain_sentence(days, {"session_costs": 12}) == "paid x has cost on 8 of its 10 days."  # a channel's name


def test_a_missing_table_stops_before_any_scan(tmp_path):
    path = make_db(tmp_path / "no_costs.db", TINY_SESSIONS, TINY_CONVERSIONS, TINY_COSTS)
    con = sqlite3.connect(path)
    con.execute("DROP TABLE session_costs")
    con.commit()
    con.close()
    assert findings(path) == [("missing_table", FATAL, 0, [])]
    con = open_database(path)
    assert [f.code for f in check_structure(con).findings] == ["missing_table"]
    with pytest.raises(InputError, match="table session_costs is missing"):
        start_scans(con)


def test_a_missing_column(tmp_path):
    path = make_db(tmp_path / "no_channel.db", [], TINY_CONVERSIONS, TINY_COSTS, ddl=NO_CHANNEL_COLUMN)
    assert findings(path) == [("missing_column", FATAL, 1, [])]
    with pytest.raises(InputError, match=r"session_sources lacks column\(s\) channel_name"):
        validate(open_database(path)).raise_if_fatal()


def test_the_report_round_trips_through_its_stored_form(tmp_path):
    """The runner stores the report as a dict (the stage record) and reuses it while the inputs hold."""
    from pipeline.validate import ValidationReport

    conversions = [*TINY_CONVERSIONS, ("c9", "nobody", "2023-09-03", "10:00:00", None)]
    path = make_db(tmp_path / "warn.db", TINY_SESSIONS, conversions, TINY_COSTS)
    report = validate(open_database(path))
    again = ValidationReport.from_dict(report.to_dict())
    assert [(f.code, f.severity, f.count) for f in again.findings] == [
        (f.code, f.severity, f.count) for f in report.findings
    ]
    assert again.rows == report.rows


def test_binary_channel_names_are_one_fatal_finding_in_words(tmp_path):
    """A BLOB in session_sources.channel_name made validate raise TypeError (b'…' sorted against str
    in the cost coverage check). Now: fatal, counted, and no channel-without-cost noise about them."""
    blob = [(*s[:4], s[4].encode(), *s[5:]) if s[0] in ("s1", "s2", "s6") else s for s in TINY_SESSIONS]
    path = make_db(tmp_path / "blob.db", blob, TINY_CONVERSIONS, TINY_COSTS)
    report = validate(open_database(path))
    # s1 and s6 are both b'Paid Search Brand': three rows, two distinct examples
    assert [(f.code, f.severity, f.count, f.examples) for f in report.fatal] == [
        ("blob_channel", FATAL, 3, [b"Paid Search Brand", b"FB & IG Ads"])
    ]
    [fatal] = report.fatal
    assert fatal.line() == (
        "fatal: session_sources.channel_name holds 3 binary (BLOB) values where a channel's name belongs; "
        "store the names as text (e.g. b'Paid Search Brand', b'FB & IG Ads')"
    )
    assert plain_sentence(fatal, report.rows) == (
        "session_sources.channel_name holds 3 binary (BLOB) values where a channel's name belongs; "
        "store the names as text."
    )
    # the unpaid text channels are still named (s3 Direct Traffic, s4 Newsletter & Email); the binary ones not
    [unpaid] = [f for f in report.findings if f.code == "channel_without_cost"]
    assert unpaid.count == 2 and "b'" not in unpaid.message


def test_a_binary_channel_name_is_a_fatal_finding_not_a_crash(tmp_path):
    """A BLOB in session_sources.channel_name (not converted to text by the column's affinity, unlike a
    number) used to crash validation sorting bytes against str; now it is one fatal finding with the
    value, and the run stops with it as its one-line message, nothing written."""
    sessions = list(TINY_SESSIONS)
    sessions[4] = ("s5", "u2", "2023-09-02", "09:00:00", b"Display", 0, 0, 1)
    path = make_db(tmp_path / "blob.db", sessions, TINY_CONVERSIONS, TINY_COSTS)
    assert [f for f in findings(path) if f[1] == FATAL] == [("blob_channel", FATAL, 1, [b"Display"])]
    from tests.helpers import run_db

    with pytest.raises(InputError, match=r"session_sources\.channel_name holds 1 binary \(BLOB\) value"):
        run_db(path)
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'pipeline_%'").fetchone()[0] == 0
    con.close()
