"""A channel name of only whitespace is no channel: reported as '(not set)' everywhere an empty one is
(journeys, credit, report, validation, the DuckDB engine), by one rule (``schema.channel_sql`` /
``schema.channel_label``). A name with spaces around real text keeps its spaces."""

from __future__ import annotations

import sqlite3

import pytest

from pipeline.convert import convert
from pipeline.db import open_database
from pipeline.engines import duckdb as E
from pipeline.schema import NO_CHANNEL
from pipeline.validate import validate
from tests.helpers import make_db, run_db

BLANKS = ["", "   ", "\t", " \n ", "\u00a0", None]
SESSIONS = [(f"s{i}", "u1", "2023-09-01", f"10:0{i}:00", name, 0, 0, 0) for i, name in enumerate(BLANKS)] + [
    ("s7", "u1", "2023-09-01", "11:00:00", "Paid", 0, 0, 0),
    ("s8", "u1", "2023-09-01", "11:30:00", " Paid ", 0, 0, 0),
]
CONVERSIONS = [("c1", "u1", "2023-09-01", "12:00:00", 80.0)]
COSTS = [("s1", 2.0), ("s2", 1.0), ("s7", 4.0)]


@pytest.fixture
def db(tmp_path):
    return make_db(tmp_path / "blank.db", SESSIONS, CONVERSIONS, COSTS)


def test_label_rule():
    from pipeline.schema import channel_label

    for name in BLANKS:
        assert channel_label(name) == NO_CHANNEL
    assert channel_label(" Paid ") == " Paid "
    assert channel_label("Paid") == "Paid"


def test_run_reports_blank_names_as_not_set(db):
    run_db(db, model="linear")
    con = sqlite3.connect(db)
    labels = {r[0] for r in con.execute("SELECT channel_label FROM pipeline_journeys")}
    report = {r[0]: r[1:] for r in con.execute("SELECT channel_name, cost, ihc, ihc_revenue FROM channel_reporting")}
    con.close()
    assert labels == {NO_CHANNEL, "Paid", " Paid "}
    assert set(report) == {NO_CHANNEL, "Paid", " Paid "}
    cost, ihc, revenue = report[NO_CHANNEL]
    assert cost == pytest.approx(3.0)  # s1 '   ' and s2 '\t'
    assert ihc == pytest.approx(6 / 8)  # six of the eight sessions, linear
    assert revenue == pytest.approx(60.0)


def test_validation_counts_blank_names(db):
    con = open_database(db)
    report = validate(con)
    con.close()
    (finding,) = [f for f in report.findings if f.code == "null_channel"]
    assert finding.count == len(BLANKS)
    assert "NULL, empty or blank" in finding.message and f"'{NO_CHANNEL}'" in finding.message


@pytest.mark.parametrize("kind", ["duckdb", "parquet"])
def test_duckdb_engine_same_rule(db, tmp_path, kind):
    run_db(db, model="linear")
    expected_validation = validate(open_database(db))
    con = sqlite3.connect(db)
    expected = sorted(con.execute("SELECT channel_name, date, cost, ihc, ihc_revenue FROM channel_reporting"))
    con.close()
    target = f"duckdb:///{tmp_path / 'x.duckdb'}" if kind == "duckdb" else f"parquet:///{tmp_path / 'lake'}"
    convert(db, target, outputs=True)
    with E.open_engine(target) as engine:
        got = E.validate(engine)
        labels = set(E.journeys(engine).columns["channel_label"].tolist())
        report = sorted(tuple(r) for r in E.channel_report(engine))
    (finding,) = [f for f in got.findings if f.code == "null_channel"]
    (want,) = [f for f in expected_validation.findings if f.code == "null_channel"]
    assert (finding.count, finding.message) == (want.count, want.message)
    assert labels == {NO_CHANNEL, "Paid", " Paid "}
    assert [r[:2] for r in report] == [r[:2] for r in expected]
    for a, b in zip(report, expected):
        assert a[2:] == pytest.approx(b[2:])


def test_engine_path_summary_same_rule(db, tmp_path):
    """The engines' path summaries (DuckDB dialect, also compiled for Postgres) name blank channels alike."""
    from pipeline.engines import paths
    from pipeline.path_summary import path_summary

    con = open_database(db)
    expected = path_summary(con)
    con.close()
    target = f"duckdb:///{tmp_path / 'p.duckdb'}"
    convert(db, target)
    with E.open_engine(target) as engine:
        got = paths.path_summary(engine)
    assert NO_CHANNEL in got.labels.tolist() and "   " not in got.labels.tolist()
    assert got.labels.tolist() == expected.labels.tolist()
    assert got.conversions.tolist() == expected.conversions.tolist()
