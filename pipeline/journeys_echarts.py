"""The Journeys page's charts as Apache ECharts options, in the Report's look (``report_echarts``): the
journey lengths, the most common channel paths, and one conversion's credit per phase.

On ECharts like the Report (not Plotly): a first visit to Journeys after a server restart showed a bare
title for ≈2 s while the browser fetched and evaluated Plotly's 4.7 MB chunk; ECharts' is 1.2 MB, and an
analyst coming from the Report has it already (bench/bench_journeys_first_visit.py). Texts from the data
are drawn on the canvas as text (tooltips ``richText``; braces made round by ``plain``), never as markup.
Plain dicts of JSON values: no Streamlit here.
"""

from __future__ import annotations

import pandas as pd

from .explain import PATH_LINES, path_lines
from .labels import HOVER_CHARS, LABEL_CHARS, clip, text_px
from .report_echarts import MUTED, EChart, axis, option, plain, tip

LENGTH_COLOR, NO_SESSION_COLOR = "#2F6DB5", "#C3CAD5"  # a journey of sessions / none: cannot be attributed
PHASE_LABELS = {"initializer": "Initializer", "holder": "Holder", "closer": "Closer", "ihc": "Credit"}
LENGTHS_TITLE = "Journey length"
PATHS_TITLE = "Most common channel paths (colour = first channel)"
CREDIT_TITLE = "Who gets the credit: each phase split across the sessions"
# a model without phases (Linear, Markov…): one bar, the credit itself (the phases' title read as if it had them)
CREDIT_ONLY_TITLE = "Who gets the credit: each session's share of the conversion"
SHOWN_SHARE = 0.03  # a length's share written on its bar from 3%
INSIDE_SHARE = 0.06  # a session's number written inside its part of a bar from 6%


def lengths_option(dist: pd.DataFrame) -> EChart:
    """Conversions per journey length (``explain.length_distribution``): every length has its bar, the
    share of all conversions written on it from 3%; the conversions without an earlier session grey."""
    total = int(dist["conversions"].sum())
    labels = [str(v) for v in dist["label"]]
    data = [
        dict(
            value=int(n),
            itemStyle=dict(color=NO_SESSION_COLOR if s == 0 else LENGTH_COLOR),
            label=dict(show=share >= SHOWN_SHARE, formatter=f"{share:.0%}"),
            tooltip=tip(f"{label} sessions: {int(n):,} conversions ({share:.1%} of all {total:,})"),
        )
        for label, n, s, share in zip(labels, dist["conversions"], dist["sessions"], dist["share"])
    ]
    series = [
        dict(type="bar", name="Conversions", data=data, barCategoryGap="20%",
             label=dict(position="top", color="#1F2A37", fontSize=11))
    ]  # fmt: skip
    x_axis = axis(
        dict(
            type="category", data=labels, name="Sessions before the conversion", nameGap=30,
            axisLabel=dict(interval=0, fontSize=11), splitLine=dict(show=False),
        )
    )  # fmt: skip
    y_axis = axis(dict(type="value", name="Conversions", nameGap=46))
    alt = f"{LENGTHS_TITLE}: conversions per number of sessions before them, {total:,} in all. " + "; ".join(
        f"{label}: {int(n):,}" for label, n in zip(labels, dist["conversions"])
    )
    return EChart(option(LENGTHS_TITLE, series, x_axis, y_axis), 400, alt)


def path_label(path: str) -> list[str]:
    """A path's axis label as lines (``explain.path_lines``): whole channel names, arrows at line ends."""
    return [plain(line) for line in path_lines(path)]


def paths_option(top: pd.DataFrame, palette: dict) -> EChart:
    """The most common paths (``explain.top_paths``), most first, coloured by their first channel; each
    bar says its conversions and share, its tooltip the whole path and its revenue."""
    labels: list[str] = []
    for path in top["path"]:  # two paths whose labels read the same get "(2)", "(3)" …
        label, n = "\n".join(path_label(path)), 1
        while (label if n == 1 else f"{label} ({n})") in labels:
            n += 1
        labels.append(label if n == 1 else f"{label} ({n})")
    lines = max((label.count("\n") + 1 for label in labels), default=1)
    first = [p.split(" → ")[0] for p in top["path"]]
    data = [
        dict(
            value=int(n),
            itemStyle=dict(color=palette.get(c, "#888")),
            label=dict(formatter=f"{int(n):,} ({s:.0%})"),
            tooltip=tip(clip(p, HOVER_CHARS), f"{int(n):,} conversions · revenue €{r:,.2f}"),
        )
        for p, n, s, r, c in zip(top["path"], top["conversions"], top["share"], top["revenue"], first)
    ]
    series = [
        dict(type="bar", name="Conversions", data=data, barCategoryGap="30%",
             label=dict(show=True, position="right", color="#1F2A37", fontSize=12))
    ]  # fmt: skip
    most = float(top["conversions"].max()) if len(top) else 1.0
    x_axis = axis(
        dict(type="value", name="Conversions", nameGap=26, max=most * 1.5, axisLabel=dict(showMaxLabel=False))
    )
    y_axis = axis(
        dict(type="category", data=labels, inverse=True, splitLine=dict(show=False),
             axisLabel=dict(fontSize=12, lineHeight=15, interval=0))
    )  # fmt: skip
    alt = f"{PATHS_TITLE}: the {len(labels)} most common paths. " + "; ".join(
        f"{clip(p)}: {int(n):,}" for p, n in zip(top["path"], top["conversions"])
    )
    height = max(320, (16 * min(lines, PATH_LINES) + 14) * len(labels) + 110)
    return EChart(option(PATHS_TITLE, series, x_axis, y_axis), height, alt)


def credit_option(sessions: pd.DataFrame, phases: list[str], palette: dict) -> EChart:
    """One conversion's credit: a stacked bar per phase (``phases``, then Credit), one part per session in
    its channel's colour, its number written inside from 6%; the legend on the right names each session."""
    categories = [PHASE_LABELS[p] for p in phases]
    title = CREDIT_TITLE if len(phases) > 1 else CREDIT_ONLY_TITLE
    series = []
    names = []
    for row in sessions.to_dict("records"):
        name = plain(clip(f"#{row['position']} {row['channel']}", LABEL_CHARS))
        names.append(name)
        color = palette.get(row["channel"], "#888")
        values = [float(row[p]) if pd.notna(row[p]) else 0.0 for p in phases]
        series.append(
            dict(
                type="bar",
                name=name,
                stack="credit",
                barCategoryGap="35%",
                itemStyle=dict(color=color, borderColor="white", borderWidth=1.5),
                data=[
                    dict(
                        value=round(v * 100, 4),
                        label=dict(show=v >= INSIDE_SHARE, formatter=f"#{row['position']}"),
                        tooltip=tip(name, clip(str(row["timestamp"])), f"{c}: {v:.1%}"),
                    )
                    for c, v in zip(categories, values)
                ],
                label=dict(position="inside", color="white", fontSize=12),
            )
        )
    legend_px = int(max((text_px(n) * 13 / 14 for n in names), default=0)) + 25 + 5 + 10  # symbol, gaps
    x_axis = axis(dict(type="category", data=categories, splitLine=dict(show=False)))
    y_axis = axis(
        dict(type="value", name="Share of the conversion (%)", nameGap=46, min=0, max=100,
             axisLabel=dict(formatter="{value}%"))
    )  # fmt: skip
    grid = dict(left=10, right=min(legend_px, 260) + 10, top=44, bottom=10, outerBoundsMode="same")
    out = option(title, series, x_axis, y_axis, grid=grid)
    out["legend"] = dict(
        type="scroll", orient="vertical", right=0, top=44, bottom=10, data=names,
        textStyle=dict(fontSize=13), pageTextStyle=dict(color=MUTED),
    )  # fmt: skip
    alt = f"{title}: {len(names)} sessions. " + "; ".join(
        f"{n}: " + ", ".join(f"{c} {float(r[p]) if pd.notna(r[p]) else 0.0:.1%}" for c, p in zip(categories, phases))
        for n, r in zip(names, sessions.to_dict("records"))
    )
    return EChart(out, 440, alt)
