"""A new browser session's first view in a real browser (`streamlit run app.py`, headless Debian
Chromium). Its KPI tiles go out before the filter row (pages/report.py, ``TILES_FIRST``; the order is
tested with AppTest in test_dashboard_report_page.py), and the row's placeholder keeps the row's place:
with the placeholder shown instead of the row, the tiles stand exactly where they end, at 1280, 1024
and 800 px (the row one line, then two). Once the three widgets are shown the page's style hides the
placeholder. A shared view with a channel in its URL is drawn in the usual order (no placeholder).
Screenshots go to artifacts/screenshots/ (first_view_*.png).
"""

from __future__ import annotations

from tests import browser_support as web

pytestmark = web.needs_browser()

# The page as it ends, then the same page with the placeholder shown in place of the filter row (as
# the browser showed it while the widgets' code was on its way), then as it was again.
SWAP = """() => {
  const box = e => { const b = e.getBoundingClientRect(); return [b.x, b.y, b.width, b.height].map(v => Math.round(v * 10) / 10); };
  const shown = e => !!e && e.getClientRects().length > 0;
  const tile = () => box(document.querySelector('[data-testid="stMetric"]'));
  const holder = document.querySelector('.stElementContainer:has(.report-filter-placeholder)');
  const row = document.querySelector('.st-key-report_filters');
  const widgets = ['stDateInput', 'stMultiSelect', 'stRadio'].map(t =>
      shown(document.querySelector(`.st-key-report_filters [data-testid="${t}"]`)));
  const end = {tile: tile(), row: box(row), widgets, holders: document.querySelectorAll('.report-filter-placeholder').length,
               holderShown: shown(holder)};
  if (!holder) return {end};
  const wrapper = holder.nextElementSibling;
  holder.style.setProperty('display', 'block', 'important');
  wrapper.style.setProperty('display', 'none', 'important');
  const swapped = {tile: tile(), placeholder: box(document.querySelector('.report-filter-placeholder'))};
  holder.style.removeProperty('display');
  wrapper.style.removeProperty('display');
  return {end, swapped};
}"""


def _close(a: list, b: list, px: float = 1.0) -> bool:
    return all(abs(x - y) <= px for x, y in zip(a, b))


def test_the_filter_rows_placeholder_keeps_the_tiles_where_they_end(tmp_path):
    web.SHOTS.mkdir(parents=True, exist_ok=True)
    env = web.served_env(tmp_path)
    with web.streamlit_server(env, tmp_path / "streamlit.log") as url, web.chromium() as browser:
        web.open_app(browser, url).context.close()  # the server's first run builds the demo
        page = web.open_app(browser, url)  # a new browser session: its first view
        web.no_traceback(page)
        web.screenshot(page, web.SHOTS / "first_view_1280.png", full=False)
        for width, height in [(1280, 800), (1024, 768), (800, 900)]:
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(400)  # the layout follows the new width
            seen = page.evaluate(SWAP)
            end, swapped = seen["end"], seen["swapped"]
            assert end["widgets"] == [True, True, True] and end["holders"] == 1, (width, seen)
            assert not end["holderShown"], (width, seen)  # hidden once the widgets are shown
            assert _close(swapped["placeholder"], end["row"]), (width, seen)  # the row's box, wrapped alike
            assert _close(swapped["tile"], end["tile"]), (width, seen)
        page.context.close()

        shared = web.open_app(browser, url + "/?channel=Display")  # a shared view: the usual order
        seen = shared.evaluate(SWAP)
        assert seen["end"]["widgets"] == [True, True, True] and seen["end"]["holders"] == 0, seen
