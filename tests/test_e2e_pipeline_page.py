"""The Pipeline page in a real browser (headless Chromium): before, during and after a run, the IHC API
option (Check, quota), Stop during an API run, and an API error in words — with screenshots to look at
(artifacts/screenshots/pipeline_*.png, or $DASHBOARD_SCREENSHOTS).

The IHC API is the protocol's local test server on 127.0.0.1 (slowed down so that a run lasts long
enough to be seen and stopped), then a closed port (the server stopped): no other network.
"""

from __future__ import annotations

import re

from tests import browser_support as web

pytestmark = web.needs_browser()
KEY = "e2e-pipeline-key-0f9e8d7c6b"
STEP = re.compile(r"Step (\d) of (\d): ")


def goto_pipeline(page) -> None:
    web.goto_page(page, "Pipeline")
    page.get_by_role("button", name="Run pipeline").wait_for(timeout=120_000)
    web.wait_idle(page)


def pick_model(page, label: str) -> None:
    box = page.locator('[data-testid="stSelectbox"]', has_text="Attribution model")
    box.click()
    box.locator("input").fill(label)
    box.locator("input").press("Enter")
    web.wait_idle(page)


def bar_text(page) -> str:
    bars = page.locator('[data-testid="stProgress"]')
    return bars.first.inner_text() if bars.count() else ""


def wait_for_bar(page, pattern: str, timeout: float = 60.0) -> str:
    """Wait until the progress bar's text matches ``pattern``; return that text."""
    for _ in range(int(timeout * 10)):
        text = bar_text(page)
        if re.search(pattern, text):
            return text
        page.wait_for_timeout(100)
    raise AssertionError(f"no progress text matching {pattern!r}; last: {bar_text(page)!r}")


def test_the_pipeline_page_before_during_after_stop_and_api_error(tmp_path):
    from pipeline.ihc_api.local_server import Fault, LocalIhcServer

    web.SHOTS.mkdir(parents=True, exist_ok=True)
    server = LocalIhcServer(KEY)
    server.start()
    env = web.served_env(
        tmp_path,
        sessions=150_000,  # a local run long enough to be seen
        conversions=1000,
        IHC_API_URL=server.url,
        IHC_MAX_JOURNEYS_PER_REQUEST="50",
        IHC_API_MAX_ATTEMPTS="2",
        IHC_API_BACKOFF_BASE="0.2",
        IHC_API_KEY="",
        IHC_CONV_TYPE_ID="",
    )
    try:
        with web.streamlit_server(env, tmp_path / "streamlit.log") as url, web.chromium() as browser:
            page = web.open_app(browser, url)
            goto_pipeline(page)
            web.no_traceback(page)
            web.screenshot(page, web.SHOTS / "pipeline_1_before_run.png")

            # a local run, recomputing everything: progress in steps, the summary under the button
            page.get_by_text("Recompute every stage, even if up to date").click()
            web.wait_idle(page)
            # every text the bar shows, recorded in the page as it changes (a fast run shows only some)
            page.evaluate(
                """() => { window.__bars = [];
                    new MutationObserver(() => document.querySelectorAll('[data-testid="stProgress"]')
                        .forEach(b => { const t = b.innerText.trim();
                                        if (t && window.__bars[window.__bars.length - 1] !== t) window.__bars.push(t); }))
                      .observe(document.body, {subtree: true, childList: true, characterData: true}); }"""
            )
            page.get_by_role("button", name="Run pipeline").click()
            try:
                page.wait_for_selector('[data-testid="stProgress"]', timeout=30_000)
                page.locator('[data-testid="stProgress"]').first.scroll_into_view_if_needed(timeout=2_000)
                web.screenshot(page, web.SHOTS / "pipeline_2_during_run.png", full=False)
            except Exception:  # noqa: BLE001 - finished before a screenshot could be taken
                pass
            page.get_by_text("Attributed").first.wait_for(timeout=240_000)
            web.wait_idle(page)
            web.no_traceback(page)
            texts = page.evaluate("() => window.__bars")
            (web.SHOTS / "pipeline_2_bar_texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
            assert any(STEP.search(t) for t in texts), texts
            steps = [int(STEP.search(t)[1]) for t in texts if STEP.search(t)]
            assert steps == sorted(steps), texts  # the step number never goes back
            assert not any(re.search(r"^(validate|journeys|report):", t) for t in texts), texts
            web.screenshot(page, web.SHOTS / "pipeline_3_after_run.png")
            main = web.text_of(page)
            assert main.index("Run pipeline") < main.index("Not attributed")  # under the button

            # the IHC API option: explanation, key field, Check, quota
            page.get_by_text("Recompute every stage, even if up to date").click()  # (off: resume, not resend)
            web.wait_idle(page)
            pick_model(page, "IHC — web API")
            page.get_by_role("textbox", name="IHC API key").wait_for(timeout=30_000)
            text = web.text_of(page)
            assert "conversion type id" in text and "has not been checked" not in text
            assert "Quota." in text and "A run sends" in text
            web.screenshot(page, web.SHOTS / "pipeline_4_api_option.png")
            page.get_by_role("textbox", name="IHC API key").fill(KEY)
            page.get_by_role("textbox", name="IHC API key").press("Enter")
            web.wait_idle(page)
            page.get_by_role("textbox", name="Conversion type id").fill("purchase")
            page.get_by_role("textbox", name="Conversion type id").press("Enter")
            web.wait_idle(page)
            assert "has not been checked yet" in web.text_of(page)
            page.get_by_role("button", name="Check").click()
            page.get_by_text("The key and the conversion type id work: ").first.wait_for(timeout=60_000)
            web.wait_idle(page)
            web.screenshot(page, web.SHOTS / "pipeline_5_api_checked.png")

            # an API run slowed down by the server: the bar moves while it sends; Stop
            server.inject(*[Fault.slow(1.5)] * 12)
            page.get_by_role("button", name="Run pipeline").click()
            during = wait_for_bar(page, r"IHC API: [1-9]\d*/\d+ requests answered")
            web.screenshot(page, web.SHOTS / "pipeline_6_during_api_run.png", full=False)
            assert STEP.search(during), during  # "Step n of m: attributing the conversions (IHC API: …)"
            # Streamlit's own Stop (top right) would end the script and leave the bar frozen with no word
            # (review 16 F2): on this page only the app's "Stop the run" is offered.
            widget = page.locator('[data-testid="stStatusWidget"]')
            assert widget.count() and widget.is_visible()  # "Running…" is still shown
            assert widget.locator("button").count() >= 1  # Streamlit draws its Stop…
            assert not widget.locator("button").first.is_visible()  # …which the page hides
            web.screenshot(page, web.SHOTS / "pipeline_6b_no_toolbar_stop.png", full=False)
            assert page.get_by_role("button", name="Stop the run").is_visible()
            page.get_by_role("button", name="Stop the run").click()
            try:
                page.get_by_text("Stopped — the attribution").first.wait_for(timeout=60_000)
            except Exception:
                web.screenshot(page, web.SHOTS / "pipeline_debug_stop.png")
                raise
            web.wait_idle(page)
            web.no_traceback(page)
            stopped = web.text_of(page)
            assert "the attribution and the channel report are unchanged" in stopped
            assert "answers already received from the IHC API are kept" in stopped
            assert page.locator('[data-testid="stProgress"]').count() == 0  # no frozen bar
            assert "already answered by an earlier run" in stopped  # the quota left, after the stop
            web.screenshot(page, web.SHOTS / "pipeline_7_stopped.png")

            # the API cannot be reached: the error in words, nothing claimed as sent
            server.stop()
            page.get_by_role("button", name="Run pipeline").click()
            page.get_by_text("The run stopped").first.wait_for(timeout=120_000)
            web.wait_idle(page)
            web.no_traceback(page)
            error = web.text_of(page)
            assert "could not be reached: connection refused" in error
            assert "run again to send the rest" not in error and "HTTPConnectionPool" not in error
            assert "Stopped" not in error  # the earlier outcome was replaced
            web.screenshot(page, web.SHOTS / "pipeline_8_api_error.png")
            # the key is nowhere on the page but in the password field that holds what was typed
            assert KEY not in page.evaluate("() => document.body.innerText")
            holders = page.evaluate(
                "key => [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.value.includes(key)))"
                ".map(e => e.tagName + ':' + e.getAttribute('type'))",
                KEY,
            )
            assert holders == ["INPUT:password"], holders
            files = [p for p in (tmp_path / "workspaces").rglob("*") if p.is_file()]
            assert any(p.suffix == ".db" for p in files)  # (the session's database, while it is open)
            for path in files:
                assert KEY.encode() not in path.read_bytes(), path
    finally:
        server.stop()
    assert KEY not in (tmp_path / "streamlit.log").read_text(encoding="utf-8", errors="replace")
