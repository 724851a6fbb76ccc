"""Sources configured on the server (pipeline.server_sources): listed by name from secrets.toml's
``[sources]`` or ATTRIBUTION_SOURCES, run on the Data page, report read and CSV downloaded — the CSV the
command line writes, and never the source's URL on the page."""

from __future__ import annotations

import re
import shutil

import pytest

from pipeline.cli import main
from pipeline.convert import convert
from pipeline.errors import InputError
from pipeline.server_sources import configured_sources, run_source
from tests.dashboard_support import no_errors, open_page, texts


def test_configured_from_secrets_and_environment():
    env = {"ATTRIBUTION_SOURCES": "Lake=parquet:///data/lake; Shop = duckdb:///shop.duckdb\nbad line"}
    assert configured_sources(None, env) == {"Lake": "parquet:///data/lake", "Shop": "duckdb:///shop.duckdb"}
    secrets = {"sources": {"Shop": "postgres://u:pw@db/x", "Other": "x.db"}}
    got = configured_sources(secrets, env)
    assert got["Shop"] == "postgres://u:pw@db/x" and got["Other"] == "x.db" and got["Lake"] == "parquet:///data/lake"
    assert configured_sources(None, {}) == {}


def test_errors_name_the_source_not_its_url(tmp_path):
    with pytest.raises(InputError) as exc:
        run_source("Shop lake", f"parquet:///{tmp_path / 'secret-place'}", "linear")
    assert str(exc.value).startswith("Shop lake:") and "secret-place" not in str(exc.value)
    with pytest.raises(InputError) as exc:
        run_source("Warehouse", "mysql://user:hunter2@host/db")
    assert "hunter2" not in str(exc.value) and "host" not in str(exc.value)


@pytest.fixture
def lake(small_demo, tmp_path):
    url = f"parquet:///{tmp_path / 'lake'}"
    convert(small_demo, url)
    return url


def test_data_page_runs_a_server_source_and_downloads_its_csv(
    dashboard_env, lake, small_demo, tmp_path, downloads, monkeypatch
):
    monkeypatch.setenv("ATTRIBUTION_SOURCES", f"Shop lake={lake}")
    at = open_page("data")
    no_errors(at)
    assert at.selectbox(key="server_source").value == "Shop lake"
    at.selectbox(key="server_model").set_value("linear")
    at.button(key="server_run").click().run()
    no_errors(at)
    text = texts(at)
    # the run in the Pipeline page's sentences (run_summary), not the runner's log lines ("report: …")
    done = at.session_state["_server_run"].summary
    assert f"Attributed {done.attributed:,} of {done.conversions:,} conversions with Linear in" in text
    assert "Channel report: " in text and "channel-days rebuilt in" in text
    assert not re.search(r"(^|\n|· )(validate|journeys|attribute|report): ", text), text
    assert str(tmp_path) not in text and "parquet:///" not in text  # the URL never shows
    assert len(at.dataframe[0].value) > 0 or len(at.dataframe[-1].value) > 0
    db = tmp_path / "ref.db"
    shutil.copy(small_demo, db)
    assert main(["run", str(db), "--model", "linear", "--csv", str(tmp_path / "ref.csv"), "-q"]) == 0
    assert downloads["Shop lake-channel-report.csv"] == (tmp_path / "ref.csv").read_bytes()


def test_data_page_lists_secrets_sources(dashboard_env, lake, monkeypatch):
    monkeypatch.delenv("ATTRIBUTION_SOURCES", raising=False)
    from streamlit.testing.v1 import AppTest

    from tests.dashboard_support import APP, PAGES, TIMEOUT

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["sources"] = {"From secrets": lake}
    at.run()
    at.switch_page(PAGES["data"]).run()
    no_errors(at)
    assert at.selectbox(key="server_source").options == ["From secrets"]


@pytest.fixture
def shop(small_demo, tmp_path):
    url = f"duckdb:///{tmp_path / 'secret-shop.duckdb'}"
    convert(small_demo, url)
    return url


def test_report_journeys_and_compare_pages_on_a_duckdb_server_source(
    dashboard_env, shop, small_demo, tmp_path, downloads, monkeypatch
):
    """Run a DuckDB source on the Data page; the Report shows its figures (the SQLite engine's on the same
    data), its downloads are the CLI's bytes, Journeys explains its conversions, Compare says in one
    sentence why not; the URL never shows; going back shows the session's database again."""
    from pipeline.report_views import report_view

    monkeypatch.setenv("ATTRIBUTION_SOURCES", f"Shop={shop}")
    at = open_page("data")
    at.selectbox(key="server_model").set_value("linear")
    at.button(key="server_run").click().run()
    no_errors(at)
    assert "The Report and Journeys pages show" in texts(at)

    ref = tmp_path / "ref.db"
    shutil.copy(small_demo, ref)
    assert main(["run", str(ref), "--model", "linear", "-q"]) == 0
    from pipeline.db import open_database

    con = open_database(ref)
    try:
        want = report_view(con)
    finally:
        con.close()

    at = open_page("report", at)
    no_errors(at)
    text = texts(at)
    assert "Source on the server: **Shop**" in text
    assert "secret-shop" not in text and "duckdb:///" not in text and str(tmp_path) not in text
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Conversions"] == f"{want.kpis.conversions:,.0f}"
    assert "linear" in text.lower()
    assert not [b for b in at.get("download_button") if "database" in str(b.proto.label).lower()]
    for flags, name in (([], ".csv"), (["--intervals"], "_intervals.csv")):
        assert main(["export", str(ref), "--csv", str(tmp_path / "ref.csv"), *flags]) == 0
        report_files = [k for k in downloads if "_linear_" in k]  # the server run, not the demo nor the Data page
        (got,) = [downloads[k] for k in report_files if k.endswith(name) and (name != ".csv" or "_intervals" not in k)]
        assert (got() if callable(got) else got) == (tmp_path / "ref.csv").read_bytes()
    (html,) = [downloads[k] for k in report_files if k.endswith(".html")]
    html = (html() if callable(html) else html).decode()
    assert "Shop" in html and "secret-shop" not in html

    at = open_page("journeys", at)
    no_errors(at)
    assert "No journeys yet" not in texts(at) and "Source on the server: **Shop**" in texts(at)
    assert at.selectbox(key="explain_pick").options  # conversions to explain, from the engine's journeys

    at = open_page("compare", at)
    no_errors(at)
    assert "not on the server source Shop" in texts(at)

    at = open_page("data", at)
    at.button(key="server_leave").click().run()
    at = open_page("report", at)
    no_errors(at)
    assert "Source on the server" not in texts(at) and "server source" not in texts(at)


def test_a_source_run_is_summarised_as_the_sqlite_run_of_the_same_data(lake, small_demo, tmp_path):
    from pipeline.db import open_database
    from pipeline.run_summary import summarise
    from pipeline.runner import RunOptions, run_pipeline

    done = run_source("Shop lake", lake, "linear").summary
    db = tmp_path / "ref.db"
    shutil.copy(small_demo, db)
    con = open_database(db, write=True)
    try:
        ref = summarise(run_pipeline(con, RunOptions(model="linear")))
    finally:
        con.close()
    assert done.model == ref.model == "linear"
    assert (done.conversions, done.attributed, done.not_attributed) == (
        ref.conversions,
        ref.attributed,
        ref.not_attributed,
    )
    assert done.channel_days == ref.channel_days > 0 and done.redone == ["journeys", "attribute", "report"]
    assert done.headline().startswith(f"Attributed {ref.attributed:,} of {ref.conversions:,} conversions with Linear")
    # the data checks in sentences, as on the Pipeline page (an engine's cost check gives no credit shares)
    assert [w.split(":")[0] for w in done.warnings] == [w.split(":")[0] for w in ref.warnings] != []
