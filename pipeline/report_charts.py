"""The report's charts as plain Plotly figure dicts: the dashboard draws them, the HTML report embeds them.

Every figure is a ``{"data": [...], "layout": {...}}`` dict in one look (``figure``). Plain dicts, not
``go.Figure`` updates: Streamlit validates the whole figure once, while each ``update_layout`` call
re-validates (≈30 ms per chart instead of ≈4 ms), which a filter change pays four times.

What the charts promise the reader:
- CPO and ROAS bars carry their 90% interval as a whisker (``intervals``); a bar resting on fewer than
  ``intervals.FEW_CONVERSIONS`` attributed conversions is pale and its channel marked ``†``; the value
  is written in the channel's label, so labels and whiskers never overlap.
- Channels without cost are left out of CPO/ROAS (their CPO is 0 and ROAS undefined by construction).
- The daily trend shades the incomplete last days (``completeness``).
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import pandas as pd

from . import report_views as rv
from .completeness import IncompleteDays
from .labels import TICK_CHARS, clip, safe_figure
from .window import period_start

CHART_FONT = dict(family="Source Sans Pro, Arial, sans-serif", size=13)
FEW_MARK = "†"
RATIO_TICK_CHARS = 44  # a CPO/ROAS label: the channel (clipped to fit) and its value, which stays whole
PALE = 0.4

GRID = "#E6E9EF"
AXIS_LINE = "#C9CED6"
AXIS: dict = dict(automargin=True, title=dict(standoff=8), gridcolor=GRID, linecolor=AXIS_LINE, zerolinecolor=AXIS_LINE)


def figure(
    traces: list[dict],
    title: str,
    height: int = 420,
    show_legend: bool = True,
    xaxis: Optional[dict] = None,
    yaxis: Optional[dict] = None,
    tick_chars: int = TICK_CHARS,
    **layout,
) -> dict:
    """A plotly figure as a plain dict in the dashboard's look: readable fonts, labels never clipped
    (automargin), a white plot, the title top left, the legend above the plot. Text from the data is
    escaped and long category labels clipped to ``tick_chars`` (``labels.safe_figure``)."""

    def axis(extra: Optional[dict]) -> dict:
        out = {**AXIS, **(extra or {})}
        if isinstance(out.get("title"), str):
            out["title"] = dict(text=out["title"], standoff=8)
        return out

    base: dict = dict(
        title=dict(text=title, x=0, xanchor="left", font=dict(size=16)),
        paper_bgcolor="white",
        plot_bgcolor="white",
        font=dict(**CHART_FONT, color="#1F2A37"),
        height=height,
        margin=dict(l=10, r=20, t=60, b=10),
        showlegend=show_legend,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        hoverlabel=dict(font=dict(size=13)),
        xaxis=axis(xaxis),
        yaxis=axis(yaxis),
    )
    for key, value in layout.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return safe_figure({"data": traces, "layout": base}, tick_chars)


def eur_text(value: float) -> str:
    return f"€{value:,.2f}"


def ratio_text(value: float) -> str:
    return f"{value:.2f}"


RATIO_CHARTS = {  # metric: (best first ascending?, title, axis title, value format)
    "CPO": (True, "CPO per channel — lower is better", "EUR per conversion", eur_text),
    "ROAS": (False, "ROAS per channel — higher is better", "Revenue per EUR of cost (ratio)", ratio_text),
}


def ratio_chart(totals: pd.DataFrame, metric: str, palette: dict, log: bool = False) -> dict:
    """Bars of CPO or ROAS per paid channel, best first, with their 90% intervals as whiskers.

    ``totals``: ``report_views.ReportView.totals`` (channel totals with ``{metric}_low/_high`` and
    ``few``). A channel where the ratio is undefined keeps its row with a grey note instead of a bar.
    ``log``: a logarithmic axis, for when one channel's ratio dwarfs the others'; a ratio of 0 has no
    place on it and keeps its row with its value written at the left edge, like an undefined one."""
    ascending, title, axis, fmt = RATIO_CHARTS[metric]
    paid = totals[totals["cost"] > 0]
    data = rv.ranked(paid, metric, ascending=ascending)
    undefined_text = "no attributed conversion" if metric == "CPO" else "no cost"
    values = [float(v) if pd.notna(v) else None for v in data[metric]]
    lows = _floats(data, f"{metric}_low")
    highs = _floats(data, f"{metric}_high")
    few = data["few"].tolist() if "few" in data else [False] * len(data)
    positive = [v for v in values if v is not None and v > 0]
    log = log and bool(positive)
    drawn = [v if v is not None and (v > 0 or not log) else None for v in values]
    # The axis follows the values, not the whiskers: one channel resting on a few conversions must not
    # squash every other bar. A whisker that reaches past the edge is drawn to it (the hover says where
    # it really ends).
    top = max(positive, default=0.0)
    if log:
        low_end = min(positive + [lo for lo in lows if lo is not None and lo > 0]) / 2
        lo_log, hi_log = math.log10(low_end), math.log10(top * 4)
        left, xaxis = 10**lo_log, dict(title=f"{axis}, log scale", type="log", range=[lo_log, hi_log])
        edge = 10**hi_log
    else:
        left, edge = 0, top * 1.3 if top > 0 else 1
        xaxis = dict(title=axis, range=[0, edge])
    suffixes = [f"{' ' + FEW_MARK if f else ''} · {fmt(v) if v is not None else '—'}" for v, f in zip(values, few)]
    labels = [clip(c, RATIO_TICK_CHARS - len(s)) + s for c, s in zip(data["channel_name"], suffixes)]
    plus: list[Optional[float]] = []
    minus: list[Optional[float]] = []
    hover: list[str] = []
    for v, d, lo, hi in zip(values, drawn, lows, highs):
        if d is None:
            plus.append(None)
            minus.append(None)
        else:
            reach = edge if hi is None or not math.isfinite(hi) else min(hi, edge)
            plus.append(max(reach - d, 0.0))
            minus.append(max(d - (lo if lo is not None else d), 0.0))
        hover.append(_interval_text(v, lo, hi, fmt))
    channels = data["channel_name"].tolist()
    traces: list[dict] = [
        dict(
            type="bar",
            orientation="h",
            x=drawn,
            y=labels,
            marker=dict(
                color=[palette.get(c, "#888") for c in channels],
                opacity=[PALE if f else 1.0 for f in few],
            ),
            error_x=dict(type="data", array=plus, arrayminus=minus, color="#475467", thickness=1.5, width=4),
            customdata=hover,
            hovertemplate="%{y}<br>%{customdata}<extra></extra>",
        )
    ]
    # A whisker cut at the axis's edge ends in an arrowhead there, so it never reads as the interval's
    # true end (review #13); its hover says where it ends.
    cut = [
        (lab, h)
        for lab, d, hi, h in zip(labels, drawn, highs, hover)
        if d is not None and (hi is None or not math.isfinite(hi) or hi > edge)
    ]
    arrows = (
        [
            dict(
                type="scatter",
                mode="markers",
                x=[edge] * len(cut),
                y=[lab for lab, _ in cut],
                marker=dict(symbol="triangle-right", size=10, color="#475467"),
                cliponaxis=False,
                customdata=[f"{h}; the interval extends beyond the axis" for _, h in cut],
                hovertemplate="%{y}<br>%{customdata}<extra></extra>",
                showlegend=False,
            )
        ]
        if cut
        else []
    )
    notes = [(lab, undefined_text if v is None else fmt(v)) for lab, v, d in zip(labels, values, drawn) if d is None]
    if notes:
        traces.append(
            dict(
                type="scatter",
                mode="text",
                x=[left] * len(notes),
                y=[lab for lab, _ in notes],
                text=[t for _, t in notes],
                textposition="middle right",
                textfont=dict(color="#8A94A6", size=12),
                hoverinfo="skip",
                showlegend=False,
            )
        )
    traces += arrows  # after the notes: the bars, the notes, then the arrowheads
    return figure(
        traces,
        title,
        height=max(220, 32 * len(data) + 120),
        show_legend=False,
        xaxis=xaxis,
        yaxis=dict(autorange="reversed"),
        bargap=0.3 if len(data) > 3 else 0.6,
        tick_chars=RATIO_TICK_CHARS,
    )


def _floats(data: pd.DataFrame, column: str) -> list[Optional[float]]:
    if column not in data:
        return [None] * len(data)
    return [float(v) if pd.notna(v) else None for v in data[column]]


def _interval_text(value, low, high, fmt: Callable[[float], str]) -> str:
    if value is None:
        return "undefined"
    if low is None:
        return fmt(value)
    upper = "unbounded" if high is None or not math.isfinite(high) else fmt(high)
    return f"{fmt(value)} (90% interval {fmt(low)} – {upper})"


def few_channels(totals: pd.DataFrame) -> list[str]:
    """The paid channels whose CPO/ROAS rest on fewer than FEW_CONVERSIONS attributed conversions."""
    if "few" not in totals:
        return []
    return totals.loc[(totals["cost"] > 0) & totals["few"], "channel_name"].tolist()


def cost_revenue_chart(totals: pd.DataFrame, palette: dict) -> dict:
    data = totals.sort_values(["ihc_revenue", "channel_name"], ascending=[False, True])
    channels = data["channel_name"].tolist()
    traces = [
        dict(
            type="bar",
            name="Cost (EUR)",
            x=channels,
            y=data["cost"].tolist(),
            marker=dict(color="#C3CAD5"),
            hovertemplate="%{x}<br>Cost: €%{y:,.2f}<extra></extra>",
        ),
        dict(
            type="bar",
            name="Attributed revenue (EUR)",
            x=channels,
            y=data["ihc_revenue"].tolist(),
            marker=dict(color=[palette.get(c, "#888") for c in channels]),
            hovertemplate="%{x}<br>Attributed revenue: €%{y:,.2f}<extra></extra>",
        ),
    ]
    return figure(
        traces,
        "Cost vs attributed revenue per channel (grey = cost, coloured = revenue)",
        height=440,
        show_legend=False,
        barmode="group",
        **cost_revenue_spacing(len(channels)),
        yaxis=dict(title="EUR", tickprefix="€", separatethousands=True),
    )


FEW_CHANNELS = 6  # up to this many, the pairs of bars keep the width they have with six
UPRIGHT_LABELS = 3  # up to this many channels the labels stand upright, centred under their bars


def cost_revenue_spacing(n: int) -> dict:
    """Bar gap and x axis of the cost-vs-revenue chart for ``n`` channels. The categories fill the
    plot (two channels sit at a quarter and three quarters of its width, not in a padded middle), a
    wider gap keeps few bars as narrow as six, and few labels stand upright: a slanted label hangs to
    the left of its bars, which pushed the plot right of the page's centre (review #20)."""
    group = 0.75 * min(n, FEW_CHANNELS) / FEW_CHANNELS  # the share of a category the pair takes
    return dict(
        bargap=1 - group if n < FEW_CHANNELS else 0.25,
        xaxis=dict(tickangle=0 if n <= UPRIGHT_LABELS else -35),
    )


TREND_HOVER = {
    "ihc_revenue": "€%{y:,.2f}",
    "cost": "€%{y:,.2f}",
    "ihc": "%{y:,.2f} conversions",
    "ROAS": "ROAS %{y:.2f}",
    "CPO": "CPO €%{y:,.2f}",
}


PERIOD_TICK = {"week": "%b %d", "month": "%b %Y"}


def trend_chart(
    rows: pd.DataFrame,
    metric: str,
    channels: list[str],
    palette: dict,
    basis: str = "session-date",
    incomplete: Optional[IncompleteDays] = None,
    grain: str = "day",
    first: Optional[str] = None,
    last: Optional[str] = None,
) -> dict:
    """One line per channel of ``metric`` per day (or week, month: ``grain``); the incomplete last
    days shaded and labelled.

    On a week or month axis each period is one slot with one label, dated by its first day inside the
    filter ``first``…``last`` (never before the chosen start); a period the range covers only partly is
    drawn with a hollow marker and labelled "3 of 7 days", since its sums cover fewer days than its
    neighbours'; only the periods that hold incomplete days are shaded, saying how many. CPO is a gap
    where nothing was spent (``report_views.daily``)."""
    if grain != "day" and len(rows) and not (first and last):
        first, last = str(rows["date"].min()), str(rows["date"].max())
    data = rv.daily(rows, metric, channels, grain, first, last)
    if grain == "day":
        return _day_trend(data, metric, channels, palette, basis, incomplete)
    spans = rv.period_table(grain, first or "", last or "") if first and last else None
    slots = sorted(set(data["date"]))
    info = {}
    if spans is not None:
        for d, n, of in zip(spans["date"], spans["days"], spans["length"]):
            info[d] = (int(n), int(of))
    fmt = PERIOD_TICK[grain]
    labels = []
    for d in slots:
        text = pd.Timestamp(d).strftime(fmt)
        n, of = info.get(d, (1, 1))
        labels.append(f"{text}<br>{rv.partial_text(n, of)}" if n < of else text)
    position = {d: i for i, d in enumerate(slots)}
    traces = []
    for channel in channels:
        part = data[data["channel_name"] == channel]
        dates = part["date"].tolist()
        partial = [info.get(d, (1, 1))[0] < info.get(d, (1, 1))[1] for d in dates]
        traces.append(
            dict(
                type="scatter",
                mode="lines+markers",
                name=channel,
                x=[position[d] for d in dates],
                y=[float(v) if pd.notna(v) else None for v in part["value"]],
                line=dict(color=palette.get(channel, "#888"), width=2.5),
                marker=dict(
                    size=[8 if p else 6 for p in partial],
                    symbol=["circle-open" if p else "circle" for p in partial],
                    line=dict(width=2),
                ),
                connectgaps=False,
                customdata=[_period_hover(d, grain, *info.get(d, (1, 1))) for d in dates],
                hovertemplate=f"%{{customdata}} · %{{fullData.name}}<br>{TREND_HOVER[metric]}<extra></extra>",
            )
        )
    shapes, annotations = [], []
    late_days = pd.Series(incomplete.days if incomplete else [], dtype=object)
    if len(late_days) and first and last:
        held = rv.clip_periods(period_start(late_days, grain), grain, first, last)
        counts = held.value_counts()
        for d, n in counts.items():
            if d not in position:
                continue
            i = position[d]
            shape, note = _incomplete_band(i - 0.45, i + 0.45, i, f"{n} incomplete day{'s' if n != 1 else ''}")
            shapes.append(shape)
            annotations.append(note)
    unit = rv.DAILY_METRICS[metric]
    axis_title = "Session date" if basis == "session-date" else "Conversion date"
    return figure(
        traces,
        f"{unit.split(' (')[0]} per {grain}",
        height=400,
        xaxis=dict(
            title=f"{axis_title}: {grain} starting (hollow: a part of the {grain} only)",
            type="linear",
            tickmode="array",
            tickvals=list(range(len(slots))),
            ticktext=labels,
            range=[-0.5, len(slots) - 0.5],
            showgrid=False,
            zeroline=False,
        ),
        yaxis=dict(title=unit, rangemode="tozero", separatethousands=True),
        shapes=shapes,
        annotations=annotations,
    )


def trend_note(
    rows: pd.DataFrame, metric: str, channels: list[str], incomplete: Optional[IncompleteDays] = None
) -> str:
    """What the trend's reader must know: gaps where CPO/ROAS are undefined, the channels without cost
    that have no CPO/ROAS line at all (a line at €0 would read as the cheapest), the shaded days."""
    notes = []
    if metric in ("CPO", "ROAS"):
        notes.append(
            f"Periods where {metric} is undefined (no {'conversion' if metric == 'CPO' else 'cost'}) are gaps."
        )
        unpaid = rv.unpaid_channels(rows, channels)
        if unpaid:
            notes.append(f"No {metric} line — channels without cost: {', '.join(clip(c) for c in unpaid)}.")
    if incomplete and incomplete.days:
        notes.append("Shaded: the incomplete last days, whose conversions are still to come (see above).")
    return " ".join(notes)


def _period_hover(day: str, grain: str, days: int, length: int) -> str:
    name = f"{grain.capitalize()} from {pd.Timestamp(day).strftime('%b %d')}"
    return f"{name} ({rv.partial_text(days, length)})" if days < length else name


def _day_trend(
    data: pd.DataFrame,
    metric: str,
    channels: list[str],
    palette: dict,
    basis: str,
    incomplete: Optional[IncompleteDays],
) -> dict:
    traces = []
    for channel in channels:
        part = data[data["channel_name"] == channel]
        traces.append(
            dict(
                type="scatter",
                mode="lines+markers",
                name=channel,
                x=part["date"].tolist(),
                y=[float(v) if pd.notna(v) else None for v in part["value"]],
                line=dict(color=palette.get(channel, "#888"), width=2.5),
                marker=dict(size=6),
                connectgaps=False,
                # the channel through %{fullData.name} (escaped by safe_figure), never pasted into markup
                hovertemplate=f"%{{x|%b %d}} · %{{fullData.name}}<br>{TREND_HOVER[metric]}<extra></extra>",
            )
        )
    unit = rv.DAILY_METRICS[metric]
    shapes, annotations = [], []
    shown = set(data["date"])
    late = sorted(set(incomplete.days) & shown) if incomplete else []
    if late:
        half = pd.Timedelta(hours=12)
        first = pd.Timestamp(late[0]) - half
        last = pd.Timestamp(late[-1]) + half
        shape, note = _incomplete_band(
            first.isoformat(), last.isoformat(), (first + (last - first) / 2).isoformat(), "incomplete"
        )
        shapes.append(shape)
        annotations.append(note)
    axis_title = "Session date" if basis == "session-date" else "Conversion date"
    return figure(
        traces,
        f"{unit.split(' (')[0]} per day",
        height=400,
        xaxis=dict(title=axis_title, type="date", tickformat="%b %d"),
        yaxis=dict(title=unit, rangemode="tozero", separatethousands=True),
        shapes=shapes,
        annotations=annotations,
    )


def _incomplete_band(x0, x1, middle, text: str) -> tuple[dict, dict]:
    """A grey band behind the incomplete days of a trend chart, from ``x0`` to ``x1``, and its label."""
    shape = dict(
        type="rect", xref="x", yref="paper", x0=x0, x1=x1, y0=0, y1=1,
        fillcolor="#EEF1F5", line=dict(width=0), layer="below",
    )  # fmt: skip
    note = dict(
        xref="x", yref="paper", x=middle, y=0.01, xanchor="center", yanchor="bottom", text=text,
        showarrow=False, font=dict(size=12, color="#667085"),
    )  # fmt: skip
    return shape, note


def report_file_name(
    models: list[str], start: Optional[str], end: Optional[str], basis: str, ext: str, channels: Sequence[str] = ()
) -> str:
    """``channel_report_<models>_<start>_to_<end>[_<channels>][_by-conversion-date].<ext>``: what, which
    model(s), which dates, which channels (named when up to three are picked, counted when more; nothing
    for all), so two downloads never get confused."""

    def safe(text: str) -> str:
        return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)

    picked = ""
    if channels:
        picked = "_" + ("+".join(safe(c) for c in channels) if len(channels) <= 3 else f"{len(channels)}-channels")
    dates = f"{start or 'first'}_to_{end or 'last'}"
    suffix = "_by-conversion-date" if basis == "conversion-date" else ""
    return f"channel_report_{'+'.join(safe(m) for m in models) or 'none'}_{dates}{picked}{suffix}.{ext}"
