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
from dataclasses import dataclass, field
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


@dataclass
class RatioBars:
    """What a CPO or ROAS chart shows, whichever library draws it (``ratio_bars``): one row per paid
    channel, best first."""

    metric: str
    title: str
    axis_title: str  # the value axis's title ("…, log scale" on a log axis)
    log: bool
    channels: list[str]
    labels: list[str]  # the channel (clipped), † when it rests on few conversions, and its value
    values: list[Optional[float]]  # the ratio, None where undefined
    drawn: list[Optional[float]]  # the bar's length, cut at ``edge``; None without a bar (undefined, 0 on log)
    lows: list[Optional[float]]  # the 90% interval's ends as the report has them
    highs: list[Optional[float]]
    whisker_low: list[Optional[float]]  # the whisker as drawn: cut at the axis's edge, None without bar
    whisker_high: list[Optional[float]]
    few: list[bool]
    colors: list[str]
    hover: list[str]  # the value and its interval in words
    notes: list[tuple[str, str]]  # (label, text) of the rows without a bar, written at ``left``
    runs_on: list[bool]  # the bar itself is cut at ``edge`` (its value is past it): drawn fading out there
    cut: list[tuple[str, str]]  # (label, hover) of the bars or whiskers cut at ``edge``: an arrowhead there
    left: float  # the axis's range
    edge: float
    axis_range: list[float]  # as plotly takes it (log10 of the ends on a log axis)
    fmt: Callable[[float], str]


def nice_log_end(value: float, down: bool) -> float:
    """``value`` rounded down (or up) to 1, 2 or 5 times a power of ten: an end a log axis can write."""
    power = 10.0 ** math.floor(math.log10(value))
    steps = [float(f"{power * m:.1g}") for m in (1, 2, 5, 10)]  # (0.1 × 2: no 0.2000…01)
    if down:
        return max(s for s in steps if s <= value * (1 + 1e-12))
    return min(s for s in steps if s >= value * (1 - 1e-12))


def ratio_bars(totals: pd.DataFrame, metric: str, palette: dict, log: bool = False) -> RatioBars:
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
    # On a linear axis, the axis follows the channels resting on enough conversions: one channel with a
    # CPO of €740 on a single conversion drew every other bar a few pixels long, which read as "all
    # about equal". Its bar runs to the edge and ends in an arrowhead; its label keeps its value.
    sound = [v for v, f in zip(values, few) if v is not None and v > 0 and not f]
    top = max(positive if log else sound or positive, default=0.0)
    if log:
        low_end = min(positive + [lo for lo in lows if lo is not None and lo > 0]) / 2
        # The ends on a 1-2-5 step: the axis writes its left end as a tick ("1.5251343500661865" was
        # the unrounded half of the lowest value).
        left, edge = nice_log_end(low_end, down=True), nice_log_end(top * 4, down=False)
        axis_range = [math.log10(left), math.log10(edge)]
        axis = f"{axis}, log scale"
    else:
        left, edge = 0, top * 1.3 if top > 0 else 1
        axis_range = [0, edge]
    drawn = [None if v is None or (log and v <= 0) else min(v, edge) for v in values]
    suffixes = [f"{' ' + FEW_MARK if f else ''} · {fmt(v) if v is not None else '—'}" for v, f in zip(values, few)]
    labels = [clip(c, RATIO_TICK_CHARS - len(s)) + s for c, s in zip(data["channel_name"], suffixes)]
    whisker_low: list[Optional[float]] = []
    whisker_high: list[Optional[float]] = []
    hover: list[str] = []
    for v, d, lo, hi in zip(values, drawn, lows, highs):
        if d is None:
            whisker_low.append(None)
            whisker_high.append(None)
        else:
            # a whisker that reaches past the edge is drawn to it (the hover says where it really ends)
            reach = edge if hi is None or not math.isfinite(hi) else min(hi, edge)
            whisker_high.append(max(reach, d))
            whisker_low.append(min(lo if lo is not None else d, d))
        hover.append(_interval_text(v, lo, hi, fmt))
    channels = data["channel_name"].tolist()
    # A bar or whisker cut at the axis's edge ends in an arrowhead there, so it never reads as the true
    # end (review #13); its hover says what runs on.
    runs_on = [d is not None and v is not None and v > edge for v, d in zip(values, drawn)]
    cut = [
        (lab, f"{h}; {BAR_BEYOND if on else BEYOND}")
        for lab, d, hi, h, on in zip(labels, drawn, highs, hover, runs_on)
        if d is not None and (on or hi is None or not math.isfinite(hi) or hi > edge)
    ]
    notes = [(lab, undefined_text if v is None else fmt(v)) for lab, v, d in zip(labels, values, drawn) if d is None]
    return RatioBars(
        metric, title, axis, log, channels, labels, values, drawn, lows, highs, whisker_low, whisker_high, few,
        [palette.get(c, "#888") for c in channels], hover, notes, runs_on, cut, left, edge, axis_range, fmt,
    )  # fmt: skip


def ratio_chart(totals: pd.DataFrame, metric: str, palette: dict, log: bool = False) -> dict:
    """The CPO or ROAS chart (``ratio_bars``) as a plotly figure: whiskers as error bars."""
    bars = ratio_bars(totals, metric, palette, log)
    plus = [None if d is None or hi is None else hi - d for d, hi in zip(bars.drawn, bars.whisker_high)]
    minus = [None if d is None or lo is None else d - lo for d, lo in zip(bars.drawn, bars.whisker_low)]
    traces: list[dict] = [
        dict(
            type="bar",
            orientation="h",
            x=bars.drawn,
            y=bars.labels,
            marker=dict(
                color=bars.colors,
                opacity=[PALE if f else 1.0 for f in bars.few],
                # a bar cut at the axis's edge is hatched (plotly draws no gradient in a bar)
                pattern=dict(shape=["/" if on else "" for on in bars.runs_on], fillmode="overlay", fgcolor="white"),
            ),
            error_x=dict(type="data", array=plus, arrayminus=minus, color="#475467", thickness=1.5, width=4),
            customdata=bars.hover,
            hovertemplate="%{y}<br>%{customdata}<extra></extra>",
        )
    ]
    if bars.notes:
        traces.append(
            dict(
                type="scatter",
                mode="text",
                x=[bars.left] * len(bars.notes),
                y=[lab for lab, _ in bars.notes],
                text=[t for _, t in bars.notes],
                textposition="middle right",
                textfont=dict(color="#8A94A6", size=12),
                hoverinfo="skip",
                showlegend=False,
            )
        )
    if bars.cut:  # after the notes: the bars, the notes, then the arrowheads
        traces.append(
            dict(
                type="scatter",
                mode="markers",
                x=[bars.edge] * len(bars.cut),
                y=[lab for lab, _ in bars.cut],
                marker=dict(symbol="triangle-right", size=10, color="#475467"),
                cliponaxis=False,
                customdata=[h for _, h in bars.cut],
                hovertemplate="%{y}<br>%{customdata}<extra></extra>",
                showlegend=False,
            )
        )
    xaxis = dict(title=bars.axis_title, range=bars.axis_range)
    if bars.log:
        xaxis = dict(title=bars.axis_title, type="log", range=bars.axis_range)
    return figure(
        traces,
        bars.title,
        height=ratio_height(len(bars.labels)),
        show_legend=False,
        xaxis=xaxis,
        yaxis=dict(autorange="reversed"),
        bargap=0.3 if len(bars.labels) > 3 else 0.6,
        tick_chars=RATIO_TICK_CHARS,
    )


BEYOND = "the interval extends beyond the axis"
BAR_BEYOND = "the bar runs past the axis, which follows the channels resting on more conversions"


def cut_bars(totals: pd.DataFrame, log: bool = False) -> list[tuple[str, str]]:
    """(channel, "CPO €740.03") of the CPO and ROAS bars cut at their chart's edge (``ratio_bars``)."""
    out = []
    for metric in RATIO_CHARTS:
        bars = ratio_bars(totals, metric, {}, log)
        out += [
            (clip(c), f"{metric} {bars.fmt(v)}")
            for c, v in zip(bars.channels, bars.values)
            if v is not None and v > bars.edge
        ]
    return out


def cut_bars_note(totals: pd.DataFrame, log: bool = False, whole: str = "") -> Optional[str]:
    """A sentence naming the bars cut at their chart's edge, None when every bar is whole. ``whole``: how
    the reader sees them whole, if they can ("the logarithmic axes show every bar whole")."""
    cut = cut_bars(totals, log)
    if not cut:
        return None
    names = "; ".join(f"{c} ({what})" for c, what in cut)
    return (
        f"Cut at the axis's edge, their values in their labels: {names}. These rest on fewer than "
        f"{rv.FEW_CONVERSIONS} attributed conversions, so the axes follow the other channels"
        + (f"; {whole}." if whole else ".")
    )


def ratio_height(rows: int) -> int:
    return max(220, 32 * rows + 120)


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


COST_REVENUE_TITLE = "Cost vs attributed revenue per channel (grey = cost, coloured = revenue)"
COST_COLOR = "#C3CAD5"


@dataclass
class CostRevenueRows:
    """What the cost-vs-revenue chart shows (``cost_revenue_rows``): channels by attributed revenue."""

    channels: list[str]
    cost: list[float]
    revenue: list[float]
    colors: list[str]  # the revenue bars' (the cost bars are ``COST_COLOR``)


def cost_revenue_rows(totals: pd.DataFrame, palette: dict) -> CostRevenueRows:
    data = totals.sort_values(["ihc_revenue", "channel_name"], ascending=[False, True])
    channels = data["channel_name"].tolist()
    return CostRevenueRows(
        channels, data["cost"].tolist(), data["ihc_revenue"].tolist(), [palette.get(c, "#888") for c in channels]
    )


def cost_revenue_chart(totals: pd.DataFrame, palette: dict) -> dict:
    rows = cost_revenue_rows(totals, palette)
    traces = [
        dict(
            type="bar",
            name="Cost (EUR)",
            x=rows.channels,
            y=rows.cost,
            marker=dict(color=COST_COLOR),
            hovertemplate="%{x}<br>Cost: €%{y:,.2f}<extra></extra>",
        ),
        dict(
            type="bar",
            name="Attributed revenue (EUR)",
            x=rows.channels,
            y=rows.revenue,
            marker=dict(color=rows.colors),
            hovertemplate="%{x}<br>Attributed revenue: €%{y:,.2f}<extra></extra>",
        ),
    ]
    return figure(
        traces,
        COST_REVENUE_TITLE,
        height=440,
        show_legend=False,
        barmode="group",
        **cost_revenue_spacing(len(rows.channels)),
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


@dataclass
class TrendLine:
    channel: str
    color: str
    dates: list[str]  # the days (or periods' first days) it has a row for, in ``TrendLines.slots``
    values: list[Optional[float]]  # None: a gap (CPO where nothing was spent)
    partial: list[bool]  # a period the range covers only partly (a hollow marker)
    points: list[str]  # each point's date or period, as its hover names it


@dataclass
class TrendLines:
    """What the trend chart shows, whichever library draws it (``trend_lines``)."""

    metric: str
    grain: str
    title: str
    x_title: str
    y_title: str
    slots: list[str]  # the x axis's days or periods ('YYYY-MM-DD')
    ticks: list[tuple[str, str]]  # each slot's label and, for a partial period, "3 of 7 days" (else "")
    lines: list[TrendLine]
    bands: list[tuple[str, str, str]] = field(default_factory=list)  # shaded (first slot, last slot, label)
    lone: str = ""  # the range is one period: what a chart of its lone dots says (``lone_period``)


def view_trend(view: rv.ReportView, metric: str, channels: list[str], palette: dict) -> TrendLines:
    """The trend of a report view (its rows, date basis, incomplete days, grain and range): what the
    dashboard's chart and the HTML report's both draw."""
    return trend_lines(
        view.rows, metric, channels, palette, view.basis, view.incomplete, view.grain, view.first, view.last
    )


def trend_lines(
    rows: pd.DataFrame,
    metric: str,
    channels: list[str],
    palette: dict,
    basis: str = "session-date",
    incomplete: Optional[IncompleteDays] = None,
    grain: str = "day",
    first: Optional[str] = None,
    last: Optional[str] = None,
) -> TrendLines:
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
    unit = rv.DAILY_METRICS[metric]
    axis_title = "Session date" if basis == "session-date" else "Conversion date"
    slots = sorted(set(data["date"]))
    info: dict = {}
    if grain != "day" and first and last:
        spans = rv.period_table(grain, first, last)
        for d, n, of in zip(spans["date"], spans["days"], spans["length"]):
            info[d] = (int(n), int(of))
    lines = []
    for channel in channels:
        part = data[data["channel_name"] == channel]
        dates = part["date"].tolist()
        spans_of = [info.get(d, (1, 1)) for d in dates]
        lines.append(
            TrendLine(
                channel,
                palette.get(channel, "#888"),
                dates,
                [float(v) if pd.notna(v) else None for v in part["value"]],
                [n < of for n, of in spans_of],
                [
                    pd.Timestamp(d).strftime("%b %d") if grain == "day" else _period_hover(d, grain, n, of)
                    for d, (n, of) in zip(dates, spans_of)
                ],
            )
        )
    bands = []
    if grain == "day":
        late = sorted(set(incomplete.days) & set(slots)) if incomplete else []
        if late:
            bands.append((late[0], late[-1], "incomplete"))
        ticks = [(pd.Timestamp(d).strftime("%b %d"), "") for d in slots]
        x_title = axis_title
    else:
        late_days = pd.Series(incomplete.days if incomplete else [], dtype=object)
        if len(late_days) and first and last:
            held = rv.clip_periods(period_start(late_days, grain), grain, first, last)
            for d, n in held.value_counts().items():
                if d in slots:
                    bands.append((d, d, f"{n} incomplete day{'s' if n != 1 else ''}"))
        ticks = []
        for d in slots:
            n, of = info.get(d, (1, 1))
            ticks.append((pd.Timestamp(d).strftime(PERIOD_TICK[grain]), rv.partial_text(n, of) if n < of else ""))
        x_title = f"{axis_title}: {grain} starting (hollow, dashed to: a part of the {grain} only)"
    lone = lone_period(grain, first, last) if first and last else None
    return TrendLines(
        metric, grain, f"{unit.split(' (')[0]} per {grain}", x_title, unit, slots, ticks, lines, bands,
        lone.chart_note if lone else "",
    )  # fmt: skip


def line_segments(line: TrendLine, slots: list[str]) -> tuple[list, list]:
    """A trend line's values over ``slots`` split in two: the segments between whole periods (drawn
    solid) and those that reach a part period (dashed), None elsewhere. A solid line from a 3-day week
    to a whole one read as every channel doubling (a walk-through, per week on the demo). Each is one
    array: where dashed segments flank a solid one the dashed line runs under it, so the solid one is
    drawn over it."""
    values: list = [None] * len(slots)
    partial = [False] * len(slots)
    position = {d: i for i, d in enumerate(slots)}
    for d, v, p in zip(line.dates, line.values, line.partial):
        values[position[d]], partial[position[d]] = v, p
    solid: list = [None] * len(slots)
    dashed: list = [None] * len(slots)
    for i in range(len(slots) - 1):
        if values[i] is None or values[i + 1] is None:
            continue
        part = solid if not (partial[i] or partial[i + 1]) else dashed
        part[i], part[i + 1] = values[i], values[i + 1]
    return solid, dashed


def trend_chart(trend: TrendLines) -> dict:
    """The trend (``trend_lines``) as a plotly figure: a date axis by day, one slot per week or month."""
    if trend.grain == "day":
        return _day_trend(trend)
    labels = [f"{text}<br>{part}" if part else text for text, part in trend.ticks]
    position = {d: i for i, d in enumerate(trend.slots)}
    traces = []
    for line in trend.lines:
        # the markers carry the hover; the lines are drawn apart, solid between whole periods and
        # dashed to a part one (``line_segments``), in the marker's legend group: dashed, solid, then
        # the markers, each over the one before
        channel = dict(type="scatter", name=line.channel, legendgroup=line.channel)
        for values, dash in reversed(list(zip(line_segments(line, trend.slots), ("solid", "dash")))):
            if any(v is not None for v in values):
                traces.append(
                    dict(
                        channel,
                        mode="lines",
                        showlegend=False,
                        x=list(range(len(trend.slots))),
                        y=values,
                        line=dict(color=line.color, width=2.5, dash=dash),
                        connectgaps=False,
                        hoverinfo="skip",
                    )
                )
        traces.append(
            dict(
                channel,
                mode="markers",
                x=[position[d] for d in line.dates],
                y=line.values,
                marker=dict(
                    color=line.color,
                    size=[8 if p else 6 for p in line.partial],
                    symbol=["circle-open" if p else "circle" for p in line.partial],
                    line=dict(width=2),
                ),
                customdata=line.points,
                hovertemplate=f"%{{customdata}} · %{{fullData.name}}<br>{TREND_HOVER[trend.metric]}<extra></extra>",
            )
        )
    shapes, annotations = [], []
    for d, _, text in trend.bands:
        i = position[d]
        shape, note = _incomplete_band(i - 0.45, i + 0.45, i, text)
        shapes.append(shape)
        annotations.append(note)
    annotations += _lone_note(trend)
    slots = trend.slots
    return figure(
        traces,
        trend.title,
        height=400,
        xaxis=dict(
            title=trend.x_title,
            type="linear",
            tickmode="array",
            tickvals=list(range(len(slots))),
            ticktext=labels,
            range=[-0.5, len(slots) - 0.5],
            showgrid=False,
            zeroline=False,
        ),
        yaxis=dict(title=trend.y_title, rangemode="tozero", separatethousands=True),
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


@dataclass(frozen=True)
class LonePeriod:
    """A trend whose whole date range is one period: one point per channel, nothing to follow."""

    text: str  # what the dashboard says instead of a chart of lone dots (it offers the finer grains)
    finer: list[str]  # the finer grains that show more than one point, finest first
    chart_note: str  # what a chart of them says in its corner (the HTML report's, where grain is fixed)


def lone_period(grain: str, first: str, last: str) -> Optional[LonePeriod]:
    """Whether the trend per ``grain`` over ``first``…``last`` ('YYYY-MM-DD') is a single period (a month
    trend over ten days of September: one dot per channel), and then what to say and which finer grains
    would show a course. None when the trend has two periods or more."""
    if not (first and last) or len(rv.period_spans(grain, first, last)) > 1:
        return None
    finer = [g for g in rv.GRAINS[: rv.GRAINS.index(grain)] if len(rv.period_spans(g, first, last)) > 1]
    a, b = pd.Timestamp(first), pd.Timestamp(last)
    if a == b:  # one day, whatever the grain: nothing finer to offer
        day = f"{a:%b %d}"
        return LonePeriod(
            f"The range is one day ({day}): one point per channel. Widen the dates to see a trend.",
            [],
            f"The range is one day ({day}): one point per channel, no course to show",
        )
    span = f"{a:%b %d} – {b:%b %d}"
    ways = " or ".join(f"per {g}" for g in finer)
    return LonePeriod(
        f"The range ({span}) lies within one {grain}, so its trend per {grain} is one point per channel. "
        f"{ways[0].upper() + ways[1:]} shows how the channels moved; the {grain}'s figures are in the table.",
        finer,
        f"The range ({span}) is one {grain}: one point per channel, no course to show",
    )


def _period_hover(day: str, grain: str, days: int, length: int) -> str:
    name = f"{grain.capitalize()} from {pd.Timestamp(day).strftime('%b %d')}"
    return f"{name} ({rv.partial_text(days, length)})" if days < length else name


def _day_trend(trend: TrendLines) -> dict:
    traces = [
        dict(
            type="scatter",
            mode="lines+markers",
            name=line.channel,
            x=line.dates,
            y=line.values,
            line=dict(color=line.color, width=2.5),
            marker=dict(size=6),
            connectgaps=False,
            # the channel through %{fullData.name} (escaped by safe_figure), never pasted into markup
            hovertemplate=f"%{{x|%b %d}} · %{{fullData.name}}<br>{TREND_HOVER[trend.metric]}<extra></extra>",
        )
        for line in trend.lines
    ]
    shapes, annotations = [], []
    for first_day, last_day, text in trend.bands:
        half = pd.Timedelta(hours=12)
        first = pd.Timestamp(first_day) - half
        last = pd.Timestamp(last_day) + half
        shape, note = _incomplete_band(
            first.isoformat(), last.isoformat(), (first + (last - first) / 2).isoformat(), text
        )
        shapes.append(shape)
        annotations.append(note)
    annotations += _lone_note(trend)
    return figure(
        traces,
        trend.title,
        height=400,
        xaxis=dict(title=trend.x_title, type="date", tickformat="%b %d"),
        yaxis=dict(title=trend.y_title, rangemode="tozero", separatethousands=True),
        shapes=shapes,
        annotations=annotations,
    )


def _lone_note(trend: TrendLines) -> list[dict]:
    """A trend of one period is one column of dots in the plot's middle: why, in its empty top left."""
    if not trend.lone:
        return []
    return [
        dict(
            xref="paper", yref="paper", x=0.01, y=0.99, xanchor="left", yanchor="top", text=trend.lone,
            showarrow=False, align="left", font=dict(size=13, color="#667085"),
        )
    ]  # fmt: skip


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
