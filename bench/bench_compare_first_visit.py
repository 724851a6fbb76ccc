"""The Compare models page's first visit after a server restart: Plotly (b7d41e8…m1) against ECharts.

The same method as ``bench_journeys_first_visit.py`` (whose server, probe and alternation it reuses):
each repetition restarts each tree's server (its demo cache kept), opens ``/compare`` in a fresh browser
context and records, in seconds from the navigation's start: the title, the first caption under it, the
chart drawn (Plotly's SVG or ECharts' canvas) and the table. Run it under ``/work/bin/cpu-bench``.

    python bench/bench_compare_first_visit.py --tree main=/path/to/base --tree branch=. --repeat 3
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_journeys_first_visit as journeys  # noqa: E402

journeys.PROBE = journeys.PROBE.replace(
    "h.textContent.includes('Journeys')", "h.textContent.includes('Compare models')"
).replace("charts: () => drawn() >= 3,\n", "")
journeys.MOMENTS = ["title", "under_title", "first_chart", "table"]
journeys.PATH = "/compare"


if __name__ == "__main__":
    journeys.main()
