"""In a real browser (Debian's Chromium through Playwright): a DuckDB source configured on the server
(ATTRIBUTION_SOURCES) is run from the Data page, and the Report, Journeys and Compare pages show it
without a traceback and without its URL. Screenshots go to artifacts/screenshots/server-source-*.png."""

from __future__ import annotations

from tests import browser_support as web
from tests.dashboard_support import DEMO_ENV

pytestmark = web.needs_browser()


def test_report_of_a_server_source_in_chromium(small_demo, tmp_path):
    from pipeline.convert import convert

    web.SHOTS.mkdir(parents=True, exist_ok=True)
    secret = tmp_path / "secret-warehouse.duckdb"
    convert(small_demo, f"duckdb:///{secret}")
    env = {
        **DEMO_ENV,
        "ATTRIBUTION_CACHE_DIR": str(tmp_path / "cache"),
        "ATTRIBUTION_WORKSPACE_DIR": str(tmp_path / "workspaces"),
        "ATTRIBUTION_SOURCES": f"Shop warehouse=duckdb:///{secret}",
    }
    with web.streamlit_server(env, tmp_path / "streamlit.log") as url, web.chromium() as browser:
        page = web.open_app(browser, url)
        web.goto_page(page, "Data")
        page.get_by_role("button", name="Run on this source").click()
        page.wait_for_function(
            "() => document.body.innerText.includes('The Report and Journeys pages show')", timeout=120_000
        )
        web.wait_idle(page)
        for title, shot in (("Report", "report"), ("Journeys", "journeys"), ("Compare models", "compare")):
            web.goto_page(page, title)
            web.no_traceback(page)
            text = web.text_of(page)
            assert "Shop warehouse" in text
            assert "secret-warehouse" not in text and "duckdb:///" not in text and str(tmp_path) not in text
            web.screenshot(page, web.SHOTS / f"server-source-{shot}.png", full=title == "Report")
        web.goto_page(page, "Report")
        assert page.locator('[data-testid="stMetric"]').count() >= 5  # the KPI tiles
        assert page.get_by_text("Download database").count() == 0  # a server source's data stays there
