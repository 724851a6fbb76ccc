"""Nothing on the Report is cut, in a real browser (headless Chromium with its scrollbars shown): at 1280
and 1024 px, the sidebar open and collapsed, per day, week (1280 px) and month, reached through the app's
address and straight through the page's own (/report). Review 16: the CI screenshot
downloads_1_database_ready.png cut the table's "ROAS 90%" (a first visit to /report on a fresh server ran
the page alone in a 736 px column), the third chip of the Channels filter was cut, and after Download
database the first button read "Download …"; at 1024 px the KPI tiles read "€…". Per month at 1280 px the
table's Channel read "Affiliate & Partnersh".

Each view is checked for: a text cut by its box (tiles, buttons, chips, labels, the date range), a button's
words over two lines, a part past the main column's right edge, and the table's scroller — at 1280 px and
at 1024 px with the sidebar collapsed it must not scroll sideways, and every header, channel name and
interval is whole in its column (widths read off the grid's canvas, texts measured in its font); where it
must scroll (1024 px, sidebar open) its sideways scrollbar shows. Also with the window as tall as the page
(no page scrollbar). The same for the Journeys page (1280 and 1024 px), the Data, Pipeline and Compare
pages (1024 px), with the sidebar open: the Data table fits, each Compare card's range is on one line.
Screenshots: $DASHBOARD_SCREENSHOTS/widths_*.png.
``WIDTHS_ONLY=1 python3 -m pytest -q`` runs only this test (tests/conftest.py)."""

from __future__ import annotations

import contextlib

from tests import browser_support as web

pytestmark = web.needs_browser()

REPORT_TEXT_COLUMNS = ("Channel", "Date", "Days", "CPO 90%", "ROAS 90%")
LONG_CHANNELS = ["Affiliate & Partnerships", "Paid Search Non Brand", "Price Comparison"]

# What is cut in the main area: texts wider than their clipping box, parts past the column, the table.
CUT = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const column = document.querySelector('[data-testid="stMainBlockContainer"]').getBoundingClientRect();
  const cut = [];
  const parts = main.querySelectorAll(['stMetric', 'stButton', 'stDownloadButton', 'stMultiSelect', 'stDateInput',
      'stRadio', 'stButtonGroup', 'stSelectbox', 'stWidgetLabel', 'stHeading'].map(t => `[data-testid="${t}"]`).join(','));
  for (const part of parts) {
    for (const el of [part, ...part.querySelectorAll('*')]) {
      if (!(el instanceof HTMLElement) || !el.offsetParent) continue;
      const text = ((el.tagName === 'INPUT' ? el.value : el.innerText) || '').trim();
      const style = getComputedStyle(el);
      // a widget's label is cut where its box clips it, and runs over what is beside it where it does not
      const label = el.dataset.testid === 'stWidgetLabel';
      if (text && (style.overflowX !== 'visible' || style.textOverflow === 'ellipsis' || el.tagName === 'INPUT' || label)
          && el.scrollWidth > el.clientWidth + 1)
        cut.push(`${part.dataset.testid} "${text.slice(0, 40)}" ${el.scrollWidth} > ${el.clientWidth} px`);
    }
    // a button's words on one line: "Download database (149 MB)" squeezed to three lines at 1024 px
    const words = ['stButton', 'stDownloadButton'].includes(part.dataset.testid) && part.querySelector('button p');
    if (words && words.offsetHeight > 1.5 * parseFloat(getComputedStyle(words).lineHeight))
      cut.push(`${part.dataset.testid} "${words.innerText.slice(0, 40)}" wraps: ${words.offsetHeight} px tall`);
    const box = part.getBoundingClientRect();
    if (box.width && box.right > column.right + 1) cut.push(`${part.dataset.testid} past the column by ${Math.round(box.right - column.right)} px`);
  }
  const tables = [...main.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')].map(s => ({
      client: s.clientWidth, content: s.scrollWidth, sideways_bar: s.offsetHeight - s.clientHeight}));
  return {cut, tables, column: Math.round(column.width)};
}"""


# What is cut inside a table (st.dataframe draws on a canvas): each column's width from the grid lines the
# canvas draws at the columns' right edges (the last column ends at the scroller's edge, where the table's
# own scrollbar begins), and the texts as Chromium measures them in the grid's font — the headers, and the
# cells of the columns named (text columns: the grid's accessible table holds what they show; a number
# column there holds the raw value, not its format). A text is whole with its 8 px padding on both sides
# (the last column's right one may sit under the scrollbar): "Affiliate & Partnerships" in 120 px read
# "Affiliate & Partnersh" (the Report per month at 1280 px).
TABLE_CUT = """(frame, textColumns) => {
  const canvas = frame.querySelector('canvas[data-testid="data-grid-canvas"]');
  const scroller = frame.querySelector('.dvn-scroller');
  const line = canvas.getContext('2d').getImageData(0, 1, canvas.width, 1).data;
  const edges = [];
  for (let x = 1; x < canvas.width; x++) {
    const [r, g, b] = [line[4 * x], line[4 * x + 1], line[4 * x + 2]];
    const grey = r < 245 && Math.abs(r - g) < 8 && Math.abs(g - b) < 8;
    if (grey && !(edges.length && edges[edges.length - 1] === x - 1)) edges.push(x);
  }
  const headers = [...frame.querySelectorAll('table[role="grid"] thead th')].map(th => th.innerText.trim());
  if (edges.length === headers.length - 1) edges.push(scroller.clientWidth);
  const width = i => i < edges.length ? edges[i] - (i ? edges[i - 1] : 0) : null;
  const style = getComputedStyle(frame.querySelector('.stDataFrameGlideDataEditor'));
  const font = `${style.getPropertyValue('--gdg-base-font-style')} ${style.getPropertyValue('--gdg-font-family')}`;
  const pad = parseFloat(style.getPropertyValue('--gdg-cell-horizontal-padding'));
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = font;
  const cut = [];
  const check = (text, i) => {
    // the last column ends at the table's own scrollbar: its text may reach it, not run under it
    const w = width(i), need = ctx.measureText(text).width + (i === headers.length - 1 ? pad : 2 * pad);
    if (text && w !== null && need > w + 0.5) cut.push(`"${text}" in ${headers[i]}: ${need.toFixed(1)} > ${w} px`);
  };
  headers.forEach(check);
  const rows = frame.querySelectorAll('table[role="grid"] tbody tr');
  for (const tr of rows)
    [...tr.children].forEach((td, i) => { if (textColumns.includes(headers[i])) check(td.innerText.trim(), i); });
  return {cut, widths: headers.map((h, i) => [h, width(i)]), rows: rows.length, font};
}"""


# The Compare page's cards of the biggest shifts: the range in each card's heading ("3.2%–3.7%"), how many
# lines it takes and whether it stays inside its card. At 1024 px (sidebar open) three columns broke it
# into "3.2%–" / "3.7% across" / "models".
SHIFT_RANGES = """() => [...document.querySelectorAll('[class*="st-key-shift_card_"]')].map(card => {
  const walker = document.createTreeWalker(card.querySelector('h4'), NodeFilter.SHOW_TEXT);
  let node = walker.nextNode();
  while (node && !node.textContent.includes('–')) node = walker.nextNode();
  const text = node.textContent, end = text.includes(' across') ? text.indexOf(' across') : text.length;
  const range = document.createRange();
  range.setStart(node, 0);
  range.setEnd(node, end);
  const rects = [...range.getClientRects()], box = card.getBoundingClientRect();
  return {text: text.slice(0, end), lines: new Set(rects.map(r => Math.round(r.top))).size,
          inside: rects.every(r => r.right <= box.right + 1)};
})"""


def _table_whole(page, what: str, text_columns=("Channel",)) -> dict:
    """Every table's headers and the texts of ``text_columns`` are whole in their columns."""
    frames = page.locator('[data-testid="stMain"] [data-testid="stDataFrame"]')
    assert frames.count() > 0, what
    seen = {}
    for i in range(frames.count()):
        seen = frames.nth(i).evaluate(TABLE_CUT, list(text_columns))
        assert seen["rows"] > 0 and seen["cut"] == [], (what, seen)
    return seen


def _report(browser, url: str, path: str, width: int, sidebar: str, wait_for: str = '[data-testid="stDataFrame"]'):
    page = browser.new_context(viewport={"width": width, "height": 800}, accept_downloads=True).new_page()
    page.goto(url + path)
    web.wait_idle(page, 240)
    page.locator(wait_for).first.wait_for(timeout=120_000)  # the Report: its table, not the charts (any library)
    assert page.locator('[data-testid="stDialog"]').count() == 0, page.locator('[data-testid="stDialog"]').inner_text()
    if sidebar == "collapsed":
        page.locator('[data-testid="stSidebar"]').hover()
        page.locator('[data-testid="stSidebarCollapseButton"] button').click()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=\"stSidebar\"]').getBoundingClientRect().right < 5"
        )
    web.wait_idle(page)
    web.no_traceback(page)
    return page


def _pick(page, option: str) -> None:
    box = page.locator('[data-testid="stMultiSelect"] input').first
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click(timeout=30_000)
    page.keyboard.press("Escape")
    web.wait_idle(page)


def _nothing_cut(page, what: str) -> dict:
    """Nothing cut in the window, and nothing in a window as tall as the page: without the page's own
    scrollbar the main area is 10 px wider, and the Report's downloads row then kept "Download database"
    on the first line, squeezed to three lines of words, instead of wrapping it onto a line of its own."""
    seen = _seen_uncut(page, what)
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": int(height) + 40})
    page.wait_for_timeout(400)
    try:
        _seen_uncut(page, f"{what}, the window as tall as the page")
    finally:
        page.set_viewport_size(size)
        page.wait_for_timeout(200)
    return seen


def _seen_uncut(page, what: str) -> dict:
    seen = page.evaluate(CUT)
    assert seen["cut"] == [], (what, seen)
    for table in seen["tables"]:
        if table["content"] > table["client"] + 1:  # it must scroll sideways: then its scrollbar shows
            assert table["sideways_bar"] > 0, (what, table)
    return seen


@contextlib.contextmanager
def _browser(tmp_path):
    """A dashboard on the small demo and Chromium with its scrollbars shown."""
    from playwright.sync_api import sync_playwright

    web.SHOTS.mkdir(parents=True, exist_ok=True)
    with web.streamlit_server(web.served_env(tmp_path), tmp_path / "streamlit.log") as url, sync_playwright() as p:
        # Playwright hides scrollbars by default; an analyst's Chromium shows them, and they take room.
        browser = p.chromium.launch(
            executable_path=web.CHROMIUM, args=web.CHROMIUM_ARGS, ignore_default_args=["--hide-scrollbars"]
        )
        try:
            yield browser, url
        finally:
            browser.close()


def test_nothing_on_the_report_is_cut_at_1280_and_1024_px(tmp_path):
    with _browser(tmp_path) as (browser, url):
        # A first visit straight to /report on a fresh server is laid out by the app: navigation, wide column.
        page = _report(browser, url, "/report?per=month", 1280, "open")
        links = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]')
        assert links.count() >= 5, "the page ran without the app's navigation"
        seen = _nothing_cut(page, "first visit to /report")
        assert seen["column"] > 900 and seen["tables"][0]["content"] <= seen["tables"][0]["client"] + 1, seen
        web.screenshot(page, web.SHOTS / "widths_1_first_visit_report_month.png")
        page.context.close()

        for width in (1280, 1024):
            for sidebar in ("open", "collapsed"):
                # per day through the app's address, per week and month straight through the page's
                grains = (("day", "/"), ("week", "/report?per=week"), ("month", "/report?per=month"))
                for grain, path in grains if width == 1280 else (grains[0], grains[2]):
                    what = f"{width} px, sidebar {sidebar}, per {grain}"
                    page = _report(browser, url, path, width, sidebar)
                    seen = _nothing_cut(page, what)
                    # wide enough for the whole table: every name whole, nothing cut (1024 px with the sidebar
                    # collapsed is as wide as 1280 px with it open)
                    if width == 1280 or sidebar == "collapsed":
                        assert all(t["content"] <= t["client"] + 1 for t in seen["tables"]), (what, seen)
                        _table_whole(page, what, REPORT_TEXT_COLUMNS)
                    web.screenshot(page, web.SHOTS / f"widths_{width}_{sidebar}_{grain}.png")
                    page.context.close()

        # The narrowest: three long channel names in the filter, then Download database's second step.
        page = _report(browser, url, "/", 1024, "open")
        for channel in LONG_CHANNELS:
            _pick(page, channel)
        chips = page.locator('[data-testid="stMultiSelect"]').first.locator('[aria-label^="Remove "]')
        assert chips.count() == 3
        button = page.get_by_role("button", name="Download database")
        button.scroll_into_view_if_needed()
        button.click()
        page.get_by_role("button", name="Save attribution-enriched.db").wait_for(timeout=60_000)
        web.wait_idle(page)
        _nothing_cut(page, "1024 px, three channels, database ready")
        web.screenshot(page, web.SHOTS / "widths_1024_open_three_channels_database_ready.png")
        page.context.close()


def test_nothing_on_the_other_pages_is_cut_with_the_sidebar_open(tmp_path):
    with _browser(tmp_path) as (browser, url):
        # The other pages with a table, tiles or long labels, with the sidebar open. At 1024 px the Data
        # page's tiles read "450,…", the Pipeline's checkboxes "Recompute every stage, even …", the
        # Journeys charts' titles ran past their half of the page; at 1280 px the Journeys explain table
        # scrolled 816 px of columns sideways in 808 (the page's own scrollbar took 10 px); at 1024 px the
        # Data page's channels table scrolled 580 px of columns sideways in 552.
        pages = ((1280, "/journeys"), (1024, "/journeys"), (1024, "/data"), (1024, "/pipeline"), (1024, "/compare"))
        for width, path in pages:
            what = f"{width} px, sidebar open, {path}"
            wait_for = {
                "/journeys": web.CHARTS,
                "/pipeline": '[data-testid="stCheckbox"]',
                "/compare": '[class*="st-key-shift_card_"]',
            }
            page = _report(browser, url, path, width, "open", wait_for.get(path, '[data-testid="stDataFrame"]'))
            seen = _nothing_cut(page, what)
            if width == 1280 or path == "/data":
                assert all(t["content"] <= t["client"] + 1 for t in seen["tables"]), (what, seen)
            if path == "/data":
                _table_whole(page, what)
            if path == "/compare":  # each card's range on one line, inside its card
                ranges = page.evaluate(SHIFT_RANGES)
                assert len(ranges) == 3 and all(r["lines"] == 1 and r["inside"] for r in ranges), (what, ranges)
            web.screenshot(page, web.SHOTS / f"widths_{width}_open_{path.strip('/')}.png")
            page.context.close()


# The trend chart's layout read off its canvas: its width, the plot's left edge and top (its horizontal
# grid lines, #E6E9EF), and the legend's lines (rows above the plot holding a channel's colour: the rows of
# colourful pixels, grouped where they touch).
TREND_LAYOUT = """(e) => {
  const c = e.querySelector('canvas'), r = e.getBoundingClientRect(), s = c.width / r.width;
  const ctx = c.getContext('2d'), grid = [], legend = [];
  for (let y = 0; y < c.height; y++) {
    const d = ctx.getImageData(0, y, c.width, 1).data;
    let lo = -1, hi = -1, colourful = 0;
    for (let x = 0; x < c.width; x++) {
      const [R, G, B] = [d[4 * x], d[4 * x + 1], d[4 * x + 2]];
      if (Math.abs(R - 0xE6) < 3 && Math.abs(G - 0xE9) < 3 && Math.abs(B - 0xEF) < 3) { if (lo < 0) lo = x; hi = x; }
      if (Math.max(R, G, B) - Math.min(R, G, B) > 40) colourful++;
    }
    if (hi - lo > c.width / 3) grid.push({y: y / s, left: lo / s});
    legend.push(colourful > 0);
  }
  const top = grid.length ? grid[0].y : 0, lines = [];
  for (let y = 0; y < top * s - 2; y++)
    if (legend[y] && !legend[y - 1]) lines.push(y / s);
  return {width: r.width, plot_top: top, plot_left: grid.length ? grid[0].left : null, legend_lines: lines};
}"""


def test_the_trend_is_as_wide_as_its_legend_and_band_labels_assume(tmp_path):
    """report_echarts sizes the trend's legend (lines, the chart's height, where the plot starts) and its
    band labels for the narrowest trend the Report draws: 1024 px with the sidebar open. It took that to be
    554 px (a 300 px sidebar's) while the sidebar is 256 px wide: the chart is 598 px there. Measured here
    with the browser's scrollbars shown; wider elsewhere; the legend takes the lines it counts, above the plot."""
    from pipeline import report_echarts as ech
    from pipeline.labels import text_px

    with _browser(tmp_path) as (browser, url):
        seen = {}
        for width, sidebar in ((1024, "open"), (1024, "collapsed"), (1280, "open")):
            page = _report(browser, url, "/", width, sidebar)
            web.wait_charts(page, 4)
            seen[(width, sidebar)] = page.locator(web.CHARTS).nth(3).evaluate(TREND_LAYOUT)
            if (width, sidebar) == (1024, "open"):
                picked = page.locator('[data-testid="stMultiSelect"]').nth(1).locator('[aria-label^="Remove "]')
                names = [r.get_attribute("aria-label").removeprefix("Remove ") for r in picked.all()]
                web.screenshot(page, web.SHOTS / "widths_1024_open_trend.png")
            page.context.close()
    narrow = seen[(1024, "open")]
    assert narrow["width"] == ech.LEGEND_ROOM_PX + ech.LEGEND_PADDING_PX, seen  # it was 540 + 14 = 554
    assert narrow["width"] == ech.TREND_NARROWEST_PX, seen
    assert all(s["width"] > narrow["width"] for s in seen.values() if s is not narrow), seen
    # the plot there: the chart less its value axis (read off its grid lines) and the grid's 24 px on the right
    assert narrow["width"] - narrow["plot_left"] - 24 == ech.PLOT_ROOM_PX, narrow
    # the legend of the channels in the trend takes the lines counted for that width, all above the plot
    assert len(names) == 5 and sum(ech.LEGEND_ITEM_PX + text_px(n) * 13 / 14 for n in names) > ech.LEGEND_ROOM_PX
    assert len(narrow["legend_lines"]) == ech.legend_lines(names) == 2, (names, narrow)
    assert len(seen[(1280, "open")]["legend_lines"]) == 1, seen
