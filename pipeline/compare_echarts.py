"""The Compare models page's grouped bars as an Apache ECharts option, in the Report's look
(``report_echarts``): one bar per model for each channel, the channels by the baseline model's value.

On ECharts like the Report and Journeys (not Plotly): no dashboard page loads Plotly's 4.7 MB chunk any
more (the self-contained HTML report keeps Plotly). The decisions are the Plotly chart's: channels without
cost left out of CPO and ROAS, the order (the baseline's value, largest first, ties by name, undefined
last), one colour per model in the picker's order, the models in the picker's words, axis titles and units.
Tooltips are drawn as text (``richText``) with the value as the table writes it ('12.3%', '€1,234'); texts
from the data have their braces made round (``plain``). Plain dicts of JSON values: no Streamlit here.
"""

from __future__ import annotations

import pandas as pd

from . import report_charts as rc
from .compare import format_value
from .labels import HOVER_CHARS, TICK_CHARS, clip
from .report_echarts import EChart, axis, option, plain, tip, wrapping_legend

# metric: (its name in the picker, the value axis's title)
METRICS = {
    "share": ("Share of conversions", "Share of attributed conversions (%)"),
    "ihc": ("Attributed conversions", "Attributed conversions"),
    "ihc_revenue": ("Attributed revenue", "Attributed revenue (EUR)"),
    "ROAS": ("ROAS", "ROAS (EUR of revenue per EUR of cost)"),
    "CPO": ("CPO", "CPO (EUR per attributed conversion)"),
}
MODEL_COLORS = ["#2F6DB5", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2", "#9D755D", "#EECA3B"]
AXIS_LABELS = {"share": "{value}%", "ihc_revenue": "€{value}", "CPO": "€{value}"}  # a share drawn as 0–100


def channel_order(table: pd.DataFrame, metric: str, baseline: str) -> list[str]:
    """The channels by the baseline model's ``metric``, largest first, ties by name, undefined last."""
    return (
        table[table["model"] == baseline]
        .sort_values([metric, "channel_name"], ascending=[False, True], na_position="last")["channel_name"]
        .tolist()
    )


def bars_height(channels: int, models: int) -> int:
    """The chart's height in px: room for each channel's group of bars, at least 420."""
    return int(max(420, 22 * channels * models**0.5 + 140))


def few_label(channel: str, chars: int = TICK_CHARS) -> str:
    """A channel resting on few conversions as the Report marks it: its name (clipped) and †."""
    return f"{clip(channel, chars - 2)} {rc.FEW_MARK}"


def grouped_bars_option(
    table: pd.DataFrame, metric: str, models: list[str], labels: list[str], unpaid=(), few=()
) -> EChart:
    """``table`` (``CompareResult.table``: one row per model and channel) as grouped horizontal bars: a
    series per model of ``models`` (named ``labels``, the picker's words), the first the baseline whose
    values order the channels; ``unpaid`` channels (no cost) are left out of CPO and ROAS; ``few``
    channels (``Comparison.few``) are marked † with pale bars, as on the Report."""
    name, axis_title = METRICS[metric]
    title = f"{name} per channel"
    if metric in ("CPO", "ROAS"):
        table = table[~table["channel_name"].isin(list(unpaid))]
    order = channel_order(table, metric, models[0])
    factor = 100.0 if metric == "share" else 1.0
    tips = [plain(clip(c, HOVER_CHARS)) for c in order]
    series: list[dict] = []
    values: dict[str, list] = {}
    for i, (model, label) in enumerate(zip(models, labels)):
        part = table[table["model"] == model].set_index("channel_name")[metric].reindex(order)
        values[label] = [float(v) if pd.notna(v) else None for v in part]
        series.append(
            dict(
                type="bar",
                name=plain(label),
                itemStyle=dict(color=MODEL_COLORS[i % len(MODEL_COLORS)]),
                barCategoryGap="20%",
                barGap="5%",
                data=[
                    dict(value=None)
                    if v is None
                    else dict(
                        value=round(v * factor, 10),
                        tooltip=tip(c, f"{label}: {format_value(v, metric)}"),
                        **({"itemStyle": dict(opacity=rc.PALE)} if channel in few else {}),
                    )
                    for channel, c, v in zip(order, tips, values[label])
                ],
            )
        )
    value_axis = axis(
        dict(
            type="value",
            name=axis_title,
            nameGap=26,
            axisLabel=dict(hideOverlap=True, **({"formatter": AXIS_LABELS[metric]} if metric in AXIS_LABELS else {})),
        )
    )
    # largest first at the top; each group's bars in the legend's order
    category_axis = axis(
        dict(
            type="category",
            data=[plain(few_label(c) if c in few else clip(c, TICK_CHARS)) for c in order],
            inverse=True,
            splitLine=dict(show=False),
        )
    )
    out = option(title, series, value_axis, category_axis, legend=True)
    legend = [plain(label) for label in labels]
    more = wrapping_legend(out, legend)
    alt = (
        f"{title}, {len(order)} channels by {plain(labels[0])}, {len(models)} models "
        f"({', '.join(plain(label) for label in labels)}). "
        + "; ".join(
            f"{plain(clip(c))}: "
            + ", ".join(f"{plain(label)} {format_value(values[label][j], metric)}" for label in labels)
            for j, c in enumerate(order)
        )
    )
    return EChart(out, bars_height(len(order), len(models)) + more, alt)
