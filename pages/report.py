"""Report: cost, attributed conversions and revenue, CPO and ROAS per channel, with filters and downloads."""

import time
from datetime import date

import pandas as pd
import streamlit as st

from pages._look import (
    StreamlitProgress,
    database_download,
    echart,
    eur,
    log_run_time,
    not_ready,
    ratio,
    run_through_the_app,
    shown_errors,
)
from pages._models import model_label
from pages._session import (
    LAST_RUN_OUTCOME,
    REPORT_VIEW_ARGS,
    ReportViewArgs,
    colors,
    data_key,
    has_report,
    remember,
    remember_list,
    report,
    report_csv,
    report_html,
    report_view,
    restore,
    server_caption,
    server_view,
    source_name,
    stage_status,
    workspace,
)
from pipeline import report_charts as rc
from pipeline import report_echarts as ech
from pipeline import report_views as rv
from pipeline.errors import PipelineError
from pipeline.export import DATE_BASES
from pipeline.labels import PAGE_TABLE_PX, clip, column_px, fit_widths, md, table_height, table_room
from pipeline.runner import RunOptions
from pipeline.window import Window, date_span

# A new browser's first view (TILES_FIRST, set for one run) sends the title and the KPI tiles, then pauses
# FRAME_PAUSE seconds before the rest of the page, the filter row last. Every element type but a few is a
# chunk of code the browser fetches when its first element arrives; the element waits behind a skeleton
# meanwhile, and React 18 (Streamlit's) shows a waiting element only 500 ms after the last skeleton was
# drawn (its FALLBACK_THROTTLE_MS) and not while newer updates are pending: sent together, the tiles were
# shown with the charts and widgets. The pause lets the tiles be shown before the other elements come.
# Since the server sends the tiles sooner (uvloop, no magic) the rest must wait longer for React's reveal:
# over three interleaved rounds 0.45 s showed the tiles before the charts' code in 11 of 17 visits (the
# others with the charts, 2.0-2.7 s), 0.6 s in 12 of 12, for ≈0.2 s later charts (docs/dashboard.md, Speed).
TILES_FIRST = "_report_tiles_first"
FRAME_PAUSE = 0.6

BASIS_LABELS = {"session-date": "Session date", "conversion-date": "Conversion date"}

SHORT_METRICS = {"ihc_revenue": "Revenue", "cost": "Cost", "ihc": "Conversions", "ROAS": "ROAS", "CPO": "CPO"}

run_through_the_app()  # a first visit to this page's URL on a fresh server: through app.py

st.title("Channel report")


VIEW_FRAGMENT = "report_view"  # the key of the fragment below the filters (``view_fragment``)


def report_span(path: str, fp: str) -> tuple[date, date, list]:
    """The report's first and last day and its channels (sorted)."""
    everything = report(path, fp, None, None, None)
    days = sorted(everything["date"].unique().tolist())
    channels = sorted(everything["channel_name"].unique().tolist())
    return date.fromisoformat(days[0]), date.fromisoformat(days[-1]), channels


def redraw_view() -> None:
    """A filter's ``on_change``: rerun only the report below the filters (``view_fragment``). The filter
    row itself is not sent again: the browser shows the new value already, and three widgets and their
    row were messages for it to render again (docs/dashboard.md, Speed)."""
    st.rerun(VIEW_FRAGMENT)


def settle_filters(span: tuple[date, date, list]) -> None:
    """The filters' values in the session before their widgets are drawn (``filter_row``): from the URL
    (``?dates=…&channel=…&by=…``), an earlier visit or the defaults, fitted to this database (its
    ``report_span``). The view below reads them (``filter_values``) whether the row is drawn before it or,
    on a first visit, after."""
    first, last, channels = span

    def dates_from(raw: str) -> tuple:
        lo, _, hi = raw.partition("..")
        return tuple(min(max(date.fromisoformat(d), first), last) for d in (lo, hi or lo))

    # a basis always: a first view reads the filters (``filter_values``) before it draws the row
    restore("report_basis", "by", lambda v: v if v in DATE_BASES else DATE_BASES[0], default=DATE_BASES[0])
    restore("report_dates", "dates", dates_from)
    restore("report_channels", "channel", lambda vs: [c for c in vs if c in channels], multi=True)
    # Whatever the values came from (the URL, an earlier visit, another database of this session),
    # they must fit this database: dates inside its range, channels it has.
    kept = st.session_state.get("report_dates")
    if isinstance(kept, (tuple, list)) and kept:
        st.session_state["report_dates"] = tuple(min(max(d, first), last) for d in kept)
    else:
        st.session_state["report_dates"] = (first, last)
    if "report_channels" in st.session_state:
        st.session_state["report_channels"] = [c for c in st.session_state["report_channels"] if c in channels]


def filter_row(span: tuple[date, date, list]) -> None:
    """The date range, channels and date basis (the database's ``report_span``), their values settled
    already (``settle_filters``) and kept in the URL and across pages (``filter_values``)."""
    first, last, channels = span
    # One row that wraps (not three columns of fixed shares, which squeezed each widget at 1024 px): the
    # dates as wide as "2023/09/01 – 2023/09/10", the channels taking the rest (chips wrap, never cut).
    # The widgets are the row's own parts, sized by their width (a container around each was three
    # more elements for the browser to redraw on every filter change: docs/dashboard.md, Speed). The
    # dates' label names the basis the radio on their right holds: its value is in the session already.
    row = st.container(horizontal=True, wrap=True, gap="medium", key="report_filters")
    basis = st.session_state["report_basis"]  # settled (``settle_filters``)
    row.date_input(
        f"{BASIS_LABELS[basis]}s",
        min_value=first,
        max_value=last,
        key="report_dates",
        width=FILTER_PX["dates"],
        on_change=redraw_view,
        help="Channel-days in this range, dated as chosen on the right. The filters are in the page's "
        "address: reload it or send it, and the same view opens (on the same database). "
        f"{CALENDAR_WEEKS}",
    )
    row.multiselect(
        "Channels",
        channels,
        key="report_channels",
        placeholder="All channels",
        help="Leave empty for all channels.",
        format_func=clip,
        wrap=True,
        width="stretch",
        on_change=redraw_view,
    )
    # The basis names the dates' label on its left: a change of it reruns the filters too (no on_change).
    row.radio(
        "Date credit by",
        DATE_BASES,
        format_func=BASIS_LABELS.get,
        key="report_basis",
        width="content",
        help="Session date: credit on the day of the session that earned it (the challenge's "
        "channel_reporting). Conversion date: credit on the day of the order, as GA4 and the shop count "
        "orders. Cost is always on the day it was spent.",
    )


def filter_values(path: str, fp: str) -> tuple:
    """(start, end, channels or None, basis) of the filters' widgets (in the session: the fragment below
    them runs without them), written into the URL."""
    first, last, _ = report_span(path, fp)
    basis = st.session_state["report_basis"]  # settled (``settle_filters``), whether the row is drawn yet or not
    picked = st.session_state.get("report_dates") or (first, last)
    chosen = st.session_state.get("report_channels") or []
    remember("report_basis", "by", str, DATE_BASES[0])
    remember(
        "report_dates",
        "dates",
        lambda v: "..".join(d.isoformat() for d in v) if isinstance(v, (tuple, list)) and v else "",
        (first, last),
    )
    remember_list("report_channels", "channel")
    start, end = date_span(picked, first, last)
    return start, end, (tuple(chosen) if chosen else None), basis


def kpi_tiles(view: rv.ReportView) -> None:
    k, b = view.kpis, view.kpi_bounds
    row = tile_row()
    row.metric(
        "Cost", eur_short(k.cost), help=f"{eur(k.cost, 2)}: the cost of the sessions in the filter.", border=True
    )
    row.metric(
        "Conversions",
        f"{k.conversions:,.0f}",
        help=f"{k.conversions:,.2f} attributed conversions: the credit (ihc) the sessions in the filter received.",
        border=True,
    )
    row.metric(
        "Revenue",
        eur_short(k.revenue),
        help=f"{eur(k.revenue, 2)} attributed revenue: credit × conversion revenue.",
        border=True,
    )
    cpo_interval = rv.interval_range(b["CPO_low"], b["CPO_high"], tile_eur, "90%: €")
    cpo_label, roas_label = rv.ratio_labels(view.totals)
    blend = BLEND_HELP if cpo_label != "CPO" else ""
    row.metric(
        cpo_label,
        eur(k.cpo, 2),
        # Over every channel the resampled conversions always add up to the same total and the cost is
        # fixed, so this CPO cannot move: no pill (a words-for-it pill was cryptic, "no spread (see ?)",
        # or cut at 1280 px, "same in every r…"); the help says why, like the Cost and Revenue tiles.
        delta=cpo_interval or None,
        delta_color="off",
        delta_arrow="off",
        help=f"{blend}Cost per attributed conversion (EUR); below it, the 90% interval from resampling the "
        "conversions. With all channels in the filter there is no interval: every resampled set of "
        "conversions still adds up to the same number of conversions, and the cost does not change, "
        "so the total CPO is the same in every resample. Pick some channels to see how sure their CPO "
        "is. Empty when no conversion is attributed.",
        border=True,
    )
    row.metric(
        roas_label,
        ratio(k.roas),
        delta=rv.interval_range(b["ROAS_low"], b["ROAS_high"], ratio) or None,
        delta_color="off",
        delta_arrow="off",
        help=f"{blend}Attributed revenue per euro of cost (ratio); below it, the 90% interval from resampling "
        "the conversions. Empty when nothing was spent.",
        border=True,
    )
    blended = rv.blended_note(view.totals)  # what the CPO and ROAS tiles blend in (channels without cost)
    if blended:
        st.caption(md(blended))


# The CPO and ROAS tiles' help, first, when they are blended (``rv.ratio_labels``).
BLEND_HELP = (
    "Blended: the paid channels' cost against the conversions and revenue of every channel in the filter, "
    "those without cost too; the line below the tiles gives the paid channels' own. "
)


# Widths (px) of the filter row's parts and of a KPI tile: the dates hold "2023/09/01 – 2023/09/10", a
# tile "€34.8k" and "90%: 20.83–23.80" (measured in Chromium, tests/test_e2e_widths.py).
FILTER_PX = {"dates": 240, "channels": 300, "basis": 121, "trend_metric": 150}
# Heights (px) of the filter row's parts in Chromium: a label, an input box under it (dates, channels),
# the basis' label over its two options.
FILTER_ROW_PX = {"label": 28, "input": 68, "radio": 73}
TILE_PX = 150
# A CPO or ROAS chart narrower than this (its labels "Paid Search Non Brand † · €209.70" take ≈200 px) cut
# its axis title and squeezed its bars to a few px: at 1024 px with the sidebar open the two go one under
# the other instead of side by side.
RATIO_CHART_PX = 380


# Least widths in the wrapping rows (Streamlit's widths are fixed or stretch, never "at least"): a part
# narrower than this wraps to the next line instead of shrinking; the tiles share a line equally (as
# stretched containers did: a tile's own "stretch" grows by its content, the ROAS tile's pill). Classes
# from the widgets' and rows' keys.
LAYOUT_STYLE = (
    "<style>"
    ".st-key-report_channels,.st-key-trend_channels{{min-width:{channels}px}}"
    ".st-key-kpi_tiles>div{{flex:1 1 0;min-width:{tile}px}}"
    ".st-key-ratio_charts>div{{flex:1 1 0;min-width:{chart}px}}"
    # the database step (a fragment: a block that stretches) wraps whole onto the next line rather than
    # squeeze "Download database (149 MB)" into three lines beside the other downloads (1024 px)
    ".st-key-report_downloads>div{{min-width:max-content}}"
    # a first view's filter row (TILES_FIRST): its placeholder stays until all three widgets are shown
    # (the browser draws each as a 40-px grey bar while their code loads: the tiles moved up, then down)
    "{ph}+{wrap}:not({drawn}){{display:none}}"
    "{ph}:has(+{wrap} [data-testid=stDateInput]):has(+{wrap} [data-testid=stMultiSelect])"
    ":has(+{wrap} [data-testid=stRadio]){{display:none}}"
    "</style>".format(
        channels=FILTER_PX["channels"],
        tile=TILE_PX,
        chart=RATIO_CHART_PX,
        ph=".stElementContainer:has(.report-filter-placeholder)",
        wrap="[data-testid=stLayoutWrapper]",
        drawn=":has([data-testid=stDateInput]):has([data-testid=stMultiSelect]):has([data-testid=stRadio])",
    )
)


def tile_row():
    """The row of the five KPI tiles (``row.metric(…)``, each ``width="stretch"``), which wraps: as wide as
    the page allows, never narrower than ``TILE_PX`` (at 1024 px with the sidebar open five equal columns
    cut "€34.8k" to "€…"). The tiles are the row's own parts: no container around each."""
    return st.container(horizontal=True, wrap=True, key="kpi_tiles")


def tile_eur(value: float) -> str:
    """A CPO bound short enough for the tile's interval pill, which shows about 15 characters at 1280 px
    ('90%: €15.95–€1…' was cut): cents below €10, whole euros above; the € is written once, before the
    range (``kpi_tiles``). The table below keeps the cents."""
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"


def eur_short(value) -> str:
    """€35.5k / €1.2M above 10,000 so the tile never truncates; exact value in the tooltip."""
    if value is None or pd.isna(value):
        return "—"
    if abs(value) >= 1e6:
        return f"€{value / 1e6:,.2f}M"
    if abs(value) >= 1e4:
        return f"€{value / 1e3:,.1f}k"
    return eur(value)


def unpaid_note(totals: pd.DataFrame) -> None:
    unpaid = totals.loc[totals["cost"] <= 0, "channel_name"].tolist()
    if unpaid:
        st.caption(
            f"Not in the CPO and ROAS charts — channels without cost: {', '.join(md(c, 60) for c in unpaid)}. "
            "Their attributed conversions and revenue are in the chart below and in the table."
        )


GRAIN_LABELS = {"day": "Day", "week": "Week", "month": "Month"}
PART_EXAMPLE = {"week": (3, 7), "month": (10, 30)}
PERIOD_FORMATS = {"week": "MMM D", "month": "MMM YYYY"}  # the table's date column (table_texts writes the same)
# Streamlit's date picker takes the first day of its calendar's weeks from the browser's language
# (Sunday in US English) and cannot be told otherwise; the Week grain's weeks are ISO weeks.
CALENDAR_WEEKS = (
    "Weeks (Per: Week) run Monday to Sunday; the date picker's calendar starts its weeks on the day "
    "your browser's language uses (Sunday in US English)."
)
# fractional conversions in a format that cannot be read as thousands (6.89, never 6.889) and said why
CONVERSIONS_HELP = (
    "Attributed conversions: the sum of the credit shares the {what} received. Each conversion's credit "
    "is split over the sessions before it, so this is fractional: 6.89 is almost seven conversions."
)


def trend(view: rv.ReportView, palette: dict, channels) -> None:
    # a row that wraps, as the filters (three columns of fixed shares cut "Revenue" and "Month" at 1024 px)
    # (its widgets the row's own parts, as in the filters' row)
    row = st.container(horizontal=True, wrap=True, gap="medium", key="trend_controls")
    # the metric in the address too (``?trend=ROAS``): a reload or a shared link, and another page and
    # back, showed Revenue again
    restore("trend_metric", "trend", lambda v: v if v in rv.DAILY_METRICS else "ihc_revenue")
    metric = row.selectbox(
        "Trend of",
        list(rv.DAILY_METRICS),
        format_func=lambda m: SHORT_METRICS[m],
        key="trend_metric",
        width=FILTER_PX["trend_metric"],
    )
    remember("trend_metric", "trend", str, "ihc_revenue")
    row.segmented_control(
        "Per",
        rv.GRAINS,
        format_func=GRAIN_LABELS.get,
        key="report_grain",
        width="content",
        help=f"The trend's and the table's period. {CALENDAR_WEEKS}",
    )
    remember("report_grain", "per", str, "day")
    ranked_channels = view.totals.sort_values(["ihc_revenue", "channel_name"], ascending=[False, True])[
        "channel_name"
    ].tolist()
    # The trend follows the channel filter: the filtered channels (or the top five) whenever the filter
    # changes; the analyst's own pick otherwise.
    default = list(channels)[:8] if channels else ranked_channels[:5]
    if st.session_state.get("_trend_for") != channels or "trend_channels" not in st.session_state:
        st.session_state["trend_channels"] = default
        st.session_state["_trend_for"] = channels
    st.session_state["trend_channels"] = [c for c in st.session_state["trend_channels"] if c in ranked_channels]
    picked = row.multiselect(
        "Channels in the trend",
        ranked_channels,
        format_func=clip,
        key="trend_channels",
        wrap=True,
        width="stretch",
        help="The channels of the filter above, or the five with the most attributed revenue.",
    )
    lone = rc.lone_period(view.grain, view.first, view.last)
    if lone:
        # not a chart of lone dots (a month trend over ten days of September): say so, and offer the finer
        # grains that show a course (the Per control's value, set before the fragment's rerun)
        st.info(md(lone.text), icon=":material/timeline:")
        if lone.finer:
            finer = st.container(horizontal=True, key="trend_finer")
            for grain in lone.finer:
                finer.button(
                    f"Show per {grain}",
                    key=f"trend_per_{grain}",
                    on_click=st.session_state.update,
                    kwargs={"report_grain": grain},
                    help=f"Sets Per to {GRAIN_LABELS[grain]}: the trend and the table below.",
                )
        return
    if not picked:
        st.caption("Pick one or more channels to see their trend.")
        return
    echart(
        ech.trend_option(rc.view_trend(view, metric, picked, palette)),
        key="trend_chart",
    )
    notes = [rc.trend_note(view.rows, metric, picked, view.incomplete)]
    if notes[0]:
        st.caption(md(notes[0]))


def bound(value: float) -> str:
    """An interval's end to three significant figures ('7.51', '38.4', '152', '1,236'): resampling
    gives a range, not cents, and the table's columns stay narrow enough to fit 1280 px."""
    places = 2 if abs(value) < 9.995 else 1 if abs(value) < 99.95 else 0
    return f"{value:,.{places}f}"


def table_interval(low, high, fmt=bound):
    """An interval as the table's narrow column writes it: '12.9–40.8', '207–∞' (no upper bound),
    None (—) where there is none."""
    text = rv.interval_range(low, high, fmt, "")
    return text.replace("unbounded", "∞") if text else None


# A week's or a month's cost and revenue in whole euros (Streamlit writes a step of 1 without cents): the
# sums are large and their cents would take the room the channel names need; CPO keeps its cents.
WHOLE_EUROS = {"week": 0, "month": 0}
TABLE_HEADERS = {
    "channel_name": "Channel",
    "part": "Days",
    "cost": "Cost",
    "ihc": "Conversions",
    "ihc_revenue": "Revenue",
    "CPO": "CPO",
    "CPO range": "CPO 90%",
    "ROAS": "ROAS",
    "ROAS range": "ROAS 90%",
    "support": "Based on",
}


def table_texts(table: pd.DataFrame, shown: list, grain: str) -> dict:
    """Each shown column's values as the table writes them (its formats below), to size the columns."""

    def euros(values, places=2):
        return [None if pd.isna(v) else f"€{v:,.{places}f}" for v in values]

    def two_places(values):
        return [None if pd.isna(v) else f"{v:.2f}" for v in values]

    dates = table["date"]
    if grain == "week":
        dates = [f"{d:%b} {d.day}" for d in pd.to_datetime(dates)]
    elif grain == "month":
        dates = [f"{d:%b %Y}" for d in pd.to_datetime(dates)]
    formats = {
        "channel_name": lambda v: [clip(n) for n in v],
        "date": lambda v: [str(d) for d in dates],
        "cost": lambda v: euros(v, WHOLE_EUROS.get(grain, 2)),
        "ihc_revenue": lambda v: euros(v, WHOLE_EUROS.get(grain, 2)),
        "CPO": euros,
        "ihc": two_places,
        "ROAS": two_places,
        "support": lambda v: [f"{int(n):,}" for n in v],
    }
    return {c: formats.get(c, list)(table[c]) for c in shown}


def table_widths(table: pd.DataFrame, shown: list, grain: str) -> dict:
    """Column widths (px) in which every header and value of the shown table is whole at 1280 px with the
    sidebar open: each column as wide as its longest text, the room left shared out; without room enough,
    the channel names give way first (clipped with '…', whole in the CSV). The room is the main area's
    less the page's own scrollbar (the Report is always taller than the window: fitted to the whole main
    area, 806 px of columns sat in 798 px and "Based on" ran under the table's scrollbar) and less the
    table's own where its rows scroll."""
    headers = {**TABLE_HEADERS, "date": grain.capitalize() if grain != "day" else "Date"}
    texts = table_texts(table, shown, grain)
    needed = {c: column_px(headers[c], texts[c]) for c in shown}
    return fit_widths(needed, table_room(len(table), PAGE_TABLE_PX), squeeze="channel_name")


def table_and_downloads(ws, view: rv.ReportView, path, fp, start, end, channels) -> None:
    st.subheader({"day": "Channel-days", "week": "Channel-weeks", "month": "Channel-months"}[view.grain])
    if view.grain != "day":
        st.caption(
            f"Each row is a channel's {view.grain}, dated by its first day in the chosen range; Days says when "
            "the range covers only a part of it (“{0} of {1}”: {0} of its {1} days). The CSV keeps channel-days.".format(
                *PART_EXAMPLE[view.grain]
            )
        )
    rows = view.rows
    table = rv.table(view.periods)
    # The intervals sit right of their value, which shows the unit: no € sign to repeat; ∞ for no upper bound.
    table["CPO range"] = [table_interval(lo, hi) for lo, hi in zip(table["CPO_low"], table["CPO_high"])]
    table["ROAS range"] = [table_interval(lo, hi) for lo, hi in zip(table["ROAS_low"], table["ROAS_high"])]
    table["support"] = table["support"].fillna(0).astype(int)
    shown = ["channel_name", "date", "cost", "ihc", "ihc_revenue", "CPO", "CPO range", "ROAS", "ROAS range", "support"]
    period = view.grain != "day" and "days" in table
    if period:
        # A week or month: its first day as a short date ("Sep 4", "Sep 2023": a date, so the column sorts
        # in time), and a part the range covers only partly says so in a narrow column ("3 of 7").
        table["date"] = pd.to_datetime(table["date"])
        table["part"] = [rv.partial_text(n, of, unit="") for n, of in zip(table["days"], table["length"])]
        shown.insert(2, "part")
    widths = table_widths(table, shown, view.grain if period else "day")
    step = 1 if period and view.grain in WHOLE_EUROS else None  # whole euros (table_texts sizes them so)
    shown_table = table[shown].assign(channel_name=table["channel_name"].map(clip))  # the CSV keeps every name whole
    if step:  # Streamlit cuts a number down to its step (a week's €14.96 read €14): rounded first, as the tiles
        shown_table[["cost", "ihc_revenue"]] = shown_table[["cost", "ihc_revenue"]].round(0)
    st.dataframe(
        shown_table,
        hide_index=True,
        height=table_height(len(table)),  # the rows shown: a week's table is shorter than its days
        key="report_table",
        placeholder="—",
        column_config={
            # pinned: where the page is too narrow and the table scrolls sideways, the names stay in view
            "channel_name": st.column_config.TextColumn("Channel", width=widths["channel_name"], pinned=True),
            "date": (
                st.column_config.DateColumn(
                    view.grain.capitalize(),
                    format=PERIOD_FORMATS[view.grain],
                    width=widths["date"],
                    help=f"The {view.grain}'s first day in the chosen range.",
                )
                if period
                else st.column_config.TextColumn("Date", width=widths["date"])
            ),
            "part": st.column_config.TextColumn(
                "Days",
                width=widths.get("part"),
                help="{0} of {1}: the chosen range covers {0} of the {2}'s {1} days, so its sums cover fewer days "
                "than a whole {2}'s. Empty: the whole {2}.".format(*PART_EXAMPLE.get(view.grain, (3, 7)), view.grain),
            ),
            "cost": st.column_config.NumberColumn("Cost", format="euro", width=widths["cost"], step=step),
            "ihc": st.column_config.NumberColumn(
                "Conversions",
                format="%.2f",
                width=widths["ihc"],
                help=CONVERSIONS_HELP.format(what=f"channel-{view.grain}"),
            ),
            "ihc_revenue": st.column_config.NumberColumn(
                "Revenue",
                format="euro",
                width=widths["ihc_revenue"],
                step=step,
                help="Attributed revenue: credit × conversion revenue.",
            ),
            "CPO": st.column_config.NumberColumn("CPO", format="euro", width=widths["CPO"]),
            "CPO range": st.column_config.TextColumn(
                "CPO 90%",
                width=widths["CPO range"],
                help="The CPO's 90% interval (EUR), from resampling the conversions.",
            ),
            "ROAS": st.column_config.NumberColumn(
                "ROAS", format="%.2f", width=widths["ROAS"], help="Revenue per EUR of cost."
            ),
            "ROAS range": st.column_config.TextColumn(
                "ROAS 90%",
                width=widths["ROAS range"],
                help="The ROAS's 90% interval, from resampling the conversions.",
            ),
            "support": st.column_config.NumberColumn(
                "Based on",
                width=widths["support"],
                alignment="left",  # under its header's first letters, not off at the table's right edge
                help=f"Conversions behind it: the distinct conversions that gave this channel-day credit; below "
                f"{rv.FEW_CONVERSIONS} its CPO and ROAS can move a lot.",
            ),
        },
    )
    models = [c.model for c in view.coverage]
    name = rc.report_file_name(models, rows["date"].min(), rows["date"].max(), view.basis, "csv", channels or ())
    # One row that wraps: each button as wide as its words, so none is squeezed to "Download …" (four
    # columns of fixed shares were, once the database step added its Save button and note).
    row = st.container(horizontal=True, wrap=True, vertical_alignment="top", key="report_downloads")
    row.download_button(
        "Download CSV",
        lambda: report_csv(path, fp, start, end, channels, view.basis),  # built when clicked
        file_name=name,
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key="download_csv",
        type="primary",
        help=f"The {len(rows):,} rows shown, in the format of `python -m pipeline export`.",
    )
    row.download_button(
        "CSV with intervals",
        lambda: report_csv(path, fp, start, end, channels, view.basis, True),
        file_name=name.replace(".csv", "_intervals.csv"),
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key="download_csv_intervals",
        help="The same rows plus CPO_low, CPO_high, ROAS_low, ROAS_high (`export --intervals`).",
    )
    source = source_name(ws)
    # The file is the view on screen: its grain, the trend's channels and metric (review 16 F6).
    trend = st.session_state.get("trend_channels")
    html_view = (tuple(trend) if trend else None, st.session_state.get("trend_metric", "ihc_revenue"))
    args = ReportViewArgs(start, end, channels, view.basis, view.grain)
    row.download_button(
        "Report (HTML)",
        lambda: report_html(path, fp, args, source, *html_view),  # built when clicked
        file_name=name.replace(".csv", ".html"),
        mime="text/html",
        icon=":material/description:",
        on_click="ignore",
        key="download_html",
        help="One self-contained file to send: tiles, interactive charts, the channel table, models, dates "
        "and data checks. Opens offline.",
    )
    if server_view() is None:  # a server source's data stays on the server
        with row:
            database_download(ws, "download_db", "attribution-enriched.db")
    shown_rows = (
        f"{len(view.periods):,} channel-{view.grain}s shown · CSV: {len(rows):,} channel-days"
        if view.grain != "day"
        else f"{len(rows):,} rows"
    )
    st.caption(
        f"{shown_rows} · CPO and ROAS are empty (—) where undefined: no attributed conversion / no cost; "
        "an interval (CPO 90%, ROAS 90%: from resampling the conversions) is empty where there is no spread, "
        "∞ where it has no upper bound; "
        "Based on: the conversions behind the row's credit."
    )


def header(ws, states: dict, view: rv.ReportView) -> None:
    """Which models the attribution holds, and the report's warnings; a one-click fix for mixed models."""
    rrec = states["report"].record
    coverage = view.coverage
    built = f" · report built {rrec.started_at}" if rrec else ""
    if len(coverage) == 1:
        c = coverage[0]
        st.caption(
            f"Attribution: **{md(model_label(c.model))}** · {rv.attributed_text(c.conversions, view)} "
            f"({md(c.first_date)} … {md(c.last_date)}){built}"
        )
    elif coverage:
        parts = "; ".join(
            f"**{md(model_label(c.model))}** for {c.conversions:,} conversions ({md(c.first_date)} … {md(c.last_date)})"
            for c in coverage
        )
        with st.container(border=True):
            st.warning(
                f"This report mixes models: {parts}. Channel figures add up credit from different models, "
                "so they compare neither model with the other.",
                icon=":material/warning:",
            )
            for i, model in enumerate(rerun_choices(coverage, states)):
                if st.button(
                    f"Re-run all conversions with {clip(model_label(model))}",
                    key="rerun_one_model" if i == 0 else f"rerun_with_{model}",
                    icon=":material/refresh:",
                    type="primary" if i == 0 else "secondary",
                    help="Attributes every conversion with this model (all dates, the stored lookback), "
                    "replacing the mixed credit.",
                ):
                    rerun_all(ws, states, model)
    for warning in view.warnings:
        if "mixes models" not in warning:
            st.caption("⚠ " + md(warning[0].upper() + warning[1:]) + ".")


def rerun_choices(coverage: list, states: dict) -> list[str]:
    """The models a mixed report can be re-run with: the latest run's first (what the analyst just chose),
    then the others the attribution holds, most conversions first."""
    arec = states["attribute"].record
    latest = (arec.params or {}).get("model") if arec else None
    held = [c.model for c in coverage]
    return sorted(held, key=lambda m: m != latest)


def rerun_all(ws, states: dict, model: str) -> None:
    jrec = states["journeys"].record
    lookback = (jrec.params or {}).get("lookback_days") if jrec else None
    arec = states["attribute"].record
    params = dict((arec.params or {}).get("params") or {}) if arec and arec.params.get("model") == model else {}
    bar = st.progress(0.0, text="Starting…")
    try:
        ws.run(RunOptions(Window(None, None, lookback), model, params), StreamlitProgress(bar))
    except PipelineError as exc:
        bar.empty()
        st.error(f"**The run stopped:** {exc}  \nThe previous results are unchanged.", icon=":material/warning:")
        return
    # the Pipeline page's "Last run" box told of the run before this one, under stage cards of this one
    st.session_state.pop(LAST_RUN_OUTCOME, None)
    st.rerun()


def filter_placeholder() -> str:
    """The filter row's place while a first view's tiles go out before it (``TILES_FIRST``): its three
    labels over grey boxes as wide and tall as the widgets (``FILTER_PX``, ``FILTER_ROW_PX``), in a row
    that wraps like theirs, so the tiles below do not move when the widgets replace it (measured in
    Chromium at 1280, 1024 and 800 px: tests/test_e2e_first_view.py). Drawn with ``st.html``, whose code
    the page's style (``LAYOUT_STYLE``) has the browser fetch already: Markdown with HTML in it had it fetch
    and run ``rehype-raw`` and its ``lib`` (448 kB) before the tiles, which then came with the charts in 5
    of 6 first visits (docs/dashboard.md, Speed)."""
    label = BASIS_LABELS[st.session_state["report_basis"]]  # settled (``settle_filters``)
    # the theme's (.streamlit/config.toml) text and widget background, as Streamlit draws the widgets
    ink, box = st.get_option("theme.textColor"), st.get_option("theme.secondaryBackgroundColor")
    h = FILTER_ROW_PX
    sizes = {
        f"{label}s": f"width:{FILTER_PX['dates']}px;height:{h['input']}px",
        "Channels": f"flex:1 1 0;min-width:{FILTER_PX['channels']}px;height:{h['input']}px",
        "Date credit by": f"width:{FILTER_PX['basis']}px;height:{h['radio']}px",
    }
    parts = [
        f'<div style="{size};display:flex;flex-direction:column">'
        f'<div style="height:{h["label"]}px;font-size:0.875rem;line-height:1.6;color:{ink};opacity:0.6">{text}</div>'
        f'<div style="flex:1;border-radius:0.5rem;background:{box}"></div></div>'
        for text, size in sizes.items()
    ]
    row = "display:flex;flex-wrap:wrap;gap:2rem"
    return f'<div class="report-filter-placeholder" style="{row}">{"".join(parts)}</div>'


def body(ws, path, fp) -> None:
    states = stage_status(path, fp)
    server_caption()
    if not has_report(path, fp):
        not_ready("There is no channel report in this database yet. Run the pipeline to build it.")
        st.stop()
    if states["report"].state != "done":
        st.warning(
            f"The report is {states['report'].state} ({md(states['report'].reason)}); it shows the last "
            "results. Run the pipeline to bring it up to date.",
            icon=":material/warning:",
        )
    span = report_span(path, fp)  # a copy of the cached report each call: read once for the row
    settle_filters(span)
    # On a new browser's first view the tiles go out before the filter row (``TILES_FIRST``), which
    # keeps its place meanwhile (``filter_placeholder``) and is drawn once the view is out.
    placeholder, row = st.empty(), st.empty()
    # Not with channels chosen (a shared view): their chips can make the row taller than its placeholder.
    tiles_first = bool(st.session_state.get(TILES_FIRST)) and not st.session_state.get("report_channels")
    st.session_state[TILES_FIRST] = tiles_first  # for the view's pause after the tiles (view_body)
    if tiles_first:
        placeholder.html(filter_placeholder())
    else:
        with row.container():
            filter_row(span)
    view_fragment(ws, path, fp)
    if tiles_first:
        st.session_state.pop(TILES_FIRST, None)
        with row.container():
            filter_row(span)


def view_body(ws, path, fp) -> None:
    states = stage_status(path, fp)
    start, end, channels, basis = filter_values(path, fp)
    restore("report_grain", "per", lambda v: v if v in rv.GRAINS else "day", default="day")
    grain = st.session_state["report_grain"]
    args = ReportViewArgs(start, end, channels, basis, grain)
    view = report_view(path, fp, args)
    st.session_state[REPORT_VIEW_ARGS] = args  # read ahead after a run
    header(ws, states, view)
    if view.empty:
        # not st.stop(): on a first view the filter row is drawn after this fragment, to widen them
        st.info("No channel-day matches these filters. Widen the date range or clear the channel filter.")
        return
    palette = colors(path, fp)
    kpi_tiles(view)
    if st.session_state.get(TILES_FIRST):
        time.sleep(FRAME_PAUSE)
    ratio_charts(view.totals, palette)
    few = rc.few_channels(view.totals)
    if few:
        st.caption(
            f"{rc.FEW_MARK} pale bars rest on fewer than {rv.FEW_CONVERSIONS} attributed conversions: "
            f"{', '.join(md(c, 60) for c in few)}. Whiskers: 90% intervals from resampling the conversions."
        )
    unpaid_note(view.totals)
    echart(ech.cost_revenue_option(view.totals, palette), key="cost_revenue_chart")
    trend(view, palette, channels)
    table_and_downloads(ws, view, path, fp, start, end, channels)


RATIO_FRAGMENT = "ratio_view"  # the key of the CPO and ROAS charts' fragment (``ratio_charts``)


def redraw_ratios() -> None:
    """The log toggle's ``on_change``: rerun only the CPO and ROAS charts (``ratio_charts``)."""
    st.rerun(RATIO_FRAGMENT)


@st.fragment(key=RATIO_FRAGMENT)
def ratio_charts(totals: pd.DataFrame, palette: dict) -> None:
    """The CPO and ROAS charts and their log-axes toggle, a fragment of its own inside the view: the
    toggle redraws these two charts alone, not the tiles, the other charts and the table (it reran the
    whole view: docs/dashboard.md, Speed)."""
    # side by side in one row that wraps (RATIO_CHART_PX): the charts are its parts, each half (two
    # columns were three elements)
    pair = st.container(horizontal=True, wrap=True, gap="medium", key="ratio_charts")
    log = st.session_state.get("ratio_log_scale", False)
    with pair:
        echart(ech.ratio_option(totals, "CPO", palette, log), key="cpo_chart")
        echart(ech.ratio_option(totals, "ROAS", palette, log), key="roas_chart")
    cut = rc.cut_bars_note(totals, log, whole="the logarithmic axes below show every bar whole")
    if cut:
        st.caption(md(cut))
    st.toggle(
        "Logarithmic axes for CPO and ROAS",
        key="ratio_log_scale",
        on_change=redraw_ratios,
        help="When one channel's CPO or ROAS is many times the others', a log axis keeps every "
        "bar readable. A ROAS of 0 cannot sit on a log axis: its value is written instead.",
    )


@st.fragment
def report_fragment(ws, path, fp) -> None:
    """The report below its title, as a fragment: a change of its settings reruns only this part (the
    sidebar and the navigation stay as they are, in the browser too). Anything that changes the database
    (a run) reruns the whole app."""
    started = time.perf_counter()
    with shown_errors():
        body(ws, path, fp)
    log_run_time("Report (fragment)", started)


@st.fragment(key=VIEW_FRAGMENT)
def view_fragment(ws, path, fp) -> None:
    """Everything below the filters, a fragment of its own: a change of the dates or the channels reruns
    it alone (``redraw_view``), as does any widget inside it (the trend's, the table's period); the log
    axes rerun only their two charts (``ratio_charts``)."""
    started = time.perf_counter()
    with shown_errors():
        view_body(ws, path, fp)
    log_run_time("Report (view)", started)


with shown_errors():
    st.html(LAYOUT_STYLE)
    frame = st.empty()
    new_view = not st.session_state.get("_report_drawn")
    if new_view:  # a new session: say so before any read (on a cold server the first reads take seconds)
        st.session_state["_report_drawn"] = True
        frame.caption(":material/hourglass_top: Loading the report…")
    # A browser that has only just loaded the app (not one coming from another page): the tiles first.
    st.session_state[TILES_FIRST] = new_view and bool(st.session_state.get("_first_run"))
    ws = workspace()
    path, fp = data_key(ws)  # this session's database, or the server source picked on the Data page
    frame.empty()
    report_fragment(ws, path, fp)
