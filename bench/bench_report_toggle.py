"""A click on the Report's "Logarithmic axes" toggle, in headless Chromium on the demo database: how long
until the last websocket message of its rerun arrives (ms from the click, on the page's own clock), how
many messages and bytes it took, and the wall time until the page is idle again (polled every 25 ms).

The toggle, on and off in turn, ``--repeat`` times per tree; with ``--main`` another tree of the code is
served beside this one and measured in turn (one toggle of each, then the next), best and median.

    python bench/bench_report_toggle.py --repeat 8 --main /work/main
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_dashboard import IDLE, REPORT_DRAWN, build_demo, until  # noqa: E402
from bench.trace_filter_change import PROBE  # noqa: E402
from tests.browser_support import VIEWPORT, chromium, streamlit_server, wait_idle  # noqa: E402


def quiet_after(page, since: float, quiet: float = 0.5, timeout: float = 60.0) -> list:
    """The websocket messages after ``since`` (page clock), once none came for ``quiet`` seconds and the
    page is idle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.wait_for_timeout(100)
        got = page.evaluate(f"() => [window.__ws.filter(m => m[0] >= {since}), performance.now(), {IDLE}]")
        msgs, now, idle = got
        if msgs and idle and now - msgs[-1][0] > quiet * 1000:
            return msgs
    raise TimeoutError("the toggle's rerun did not end")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=8)
    ap.add_argument("--main", default=None, help="another tree of the code, measured in turn")
    ap.add_argument("--cache", default=None, help="demo cache folder (default: .work/cache)")
    args = ap.parse_args()
    from pipeline.workspace import default_cache_dir

    env = {
        "ATTRIBUTION_CACHE_DIR": str(Path(args.cache or default_cache_dir()).resolve()),
        "ATTRIBUTION_DEMO_SHORT_IDS": "0",
    }
    trees = {"this": ROOT} | ({"main": Path(args.main).resolve()} if args.main else {})
    for path in trees.values():
        build_demo(path, env)
    work = Path(tempfile.mkdtemp(prefix="bench-toggle-"))
    last = {t: [] for t in trees}
    wall = {t: [] for t in trees}
    count = {t: [] for t in trees}
    size = {t: [] for t in trees}
    with contextlib.ExitStack() as stack:
        browser = stack.enter_context(chromium())
        pages = {}
        for tree, path in trees.items():
            (work / tree).mkdir()
            tree_env = {**env, "ATTRIBUTION_WORKSPACE_DIR": str(work / tree / "workspaces")}
            url = stack.enter_context(
                streamlit_server(tree_env, work / tree / "streamlit.log", app=path / "app.py", cwd=path)
            )
            context = browser.new_context(viewport=VIEWPORT)
            context.add_init_script(PROBE)
            page = context.new_page()
            page.goto(url)
            until(page, REPORT_DRAWN)
            wait_idle(page)
            pages[tree] = page
        for _ in range(args.repeat):
            for tree, page in pages.items():
                toggle = page.get_by_text("Logarithmic axes for CPO and ROAS")
                t_click = page.evaluate("() => performance.now()")
                start = time.perf_counter()
                toggle.click()
                until(page, f"() => [...window.__ws].some(m => m[0] >= {t_click}) && {IDLE}")
                wall[tree].append(time.perf_counter() - start)
                msgs = quiet_after(page, t_click)
                last[tree].append((msgs[-1][0] - t_click) / 1000)
                count[tree].append(len(msgs))
                size[tree].append(sum(n for _, n in msgs))
    print(f"\nReport log-axes toggle, {args.repeat} clicks per tree, headless Chromium 1280×800 (best / median)")
    for tree in trees:
        print(
            f"{tree:>5}: last message {min(last[tree]):.3f} / {statistics.median(last[tree]):.3f} s, "
            f"idle {min(wall[tree]):.3f} / {statistics.median(wall[tree]):.3f} s, "
            f"{statistics.median(count[tree]):.0f} messages, {statistics.median(size[tree]) / 1000:.1f} kB"
        )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
