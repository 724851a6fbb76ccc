"""Benchmark of the dashboard in a real browser (headless Debian Chromium via Playwright).

On the built-in demo database (default ≈450k sessions, 2,000 conversions) it measures, best and median
of N repetitions, in one browser session:

- ``open → frame with loading``, ``→ KPI tiles``, ``→ report drawn``: a new browser session (a fresh
  browser context: nothing in its cache) loading the app until the Report's frame shows (title and
  tiles, still saying "…"), until the tiles hold their values, and until its four charts are drawn
  (none saying "Loading…"). The demo cache is built before timing (the first row gives the cold build
  once, when the cache was empty), and one page load warms the server before the measures;
- ``returning: open → KPI tiles``, ``→ drawn``: the same for a returning analyst: a new tab (a new
  Streamlit session) in the browser context that has just opened the app, so Streamlit's element code
  (immutable, cached) comes from the browser's cache. Both are "a new browser session": the fresh
  context is a first visit, this one every later visit;
- ``click Run → summary``: on the Pipeline page with "Recompute every stage" ticked (a full run of
  journeys → attribution with the offline IHC model → report, on the session's copy), until the run's
  summary is shown; the server-side time the page reports is printed beside it;
- ``click Open report → drawn``: from the summary's link to the Report page drawn;
- ``click Run → report drawn``: the two above together (no human pause);
- ``filter change → redrawn``: picking one channel in the Report's filter until the table caption shows
  the filtered row count (target: well under a second); ``of which server script`` is the report
  fragment's own rerun time as the server logs it (the rest is the browser redrawing four ECharts
  charts and the table).

A moment is "drawn" when the browser first shows the expected elements and no 'running' indicator;
polling is every 25 ms.

    python bench/bench_dashboard.py              # default demo, 3 repetitions, both id shapes
    python bench/bench_dashboard.py --ids real   # the real data's 64/40-hex ids only (the demo's default)
    python bench/bench_dashboard.py --repeat 5 --sessions 45000 --conversions 200
"""

from __future__ import annotations

import argparse
import os
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
    goto_page,
    missing_browser,
    streamlit_server,
    wait_idle,
)

IDLE = """!document.querySelector('[data-testid="stStatusWidget"]')
          && !document.querySelector('[data-stale="true"]')"""
REPORT_DRAWN = f"""() => {{
    const h = [...document.querySelectorAll('h1')].some(h => h.textContent.includes('Channel report'));
    return h && ({DRAWN_CHARTS})() >= 4 && {IDLE};
}}"""
# The report's frame: its title and either the loading tiles or the real ones.
FRAME_SHOWN = """() => [...document.querySelectorAll('h1')].some(h => h.textContent.includes('Channel report'))
    && document.querySelectorAll('[data-testid="stMetric"]').length >= 5"""
# The KPI tiles with their values (not the loading frame's '…').
TILES_SHOWN = """() => [...document.querySelectorAll('[data-testid="stMetricValue"]')]
    .filter(v => /[0-9]/.test(v.textContent)).length >= 5"""


def until_each(page, conditions: dict, start: float, timeout: float = 300.0) -> dict:
    """Seconds from ``start`` until each JS condition of ``conditions`` first holds (polling every 25 ms)."""
    seen: dict = {}
    while len(seen) < len(conditions):
        if time.perf_counter() - start > timeout:
            raise TimeoutError(", ".join(k for k in conditions if k not in seen))
        for name, condition in conditions.items():
            if name not in seen and page.evaluate(condition):
                seen[name] = time.perf_counter() - start
        page.wait_for_timeout(25)
    return seen


SUMMARY_SHOWN = f"""() => [...document.querySelectorAll('[data-testid="stAlertContentSuccess"]')]
    .some(e => e.textContent.includes('Attributed')) && {IDLE}"""


def until(page, condition: str, timeout: float = 300.0) -> float:
    """Seconds until ``condition`` (JS) first holds, polling every 25 ms."""
    start = time.perf_counter()
    deadline = start + timeout
    while time.perf_counter() < deadline:
        if page.evaluate(condition):
            return time.perf_counter() - start
        page.wait_for_timeout(25)
    raise TimeoutError(condition)


def filtered_condition(total_rows: int) -> str:
    """The table caption shows a row count other than the unfiltered one, and the run is over."""
    return f"""() => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
        .some(e => / rows · /.test(e.textContent) && !e.textContent.startsWith('{total_rows:,} rows'))
        && {IDLE}"""


def server_runs(log: Path) -> list[float]:
    """Seconds of each page run the server logged (ATTRIBUTION_DASHBOARD_TIMING)."""
    return [
        float(line.rsplit("seconds=", 1)[1])
        for line in log.read_text().splitlines()
        if line.startswith("dashboard-timing ")
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=None, help="demo size (default: the built-in demo's)")
    ap.add_argument("--conversions", type=int, default=None)
    ap.add_argument("--cache", default=None, help="demo cache folder (default: .work/cache)")
    ap.add_argument("--ids", nargs="+", choices=["real", "short"], default=["real", "short"], help="id shapes")
    args = ap.parse_args()
    reason = missing_browser()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    for shape in args.ids:
        bench_shape(shape, args)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine)")
    return 0


def bench_shape(shape: str, args) -> None:
    """The measures on the demo with ids of ``shape`` (real: 64/40-hex; short: S0000000)."""
    from pipeline.workspace import cached_demo, default_cache_dir, demo_cache_path, demo_size_from_env

    env = {"ATTRIBUTION_CACHE_DIR": str(Path(args.cache or default_cache_dir()).resolve())}
    if args.sessions:
        env["ATTRIBUTION_DEMO_SESSIONS"] = str(args.sessions)
    if args.conversions:
        env["ATTRIBUTION_DEMO_CONVERSIONS"] = str(args.conversions)
    env["ATTRIBUTION_DEMO_SHORT_IDS"] = "1" if shape == "short" else "0"
    size = demo_size_from_env({**os.environ, **env})
    cold = None
    if not demo_cache_path(size, Path(env["ATTRIBUTION_CACHE_DIR"])).exists():
        t = time.perf_counter()
        cached_demo(size, Path(env["ATTRIBUTION_CACHE_DIR"]))
        cold = time.perf_counter() - t
    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    env["ATTRIBUTION_WORKSPACE_DIR"] = str(work / "workspaces")
    env["ATTRIBUTION_DASHBOARD_TIMING"] = "1"  # the server logs each page run's own time
    log = work / "streamlit.log"

    results: dict[str, list[float]] = {
        k: []
        for k in (
            "open → frame with loading",
            "open → KPI tiles",
            "open → report drawn",
            "returning: open → KPI tiles",
            "returning: open → drawn",
            "click Run → summary",
            "click Open report → drawn",
            "click Run → report drawn",
            "filter change → redrawn",
            "  of which server script",
        )
    }
    server_times: list[str] = []
    with streamlit_server(env, log) as url, chromium() as browser:
        warm = browser.new_page(viewport=VIEWPORT)  # first page load imports pandas/plotly in the server
        warm.goto(url)
        wait_idle(warm, 300)
        warm.close()
        for _ in range(args.repeat):
            context = browser.new_context(viewport=VIEWPORT)  # a new browser context: nothing cached in it
            page = context.new_page()
            start = time.perf_counter()
            page.goto(url, wait_until="commit")
            seen = until_each(page, {"frame": FRAME_SHOWN, "tiles": TILES_SHOWN, "drawn": REPORT_DRAWN}, start)
            results["open → frame with loading"].append(seen["frame"])
            results["open → KPI tiles"].append(seen["tiles"])
            results["open → report drawn"].append(seen["drawn"])
            wait_idle(page)

            # A returning analyst: a new tab of the same browser, which opened the app once (Streamlit's
            # element code is in its cache), is a new Streamlit session like any other.
            again = context.new_page()
            start = time.perf_counter()
            again.goto(url, wait_until="commit")
            seen = until_each(again, {"tiles": TILES_SHOWN, "drawn": REPORT_DRAWN}, start)
            results["returning: open → KPI tiles"].append(seen["tiles"])
            results["returning: open → drawn"].append(seen["drawn"])
            wait_idle(again)
            again.close()

            goto_page(page, "Pipeline")
            page.get_by_text("Recompute every stage, even if up to date").click()
            wait_idle(page)
            page.get_by_role("button", name="Run pipeline").click()
            run_s = until(page, SUMMARY_SHOWN)
            results["click Run → summary"].append(run_s)
            server_times.append(page.locator('[data-testid="stMetricValue"]').nth(3).inner_text())
            page.get_by_role("link", name="Open the report").click()
            draw_s = until(page, REPORT_DRAWN)
            results["click Open report → drawn"].append(draw_s)
            results["click Run → report drawn"].append(run_s + draw_s)
            wait_idle(page)

            total_rows = int(
                page.locator('[data-testid="stCaptionContainer"]', has_text=" rows · ")
                .first.inner_text()
                .split(" rows")[0]
                .replace(",", "")
            )
            box = page.locator('[data-testid="stMultiSelect"] input').first
            box.click()
            box.fill("Paid Search Brand")
            option = page.get_by_role("option", name="Paid Search Brand", exact=True)
            option.wait_for()
            before = len(server_runs(log))
            start = time.perf_counter()
            option.click()
            until(page, filtered_condition(total_rows))
            results["filter change → redrawn"].append(time.perf_counter() - start)
            results["  of which server script"].append(server_runs(log)[before])
            context.close()

    print(
        f"\ndashboard benchmark: demo of {size.sessions:,} sessions, {size.conversions:,} conversions, "
        f"{size.days} days, {shape} ids; {args.repeat} repetitions; headless Chromium 1280×800"
    )
    if cold is not None:
        print(f"(demo cache was empty: generating and attributing it once took {cold:.2f} s)")
    print(f"{'measure':<30} {'best s':>8} {'median s':>9}")
    for name, values in results.items():
        print(f"{name:<30} {min(values):8.2f} {statistics.median(values):9.2f}")
    print(f"run time reported by the page (server side, incl. the copy): {', '.join(server_times)}")


if __name__ == "__main__":
    raise SystemExit(main())
