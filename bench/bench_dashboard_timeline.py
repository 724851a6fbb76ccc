"""Where a new browser session's seconds go before the Report's KPI tiles show, beside the same moments
of a bare Streamlit app (a title and five st.metric tiles, same server flags and theme): Streamlit's own
floor on this machine.

Each repetition waits for the server to be idle (its process used no CPU for 0.5 s: the previous
visit's script run, which goes on after its tab closed, would otherwise slow the next visit's first
messages), then opens the app in a fresh browser context (nothing cached) and records, in the page's
own clock (ms from navigation start): the main bundle parsed (DOMContentLoaded), the websocket opened,
the first and the last message of the first script run, the KPI tiles shown (five st.metric holding a
digit) and, for the dashboard, the four charts drawn. It also counts the JavaScript the page fetched:
every Streamlit element type is a lazily loaded chunk fetched when its first element arrives (Plotly's
is 4.7 MB), and the tiles wait for their chunk while the others load and evaluate.

    python bench/bench_dashboard_timeline.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser_support import (  # noqa: E402
    DRAWN_CHARTS,
    VIEWPORT,
    chromium,
    missing_browser,
    streamlit_server,
    wait_idle_server,
)

# Runs in the page before its own scripts (``probe``, shared with bench_first_visit and the spike):
# time-stamps websocket messages.
WS_PROBE = r"""
window.__t = {ws: [], marks: {}};
const Native = window.WebSocket;
function Probed(...args) {
  const w = new Native(...args);
  w.addEventListener('open', () => { window.__t.marks.wsOpen = performance.now(); });
  w.addEventListener('message', () => window.__t.ws.push(performance.now()));
  return w;
}
Probed.prototype = Native.prototype;
for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Probed[k] = Native[k];
window.WebSocket = Probed;
"""
# Every animation frame, the first moment each condition holds goes into window.__t.marks.
LOOK = r"""
function look() {
  for (const [k, f] of Object.entries(conditions)) {
    if (!(k in window.__t.marks)) { try { if (f()) window.__t.marks[k] = performance.now(); } catch (e) {} }
  }
  requestAnimationFrame(look);
}
requestAnimationFrame(look);
"""
# The five KPI tiles hold their figures (not the loading frame's "…").
TILES_SHOWN = (
    "[...document.querySelectorAll('[data-testid=\"stMetricValue\"]')]"
    ".filter(v => /[0-9]/.test(v.textContent)).length >= 5"
)
# The Report's four charts drawn and the run over.
CHARTS_DRAWN = f"({DRAWN_CHARTS})() >= 4 && !document.querySelector('[data-testid=\"stStatusWidget\"]')"


def probe(conditions: dict[str, str]) -> str:
    """The page's init script: ``WS_PROBE`` and the first moment each of ``conditions`` (name → a JS
    expression) holds, checked every animation frame."""
    listed = "".join(f"  {name}: () => {expression},\n" for name, expression in conditions.items())
    return WS_PROBE + "const conditions = {\n" + listed + "};" + LOOK


PROBE = probe({"tiles": TILES_SHOWN, "charts": CHARTS_DRAWN})

BARE_APP = """import streamlit as st

st.set_page_config(page_title="bare", layout="wide")
st.title("Channel report")
for col, label in zip(st.columns(5), ["Cost", "Conversions", "Revenue", "CPO", "ROAS"]):
    col.metric(label, "€1,234", border=True)
"""

ROWS = [
    ("main bundle parsed (DOMContentLoaded)", "dcl"),
    ("websocket open", "wsOpen"),
    ("first message of the script run", "firstMsg"),
    ("last message of the first run", "lastMsg"),
    ("KPI tiles shown", "tiles"),
    ("charts drawn", "charts"),
]


def one_visit(browser, url: str, want_charts: bool) -> dict:
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.add_init_script(PROBE)
    page = ctx.new_page()
    page.goto(url, wait_until="commit")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        marks = page.evaluate("window.__t && window.__t.marks") or {}
        if "tiles" in marks and ("charts" in marks or not want_charts):
            break
        page.wait_for_timeout(50)
    page.wait_for_timeout(300)  # the run's last messages
    t = page.evaluate("window.__t")
    nav = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
    js = page.evaluate(
        "performance.getEntriesByType('resource').filter(r => r.name.endsWith('.js')).map(r => r.decodedBodySize)"
    )
    ctx.close()
    marks = dict(t["marks"], dcl=nav)
    if t["ws"]:
        marks["firstMsg"], marks["lastMsg"] = t["ws"][0], t["ws"][-1]
    marks["js_files"], marks["js_mb"] = len(js), sum(js) / 1e6
    return marks


def measure(app_dir: Path, env: dict, log: Path, repeat: int, want_charts: bool) -> list[dict]:
    server: list = []
    with (
        streamlit_server(env, log, app=app_dir / "app.py", cwd=app_dir, started=server.append) as url,
        chromium() as browser,
    ):
        warm = browser.new_page(viewport=VIEWPORT)  # the server's first run imports the libraries
        warm.goto(url)
        warm.wait_for_timeout(8000)
        warm.close()
        runs = []
        for _ in range(repeat):
            waited = wait_idle_server(server[0].pid)
            runs.append(dict(one_visit(browser, url, want_charts), idle_wait=waited * 1000))
        return runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", default=None, help="demo cache folder (default: .work/cache)")
    args = ap.parse_args()
    reason = missing_browser()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    from pipeline.workspace import cached_demo, default_cache_dir, demo_size_from_env

    cache = Path(args.cache or default_cache_dir()).resolve()
    cached_demo(demo_size_from_env(), cache)  # built before timing
    work = Path(tempfile.mkdtemp(prefix="bench-timeline-"))
    bare = work / "bare"
    (bare / ".streamlit").mkdir(parents=True)
    shutil.copy(ROOT / ".streamlit" / "config.toml", bare / ".streamlit" / "config.toml")
    (bare / "app.py").write_text(BARE_APP)
    env = {"ATTRIBUTION_CACHE_DIR": str(cache), "ATTRIBUTION_WORKSPACE_DIR": str(work / "workspaces")}
    results = {
        "dashboard": measure(ROOT, env, work / "dashboard.log", args.repeat, True),
        "bare app": measure(bare, env, work / "bare.log", args.repeat, False),
    }
    print(
        f"\nnew browser session, ms from navigation start, best / median of {args.repeat}; headless Chromium 1280×800"
    )
    print(f"{'moment':<40} {'dashboard':>15} {'bare st.metric app':>20}")
    for label, key in ROWS:
        cells = []
        for runs in results.values():
            values = [r[key] for r in runs if key in r]
            cells.append(f"{min(values):6.0f} / {statistics.median(values):5.0f}" if values else "—")
        print(f"{label:<40} {cells[0]:>15} {cells[1]:>20}")
    for name, runs in results.items():
        waits = statistics.median(r["idle_wait"] for r in runs)
        print(
            f"{name}: {runs[0]['js_files']} JavaScript files, {runs[0]['js_mb']:.1f} MB fetched; "
            f"the server went idle {waits:.0f} ms (median) after the previous visit"
        )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
