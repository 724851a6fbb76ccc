"""End to end in a real browser: `streamlit run app.py` on a free local port, driven through Debian's
Chromium by Playwright.

Uploads a freshly generated (not yet attributed) database, runs attribution with the offline model,
waits for the report, downloads the CSV and the enriched database, and checks that the CSV is byte for
byte what `python -m pipeline export` writes from that database — without and with a channel filter.
Also: a second browser session still sees the demo (sessions are isolated), a bad upload shows a
message and no traceback, the uploaded file is not modified, and the working folders are gone when the
server stops. Screenshots of every page (1280×800) go to artifacts/screenshots/.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tests import browser_support as web
from tests.helpers import cli

pytestmark = web.needs_browser()
CHANNEL = "Paid Search Brand"


def test_upload_run_report_download(tmp_path):
    from pipeline.demo import write_demo_db
    from pipeline.demo_size import DemoSize

    web.SHOTS.mkdir(parents=True, exist_ok=True)
    upload = tmp_path / "shop_sessions.db"
    write_demo_db(upload, DemoSize(sessions=30_000, conversions=300, days=7, seed=11))
    original = upload.read_bytes()
    bad = tmp_path / "notes.db"
    bad.write_text("this is a text file, not a database\n")
    env = web.served_env(tmp_path)
    with web.streamlit_server(env, tmp_path / "streamlit.log") as url, web.chromium() as browser:
        page = web.open_app(browser, url, accept_downloads=True)
        assert page.get_by_text("Channel report").first.is_visible()
        web.wait_charts(page, 4, timeout=15)  # the demo's report, at once
        web.no_traceback(page)
        web.screenshot(page, web.SHOTS / "1_report_demo.png")

        # A bad file: a readable message, the demo stays.
        web.goto_page(page, "Data")
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(bad))
        page.get_by_text("notes.db was not loaded").wait_for(timeout=60_000)
        web.wait_idle(page)
        web.no_traceback(page)
        assert page.get_by_text("not a SQLite database").first.is_visible()
        web.screenshot(page, web.SHOTS / "2_data_bad_upload.png")

        # The real upload.
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(upload))
        page.get_by_text("shop_sessions.db is loaded").wait_for(timeout=120_000)
        web.wait_idle(page)
        web.no_traceback(page)
        # the sidebar names the upload at once (not the demo until another page is opened)
        assert page.locator('[data-testid="stSidebar"]').get_by_text("shop_sessions.db").count() == 1
        # ... and says once, on every page, that a reload loses the upload, and how to keep it
        lost = "Kept in this tab only: reloading or closing it loses the upload and its runs"
        assert page.locator('[data-testid="stSidebar"]').get_by_text(lost).count() == 1
        assert page.get_by_text(lost).count() == 1
        web.screenshot(page, web.SHOTS / "3_data_uploaded.png")
        # Its dates stay whole on screen (a span that does not wrap) and copy as typed: plain hyphens,
        # no U+2011 (what the clipboard gets when an analyst copies the line into a sheet or the id box).
        line = page.locator('[data-testid="stMarkdownContainer"]', has_text="Sessions 2023-").first
        copied = line.evaluate(
            """(el) => { const r = document.createRange(); r.selectNodeContents(el);
                         const s = getSelection(); s.removeAllRanges(); s.addRange(r); return s.toString(); }"""
        )
        assert re.search(r"Sessions 2023-\d\d-\d\d – 2023-\d\d-\d\d", copied), copied
        assert "\u2011" not in copied and "\u2060" not in copied
        assert line.locator("span").first.evaluate("(e) => getComputedStyle(e).whiteSpace") == "nowrap"

        # Another browser session sees its own (demo) database, not this upload.
        other = web.open_app(browser, url)
        sidebar = other.locator('[data-testid="stSidebar"]')
        assert sidebar.get_by_text("Demo database").count() == 1
        assert sidebar.get_by_text("shop_sessions.db").count() == 0
        assert sidebar.get_by_text("Kept in this tab only").count() == 0  # the shared demo: nothing to lose
        other.context.close()

        web.goto_page(page, "Pipeline")
        assert page.get_by_text("Missing").count() >= 3  # fresh upload: nothing run yet
        web.screenshot(page, web.SHOTS / "4_pipeline_before_run.png")
        page.get_by_role("button", name="Run pipeline").click()
        page.get_by_text("Attributed").first.wait_for(timeout=240_000)
        web.wait_idle(page)
        web.no_traceback(page)
        assert page.get_by_text("Done").count() >= 3
        web.screenshot(page, web.SHOTS / "5_pipeline_after_run.png")

        web.goto_page(page, "Report")
        web.wait_charts(page, 4, timeout=60)
        web.no_traceback(page)
        # back from other pages, the date basis still shows its choice (it showed neither option)
        assert page.get_by_role("radio", name="Session date").is_checked()
        web.screenshot(page, web.SHOTS / "6_report_uploaded.png")
        web.screenshot(page, web.SHOTS / "6_report_uploaded_fold.png", full=False)
        csv_all = _download(page, "Download CSV", tmp_path / "dashboard_all.csv")
        enriched = tmp_path / "enriched.db"
        page.get_by_role("button", name="Download database").click()  # prepares it, then offers Save
        _download(page, "Save attribution-enriched.db", enriched)

        # Filter one channel in the browser and download again.
        box = page.locator('[data-testid="stMultiSelect"] input').first
        box.click()
        box.fill(CHANNEL)
        try:
            page.get_by_role("option", name=CHANNEL, exact=True).click(timeout=15_000)
        except Exception:
            web.screenshot(page, web.SHOTS / "debug_multiselect.png", full=False)
            raise
        page.keyboard.press("Escape")
        web.wait_idle(page)
        csv_one = _download(page, "Download CSV", tmp_path / "dashboard_one.csv")
        web.screenshot(page, web.SHOTS / "7_report_filtered.png")
        # Every column of the table is in view at 1280 px: its scroller does not scroll sideways.
        client, scroll = page.locator('[data-testid="stDataFrame"] .dvn-scroller').first.evaluate(
            "(e) => [e.clientWidth, e.scrollWidth]"
        )
        assert scroll <= client, (scroll, client)

        web.goto_page(page, "Journeys")
        web.wait_charts(page, 3, timeout=60)  # lengths, paths, the explained conversion
        web.no_traceback(page)
        web.screenshot(page, web.SHOTS / "8_journeys.png")
        client, scroll = page.locator('[data-testid="stDataFrame"] .dvn-scroller').first.evaluate(
            "(e) => [e.clientWidth, e.scrollWidth]"
        )
        assert scroll <= client, (scroll, client)  # the explain table has no sideways scroll
        web.goto_page(page, "Compare models")
        web.wait_charts(page, 1)
        web.no_traceback(page)
        web.screenshot(page, web.SHOTS / "9_compare.png")
        page.context.close()
        assert len(list((tmp_path / "workspaces").glob("ws-*"))) >= 1

    # The server stopped: every session's working folder is gone.
    assert list((tmp_path / "workspaces").glob("ws-*")) == []

    assert upload.read_bytes() == original, "the uploaded file was modified"
    with sqlite3.connect(enriched) as con:
        assert con.execute("SELECT count(*) FROM attribution_customer_journey").fetchone()[0] > 0
    for data, extra, name in ((csv_all, [], "all"), (csv_one, ["--channel", CHANNEL], "one")):
        out = tmp_path / f"cli_{name}.csv"
        done = cli("export", enriched, "--csv", out, *extra)
        assert done.returncode == 0, done.stderr
        assert data == out.read_bytes(), f"dashboard CSV ({name}) differs from `pipeline export`"
    assert csv_one.count(b"\n") < csv_all.count(b"\n")
    assert all(line.startswith(CHANNEL.encode()) for line in csv_one.splitlines()[1:])


def _download(page, label: str, target: Path) -> bytes:
    with page.expect_download(timeout=120_000) as info:
        page.get_by_role("button", name=label).click()
    info.value.save_as(target)
    return target.read_bytes()
