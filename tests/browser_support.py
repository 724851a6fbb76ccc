"""Driving the dashboard in a real browser: a Streamlit server on a free local port and Debian's
Chromium through Playwright. Used by the end-to-end tests (``from tests import browser_support as web``:
one import for the whole kit) and the dashboard benchmark."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
# Where the browser tests save the screenshots a person looks at (CI keeps artifacts/).
SHOTS = Path(os.environ.get("DASHBOARD_SCREENSHOTS", ROOT / "artifacts" / "screenshots"))


def missing_browser() -> Optional[str]:
    """Why a browser test cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return None


def served_env(tmp_path: Path, sessions: int = 20_000, conversions: int = 400, **extra: str) -> dict:
    """The environment of a dashboard under test: its cache and workspaces in ``tmp_path``, a small demo
    database (seed 7) of ``sessions`` and ``conversions``, and ``extra`` variables."""
    return {
        "ATTRIBUTION_CACHE_DIR": str(tmp_path / "cache"),
        "ATTRIBUTION_WORKSPACE_DIR": str(tmp_path / "workspaces"),
        "ATTRIBUTION_DEMO_SESSIONS": str(sessions),
        "ATTRIBUTION_DEMO_CONVERSIONS": str(conversions),
        "ATTRIBUTION_DEMO_SEED": "7",
        **extra,
    }


def needs_browser():
    """The ``pytestmark`` of a module of real-browser tests: each is skipped, with ``missing_browser``'s
    reason, where Playwright or Chromium is missing."""
    import pytest

    reason = missing_browser()
    return pytest.mark.skipif(reason is not None, reason=f"browser test skipped: {reason}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle_server(pid: int, quiet: float = 0.5, timeout: float = 60.0) -> float:
    """Wait until the process ``pid`` (a dashboard server) has used no CPU for ``quiet`` seconds: a
    benchmark's new browser session then meets an idle server, as an analyst's first visit does, not
    one still finishing the previous visit's script run. Returns the seconds waited."""
    started = time.monotonic()
    last, since = cpu_seconds(pid), time.monotonic()
    while time.monotonic() - started < timeout:
        time.sleep(0.1)
        now = cpu_seconds(pid)
        if now > last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return time.monotonic() - started


@contextlib.contextmanager
def streamlit_server(
    env: dict,
    log_path: Path,
    timeout: float = 90.0,
    started=None,
    app: Optional[Path] = None,
    cwd: Optional[Path] = None,
) -> Iterator[str]:
    """``streamlit run app.py`` headless on a free 127.0.0.1 port; yields its base URL. ``started``
    (optional) is called with the server's ``subprocess.Popen`` once it answers. ``app``/``cwd``: another
    app and its folder (its .streamlit/config.toml) instead of the dashboard's."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app or ROOT / "app.py"),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=cwd or ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log_path}")
                try:
                    with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start within {timeout:.0f}s; see {log_path}")
                time.sleep(0.3)
            if started is not None:
                started(proc)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def wait_idle(page, timeout: float = 120.0, quiet: float = 0.8) -> None:
    """Wait until the Streamlit script run is over: the page has its title, and neither the 'running'
    status widget nor stale elements were seen for ``quiet`` seconds in a row (the widget appears
    only some time after a run starts, so one look is not enough)."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    calm_since = None
    while time.monotonic() < deadline:
        busy = page.evaluate(
            """() => !!document.querySelector('[data-testid="stStatusWidget"]')
                  || !!document.querySelector('[data-stale="true"]')
                  || !!document.querySelector('[data-testid="stSkeleton"]')"""
        )
        now = time.monotonic()
        if busy:
            calm_since = None
        elif calm_since is None:
            calm_since = now
        elif now - calm_since >= quiet:
            return
        page.wait_for_timeout(100)
    raise TimeoutError(f"the app was still running after {timeout:.0f}s")


def open_app(browser, url: str, **context):
    """A new browser session (its own context at ``VIEWPORT``; ``context``: more of its options, such as
    ``accept_downloads=True``) on ``url``, once the app's first script run is over (it may build the
    demo: up to 240 s)."""
    page = browser.new_context(viewport=VIEWPORT, **context).new_page()
    page.goto(url)
    wait_idle(page, 240)
    return page


HEADINGS = {"Report": "Channel report"}


def goto_page(page, title: str, timeout: float = 120.0) -> None:
    """Click a page in the sidebar navigation (same browser session, unlike loading a URL) and wait
    until it has been drawn."""
    page.locator('[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]', has_text=title).first.click()
    heading = HEADINGS.get(title, title)
    page.wait_for_function(
        f"() => [...document.querySelectorAll('h1')].some(h => h.textContent.includes({heading!r}))",
        timeout=timeout * 1000,
    )
    wait_idle(page, timeout)


def screenshot(page, path, full: bool = True) -> None:
    """A screenshot at the page's width; ``full``: as tall as the scrolled main area (Streamlit scrolls
    inside its main container, so the browser's own full-page capture would stop at the viewport)."""
    size = page.viewport_size
    if full:
        height = page.evaluate(
            """() => { const m = document.querySelector('[data-testid="stMain"]');
                       return Math.max(m ? m.scrollHeight : 0, document.body.scrollHeight); }"""
        )
        page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height) + 40)})
        page.wait_for_timeout(400)
    try:
        page.screenshot(path=str(path))
    finally:
        if full:
            page.set_viewport_size(size)
            page.wait_for_timeout(200)


def no_traceback(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, "a traceback is shown"


def text_of(page) -> str:
    """Every text of the page's main area."""
    return page.locator('[data-testid="stMain"]').inner_text()


# ---- the Report's charts (ECharts on a canvas) -------------------------------------------------------

CHARTS = '[data-testid="stEChartsChart"]'
# JavaScript: how many ECharts charts have drawn something on their canvas (a canvas that is not all white:
# the option's background is white, so a chart still waiting for its code or data counts as not drawn).
DRAWN_CHARTS = """() => [...document.querySelectorAll('[data-testid="stEChartsChart"]')].filter(e => {
    const c = e.querySelector('canvas');
    if (!c || !c.width || !c.height) return false;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4 * 53) if (d[i + 3] && (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200)) return true;
    return false;
  }).length"""


def wait_charts(page, count: int, timeout: float = 120.0) -> None:
    """Wait until ``count`` ECharts charts have drawn on their canvas."""
    page.wait_for_function(f"() => ({DRAWN_CHARTS})() >= {count}", timeout=timeout * 1000)


def chart_text(page, index: int) -> str:
    """Chart ``index``'s description for screen readers (its ``alt``: title, channels, values, axis): a
    canvas has no text of its own to read."""
    return page.locator(CHARTS).nth(index).get_attribute("aria-label") or ""


LOOK = """(e, colour) => { let inked = 0, n = 0, near = 0; const colours = new Set();
    const rgb = colour ? [1, 3, 5].map(i => parseInt(colour.slice(i, i + 2), 16)) : null;
    for (const c of e.querySelectorAll('canvas')) {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 4 * 3) { n++;
            if (!d[i + 3] || (d[i] >= 245 && d[i + 1] >= 245 && d[i + 2] >= 245)) continue;
            inked++; colours.add((d[i] >> 4) + ',' + (d[i + 1] >> 4) + ',' + (d[i + 2] >> 4));
            if (rgb && Math.abs(d[i] - rgb[0]) + Math.abs(d[i + 1] - rgb[1]) + Math.abs(d[i + 2] - rgb[2]) < 12) near++; } }
    const r = e.getBoundingClientRect();
    return {width: r.width, height: r.height, inked: inked / n, colours: colours.size, near: near / n}; }"""


def chart_look(page, index: int, colour: Optional[str] = None) -> dict:
    """What chart ``index``'s canvases show: its size (CSS px), the share of its pixels that are not
    white (``inked``), how many distinct colours it has, and the share near ``colour`` ('#475467')."""
    return page.locator(CHARTS).nth(index).evaluate(LOOK, colour)


def hover_chart(page, index: int, rows: int = 10, cols: int = 16) -> Optional[tuple[float, float]]:
    """Move the pointer over chart ``index`` (a grid of ``rows`` × ``cols`` spots, top to bottom) until its
    tooltip is drawn (the canvas gains ink: a tooltip box is about 2% of a chart); the spot, or None."""
    chart = page.locator(CHARTS).nth(index)
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.wait_for_timeout(150)
    before = chart_look(page, index)["inked"]
    for r in range(1, rows):
        for c in range(1, cols):
            spot = (box["x"] + box["width"] * c / cols, box["y"] + box["height"] * r / rows)
            page.mouse.move(*spot)
            page.wait_for_timeout(40)
            if chart_look(page, index)["inked"] > before + 0.008:
                page.wait_for_timeout(150)
                return spot
    return None
