"""Sources configured on the server (pipeline.server_sources): listed by name from secrets.toml's
``[sources]`` or ATTRIBUTION_SOURCES, run on the Data page, report read and CSV downloaded — the CSV the
command line writes, and never the source's URL on the page."""

from __future__ import annotations

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
    assert "report:" in text and "channel-days rebuilt" in text
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
