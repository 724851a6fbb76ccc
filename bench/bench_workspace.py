"""Benchmark of a dashboard page load's cost on disk: N sessions opening the built-in demo.

Each browser session gets a ``Workspace`` and the demo database (``use_demo``). The table gives the
bytes written into the sessions' folders, and the wall-clock and CPU time per page load (the demo cache
is built before timing). With the copy-on-write demo a page load writes two tiny files; before it copied
the whole demo (48.5 MB for the default size) into every session's folder.

    python bench/bench_workspace.py                 # default demo, 15 sessions
    python bench/bench_workspace.py --sessions 50
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import workspace as wsm  # noqa: E402
from pipeline.demo import DemoSize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=15, help="browser sessions opening the app")
    args = parser.parse_args()
    size = DemoSize()
    demo = wsm.cached_demo(size)
    base = Path(tempfile.mkdtemp(prefix="bench-ws-"))
    try:
        sessions = []
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(args.sessions):
            ws = wsm.Workspace.create(base)
            ws.use_demo(demo, size)
            sessions.append(ws)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        written = wsm.folder_bytes(base)
        print(f"demo: {demo.stat().st_size / 1e6:,.1f} MB, {size.sessions:,} sessions")
        print(f"{'sessions':>9} {'written MB':>11} {'ms/load':>8} {'CPU ms/load':>12}")
        print(
            f"{args.sessions:>9} {written / 1e6:>11.2f} {wall * 1000 / args.sessions:>8.2f} "
            f"{cpu * 1000 / args.sessions:>12.2f}"
        )
        for ws in sessions:
            ws.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
