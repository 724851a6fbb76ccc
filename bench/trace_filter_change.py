"""Where a Report filter change's time goes in the browser (and a click on Run → report), measured on
the demo database in headless Chromium with the Chrome DevTools Protocol.

After the bench's own sequence (Pipeline page, Recompute every stage, Run, Open the report), it picks
one channel in the Report's filter, as ``bench_dashboard.py`` does, and prints for each repetition:

- the moments, in ms from the click: the websocket's first and last message of the fragment's rerun
  (with the bytes received), the condition ``bench_dashboard.py`` waits for;
- the renderer main thread's time between the click and that moment, by kind (a Chrome trace: script,
  style and layout, paint, other), self times, plus the longest tasks;
- a sampled CPU profile of the same window by script (Plotly's chunk, Streamlit's main bundle, the
  data grid's, …) and its top functions by self time.

    python bench/trace_filter_change.py --repeat 2
    python bench/trace_filter_change.py --no-trace --tree /work/main-tree   # another tree's app, same probes
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_dashboard import (  # noqa: E402
    REPORT_DRAWN,
    SUMMARY_SHOWN,
    filtered_condition,
    rows_shown,
    server_runs,
    until,
)
from tests.browser_support import VIEWPORT, chromium, goto_page, streamlit_server, wait_idle  # noqa: E402

PROBE = r"""
window.__ws = [];
const Native = window.WebSocket;
function Probed(...args) {
  const w = new Native(...args);
  w.addEventListener('message', (e) => {
    const n = e.data && (e.data.byteLength !== undefined ? e.data.byteLength : (e.data.size || e.data.length || 0));
    window.__ws.push([performance.now(), n]);
  });
  return w;
}
Probed.prototype = Native.prototype;
for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Probed[k] = Native[k];
window.WebSocket = Probed;
"""

KINDS = {
    "script": {
        "FunctionCall",
        "EvaluateScript",
        "v8.compile",
        "V8.CompileCode",
        "TimerFire",
        "EventDispatch",
        "FireAnimationFrame",
        "RunMicrotasks",
        "v8.run",
        "V8.Execute",
        "v8.callFunction",
    },
    "style+layout": {"UpdateLayoutTree", "Layout", "RecalculateStyles", "UpdateLayerTree", "HitTest"},
    "paint": {"Paint", "PrePaint", "Layerize", "Commit", "CompositeLayers", "PaintImage", "RasterTask"},
    "gc": {
        "MinorGC",
        "MajorGC",
        "V8.GCScavenger",
        "V8.GCFinalizeMC",
        "BlinkGC.AtomicPhase",
        "V8.GC_SCAVENGER_SCAVENGE_PARALLEL",
    },
}


def kind_of(name: str) -> str:
    for kind, names in KINDS.items():
        if name in names:
            return kind
    return "other"


def main_thread_breakdown(events: list, t0_us: float, t1_us: float) -> tuple[dict, list]:
    """Self time (ms) by kind of the renderer main thread's complete events in [t0, t1], and its longest tasks."""
    threads = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"
    }
    counted = collections.Counter()
    top_names: list = []
    tasks = []
    for pid, tid in threads:
        evs = sorted(
            (
                e
                for e in events
                if e.get("pid") == pid
                and e.get("tid") == tid
                and e.get("ph") == "X"
                and "dur" in e
                and t0_us <= e["ts"] <= t1_us
            ),
            key=lambda e: (e["ts"], -e["dur"]),
        )
        stack: list = []  # [end, name, child time]
        selfs = collections.Counter()

        names = collections.Counter()

        def close(entry, selfs=selfs, names=names):
            selfs[kind_of(entry[1]) if entry[1] != "RunTask" else "other"] += entry[3] - entry[2]
            names[entry[1]] += entry[3] - entry[2]

        for e in evs:
            while stack and stack[-1][0] <= e["ts"]:
                close(stack.pop())
            if stack:
                stack[-1][2] += e["dur"]
            stack.append([e["ts"] + e["dur"], e["name"], 0.0, e["dur"]])
            if e["name"] == "RunTask" and e["dur"] > 30_000:
                tasks.append(((e["ts"] - t0_us) / 1000, e["dur"] / 1000))
        while stack:
            close(stack.pop())
        if sum(selfs.values()) > sum(counted.values()):
            counted = selfs
            top_names = names.most_common(8)
    return {k: v / 1000 for k, v in counted.items()} | {f"  {n}": v / 1000 for n, v in top_names}, tasks


def profile_breakdown(profile: dict) -> tuple[dict, list]:
    nodes = {n["id"]: n for n in profile["nodes"]}
    self_us = collections.Counter()
    deltas = profile.get("timeDeltas") or []
    for sample, dt in zip(profile.get("samples") or [], deltas[1:] + [0]):
        self_us[sample] += dt
    by_url = collections.Counter()
    by_fn = collections.Counter()
    for nid, us in self_us.items():
        cf = nodes[nid]["callFrame"]
        url = cf.get("url", "").rsplit("/", 1)[-1] or f"({cf.get('functionName') or 'native'})"
        by_url[url] += us / 1000
        by_fn[f"{cf.get('functionName') or '(anon)'} @ {url}"] += us / 1000
    return dict(by_url.most_common(8)), by_fn.most_common(14)


def pick_channel(page, log: Path, total_rows: int, trace: bool, cdp, browser) -> dict:
    box = page.locator('[data-testid="stMultiSelect"] input').first
    box.click()
    box.fill("Paid Search Brand")
    option = page.get_by_role("option", name="Paid Search Brand", exact=True)
    option.wait_for()
    page.wait_for_timeout(300)
    before = len(server_runs(log))
    page.evaluate("() => { window.__ws = []; }")
    if trace:
        browser.start_tracing(
            page=page, categories=["devtools.timeline", "disabled-by-default-devtools.timeline", "v8"]
        )
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": 250})
        t_profiled = page.evaluate("() => performance.now()")
        cdp.send("Profiler.start")
        page.wait_for_timeout(200)  # the profiler's start is a long task of its own: not in the window
    t_click = page.evaluate("() => performance.now()")
    start = time.perf_counter()
    option.click()
    until(page, filtered_condition(total_rows))
    wall = time.perf_counter() - start
    t_done = page.evaluate("() => performance.now()")
    out = {"wall": wall, "server": server_runs(log)[before]}
    ws = page.evaluate("() => window.__ws")
    ws = [(t - t_click, n) for t, n in ws if t >= t_click]
    out["ws"] = ws
    if trace:
        profile = cdp.send("Profiler.stop")["profile"]
        raw = browser.stop_tracing()
        events = json.loads(raw)["traceEvents"] if raw else []
        # the trace's clock: the click happened just before the first event we caused; use the profile's
        # start time (same monotonic clock as the trace) to place the window
        # the profile's start (same clock as the trace, µs) is just after t_profiled: place the click
        t0 = profile["startTime"] + (t_click - t_profiled) * 1000
        out["kinds"], out["tasks"] = main_thread_breakdown(events, t0, t0 + (t_done - t_click) * 1000 + 50_000)
        out["by_url"], out["by_fn"] = profile_breakdown(profile)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-trace", action="store_true", help="timings only (no trace/profiler overhead)")
    ap.add_argument("--run", action="store_true", help="also split click Run → report with websocket marks")
    ap.add_argument("--tree", default=None, help="serve another tree of the code (e.g. main's worktree)")
    args = ap.parse_args()
    from pipeline.workspace import default_cache_dir

    work = Path(tempfile.mkdtemp(prefix="trace-filter-"))
    env = {
        "ATTRIBUTION_CACHE_DIR": str(default_cache_dir().resolve()),
        "ATTRIBUTION_DEMO_SHORT_IDS": "0",
        "ATTRIBUTION_WORKSPACE_DIR": str(work / "workspaces"),
        "ATTRIBUTION_DASHBOARD_TIMING": "1",
    }
    log = work / "streamlit.log"
    tree = Path(args.tree).resolve() if args.tree else ROOT
    with streamlit_server(env, log, 300, app=tree / "app.py", cwd=tree) as url, chromium() as browser:
        warm = browser.new_page(viewport=VIEWPORT)
        warm.goto(url)
        wait_idle(warm, 300)
        warm.close()
        for rep in range(args.repeat):
            context = browser.new_context(viewport=VIEWPORT)
            context.add_init_script(PROBE)
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            page.goto(url)
            wait_idle(page)
            goto_page(page, "Pipeline")
            page.get_by_text("Recompute every stage, even if up to date").click()
            wait_idle(page)
            page.evaluate("() => { window.__ws = []; }")
            t_click = page.evaluate("() => performance.now()")
            before = len(server_runs(log))
            page.get_by_role("button", name="Run pipeline").click()
            run_s = until(page, SUMMARY_SHOWN)
            ws = [(t - t_click, n) for t, n in page.evaluate("() => window.__ws") if t >= t_click]
            runs = server_runs(log)[before:]
            page.evaluate("() => { window.__ws = []; }")
            t_open = page.evaluate("() => performance.now()")
            before = len(server_runs(log))
            page.get_by_role("link", name="Open the report").click()
            draw_s = until(page, REPORT_DRAWN)
            ws2 = [(t - t_open, n) for t, n in page.evaluate("() => window.__ws") if t >= t_open]
            runs2 = server_runs(log)[before:]
            if args.run:
                print(
                    f"\n[{rep}] click Run → summary {run_s:.2f} s; server runs {runs}; ws msgs {len(ws)}, "
                    f"first {ws[0][0]:.0f} ms, last {ws[-1][0]:.0f} ms, {sum(n for _, n in ws) / 1e3:.0f} kB"
                )
                big = [f"{t:.0f}ms:{n / 1e3:.0f}kB" for t, n in ws if n > 2000]
                print(f"     big messages: {big}")
                print(
                    f"[{rep}] Open report → drawn {draw_s:.2f} s; server runs {runs2}; ws msgs {len(ws2)}, "
                    f"first {ws2[0][0]:.0f} ms, last {ws2[-1][0]:.0f} ms, {sum(n for _, n in ws2) / 1e3:.0f} kB"
                )
            wait_idle(page)
            total_rows = rows_shown(page)
            r = pick_channel(page, log, total_rows, not args.no_trace, cdp, browser)
            ws = r["ws"]
            print(
                f"\n[{rep}] filter change {r['wall']:.3f} s (server fragment {r['server']:.3f} s); "
                f"ws msgs {len(ws)}: first {ws[0][0]:.0f} ms, last {ws[-1][0]:.0f} ms, "
                f"{sum(n for _, n in ws) / 1e3:.1f} kB; sizes {[round(n / 1e3, 1) for _, n in ws if n > 500]} kB"
            )
            if "kinds" in r:
                print("     main thread self ms: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["kinds"].items())))
                print("     long tasks (ms from click, ms): " + ", ".join(f"{a:.0f}:{d:.0f}" for a, d in r["tasks"]))
                print("     CPU profile by script (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in r["by_url"].items()))
                for fn, ms in r["by_fn"]:
                    print(f"        {ms:6.1f}  {fn}")
            context.close()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
