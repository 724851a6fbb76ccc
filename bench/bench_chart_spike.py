"""A spike before any chart-library port (issue 16, first visit's KPI tiles): how soon a fresh browser
context shows five st.metric tiles and four bar charts, drawn with Plotly (the dashboard's library,
a 4.7 MB chunk) or with Vega-Lite (st.vega_lite_chart), in two bare apps served the same way (same
server flags and theme), beside the tiles alone. Only the chart library differs; the charts are ten
horizontal bars each, like the Report's CPO/ROAS charts.

    python bench/bench_chart_spike.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_dashboard_timeline as timeline  # noqa: E402

from tests.browser_support import missing_browser  # noqa: E402

HEAD = """import streamlit as st

st.set_page_config(page_title="spike", layout="wide")
st.title("Channel report")
for col, label in zip(st.columns(5), ["Cost", "Conversions", "Revenue", "CPO", "ROAS"]):
    col.metric(label, "€1,234", border=True)
names = [f"Channel {i}" for i in range(10)]
values = [float(10 + 7 * i) for i in range(10)]
"""
APPS = {
    "tiles only": HEAD,
    "tiles + 4 Plotly": HEAD
    + """for row in range(2):
    for i, col in enumerate(st.columns(2)):
        col.plotly_chart({"data": [{"type": "bar", "orientation": "h", "x": values, "y": names}],
                          "layout": {"height": 320, "margin": {"l": 90, "r": 10, "t": 10, "b": 30}}},
                         theme=None, width="stretch", key=f"c{row}{i}")
""",
    "tiles + 4 Vega-Lite": HEAD
    + """data = {"values": [{"channel": n, "value": v} for n, v in zip(names, values)]}
for row in range(2):
    for i, col in enumerate(st.columns(2)):
        col.vega_lite_chart({"data": data, "mark": "bar", "height": 280,
                             "encoding": {"y": {"field": "channel", "type": "nominal"},
                                          "x": {"field": "value", "type": "quantitative"}}},
                            theme=None, width="stretch", key=f"c{row}{i}")
""",
}
# The four charts drawn, whichever library draws them (the dashboard's own condition counts ECharts
# canvases): Plotly's bar layers, Vega-Lite's canvas or svg marks.
SPIKE_CHARTS_DRAWN = (
    'document.querySelectorAll(\'.js-plotly-plot g.barlayer, [data-testid="stVegaLiteChart"] canvas, '
    '[data-testid="stVegaLiteChart"] svg.marks\').length >= 4'
    " && !document.querySelector('[data-testid=\"stStatusWidget\"]')"
)
timeline.PROBE = timeline.probe({"tiles": timeline.TILES_SHOWN, "charts": SPIKE_CHARTS_DRAWN})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    reason = missing_browser()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-spike-"))
    results = {}
    for name, source in APPS.items():
        app = work / name.replace(" ", "_").replace("+", "")
        (app / ".streamlit").mkdir(parents=True)
        shutil.copy(ROOT / ".streamlit" / "config.toml", app / ".streamlit" / "config.toml")
        (app / "app.py").write_text(source)
        results[name] = timeline.measure(
            app, {}, work / f"{app.name}.log", args.repeat, "Plotly" in name or "Vega" in name
        )
    print(f"\nfresh browser context, ms from navigation start, best / median of {args.repeat}; headless Chromium")
    print(f"{'app':<22} {'tiles shown':>15} {'charts drawn':>15} {'JS files':>9} {'JS MB':>6}")
    for name, runs in results.items():
        cells = []
        for key in ("tiles", "charts"):
            values = [r[key] for r in runs if key in r]
            cells.append(f"{min(values):6.0f} / {statistics.median(values):5.0f}" if values else "—")
        print(f"{name:<22} {cells[0]:>15} {cells[1]:>15} {runs[0]['js_files']:>9} {runs[0]['js_mb']:>6.1f}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
