"""Two (or more) copies of the app served side by side, fresh browser contexts visiting them in turn
(ABBA order) in one run: how a change to the first visit moves the KPI tiles and the charts when the
machine's load varies from one minute to the next. Per copy, every visit's moments (ms from navigation,
``bench_first_visit.py``'s in-page probe) and how many visits showed the tiles before the charts' chunk
(ECharts; Plotly before) had arrived (when it had arrived first, the tiles came with the charts).

    git archive main | tar -x -C /tmp/ab/main    # a copy per variant, each with its .streamlit/
    python bench/bench_first_visit_ab.py --visits 6 /tmp/ab/main /tmp/ab/branch
    python bench/bench_first_visit_ab.py --env 0:PYTHONPATH=/tmp/no-uvloop /tmp/ab/main /tmp/ab/branch

``--env N:KEY=VALUE`` sets a variable for the N-th copy's server alone (0-based), e.g. a PYTHONPATH
whose ``uvloop`` raises ModuleNotFoundError to serve a copy without it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_first_visit as visit  # noqa: E402

from tests.browser_support import (  # noqa: E402
    VIEWPORT,
    chromium,
    missing_browser,
    streamlit_server,
    wait_idle,
    wait_idle_server,
)

MOMENTS = [
    ("dcl", "bundle parsed"),
    ("firstMsg", "first message"),
    ("title", "title painted"),
    ("metricJs", "Metric chunk in"),
    ("chartJs", "chart chunk in"),
    ("runEnd", "server run end"),
    ("tiles", "KPI tiles"),
    ("charts", "charts drawn"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("apps", nargs="+", help="folders holding a copy of the app (app.py, pages/, .streamlit/)")
    ap.add_argument("--visits", type=int, default=6, help="fresh visits per copy")
    ap.add_argument("--cache", default=None, help="demo cache folder (default: .work/cache)")
    ap.add_argument("--env", action="append", default=[], help="N:KEY=VALUE, for the N-th copy's server only")
    args = ap.parse_args()
    own_env: dict[int, dict[str, str]] = {}
    for item in args.env:
        index, _, assignment = item.partition(":")
        key, _, value = assignment.partition("=")
        own_env.setdefault(int(index), {})[key] = value
    reason = missing_browser()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    from pipeline.workspace import cached_demo, default_cache_dir, demo_size_from_env

    apps = [Path(a).resolve() for a in args.apps]
    work = Path(tempfile.mkdtemp(prefix="bench-first-visit-ab-"))
    env = {
        "ATTRIBUTION_CACHE_DIR": str(Path(args.cache or default_cache_dir()).resolve()),
        "ATTRIBUTION_DEMO_SHORT_IDS": "0",
        "ATTRIBUTION_DASHBOARD_TIMING": "1",
    }
    cached_demo(demo_size_from_env({**os.environ, **env}), Path(env["ATTRIBUTION_CACHE_DIR"]))
    results: dict[str, list[dict]] = {str(a): [] for a in apps}
    with contextlib.ExitStack() as stack:
        served = {}
        for i, app in enumerate(apps):
            procs: list = []
            log = work / f"app{i}.log"
            app_env = dict(env, ATTRIBUTION_WORKSPACE_DIR=str(work / f"workspaces{i}"), **own_env.get(i, {}))
            url = stack.enter_context(streamlit_server(app_env, log, started=procs.append, app=app / "app.py", cwd=app))
            sampler = visit.Sampler(procs[0].pid)
            served[app] = (url, log, sampler)
        browser = stack.enter_context(chromium())
        for url, _, _ in served.values():  # each server's first run imports the libraries
            warm = browser.new_page(viewport=VIEWPORT)
            warm.goto(url)
            wait_idle(warm, 300)
            warm.close()
        for n in range(args.visits):
            for app in apps if n % 2 == 0 else apps[::-1]:
                url, log, sampler = served[app]
                for _, _, each in served.values():  # every server's previous visit has finished its runs
                    wait_idle_server(each.pid)
                ctx, page, marks, _, _ = visit.fresh_visit(browser, url, log, sampler)
                results[str(app)].append(marks)
                wait_idle(page)
                ctx.close()
    print(f"\nfresh browser contexts, alternating; ms from navigation start; {args.visits} visits per copy")
    for app, visits in results.items():
        print(f"== {app}")
        for key, label in MOMENTS:
            values = [v.get(key, float("nan")) for v in visits]
            finite = [x for x in values if x == x]
            summary = f"best {min(finite):6.0f}  median {statistics.median(finite):6.0f}" if finite else ""
            print(f"  {label:<16}" + "".join(f"{x:7.0f}" for x in values) + f"   {summary}")
        early = sum(1 for v in visits if v.get("tiles", 1e9) < v.get("chartJs", 0))
        print(f"  tiles shown before the charts' chunk arrived: {early} of {len(visits)}")
        print("  CPU s nav → tiles (server browser bench other): " + " | ".join(v["cpu_to_tiles"] for v in visits))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
