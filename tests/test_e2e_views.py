"""Views that survive a reload, in a real browser (`streamlit run app.py`, headless Debian Chromium).

A filtered Report view (channels, dates, date basis, grain) and a Compare view (the chosen models) are
set through the widgets, the page is reloaded — a new browser session on the same URL — and the same
view is drawn again. On the way: the trend's hover names the channel and writes euros, and Download
database hands over the working database. Screenshots go to artifacts/screenshots/ (views_*.png).
"""

from __future__ import annotations

import sqlite3
from urllib.parse import parse_qs, urlparse

from tests import browser_support as web

pytestmark = web.needs_browser()
CHANNELS = ["Display", "Paid Search Brand"]


def _pick(page, index: int, option: str) -> None:
    """Pick ``option`` in the ``index``-th multiselect of the page."""
    box = page.locator('[data-testid="stMultiSelect"] input').nth(index)
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click(timeout=30_000)
    page.keyboard.press("Escape")
    web.wait_idle(page)


def _chosen(page, index: int) -> list[str]:
    """The values chosen in the ``index``-th multiselect (its tags, in order)."""
    tags = (
        page.locator('[data-testid="stMultiSelect"]').nth(index).locator('[data-testid="stMultiSelectTagsContainer"]')
    )
    removers = tags.first.locator('[aria-label^="Remove "]')
    return [r.get_attribute("aria-label").removeprefix("Remove ") for r in removers.all()]


def _query(page) -> dict:
    return parse_qs(urlparse(page.url).query)


def _table_caption(page) -> str:
    return page.locator('[data-testid="stCaptionContainer"]', has_text="CPO and ROAS are empty").first.inner_text()


def test_a_filtered_report_and_a_comparison_come_back_after_a_reload(tmp_path):
    web.SHOTS.mkdir(parents=True, exist_ok=True)
    env = web.served_env(tmp_path)
    with web.streamlit_server(env, tmp_path / "streamlit.log") as url, web.chromium() as browser:
        page = web.open_app(browser, url, accept_downloads=True)
        web.no_traceback(page)
        unfiltered = _table_caption(page)

        # --- the Report: two channels, conversion dates, per week ---
        for channel in CHANNELS:
            _pick(page, 0, channel)
        page.get_by_text("Conversion date", exact=True).click()
        web.wait_idle(page)
        page.locator('[data-testid="stButtonGroup"]').get_by_text("Week", exact=True).click()
        web.wait_idle(page)
        web.no_traceback(page)
        query = _query(page)
        assert query.get("channel") == CHANNELS and query.get("by") == ["conversion-date"]
        assert query.get("per") == ["week"]
        filtered = _table_caption(page)
        assert filtered != unfiltered
        assert "Channel-weeks" in web.text_of(page)
        web.screenshot(page, web.SHOTS / "views_1_report_filtered.png")

        # the trend follows the filter and has a hover (drawn on the canvas; its words, the channel and
        # the value in €, are checked in tests/test_report_echarts.py)
        web.wait_charts(page, 4)
        assert all(c in web.chart_text(page, 3) for c in CHANNELS), web.chart_text(page, 3)
        assert web.hover_chart(page, 3) is not None
        web.screenshot(page, web.SHOTS / "views_2_trend_hover.png", full=False)

        # reload: a new browser session on the same URL draws the same view
        before_url = page.url
        page.reload()
        web.wait_idle(page, 240)
        web.no_traceback(page)
        assert page.url == before_url
        assert _chosen(page, 0) == CHANNELS
        assert page.get_by_role("radio", name="Conversion date").is_checked()
        assert _table_caption(page) == filtered
        assert "Channel-weeks" in web.text_of(page)
        assert "Conversion dates" in web.text_of(page)  # the date filter's label follows the basis
        web.screenshot(page, web.SHOTS / "views_3_report_reloaded.png")

        # the URL opened in another browser (a colleague's): the same view
        other = web.open_app(browser, before_url)
        assert _chosen(other, 0) == CHANNELS and _table_caption(other) == filtered
        other.context.close()

        # --- Compare models: a chosen set of models in the URL ---
        web.goto_page(page, "Compare models")
        web.wait_charts(page, 1)
        _pick(page, 0, "First click")
        web.no_traceback(page)
        models = _chosen(page, 0)
        assert models[-1] == "First click" and len(models) >= 3
        query = _query(page)
        assert query.get("model", [])[-1] == "first-click"
        web.wait_charts(page, 1)
        legend = web.chart_text(page, 0)  # the chart's alt text names the models drawn, as its legend does
        assert "First click" in legend.split(". ")[0]
        web.screenshot(page, web.SHOTS / "views_4_compare.png")

        # moving between pages keeps both views in this session
        web.goto_page(page, "Report")
        assert _chosen(page, 0) == CHANNELS and _query(page).get("channel") == CHANNELS
        web.goto_page(page, "Compare models")
        web.wait_charts(page, 1)
        assert _chosen(page, 0) == models

        compare_url = page.url
        page.reload()
        web.wait_idle(page, 240)
        web.wait_charts(page, 1)
        web.no_traceback(page)
        assert page.url == compare_url
        assert _chosen(page, 0) == models
        assert web.chart_text(page, 0) == legend  # the same models drawn
        web.screenshot(page, web.SHOTS / "views_5_compare_reloaded.png")

        web.goto_page(page, "Report")
        # Download database: the working database, prepared on click, then Save
        page.get_by_role("button", name="Download database").click()
        with page.expect_download(timeout=120_000) as info:
            page.get_by_role("button", name="Save attribution-enriched.db").click(timeout=60_000)
        saved = tmp_path / "downloaded.db"
        info.value.save_as(saved)
        with sqlite3.connect(saved) as con:
            assert con.execute("SELECT count(*) FROM channel_reporting").fetchone()[0] > 0
        page.context.close()
