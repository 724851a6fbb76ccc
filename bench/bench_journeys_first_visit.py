"""The Journeys page's first visit after a server restart (issue 16: ≈2 s of a bare title under load).

Each repetition restarts each tree's server (its demo cache kept, so nothing is rebuilt), opens
``/journeys`` in a fresh browser context and records, in seconds from the navigation's start: the title,
the first thing under it (a caption, a loading note), the first chart drawn, all three charts drawn
(Plotly's SVG or ECharts' canvas) and the explain table. Trees alternate within a repetition, so their
figures come from the same hold (run it under ``/work/bin/cpu-bench`` or alone on the machine).

    python bench/bench_journeys_first_visit.py --tree main=/path/to/base --tree branch=. --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, streamlit_server, wait_idle  # noqa: E402

# Every animation frame from the navigation on: the first moment each condition holds.
PROBE = r"""
window.__moments = {};
const drawn = () => {
  const svgs = [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot .main-svg')].length;
  const canvases = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stEChartsChart"] canvas')]
    .filter(c => c.width && c.height).length;
  const plotly = document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot').length;
  return plotly ? Math.min(plotly, svgs / 2) : canvases;
};
const conditions = {
  title: () => [...document.querySelectorAll('h1')].some(h => h.textContent.includes('Journeys')),
  under_title: () => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stCaptionContainer"]')]
      .some(c => c.offsetParent && c.textContent.trim()),
  first_chart: () => drawn() >= 1,
  charts: () => drawn() >= 3,
  table: () => !!document.querySelector('[data-testid="stMain"] [data-testid="stDataFrame"] canvas'),
};
const look = () => {
  for (const [name, holds] of Object.entries(conditions))
    if (!(name in window.__moments)) { try { if (holds()) window.__moments[name] = performance.now(); } catch (e) {} }
  if (Object.keys(window.__moments).length < Object.keys(conditions).length) requestAnimationFrame(look);
};
requestAnimationFrame(look);
"""
MOMENTS = ["title", "under_title", "first_chart", "charts", "table"]
PATH = "/journeys"  # bench_compare_first_visit.py: "/compare", with its own title and one chart


def visit(browser, url: str) -> dict:
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(PROBE)
    page = context.new_page()
    page.goto(url + PATH)
    page.wait_for_function(
        f"() => Object.keys(window.__moments || {{}}).length >= {len(MOMENTS)}", timeout=120_000, polling=100
    )
    moments = page.evaluate("() => window.__moments")
    wait_idle(page)
    context.close()
    return {k: moments[k] / 1000 for k in MOMENTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of a checkout")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    trees = dict(t.split("=", 1) for t in args.tree)
    from playwright.sync_api import sync_playwright

    seen: dict = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        envs = {
            name: {
                "ATTRIBUTION_CACHE_DIR": f"{tmp}/{name}/cache",
                "ATTRIBUTION_WORKSPACE_DIR": f"{tmp}/{name}/workspaces",
            }
            for name in trees
        }
        for name, path in trees.items():  # build each tree's demo once, untimed
            with streamlit_server(
                envs[name], Path(tmp) / f"{name}.log", cwd=Path(path), app=Path(path) / "app.py"
            ) as url:
                visit(browser, url)
        for rep in range(args.repeat):
            for name, path in trees.items():
                with streamlit_server(
                    envs[name], Path(tmp) / f"{name}.log", cwd=Path(path), app=Path(path) / "app.py"
                ) as url:
                    time.sleep(1.0)
                    got = visit(browser, url)
                seen[name].append(got)
                print(f"rep {rep + 1} {name:>8}: " + "  ".join(f"{k} {v:.2f}" for k, v in got.items()), flush=True)
        browser.close()
    print("best / median (s from navigation start)")
    for name, rows in seen.items():
        print(
            f"{name:>8}: "
            + "  ".join(
                f"{k} {min(r[k] for r in rows):.2f}/{statistics.median(r[k] for r in rows):.2f}" for k in MOMENTS
            )
        )


if __name__ == "__main__":
    main()
