"""report-html and export --intervals / --by conversion-date on engine sources (pipeline.engine_extract):
the small demo converted to a DuckDB file and a Parquet folder gives the SQLite engine's bytes and
report figures, and only journey-sized data leaves the engine."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.convert import convert
from pipeline.db import open_database
from pipeline.engine_extract import extract_run
from pipeline.report_views import report_view
from tests.engine_support import KINDS, demo_sources


def _cli(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def ran(small_demo, tmp_path_factory):
    """{kind: source} of the small demo, run with the linear model on SQLite, DuckDB and Parquet."""
    out = demo_sources(small_demo, tmp_path_factory.mktemp("extract"))
    for source in out.values():
        assert _cli("run", source, "--model", "linear", "-q") == 0
    return out


EXPORTS = [
    ["--intervals"],
    ["--by", "conversion-date"],
    ["--by", "conversion-date", "--intervals"],
    ["--intervals", "--start", "2023-09-03", "--end", "2023-09-06", "--channel", "Paid Search Brand"],
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("flags", EXPORTS, ids=lambda f: " ".join(f))
def test_export_intervals_and_conversion_date_are_sqlites_bytes(ran, kind, flags, tmp_path):
    assert _cli("export", ran["sqlite"], "--csv", tmp_path / "sqlite.csv", *flags) == 0
    assert _cli("export", ran[kind], "--csv", tmp_path / "engine.csv", *flags) == 0
    expected = (tmp_path / "sqlite.csv").read_bytes()
    assert expected.count(b"\n") > 2  # rows, not only the header
    assert (tmp_path / "engine.csv").read_bytes() == expected


@pytest.mark.parametrize("kind", KINDS)
def test_extract_gives_the_report_view_of_sqlite(ran, kind, tmp_path):
    path = extract_run(ran[kind], tmp_path / "run.db")
    con_e, con_s = open_database(path), open_database(ran["sqlite"])
    try:
        for by in ("session-date", "conversion-date"):
            got, want = report_view(con_e, by=by, grain="week"), report_view(con_s, by=by, grain="week")
            pd.testing.assert_frame_equal(got.rows, want.rows)
            pd.testing.assert_frame_equal(got.totals, want.totals)
            pd.testing.assert_frame_equal(got.periods, want.periods)
            assert got.kpis == want.kpis
            assert got.kpi_bounds == pytest.approx(want.kpi_bounds, nan_ok=True)
            assert got.coverage == want.coverage and got.incomplete == want.incomplete
            assert got.warnings == want.warnings
        # the journeys the Journeys page reads are the SQLite engine's
        q = "SELECT * FROM pipeline_journeys ORDER BY conversion_id, session_id"
        assert con_e.execute(q).fetchall() == con_s.execute(q).fetchall()
        q = "SELECT * FROM pipeline_journey_conversions ORDER BY conversion_id"
        assert con_e.execute(q).fetchall() == con_s.execute(q).fetchall()
        q = "SELECT conv_id, reason FROM pipeline_unattributed ORDER BY conv_id"
        assert con_e.execute(q).fetchall() == con_s.execute(q).fetchall()
        # only the sessions with credit came over, not the session table
        n_extract = con_e.execute("SELECT count(*) FROM session_sources").fetchone()[0]
        n_credited = con_s.execute("SELECT count(DISTINCT session_id) FROM attribution_customer_journey").fetchone()[0]
        n_all = con_s.execute("SELECT count(*) FROM session_sources").fetchone()[0]
        assert n_extract == n_credited < n_all / 10
    finally:
        con_e.close()
        con_s.close()


def test_extract_status_follows_the_engine(ran, tmp_path):
    from pipeline.status import status

    path = extract_run(ran["duckdb"], tmp_path / "run.db")
    con = open_database(path)
    try:
        states = status(con)
    finally:
        con.close()
    assert {s: v.state for s, v in states.items()} == {"journeys": "done", "attribute": "done", "report": "done"}
    assert states["attribute"].record.params["model"] == "linear"


@pytest.mark.parametrize("kind", KINDS)
def test_report_html_on_an_engine_source(ran, kind, tmp_path, capsys):
    assert _cli("report-html", ran["sqlite"], "--output", tmp_path / "sqlite.html", "--by", "conversion-date") == 0
    assert _cli("report-html", ran[kind], "--output", tmp_path / "engine.html", "--by", "conversion-date") == 0
    assert "report-html:" in capsys.readouterr().out
    engine, sqlite = (tmp_path / "engine.html").read_text(), (tmp_path / "sqlite.html").read_text()
    # the same channel table (its figures and intervals) as the SQLite engine's report
    table = lambda html: html[html.index("<table") : html.index("</table>")]  # noqa: E731
    assert table(engine) == table(sqlite) and table(engine).count("<tr") > 10
    assert "pipeline-extract-" not in engine  # the temporary extract never shows
    # the view's options pass to the engine's report as to SQLite's (one helper: report_view_options)
    view = ("--per", "month", "--trend-channel", "Display", "--trend-metric", "roas")
    assert _cli("report-html", ran[kind], "--output", tmp_path / "month.html", *view) == 0
    assert _cli("report-html", ran["sqlite"], "--output", tmp_path / "month_sqlite.html", *view) == 0
    engine, sqlite = (tmp_path / "month.html").read_text(), (tmp_path / "month_sqlite.html").read_text()
    assert "<h2>Per channel and month</h2>" in engine and table(engine) == table(sqlite)
    assert _cli("report-html", ran[kind], "--output", tmp_path / "no.html", "--trend-channel", "Radio") == 2
    assert "the trend's channel 'Radio' is not in this report" in capsys.readouterr().err
    assert not (tmp_path / "no.html").exists()


def test_report_html_before_any_run_is_one_line_and_writes_nothing(small_demo, tmp_path, capsys):
    url = f"duckdb:///{tmp_path / 'fresh.duckdb'}"
    convert(small_demo, url)
    assert _cli("report-html", url, "--output", tmp_path / "r.html") == 2
    err = capsys.readouterr().err.strip()
    assert "nothing is attributed yet" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r.html").exists()
    assert _cli("export", url, "--csv", tmp_path / "r.csv", "--intervals") == 2
    assert not (tmp_path / "r.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["fresh.duckdb"]


def test_extract_is_written_whole_or_not_at_all(ran, tmp_path, monkeypatch):
    import pipeline.engine_extract as ex

    def broken(*args, **kwargs):
        raise RuntimeError("engine went away")

    monkeypatch.setattr(ex, "_stage_records", broken)
    with pytest.raises(RuntimeError):
        extract_run(ran["duckdb"], tmp_path / "run.db")
    assert list(tmp_path.iterdir()) == []


def test_on_postgres_export_intervals_and_report_html_are_sqlites(small_demo, tmp_path, monkeypatch, capsys):
    """The same on a real PostgreSQL (Debian's, started on a loopback port): the CSVs byte-identical,
    report-html written, the password never printed."""
    from tests.pg_server import PASSWORD, pg_binaries, start_server

    if pg_binaries() is None:
        pytest.skip("no PostgreSQL binaries: install Debian's postgresql (.ci/run does)")
    from tests.test_engine_postgres import _database

    server = start_server()
    try:
        admin = _database(server, "extract")
        convert(small_demo, admin)
        url = server.url(password=False, database="extract")
        monkeypatch.setenv("PGPASSWORD", PASSWORD)
        db = shutil.copy(small_demo, tmp_path / "lite.db")
        for source in (db, url):
            assert _cli("run", source, "--model", "linear", "-q") == 0
        flags = ["--by", "conversion-date", "--intervals"]
        assert _cli("export", db, "--csv", tmp_path / "sqlite.csv", *flags) == 0
        assert _cli("export", url, "--csv", tmp_path / "pg.csv", *flags) == 0
        assert (tmp_path / "pg.csv").read_bytes() == (tmp_path / "sqlite.csv").read_bytes()
        assert _cli("report-html", url, "--output", tmp_path / "pg.html") == 0
        out = capsys.readouterr()
        assert PASSWORD not in out.out + out.err and PASSWORD not in (tmp_path / "pg.html").read_text()
    finally:
        server.stop()
