"""The report's charts as Apache ECharts option dicts, for the dashboard's ``st.echarts_chart``.

The decisions (which channels, their order, bars and whiskers, the cost/revenue rows, the trend's lines
and shaded days, colours, titles, hover texts) are ``report_charts``'s, which also draws them in Plotly
for the self-contained HTML report; here they are only laid out the ECharts way:

- no animation (a filter change redraws at once), a keyed element on the page updates in place;
- the 90% intervals as whiskers: a ``boxplot`` item [low, value, value, value, high] per bar (ECharts
  in Streamlit takes no ``custom`` series), an arrowhead where a whisker is cut at the axis's edge;
- tooltips drawn as text on the canvas (``renderMode: richText``: nothing from the data is ever HTML),
  with the channel and the value in €; a text from the data has its braces made round (``plain``), since
  ``{…}`` is ECharts' template and rich-text markup;
- an ``alt`` text for screen readers.

Plain dicts of JSON values: no Streamlit here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from . import report_charts as rc
from .labels import HOVER_CHARS, SCROLLBAR_PX, SIDEBAR_PX, TICK_CHARS, clip, text_px

TEXT = "#1F2A37"
MUTED = "#667085"
WHISKER = "#475467"
NOTE = "#8A94A6"
BAND = "#EEF1F5"
FONT = "Source Sans, Source Sans Pro, Arial, sans-serif"  # the page's own (Streamlit 1.67 names it Source Sans)
AXIS_NAME_PX = 300  # an axis title wider than this wraps onto a second line (a half-page chart is ~400 px)
# The trend's legend: every channel in view, on as many lines as it takes (a "scroll" legend showed
# "1/2" at 1024 px with the sidebar open: the fifth channel's colour out of view, the fourth's name cut).
# The chart's height has room for the lines it takes at the narrowest place the Report draws it, 1024 px
# with the sidebar open; where it is wider, a media query per line saved moves the plot up under the
# legend's last line (counted for that narrowest width everywhere, five channels left a 24 px gap above
# the plot at 1280 px).
# The trend there is as wide as the main column: 1024 px less the sidebar (256 px), the page's own
# scrollbar (the Report is always taller than the window) and the column's 80 px padding on either side:
# 598 px, measured in Chromium with its scrollbars shown (tests/test_e2e_widths.py). It was taken as 554 px,
# the width with Streamlit's own 300 px sidebar, after the sidebar had become 256 px.
TREND_NARROWEST_PX = 1024 - SIDEBAR_PX - SCROLLBAR_PX - 2 * 80
LEGEND_PADDING_PX = 14  # a chart's width less its legend's room
LEGEND_ROOM_PX = TREND_NARROWEST_PX - LEGEND_PADDING_PX  # 584 px of legend at the narrowest
LEGEND_SLACK_PX = 8  # a media query's width is this much above the least that fits: a line too few overlaps
LEGEND_TOP_PX, LEGEND_LINE_PX = 26, 24  # under the title; one line of 13 px text with its 10 px gap
# The trend's plot there: the chart less its value axis and title (85 px with labels up to "€1,800",
# measured; wider labels take more) and the grid's 24 px on the right: 489 px.
VALUE_AXIS_PX = 85
PLOT_ROOM_PX = TREND_NARROWEST_PX - VALUE_AXIS_PX - 24
LEGEND_ITEM_PX = 25 + 5 + 10  # a legend item's line symbol, the gap to its name, the gap to the next item


@dataclass(frozen=True)
class EChart:
    """An ECharts option with the height (px) it is drawn at and its description for screen readers."""

    option: dict
    height: int
    alt: str


def plain(text: object) -> str:
    """``text`` as ECharts shows it literally: ``{``/``}`` (templates, rich-text styles) become ``(``/``)``."""
    return str(text).replace("{", "(").replace("}", ")")


def axis(extra: dict) -> dict:
    """An axis in the dashboard's look; a title (``name``) in the middle, wrapped, never cut."""
    out: dict = dict(
        axisLine=dict(lineStyle=dict(color=rc.AXIS_LINE)),
        axisTick=dict(show=False),
        axisLabel=dict(color=TEXT, fontSize=12),
        splitLine=dict(lineStyle=dict(color=rc.GRID)),
        nameLocation="middle",
        nameTextStyle=dict(color=TEXT, fontSize=13, width=AXIS_NAME_PX, overflow="break", align="center"),
    )
    for key, value in extra.items():
        out[key] = {**out[key], **value} if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def option(title: str, series: list, x_axis: dict, y_axis: dict | list, legend: bool = False, **extra) -> dict:
    """An ECharts option in the dashboard's look: the title top left, a white plot, no animation,
    item tooltips drawn as text (``richText``), the legend above the plot on the right."""
    out: dict = dict(
        animation=False,
        backgroundColor="white",
        textStyle=dict(fontFamily=FONT, fontSize=13, color=TEXT),
        title=dict(text=title, left=0, top=0, textStyle=dict(fontSize=16, fontWeight="normal", color=TEXT)),
        grid=dict(left=10, right=24, top=64 if legend else 44, bottom=10, outerBoundsMode="same"),
        tooltip=dict(trigger="item", renderMode="richText", confine=True, textStyle=dict(fontSize=13)),
        xAxis=x_axis,
        yAxis=y_axis,
        series=series,
    )
    if legend:
        out["legend"] = dict(top=LEGEND_TOP_PX, left=0, type="plain", textStyle=dict(fontSize=13))
    out.update(extra)
    return out


def legend_lines(names: list[str], room: float = LEGEND_ROOM_PX) -> int:
    """How many lines a plain legend of ``names`` (13 px text) takes in ``room`` px: items in order, a
    new line where the next one does not fit (as ECharts lays them out)."""
    lines, used = 1, 0.0
    for name in names:
        item = LEGEND_ITEM_PX + text_px(name) * 13 / 14
        if used and used + item > room:
            lines, used = lines + 1, 0.0
        used += item
    return lines


def legend_widths(names: list[str]) -> list[tuple[int, int]]:
    """``(lines, least chart width in px)`` for each number of lines the legend of ``names`` takes in a
    chart as wide as the narrowest (``LEGEND_ROOM_PX``) or wider, most lines first: below the second
    pair's width it takes the first pair's lines, and so on. The first width is 0 (any chart). A greedy
    wrap never takes more lines in more room, so each least width is found by halving."""
    most = legend_lines(names)
    out = [(most, 0)]
    for lines in range(most - 1, 0, -1):
        lo, hi = LEGEND_ROOM_PX, LEGEND_ROOM_PX + int(sum(LEGEND_ITEM_PX + text_px(n) for n in names))  # one line
        while lo + 1 < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if legend_lines(names, mid) <= lines else (mid, hi)
        out.append((lines, hi + LEGEND_PADDING_PX + LEGEND_SLACK_PX))
    return out


# The trend's values in its tooltip, as Streamlit's tooltip valueFormatter writes them (a named format or
# printf): €1,234.56, 6.89 conversions, ROAS 2.45; the same as report_charts.TREND_HOVER.
TREND_FORMAT = {
    "ihc_revenue": "euro",
    "cost": "euro",
    "CPO": "euro",
    "ihc": "%.2f conversions",
    "ROAS": "%.2f",
}


def wrapping_legend(out: dict, legend: list[str]) -> int:
    """Give the option ``out`` the legend ``legend`` wrapped on as many lines as it takes: the chart is
    tall enough for its lines at the narrowest (the px returned, to add to the chart's height), and the
    plot starts under its last line at the chart's own width (ECharts applies every media query that
    holds, in order: the widest last)."""
    out["legend"]["data"] = legend
    top = out["grid"]["top"]
    steps = legend_widths(legend)
    more = (steps[0][0] - 1) * LEGEND_LINE_PX
    out["grid"]["top"] = top + more
    out["media"] = [
        dict(query=dict(minWidth=width), option=dict(grid=dict(top=top + (lines - 1) * LEGEND_LINE_PX)))
        for lines, width in steps
    ]
    return more


def tip(*lines: str) -> dict:
    """A data item's own tooltip: the lines as plain text."""
    return dict(formatter="\n".join(plain(line) for line in lines))


def fading(color: str) -> dict:
    """``color`` (``#rrggbb`` or ``#rgb``) as a bar's fill that fades out over its last quarter: a bar cut
    at the axis's edge runs on past it."""
    digits = color[1:] if len(color) == 7 else "".join(2 * c for c in color[1:4])
    r, g, b = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    stops = [(0, color), (0.75, color), (1, f"rgba({r},{g},{b},0.05)")]
    return dict(type="linear", x=0, y=0, x2=1, y2=0, colorStops=[dict(offset=o, color=c) for o, c in stops])


def ratio_option(totals: pd.DataFrame, metric: str, palette: dict, log: bool = False) -> EChart:
    """The CPO or ROAS chart (``report_charts.ratio_bars``): bars best first, 90% whiskers, pale bars on
    few conversions, rows without a bar with their value or "no …" written at the left edge."""
    bars = rc.ratio_bars(totals, metric, palette, log)
    labels = [plain(label) for label in bars.labels]
    items: list = []
    whiskers: list = []
    for label, d, lo, hi, few, color, hover, on in zip(
        labels, bars.drawn, bars.whisker_low, bars.whisker_high, bars.few, bars.colors, bars.hover, bars.runs_on
    ):
        if d is None:
            items.append(dict(value=None))
            whiskers.append(dict(value=[]))
            continue
        items.append(
            dict(
                value=d - bars.left if bars.log else d,
                itemStyle=dict(color=fading(color) if on else color, opacity=rc.PALE if few else 1.0),
                tooltip=tip(label, hover),
            )
        )
        whiskers.append(dict(value=[lo, d, d, d, hi], tooltip=tip(label, hover)))
    gap = "30%" if len(labels) > 3 else "60%"
    series: list = []
    if bars.log:
        # ECharts starts a bar on a log axis at 1, so a ROAS of 0.06 was drawn from 1 down to 0.06. From
        # the axis's left end instead, as on a linear axis: an invisible bar up to it, the bar stacked on
        # it (its value: the rest up to the ratio).
        series.append(
            dict(
                type="bar",
                name="base",
                stack="ratio",
                data=[None if d is None else bars.left for d in bars.drawn],
                itemStyle=dict(color="rgba(0,0,0,0)"),
                silent=True,
                tooltip=dict(show=False),
                barCategoryGap=gap,
            )
        )
    series += [
        dict(type="bar", name=metric, data=items, barCategoryGap=gap, **({"stack": "ratio"} if bars.log else {})),
        dict(
            type="boxplot",
            name=f"{metric} 90% interval",
            data=whiskers,
            boxWidth=[8, 8],
            itemStyle=dict(color="rgba(0,0,0,0)", borderColor=WHISKER, borderWidth=1.5),
            emphasis=dict(disabled=True),
            z=3,
        ),
    ]
    if bars.notes:
        series.append(
            dict(
                type="scatter",
                name="notes",
                symbolSize=0,
                silent=True,
                data=[
                    dict(value=[bars.left, plain(lab)], label=dict(formatter=plain(text))) for lab, text in bars.notes
                ],
                label=dict(show=True, position="right", color=NOTE, fontSize=12),
            )
        )
    if bars.cut:
        series.append(
            dict(
                type="scatter",
                name="cut",
                symbol="triangle",
                symbolRotate=-90,
                symbolSize=10,
                itemStyle=dict(color=WHISKER),
                clip=False,
                z=4,
                data=[dict(value=[bars.edge, plain(lab)], tooltip=tip(lab, hover)) for lab, hover in bars.cut],
            )
        )
    value_axis = axis(
        dict(
            type="log" if bars.log else "value",
            min=bars.left,
            max=bars.edge,
            name=bars.axis_title,
            nameGap=26,
            axisLabel=dict(
                hideOverlap=True, showMaxLabel=False, **({"formatter": "€{value}"} if metric == "CPO" else {})
            ),
        )
    )
    category_axis = axis(dict(type="category", data=labels, inverse=True, splitLine=dict(show=False)))
    shown = sum(d is not None for d in bars.drawn)
    alt = f"{bars.title}: {len(labels)} paid channels, {shown} with a bar and its 90% interval. " + "; ".join(
        f"{plain(clip(c))} {bars.fmt(v) if v is not None else '—'}" for c, v in zip(bars.channels, bars.values)
    )
    return EChart(option(bars.title, series, value_axis, category_axis), rc.ratio_height(len(labels)), alt)


def cost_revenue_option(totals: pd.DataFrame, palette: dict) -> EChart:
    """Cost (grey) and attributed revenue (the channel's colour) side by side per channel, by revenue."""
    rows = rc.cost_revenue_rows(totals, palette)
    names = [plain(clip(c, HOVER_CHARS)) for c in rows.channels]  # whole in the tooltip, up to a point
    spacing = rc.cost_revenue_spacing(len(names))
    series = [
        dict(
            type="bar",
            name="Cost (EUR)",
            itemStyle=dict(color=rc.COST_COLOR),
            barCategoryGap=f"{spacing['bargap'] * 100:.0f}%",
            data=[dict(value=v, tooltip=tip(c, f"Cost: {rc.eur_text(v)}")) for c, v in zip(names, rows.cost)],
        ),
        dict(
            type="bar",
            name="Attributed revenue (EUR)",
            barCategoryGap=f"{spacing['bargap'] * 100:.0f}%",
            data=[
                dict(value=v, itemStyle=dict(color=color), tooltip=tip(c, f"Attributed revenue: {rc.eur_text(v)}"))
                for c, v, color in zip(names, rows.revenue, rows.colors)
            ],
        ),
    ]
    angle = spacing["xaxis"]["tickangle"]
    x_axis = axis(
        dict(
            type="category",
            data=[clip(n, TICK_CHARS) for n in names],
            axisLabel=dict(interval=0, rotate=-angle, width=140, overflow="truncate"),
            splitLine=dict(show=False),
        )
    )
    y_axis = axis(dict(type="value", name="EUR", nameGap=56, axisLabel=dict(formatter="€{value}")))
    alt = f"{rc.COST_REVENUE_TITLE}: {len(names)} channels. " + "; ".join(
        f"{clip(c)} cost {rc.eur_text(cost)}, revenue {rc.eur_text(rev)}"
        for c, cost, rev in zip(names, rows.cost, rows.revenue)
    )
    return EChart(option(rc.COST_REVENUE_TITLE, series, x_axis, y_axis), 440, alt)


def trend_option(trend: rc.TrendLines) -> EChart:
    """One line per channel (``report_charts.trend_lines``) over one slot per day, week or month; a
    partial period's marker hollow and the line to it dashed, the incomplete last days shaded and
    labelled; gaps stay gaps."""
    position = {d: i for i, d in enumerate(trend.slots)}
    series: list = []
    for line in trend.lines:
        data: list = [None] * len(trend.slots)
        for d, v, partial in zip(line.dates, line.values, line.partial):
            data[position[d]] = dict(value=v, symbol="emptyCircle", symbolSize=9) if partial else v
        name = plain(clip(line.channel))
        parts = any(line.partial)
        series.append(
            dict(
                type="line",
                name=name,
                data=data,
                connectNulls=False,
                symbol="circle",
                symbolSize=6,
                showSymbol=True,
                # with a part period the line is drawn by the two series below (``line_segments``); this
                # one keeps the markers and the tooltip
                lineStyle=dict(width=0 if parts else 2.5, color=line.color),
                itemStyle=dict(color=line.color),
                z=4,
            )
        )
        if parts:  # the solid over the dashed (``line_segments``), the markers over both
            for values, kind, z in zip(rc.line_segments(line, trend.slots), ("solid", "dashed"), (3, 2)):
                if all(v is None for v in values):
                    continue
                series.append(
                    dict(
                        type="line",
                        name=name,  # the same legend entry shows and hides it with the markers
                        data=values,
                        connectNulls=False,
                        showSymbol=False,
                        silent=True,
                        tooltip=dict(show=False),  # not twice in the axis tooltip
                        lineStyle=dict(width=2.5, color=line.color, type=kind),
                        itemStyle=dict(color=line.color),
                        z=z,
                    )
                )
    legend = list(dict.fromkeys(s["name"] for s in series))
    if trend.bands:
        series.append(_bands(trend, position))
    x_axis = axis(
        dict(
            type="category",
            data=[f"{text}\n{part}" if part else text for text, part in trend.ticks],
            boundaryGap=True,
            name=trend.x_title,
            nameGap=46 if any(part for _, part in trend.ticks) else 30,
            # two lines for a part period ("Sep 01" over "3 of 7 days"): ECharts' own line height
            # drew the second over the first
            axisLabel=dict(hideOverlap=True, lineHeight=16),
            splitLine=dict(show=False),
        )
    )
    y_axis = [
        # euros with their sign on every tick (as the cost/revenue chart's), not "5,000" under a title
        axis(
            dict(
                type="value",
                min=0,
                name=trend.y_title,
                nameGap=58,
                **({"axisLabel": {"formatter": "€{value}"}} if TREND_FORMAT[trend.metric] == "euro" else {}),
            )
        ),
        dict(type="value", min=0, max=1, show=False),  # the shaded bands' own, from bottom to top
    ]
    alt = (
        f"{trend.title}, {len(trend.lines)} channels "
        f"({', '.join(plain(clip(line.channel)) for line in trend.lines)}), "
        f"{len(trend.slots)} {trend.grain}s by {trend.x_title[0].lower()}{trend.x_title[1:]}"
        + (f"; shaded: {', '.join(text for _, _, text in trend.bands)}" if trend.bands else "")
    )
    out = option(trend.title, series, x_axis, y_axis, legend=True)
    more = wrapping_legend(out, legend)
    # A pointer anywhere over a day (or week, month) shows every channel's value there: the day, then
    # each channel with its value in € (or conversions, ROAS), drawn as text.
    out["tooltip"] = dict(
        trigger="axis",
        renderMode="richText",
        confine=True,
        axisPointer=dict(type="line"),
        valueFormatter=TREND_FORMAT[trend.metric],
        textStyle=dict(fontSize=13),
    )
    return EChart(out, 400 + more, alt)


def band_fits(text: str, slots: int, of: int, plot: int = PLOT_ROOM_PX) -> bool:
    """Whether a band's label (12 px text) fits across its ``slots`` of ``of`` in a plot ``plot`` px wide
    (the trend's narrowest, at 1024 px with the sidebar open); where it does not, it stands upright."""
    return text_px(text) * 12 / 14 + 8 <= plot * slots / max(of, 1)


def _room_at_foot(trend: rc.TrendLines, slots: set) -> bool:
    """Whether the points in ``slots`` (a band's) sit closer to the plot's top than to its foot (0), so an
    upright label there reads clear of them standing on the band's foot rather than hanging from its
    top: a high incomplete day (a CPO, which reads high then) ran through "incomplete" at the top. The
    plot's top is taken as the highest point (ECharts rounds its axis up from it)."""
    points = [(d, v) for line in trend.lines for d, v in zip(line.dates, line.values) if v is not None]
    top = max((v for _, v in points), default=0.0)
    inside = [v for d, v in points if d in slots]
    return top > 0 and bool(inside) and min(inside) > top - max(inside)


def _bands(trend: rc.TrendLines, position: dict) -> dict:
    """The incomplete days (or the periods that hold some) as grey bars behind the lines, full height on
    a hidden axis, each band labelled once at its middle."""
    values: list = [None] * len(trend.slots)
    for a, b, text in trend.bands:
        lo, hi = position[a], position[b]
        for i in range(lo, hi + 1):
            values[i] = dict(value=1)
        label: dict = dict(show=True, formatter=plain(text))
        if not band_fits(text, hi - lo + 1, len(trend.slots)):
            # upright, reading upwards to the band's top: "incomplete" across one day of ten stood out of
            # its 45 px band on both sides at 1024 px, over the neighbouring day's points. It hangs from
            # the band's top (an incomplete day's revenue and conversions read low) unless the band's
            # points leave more room at its foot (``_room_at_foot``).
            if _room_at_foot(trend, set(trend.slots[lo : hi + 1])):
                label.update(position="insideBottom", rotate=90, align="left", verticalAlign="middle", distance=8)
            else:
                label.update(position="insideTop", rotate=90, align="right", verticalAlign="middle", distance=8)
        values[(lo + hi) // 2] = dict(value=1, label=label)
    return dict(
        type="bar",
        name="incomplete",
        yAxisIndex=1,
        data=values,
        silent=True,
        z=0,
        barWidth="100%" if trend.grain == "day" else "90%",
        itemStyle=dict(color=BAND),
        # a halo of the band's grey: a line crossing the label does not blot it out
        label=dict(
            show=False, position="insideBottom", color=MUTED, fontSize=12, textBorderColor=BAND, textBorderWidth=3
        ),
        tooltip=dict(show=False),
    )
