"""Run → report (issue 16, Speed): pressing Run on the Pipeline page until the Report is drawn.

Two measures, each of this tree beside another tree of the code (``--main``, e.g. an export of the
``main`` branch: ``git archive main | tar -x -C /tmp/main``), interleaved round by round so that both
see the same machine (run it under ``cpu-bench`` on a shared machine):

- ``--library``: the library part without a browser, in a fresh process per tree and round, on the
  built-in demo (its cache built once per code version): a new session's workspace on the demo, then
  ``Workspace.run`` of a forced run ("Recompute every stage": journeys → attribution with the offline
  IHC model → report, on the session's copy) and of a run with another lookback (journeys, attribution
  and report redone; validation reused). A tree with ``Workspace.prepare_copy`` makes its spare copy
  first, as the Pipeline page does when it opens (the analyst's pause before pressing Run is longer);
- ``--browser``: headless Chromium on a dashboard server per tree: a new browser session opens the
  Pipeline page, ticks "Recompute every stage", clicks Run until the summary shows, clicks "Open the
  report" until the report is drawn (``bench_dashboard.REPORT_DRAWN``); then the same with the lookback
  set to 30 days instead of the forced run.

Each prints a table: best and median seconds per tree, and this tree's median over the other's.

    python bench/bench_run_report.py --library --main /tmp/main --repeat 7
    python bench/bench_run_report.py --browser --main /tmp/main --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# One round of the library measure, in a fresh process whose PYTHONPATH is the tree measured.
LIBRARY_ROUND = """
import json, shutil, sys, tempfile, time
from pathlib import Path
from pipeline.runner import RunOptions
from pipeline.window import Window
from pipeline.workspace import Workspace, cached_demo, demo_size_from_env
demo = cached_demo(demo_size_from_env())
out = {}
base = Path(tempfile.mkdtemp(prefix="bench-run-report-"))
ws = Workspace.create(base)
ws.use_demo(demo)
def spare():
    if hasattr(ws, "prepare_copy"):  # the page makes it when it opens / after a run
        thread = ws.prepare_copy()
        if thread is not None:
            thread.join()
for name, options in (("forced run", RunOptions(force=True)), ("lookback 30 run", RunOptions(Window(lookback_days=30)))):
    spare()
    t = time.perf_counter()
    ws.run(options)
    out[name] = time.perf_counter() - t
ws.close()
shutil.rmtree(base, ignore_errors=True)
print(json.dumps(out))
"""


def trees(args) -> dict[str, Path]:
    found = {"this": ROOT}
    if args.main:
        found["main"] = Path(args.main).resolve()
    return found


def table(results: dict[str, dict[str, list[float]]], title: str) -> None:
    print(f"\n{title}")
    print(f"{'measure':<34} {'tree':<6} {'best s':>7} {'median s':>9} {'ratio':>7}")
    for measure, by_tree in results.items():
        base = statistics.median(by_tree["main"]) if by_tree.get("main") else None
        for tree, values in by_tree.items():
            med = statistics.median(values)
            ratio = f"{med / base:7.2f}" if base else ""
            print(f"{measure:<34} {tree:<6} {min(values):7.2f} {med:9.2f} {ratio}")


def library(args) -> None:
    cache = Path(args.cache or tempfile.mkdtemp(prefix="bench-run-report-cache-"))
    results: dict[str, dict[str, list[float]]] = {}
    for round_ in range(args.repeat + 1):  # the first round builds each tree's demo: not counted
        for tree, path in trees(args).items():
            env = {**os.environ, "PYTHONPATH": str(path), "ATTRIBUTION_CACHE_DIR": str(cache)}
            env["OPENBLAS_NUM_THREADS"] = "1"
            done = subprocess.run(
                [sys.executable, "-c", LIBRARY_ROUND], env=env, cwd=path, capture_output=True, text=True, check=True
            )
            if round_:
                for measure, seconds in json.loads(done.stdout.strip().splitlines()[-1]).items():
                    results.setdefault(measure, {}).setdefault(tree, []).append(seconds)
    if not args.cache:
        shutil.rmtree(cache, ignore_errors=True)
    table(results, f"library: Workspace.run on the demo, {args.repeat} rounds (copy included)")


def browser(args) -> None:
    import contextlib

    from bench.bench_dashboard import REPORT_DRAWN, SUMMARY_SHOWN, until
    from tests.browser_support import VIEWPORT, chromium, goto_page, missing_browser, streamlit_server, wait_idle

    reason = missing_browser()
    if reason:
        raise SystemExit(f"cannot run: {reason}")
    work = Path(tempfile.mkdtemp(prefix="bench-run-report-"))
    cache = Path(args.cache or work / "cache")
    results: dict[str, dict[str, list[float]]] = {}
    with contextlib.ExitStack() as stack:
        urls = {}
        for tree, path in trees(args).items():
            env = {"ATTRIBUTION_CACHE_DIR": str(cache), "ATTRIBUTION_WORKSPACE_DIR": str(work / tree / "ws")}
            env["ATTRIBUTION_DASHBOARD_TIMING"] = "1"  # the server logs each script run (--timeline)
            (work / tree).mkdir(parents=True, exist_ok=True)
            urls[tree] = stack.enter_context(
                streamlit_server(env, work / tree / "streamlit.log", 300, app=path / "app.py", cwd=path)
            )
        browser_ = stack.enter_context(chromium())
        for url in urls.values():  # builds the demo cache and warms the server (imports)
            page = browser_.new_page(viewport=VIEWPORT)
            page.goto(url)
            wait_idle(page, 300)
            page.close()

        def one(page, tree: str, measure: str) -> None:
            wait_idle(page)
            page.wait_for_timeout(1000)  # the analyst's pause before pressing Run
            log = work / tree / "streamlit.log"
            seen = len(log.read_text().splitlines())
            clicked = time.time()
            page.get_by_role("button", name="Run pipeline").click()
            page.wait_for_selector('[data-testid="stProgress"]', timeout=60_000)  # (the last summary goes)
            until(page, SUMMARY_SHOWN)
            run_s = time.time() - clicked
            page.get_by_role("link", name="Open the report").click()
            draw_s = until(page, REPORT_DRAWN)
            if args.timeline:
                print(f"\n{tree} {measure}: summary at {run_s:.2f} s, report drawn at {run_s + draw_s:.2f} s")
                for line in log.read_text().splitlines()[seen:]:
                    if "epoch=" in line:
                        print(f"  {float(line.rsplit('epoch=', 1)[1]) - clicked:6.2f} s  {line.split(' epoch=')[0]}")
                    elif line.startswith("dashboard-timing"):
                        print(f"           {line}")
            for name, value in (
                (f"{measure}: Run → summary", run_s),
                (f"{measure}: Run → report drawn", run_s + draw_s),
            ):
                results.setdefault(name, {}).setdefault(tree, []).append(value)
            wait_idle(page)

        for _ in range(args.repeat):
            for tree, url in urls.items():
                context = browser_.new_context(viewport=VIEWPORT)
                page = context.new_page()
                page.goto(url)
                wait_idle(page, 120)
                goto_page(page, "Pipeline")
                page.get_by_text("Recompute every stage, even if up to date").click()
                one(page, tree, "forced")
                goto_page(page, "Pipeline")
                if page.get_by_role("checkbox", name="Recompute every stage, even if up to date").is_checked():
                    page.get_by_text("Recompute every stage, even if up to date").click()
                    wait_idle(page)
                box = page.get_by_label("Lookback (days, 0 = no limit)", exact=True).and_(
                    page.get_by_test_id("stNumberInputField")
                )
                box.fill("30")
                box.press("Enter")
                one(page, tree, "lookback 30")
                context.close()
    shutil.rmtree(work, ignore_errors=True)
    table(results, f"browser: headless Chromium, demo database, {args.repeat} rounds")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--library", action="store_true", help="the library part, without a browser")
    ap.add_argument("--browser", action="store_true", help="Run click → report drawn in Chromium")
    ap.add_argument("--main", default=None, help="another tree of the code to compare with (e.g. main's)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--timeline", action="store_true", help="--browser: the server's script runs after each click")
    ap.add_argument("--cache", default=None, help="demo cache folder (default: a new temporary one)")
    args = ap.parse_args()
    if not (args.library or args.browser):
        ap.error("pick --library and/or --browser")
    if args.library:
        library(args)
    if args.browser:
        browser(args)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
