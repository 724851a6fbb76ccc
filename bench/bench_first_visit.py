"""A first visit's timeline, one row per repetition (issue 16: why does a fresh browser context show the
Report's frame at 1.9 s in one visit and 4.0 s in the next?).

Each repetition does what ``bench_dashboard.py`` does (a fresh browser context opens the app, a new tab of
it opens the app again, then a pipeline run, Open report and a filter change before the context is
closed), and records for the fresh visit, in ms from its navigation start:

- the page's own moments (an init script, every animation frame): the main bundle parsed, the websocket
  open, its first and last message of the first script run, the title painted, the frame's five tiles
  painted, the tiles holding values, the four charts drawn;
- the server's script runs (``app.py`` logs each run's start and end with ATTRIBUTION_DASHBOARD_TIMING=1),
  set on the page's clock through the epoch;
- every static file the page fetched (resource timings): how many were requested before the frame, when
  the last JavaScript chunk arrived, when ``Metric``'s chunk and Plotly's chunk arrived;
- the CPU the server process and the whole machine spent in the 2 s before the navigation and between it
  and the tiles (``/proc``, sampled every 20 ms), the gap since the previous repetition closed its
  context, and the CPU seconds by owner (server, browser, this bench, other processes) from the
  navigation to the tiles and on to the charts (approximate: a process that exits between two looks
  drops out, which can make a difference negative).

    python bench/bench_first_visit.py --repeat 3
    python bench/bench_first_visit.py --repeat 3 --files     # and each repetition's static files
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_dashboard import REPORT_DRAWN, SUMMARY_SHOWN, until  # noqa: E402
from bench_dashboard_timeline import CHARTS_DRAWN, TILES_SHOWN, probe  # noqa: E402

from tests.browser_support import (  # noqa: E402
    VIEWPORT,
    chromium,
    goto_page,
    missing_browser,
    streamlit_server,
    wait_idle,
)

PROBE = probe(
    {
        "title": "[...document.querySelectorAll('h1')].some(h => h.textContent.includes('Channel report'))",
        "frame": "document.querySelectorAll('[data-testid=\"stMetric\"]').length >= 5",
        "tiles": TILES_SHOWN,
        "charts": CHARTS_DRAWN,
    }
)

HZ = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def machine_busy() -> float:
    """CPU seconds every core has spent not idle so far."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(parts) - parts[3] - parts[4]) / HZ


def cpu_by_owner(server_pid: int) -> dict:
    """CPU seconds so far of the server, the browser (Chromium's processes), this bench (and Playwright's
    driver) and every other process of the machine."""
    out = {"server": 0.0, "browser": 0.0, "bench": 0.0, "other": 0.0}
    me = os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            raw = (d / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / HZ
        pid, ppid = int(d.name), int(fields[1])
        if pid == server_pid:
            out["server"] += cpu
        elif "chrom" in comm.lower():
            out["browser"] += cpu
        elif pid == me or ppid == me or comm == "node":
            out["bench"] += cpu
        else:
            out["other"] += cpu
    return out


def owner_delta(a: dict, b: dict) -> str:
    return " ".join(f"{k[:3]} {b[k] - a[k]:.1f}" for k in a)


class Sampler(threading.Thread):
    """(epoch, server CPU s, machine busy CPU s) every 20 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()
        self.closed = cpu_by_owner(pid)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.samples.append((time.time(), proc_cpu(self.pid), machine_busy()))
            except OSError:
                return
            time.sleep(0.02)

    def spent(self, lo: float, hi: float) -> tuple[float, float]:
        """CPU seconds of the server and of the machine between epochs ``lo`` and ``hi``."""
        inside = [s for s in self.samples if lo <= s[0] <= hi]
        if len(inside) < 2:
            return float("nan"), float("nan")
        return inside[-1][1] - inside[0][1], inside[-1][2] - inside[0][2]


def server_events(log: Path) -> list[tuple[str, float]]:
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("dashboard-event "):
            kind, epoch = line.split()[1], float(line.rsplit("epoch=", 1)[1])
            out.append((kind, epoch))
    return out


def short(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?")[0][:40]


def fresh_visit(browser, url: str, log: Path, sampler: Sampler) -> tuple:
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.add_init_script(PROBE)
    page = ctx.new_page()
    snaps = [cpu_by_owner(sampler.pid)]
    page.goto(url, wait_until="commit")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        marks = page.evaluate("window.__t && window.__t.marks") or {}
        if "tiles" in marks and len(snaps) == 1:
            snaps.append(cpu_by_owner(sampler.pid))
        if "tiles" in marks and "charts" in marks:
            break
        page.wait_for_timeout(50)
    snaps.append(cpu_by_owner(sampler.pid))
    page.wait_for_timeout(300)
    t = page.evaluate("window.__t")
    origin = page.evaluate("performance.timeOrigin") / 1000.0
    dcl = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
    files = page.evaluate(
        """performance.getEntriesByType('resource').map(r => ({name: r.name, start: r.startTime,
            respStart: r.responseStart, end: r.responseEnd, size: r.decodedBodySize, sent: r.transferSize}))"""
    )
    m = dict(t["marks"], dcl=dcl)
    if t["ws"]:
        m["firstMsg"], m["lastMsg"] = t["ws"][0], t["ws"][-1]
    runs = [(k, (e - origin) * 1000) for k, e in server_events(log) if e >= origin - 0.5]
    starts = [ms for k, ms in runs if k == "run-start"]
    ends = [ms for k, ms in runs if k == "run-end"]
    if starts:
        m["runStart"] = starts[0]
    if ends:
        m["runEnd"] = ends[0]
    js = [f for f in files if f["name"].endswith(".js")]
    m["js_files"] = len(js)
    m["js_mb"] = sum(f["size"] for f in js) / 1e6
    m["js_before_frame"] = sum(1 for f in js if f["start"] < m.get("frame", 1e9))
    m["js_last_end"] = max((f["end"] for f in js), default=float("nan"))
    for key, prefix in (("metricJs", "Metric."), ("chartJs", "EChartsChart."), ("chartJs", "PlotlyChart.")):
        hit = [f for f in js if short(f["name"]).startswith(prefix)]
        if hit and key not in m:
            m[key] = hit[0]["end"]
    # CPU around the navigation (epochs)
    tiles_epoch = origin + m.get("tiles", 0) / 1000
    m["srv_cpu_before"], m["all_cpu_before"] = sampler.spent(origin - 2.0, origin)
    m["srv_cpu_to_tiles"], m["all_cpu_to_tiles"] = sampler.spent(origin, tiles_epoch)
    m["cpu_to_tiles"] = owner_delta(snaps[0], snaps[1]) if len(snaps) > 2 else "?"
    m["cpu_tiles_to_charts"] = owner_delta(snaps[-2], snaps[-1]) if len(snaps) > 2 else "?"
    return ctx, page, m, files, origin


def rest_of_repetition(ctx, page, url: str, light: bool) -> None:
    """What bench_dashboard.py does after the first visit, so the next visit meets the same server
    (``light``: only the returning tab)."""
    wait_idle(page)
    again = ctx.new_page()
    again.goto(url, wait_until="commit")
    until(again, REPORT_DRAWN)
    wait_idle(again)
    again.close()
    if light:
        return
    goto_page(page, "Pipeline")
    page.get_by_text("Recompute every stage, even if up to date").click()
    wait_idle(page)
    page.get_by_role("button", name="Run pipeline").click()
    until(page, SUMMARY_SHOWN)
    page.get_by_role("link", name="Open the report").click()
    until(page, REPORT_DRAWN)
    wait_idle(page)
    box = page.locator('[data-testid="stMultiSelect"] input').first
    box.click()
    box.fill("Paid Search Brand")
    option = page.get_by_role("option", name="Paid Search Brand", exact=True)
    option.wait_for()
    option.click()
    wait_idle(page)


ROWS = [
    ("gap since last context closed (s)", "gap", 2),
    ("server CPU s in the 2 s before nav", "srv_cpu_before", 2),
    ("machine CPU s in the 2 s before nav", "all_cpu_before", 2),
    ("main bundle parsed (DCL)", "dcl", 0),
    ("websocket open", "wsOpen", 0),
    ("server run start", "runStart", 0),
    ("first ws message", "firstMsg", 0),
    ("title painted", "title", 0),
    ("frame (5 tiles) painted", "frame", 0),
    ("Metric chunk arrived", "metricJs", 0),
    ("chart chunk arrived (ECharts; Plotly before)", "chartJs", 0),
    ("server run end", "runEnd", 0),
    ("last ws message", "lastMsg", 0),
    ("KPI tiles with values", "tiles", 0),
    ("last JS chunk arrived", "js_last_end", 0),
    ("charts drawn", "charts", 0),
    ("JS files (before frame)", "js_files", 0),
    ("server CPU s nav → tiles", "srv_cpu_to_tiles", 2),
    ("machine CPU s nav → tiles", "all_cpu_to_tiles", 2),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", default=None, help="demo cache folder (default: .work/cache)")
    ap.add_argument("--files", action="store_true", help="print each visit's static files")
    ap.add_argument("--settle", type=float, default=0.0, help="seconds to wait after closing a context")
    ap.add_argument("--light", action="store_true", help="no pipeline run or filter change between visits")
    ap.add_argument("--app-dir", default=None, help="serve a copy of the app from this folder")
    args = ap.parse_args()
    reason = missing_browser()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    from pipeline.workspace import cached_demo, default_cache_dir, demo_size_from_env

    env = {"ATTRIBUTION_CACHE_DIR": str(Path(args.cache or default_cache_dir()).resolve())}
    env["ATTRIBUTION_DEMO_SHORT_IDS"] = "0"
    cached_demo(demo_size_from_env({**os.environ, **env}), Path(env["ATTRIBUTION_CACHE_DIR"]))
    work = Path(tempfile.mkdtemp(prefix="bench-first-visit-"))
    env["ATTRIBUTION_WORKSPACE_DIR"] = str(work / "workspaces")
    env["ATTRIBUTION_DASHBOARD_TIMING"] = "1"
    log = work / "streamlit.log"
    procs: list = []
    visits: list[dict] = []
    app_dir = Path(args.app_dir).resolve() if args.app_dir else ROOT
    with (
        streamlit_server(env, log, started=procs.append, app=app_dir / "app.py", cwd=app_dir) as url,
        chromium() as browser,
    ):
        sampler = Sampler(procs[0].pid)
        sampler.start()
        warm = browser.new_page(viewport=VIEWPORT)
        warm.goto(url)
        wait_idle(warm, 300)
        warm.close()
        closed = time.time()
        for i in range(args.repeat):
            if args.settle:
                time.sleep(args.settle)
            gap = time.time() - closed
            before = owner_delta(sampler.closed, cpu_by_owner(sampler.pid))
            ctx, page, m, files, origin = fresh_visit(browser, url, log, sampler)
            m["gap"], m["cpu_close_to_nav"] = gap, before
            visits.append(m)
            if args.files:
                print(f"\nrepetition {i + 1}: static files (ms from navigation: requested, first byte, done, kB)")
                for f in sorted(files, key=lambda f: f["start"]):
                    print(
                        f"  {short(f['name']):<42} {f['start']:7.0f} {f['respStart']:7.0f} {f['end']:7.0f} "
                        f"{f['size'] / 1000:8.1f}"
                    )
            rest_of_repetition(ctx, page, url, args.light)
            ctx.close()
            closed = time.time()
            sampler.closed = cpu_by_owner(sampler.pid)
        sampler.stop.set()
    print(f"\nfirst visit (fresh browser context) per repetition, ms from navigation start; {args.repeat} repetitions")
    print(f"{'moment':<38}" + "".join(f"{'rep ' + str(i + 1):>9}" for i in range(len(visits))) + f"{'median':>9}")
    for label, key, digits in ROWS:
        values = [v.get(key, float("nan")) for v in visits]
        cells = "".join(f"{x:9.{digits}f}" for x in values)
        finite = [x for x in values if x == x]
        med = f"{statistics.median(finite):9.{digits}f}" if finite else f"{'—':>9}"
        print(f"{label:<38}{cells}{med}")
    for key, label in (
        ("cpu_close_to_nav", "CPU s from the previous close to nav"),
        ("cpu_to_tiles", "CPU s nav → tiles"),
        ("cpu_tiles_to_charts", "CPU s tiles → charts"),
    ):
        print(f"{label} (server browser bench other): " + " | ".join(str(v.get(key)) for v in visits))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
