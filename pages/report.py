"""Report: cost, attributed conversions and revenue, CPO and ROAS per channel, with filters and downloads."""

import math
from datetime import date

import pandas as pd
import streamlit as st

from pages._look import chart, eur, figure, not_ready, ratio, shown_errors
from pages._models import model_label
from pages._session import colors, db_key, has_report, report, report_csv, stage_status, workspace
from pipeline import report_views as rv
from pipeline.labels import clip, md
from pipeline.window import date_span

SHORT_METRICS = {"ihc_revenue": "Revenue", "cost": "Cost", "ihc": "Conversions", "ROAS": "ROAS", "CPO": "CPO"}

st.title("Channel report")


def filters(path: str, fp: str):
    everything = report(path, fp, None, None, None)
    days = sorted(everything["date"].unique().tolist())
    channels = sorted(everything["channel_name"].unique().tolist())
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    c1, c2 = st.columns([2, 5], gap="medium")
    picked = c1.date_input(
        "Session dates",
        value=(first, last),
        min_value=first,
        max_value=last,
        key="report_dates",
        help="Channel-days whose session date is in this range.",
    )
    chosen = c2.multiselect(
        "Channels",
        channels,
        format_func=clip,
        key="report_channels",
        placeholder="All channels",
        help="Leave empty for all channels.",
    )
    start, end = date_span(picked, first, last)
    return start, end, (tuple(chosen) if chosen else None)


def kpi_tiles(rows: pd.DataFrame) -> None:
    k = rv.kpis(rows)
    cols = st.columns(5)
    cols[0].metric(
        "Cost", eur_short(k.cost), help=f"{eur(k.cost, 2)}: the cost of the sessions in the filter.", border=True
    )
    cols[1].metric(
        "Conversions",
        f"{k.conversions:,.0f}",
        help=f"{k.conversions:,.2f} attributed conversions: the credit (ihc) the sessions in the filter received.",
        border=True,
    )
    cols[2].metric(
        "Revenue",
        eur_short(k.revenue),
        help=f"{eur(k.revenue, 2)} attributed revenue: credit × conversion revenue.",
        border=True,
    )
    cols[3].metric(
        "CPO",
        eur(k.cpo, 2),
        help="Cost per attributed conversion (EUR). Empty when no conversion is attributed.",
        border=True,
    )
    cols[4].metric(
        "ROAS",
        ratio(k.roas),
        help="Attributed revenue per euro of cost (ratio). Empty when nothing was spent.",
        border=True,
    )


def eur_short(value) -> str:
    """€35.5k / €1.2M above 10,000 so the tile never truncates; exact value in the tooltip."""
    if value is None or pd.isna(value):
        return "—"
    if abs(value) >= 1e6:
        return f"€{value / 1e6:,.2f}M"
    if abs(value) >= 1e4:
        return f"€{value / 1e3:,.1f}k"
    return eur(value)


def ratio_chart(
    totals: pd.DataFrame, metric: str, palette: dict, ascending: bool, title: str, axis: str, fmt, log: bool = False
):
    """Bars of CPO or ROAS per paid channel, best first; a channel where the ratio is undefined keeps its
    row with a grey note instead of a bar. Unpaid channels (no cost) are left out: their CPO is 0 and
    their ROAS undefined by construction, which says nothing about efficiency.

    ``log``: a logarithmic axis, for when one channel's ratio dwarfs the others'. A ratio of 0 has no
    place on it and keeps its row with its value written at the left edge, like an undefined one."""
    paid = totals[totals["cost"] > 0]
    data = rv.ranked(paid, metric, ascending=ascending)
    undefined_text = "no attributed conversion" if metric == "CPO" else "no cost"
    values = [float(v) if pd.notna(v) else None for v in data[metric]]
    positive = [v for v in values if v is not None and v > 0]
    log = log and bool(positive)
    drawn = [v if v is not None and (v > 0 or not log) else None for v in values]
    labels = [fmt(v) if v is not None else "" for v in drawn]
    channels = data["channel_name"].tolist()
    traces = [
        dict(
            type="bar",
            orientation="h",
            x=drawn,
            y=channels,
            marker=dict(color=[palette.get(c, "#888") for c in channels]),
            text=labels,
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}<br>" + metric + ": %{text}<extra></extra>",
        )
    ]
    if log:
        low, high = math.log10(min(positive) / 2), math.log10(max(positive) * 4)
        left, xaxis = 10**low, dict(title=f"{axis}, log scale", type="log", range=[low, high])
    else:
        top = max(positive, default=0.0)
        left, xaxis = 0, dict(title=axis, range=[0, top * 1.22 if top > 0 else 1])
    notes = [(c, undefined_text if v is None else fmt(v)) for c, v, d in zip(channels, values, drawn) if d is None]
    if notes:
        traces.append(
            dict(
                type="scatter",
                mode="text",
                x=[left] * len(notes),
                y=[c for c, _ in notes],
                text=[t for _, t in notes],
                textposition="middle right",
                textfont=dict(color="#8A94A6", size=12),
                hoverinfo="skip",
                showlegend=False,
            )
        )
    return figure(
        traces,
        title,
        height=max(220, 32 * len(data) + 120),
        show_legend=False,
        xaxis=xaxis,
        yaxis=dict(autorange="reversed"),
        bargap=0.3 if len(data) > 3 else 0.6,
        margin=dict(r=60),  # room for the value labels outside the bars
    )


def unpaid_note(totals: pd.DataFrame) -> None:
    unpaid = totals.loc[totals["cost"] <= 0, "channel_name"].tolist()
    if unpaid:
        st.caption(
            f"Not in the CPO and ROAS charts — channels without cost: {', '.join(md(c, 60) for c in unpaid)}. "
            "Their attributed conversions and revenue are in the chart below and in the table."
        )


def cost_revenue_chart(totals: pd.DataFrame, palette: dict):
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
    pad = max(0.0, (6 - len(channels)) / 2)  # few channels: keep the bars as narrow as with six
    return figure(
        traces,
        "Cost vs attributed revenue per channel (grey = cost, coloured = revenue)",
        height=440,
        show_legend=False,
        barmode="group",
        bargap=0.25,
        xaxis=dict(tickangle=-35, range=[-0.5 - pad, len(channels) - 0.5 + pad]),
        yaxis=dict(title="EUR", tickprefix="€", separatethousands=True),
    )


def trend(rows: pd.DataFrame, totals: pd.DataFrame, palette: dict) -> None:
    c1, c2 = st.columns([1, 3], gap="medium")
    metric = c1.selectbox(
        "Daily trend of", list(rv.DAILY_METRICS), format_func=lambda m: SHORT_METRICS[m], key="trend_metric"
    )
    ranked_channels = totals.sort_values(["ihc_revenue", "channel_name"], ascending=[False, True])[
        "channel_name"
    ].tolist()
    picked = c2.multiselect(
        "Channels in the trend",
        ranked_channels,
        default=ranked_channels[:5],
        format_func=clip,
        key="trend_channels",
        wrap=True,
        help="By default the five channels with the most attributed revenue.",
    )
    if not picked:
        st.caption("Pick one or more channels to see their daily trend.")
        return
    data = rv.daily(rows, metric, picked)
    traces = []
    for channel in picked:
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
            )
        )
    unit = rv.DAILY_METRICS[metric]
    chart(
        figure(
            traces,
            f"{unit.split(' (')[0]} per day",
            height=400,
            xaxis=dict(title="Session date", type="date", tickformat="%b %d"),
            yaxis=dict(title=unit, rangemode="tozero", separatethousands=True),
        ),
        key="trend_chart",
    )
    if metric in ("CPO", "ROAS"):
        st.caption(f"Days where {metric} is undefined (no {'conversion' if metric == 'CPO' else 'cost'}) are gaps.")


def table_and_downloads(ws, rows: pd.DataFrame, path, fp, start, end, channels) -> None:
    st.subheader("Channel-days")
    shown = rv.table(rows)
    st.dataframe(
        shown.assign(channel_name=shown["channel_name"].map(clip)),  # the CSV keeps every name whole
        hide_index=True,
        height=min(38 + 35 * len(rows), 400),
        key="report_table",
        placeholder="—",
        column_config={
            "channel_name": st.column_config.TextColumn("Channel"),
            "date": st.column_config.TextColumn("Date"),
            "cost": st.column_config.NumberColumn("Cost (EUR)", format="euro"),
            "ihc": st.column_config.NumberColumn("Attributed conversions", format="%.3f"),
            "ihc_revenue": st.column_config.NumberColumn("Attributed revenue (EUR)", format="euro"),
            "CPO": st.column_config.NumberColumn("CPO (EUR)", format="euro"),
            "ROAS": st.column_config.NumberColumn("ROAS (ratio)", format="%.2f"),
        },
    )
    name = "channel_report" + (f"_{start}" if start else "") + (f"_to_{end}" if end else "") + ".csv"
    c1, c2, c3 = st.columns([1, 1, 2])
    c1.download_button(
        "Download CSV",
        report_csv(path, fp, start, end, channels),
        file_name=name,
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key="download_csv",
        type="primary",
        help=f"The {len(rows):,} rows shown, in the format of `python -m pipeline export`.",
    )
    c2.download_button(
        "Download database",
        ws.database_bytes,
        file_name="attribution-enriched.db",
        mime="application/vnd.sqlite3",
        icon=":material/database:",
        on_click="ignore",
        key="download_db",
        help="The working database with the journeys, attribution and report tables.",
    )
    c3.caption(f"{len(rows):,} rows · CPO and ROAS are empty (—) where undefined: no attributed conversion / no cost.")


with shown_errors():
    ws = workspace()
    path, fp = db_key(ws)
    states = stage_status(path, fp)
    if not has_report(path, fp):
        not_ready("There is no channel report in this database yet. Run the pipeline to build it.")
        st.stop()
    rec = states["attribute"].record
    rrec = states["report"].record
    if rec is not None:
        st.caption(
            f"Attribution: **{model_label(rec.params.get('model', '?'))}** · "
            f"{(rec.summary or {}).get('conversions_attributed', 0):,} conversions · report built "
            f"{rrec.started_at if rrec else '—'}"
        )
    if states["report"].state != "done":
        st.warning(
            f"The report is {states['report'].state} ({md(states['report'].reason)}); it shows the last "
            "results. Run the pipeline to bring it up to date.",
            icon=":material/warning:",
        )
    start, end, channels = filters(path, fp)
    rows = report(path, fp, start, end, channels)
    if rows.empty:
        st.info("No channel-day matches these filters. Widen the date range or clear the channel filter.")
        st.stop()
    palette = colors(path, fp)
    totals = rv.channel_totals(rows)
    kpi_tiles(rows)
    left, right = st.columns(2, gap="medium")
    log = st.session_state.get("ratio_log_scale", False)
    with left:
        chart(
            ratio_chart(
                totals,
                "CPO",
                palette,
                True,
                "CPO per channel — lower is better",
                "EUR per attributed conversion",
                lambda v: f"€{v:,.2f}",
                log,
            ),
            key="cpo_chart",
        )
    with right:
        chart(
            ratio_chart(
                totals,
                "ROAS",
                palette,
                False,
                "ROAS per channel — higher is better",
                "Revenue per EUR of cost (ratio)",
                lambda v: f"{v:.2f}",
                log,
            ),
            key="roas_chart",
        )
    st.toggle(
        "Logarithmic axes for CPO and ROAS",
        key="ratio_log_scale",
        help="When one channel's CPO or ROAS is many times the others', a log axis keeps every "
        "bar readable. A ROAS of 0 cannot sit on a log axis: its value is written instead.",
    )
    unpaid_note(totals)
    chart(cost_revenue_chart(totals, palette), key="cost_revenue_chart")
    trend(rows, totals, palette)
    table_and_downloads(ws, rows, path, fp, start, end, channels)
