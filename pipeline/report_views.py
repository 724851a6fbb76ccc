"""Views of the channel report for the dashboard: totals per channel, KPI tiles, daily series.

``report_view(con, …)`` gathers everything the Report page (and the HTML report) shows for one set of
filters, in one call: the rows, per-channel totals with their 90% intervals and support, the KPIs with
theirs, which models the attribution holds, and the warnings about it (mixed models, incomplete days).

Every number comes from the rows ``export.read_report`` returns (the same rows the CSV export writes),
and every ratio from ``export.add_ratios``: CPO = cost / ihc and ROAS = ihc_revenue / cost, NaN where
the denominator is 0 — shown empty, never as infinity or a fake 0. Totals are sums of the rows first,
ratios of the sums second (a ratio of sums, not an average of daily ratios).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import math
import sqlite3
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import numpy as np
import pandas as pd

from .completeness import IncompleteDays, incomplete_days
from .coverage import ModelCoverage, model_coverage
from .export import add_ratios, read_report
from .intervals import FEW_CONVERSIONS, Draw, key_positions, report_interval_tables, resample_draw
from .report_warnings import warnings_of
from .schema import NO_SESSION_REASON
from .window import GRAINS, period_start  # noqa: F401 - GRAINS: the views' periods, re-exported

SUMMED = ["cost", "ihc", "ihc_revenue"]
# What the daily trend can show, with its axis title.
DAILY_METRICS = {
    "ihc_revenue": "Attributed revenue (EUR)",
    "cost": "Cost (EUR)",
    "ihc": "Attributed conversions",
    "ROAS": "ROAS (revenue / cost, ratio)",
    "CPO": "CPO (cost per attributed conversion, EUR)",
}


@dataclass(frozen=True)
class Kpis:
    cost: float
    conversions: float  # attributed conversions (sum of ihc)
    revenue: float  # attributed revenue (sum of ihc × revenue)
    cpo: Optional[float]  # None where no conversion is attributed
    roas: Optional[float]  # None where nothing was spent
    channels: int
    days: int


def kpis(report: pd.DataFrame) -> Kpis:
    """The totals of the report rows and their ratios."""
    cost, ihc, rev = (float(report[c].sum()) if len(report) else 0.0 for c in SUMMED)
    return Kpis(
        cost=cost,
        conversions=ihc,
        revenue=rev,
        cpo=cost / ihc if ihc else None,
        roas=rev / cost if cost else None,
        channels=int(report["channel_name"].nunique()) if len(report) else 0,
        days=int(report["date"].nunique()) if len(report) else 0,
    )


def channel_totals(report: pd.DataFrame) -> pd.DataFrame:
    """One row per channel: summed cost, ihc, ihc_revenue over the report rows, then CPO and ROAS."""
    if len(report) == 0:
        empty = pd.DataFrame(
            {"channel_name": pd.Series([], dtype=object), **{c: pd.Series([], dtype=float) for c in SUMMED}}
        )
        return add_ratios(empty)
    totals = report.groupby("channel_name", as_index=False, sort=True)[SUMMED].sum()
    return add_ratios(totals)


def ranked(totals: pd.DataFrame, metric: str, ascending: bool) -> pd.DataFrame:
    """Channels with a defined ``metric`` sorted by it, then the channels where it is undefined
    (NaN) in name order, so a chart shows them as empty slots at the end."""
    defined = totals[totals[metric].notna()].sort_values([metric, "channel_name"], ascending=[ascending, True])
    undefined = totals[totals[metric].isna()].sort_values("channel_name")
    return pd.concat([defined, undefined], ignore_index=True)


def period_table(grain: str, first: str, last: str) -> pd.DataFrame:
    """One row per period of ``grain`` that meets the dates ``first``…``last`` ('YYYY-MM-DD'):
    ``period`` (the day it starts on), ``date`` (its first day inside the range, so no period is dated
    before the filter's start), ``days`` (its days inside the range) and ``length`` (its days). A period
    with ``days < length`` is partial: its sums cover fewer days than the others' and must say so."""
    spans = period_spans(grain, first, last)
    period, day, days, length = zip(*spans) if spans else ((), (), (), ())
    return pd.DataFrame(
        {
            "period": pd.Series(period, dtype="str"),
            "date": pd.Series(day, dtype="str"),
            "days": np.array(days, dtype=np.int64),
            "length": np.array(length, dtype=np.int32 if grain == "month" else np.int64),
        }
    )


@functools.lru_cache(maxsize=256)
def period_spans(grain: str, first: str, last: str) -> tuple[tuple[str, str, int, int], ...]:
    """``period_table``'s rows as (period, date, days, length) tuples, counted with the calendar (a
    filter change asks for them several times: the trend, its lone-period check, the table)."""
    if grain not in GRAINS:
        raise ValueError(f"unknown grain {grain!r}")
    day, last_day = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    spans = []
    while day <= last_day:
        if grain == "day":
            begin, length = day, 1
        elif grain == "week":  # ISO weeks: from Monday (window.period_start)
            begin, length = day - dt.timedelta(days=day.weekday()), 7
        else:
            begin, length = day.replace(day=1), calendar.monthrange(day.year, day.month)[1]
        stop = min(begin + dt.timedelta(days=length - 1), last_day)
        spans.append((begin.isoformat(), day.isoformat(), (stop - day).days + 1, length))
        day = stop + dt.timedelta(days=1)
    return tuple(spans)


def partial_text(days: int, length: int, unit: str = " days") -> str:
    """'3 of 7 days' for a period the range covers only partly, '' for a whole one; the tables' narrow
    "Days" column writes it without ``unit``: '3 of 7' (not '3/7': beside "Sep 2023", '6/30' read as a
    date)."""
    return f"{days} of {length}{unit}" if days < length else ""


def clip_periods(dates: pd.Series, grain: str, first: str, last: str) -> pd.Series:
    """Period starts (``window.period_start``) replaced by the period's first day inside first…last."""
    if grain == "day":
        return dates
    return dates.map({period: day for period, day, _, _ in period_spans(grain, first, last)}).fillna(dates)


def by_period(
    report: pd.DataFrame, grain: str = "day", first: Optional[str] = None, last: Optional[str] = None
) -> pd.DataFrame:
    """The report rows summed per channel and period (``date`` = the period's first day, or the first
    day of ``first``…``last`` inside it), with CPO and ROAS of the sums; ``day`` returns them as they are."""
    if grain == "day":
        return report
    starts = period_start(report["date"], grain)
    if first and last:
        starts = clip_periods(starts, grain, first, last)
    rows = report.assign(date=starts)
    return add_ratios(rows.groupby(["channel_name", "date"], as_index=False, sort=True)[SUMMED].sum()).sort_values(
        ["date", "channel_name"], ignore_index=True
    )


def daily(
    report: pd.DataFrame,
    metric: str,
    channels: Optional[Iterable[str]] = None,
    grain: str = "day",
    first: Optional[str] = None,
    last: Optional[str] = None,
) -> pd.DataFrame:
    """One row per (period, channel): the metric of that channel's period (ratios from its sums); the
    period is a day unless ``grain`` is week or month, dated by its first day inside ``first``…``last``
    when given. CPO and ROAS are undefined (NaN) where nothing was spent: a channel without cost has no
    cost per order, not a cost of €0 per order."""
    if metric not in DAILY_METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    rows = report
    if channels is not None:
        rows = rows[rows["channel_name"].isin(list(channels))]
    starts = period_start(rows["date"], grain)
    if first and last:
        starts = clip_periods(starts, grain, first, last)
    rows = rows.assign(date=starts)
    by_day = rows.groupby(["date", "channel_name"], as_index=False, sort=True)[SUMMED].sum()
    by_day = add_ratios(by_day)
    if metric == "CPO":
        by_day.loc[by_day["cost"] <= 0, "CPO"] = np.nan
    return by_day[["date", "channel_name", metric]].rename(columns={metric: "value"})


def unpaid_channels(report: pd.DataFrame, channels: Iterable[str]) -> list[str]:
    """Those of ``channels`` with no cost in ``report``: CPO and ROAS are undefined for them."""
    wanted = list(channels)
    cost = report[report["channel_name"].isin(wanted)].groupby("channel_name")["cost"].sum()
    return [c for c in wanted if cost.get(c, 0.0) <= 0]


def blends_unpaid(totals: pd.DataFrame) -> bool:
    """Whether the view's CPO and ROAS mix paid channels with credited channels without cost: the paid
    channels' cost over every channel's conversions (and revenue), what analysts call a *blended* CPO and
    ROAS. ``totals``: ``channel_totals`` of the view."""
    unpaid_credited = bool(((totals["ihc"] > 0) & (totals["cost"] <= 0)).any())
    return unpaid_credited and bool((totals["cost"] > 0).any())


def ratio_labels(totals: pd.DataFrame) -> tuple[str, str]:
    """The CPO and ROAS tiles' names, on every face (dashboard, HTML report): "Blended CPO" and "Blended
    ROAS" when they blend in channels without cost (``blends_unpaid``). On the demo the tile said "CPO
    €3.98" while every paid channel's CPO was €3.92 or more and the paid channels' own was €8.96: read as a
    paid CPO, it halved it. ``blended_note`` under the tiles gives the paid channels' own figures."""
    if blends_unpaid(totals):
        return "Blended CPO", "Blended ROAS"
    return "CPO", "ROAS"


def blended_note(totals: pd.DataFrame) -> str:
    """Under the KPI tiles: what their CPO and ROAS blend in, or '' when nothing. Over channels with and
    without cost the tiles' CPO divides the paid channels' cost by every channel's conversions (and ROAS
    adds the unpaid channels' revenue): the tiles say "Blended" (``ratio_labels``), and the note says how
    much of the conversions that is and gives the paid channels' own CPO and ROAS; over channels without
    any cost, that their €0 CPO is by construction. ``totals``: ``channel_totals`` of the view."""
    credited = totals[totals["ihc"] > 0]
    unpaid = credited[credited["cost"] <= 0]
    if unpaid.empty:
        return ""
    names = unpaid.sort_values(["ihc", "channel_name"], ascending=[False, True])["channel_name"].tolist()
    named = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    paid = totals[totals["cost"] > 0]
    if paid.empty:
        return f"No channel here has a cost ({named}): a CPO of €0.00 and no ROAS are by construction, not a result."
    share = float(unpaid["ihc"].sum()) / float(credited["ihc"].sum())
    cost, conversions, revenue = (float(paid[c].sum()) for c in ("cost", "ihc", "ihc_revenue"))
    cpo = f"CPO €{cost / conversions:,.2f}" if conversions else "no CPO (no attributed conversion)"
    return (
        f"Blended CPO and ROAS: the paid channels' cost over the conversions and revenue of every channel, "
        f"those without cost too ({named}: {share:.0%} of the conversions). The paid channels alone: {cpo}, "
        f"ROAS {float(revenue) / cost:,.2f}."
    )


def undefined_note(totals: pd.DataFrame, metric: str) -> str:
    """A sentence naming the channels where ``metric`` is undefined, or '' when there are none."""
    missing = totals.loc[totals[metric].isna(), "channel_name"].tolist()
    if not missing:
        return ""
    why = "no attributed conversion" if metric == "CPO" else "no cost"
    names = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    return f"{metric} is undefined ({why}) for: {names}."


def interval_range(low, high, fmt, prefix: str = "90%: ") -> str:
    """'90%: €16.05–€23.13' ('…–unbounded'); '' where the ratio is undefined or the interval has no
    spread at ``fmt``'s precision. The tiles, the table and the HTML report write intervals this way."""
    if low is None or pd.isna(low):
        return ""
    upper = "unbounded" if high is None or not math.isfinite(high) else fmt(high)
    return "" if upper == fmt(low) else f"{prefix}{fmt(low)}–{upper}"


def table(report: pd.DataFrame) -> pd.DataFrame:
    """The report rows as the tables show them (the dashboard's and the HTML report's): the export's
    columns, NaN kept, and the CPO (with its interval) empty for a row without cost — as the charts and
    the trend leave those channels out: a "€0.00" would read as the cheapest channel. The CSV keeps 0."""
    out = report.copy()
    for col in ("CPO", "ROAS"):
        out[col] = out[col].astype(np.float64)
    unpaid = out["cost"].to_numpy(dtype=np.float64) <= 0
    for col in ("CPO", "CPO_low", "CPO_high"):
        if col in out:
            out[col] = out[col].astype(np.float64).mask(unpaid)
    return out


@dataclass
class ReportView:
    """What the report shows for one set of filters (``report_view``)."""

    rows: pd.DataFrame  # export.read_report: channel-days with CPO/ROAS
    totals: pd.DataFrame  # channel_totals + CPO_low, CPO_high, ROAS_low, ROAS_high, support, few
    kpis: "Kpis"
    kpi_bounds: dict  # CPO_low, CPO_high, ROAS_low, ROAS_high, support of the whole filter
    periods: pd.DataFrame  # by_period(rows, grain) joined with its intervals: the table's rows
    basis: str  # export.DATE_BASES
    grain: str = "day"  # GRAINS: the table's and the trend's period
    coverage: list[ModelCoverage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # report_warnings' messages
    incomplete: Optional[IncompleteDays] = None  # only the incomplete days this view shows
    all_conversions: int = 0  # the conversions in the database, attributed or not
    unattributed: dict = field(default_factory=dict)  # reason → conversions the stored runs left out
    first: str = ""  # the filter's dates as 'YYYY-MM-DD' (the rows' own when the filter is open)
    last: str = ""

    @property
    def empty(self) -> bool:
        return self.rows.empty


@dataclass(frozen=True)
class ViewReads:
    """What every view of one database state reads whatever its filters: the intervals' draw, the
    models the attribution holds, the conversion counts and the incomplete days (``view_reads``)."""

    draw: Optional[Draw]  # None: not drawn (a view with no rows draws nothing)
    coverage: list[ModelCoverage]
    all_conversions: int
    unattributed: dict
    incomplete: Optional[IncompleteDays]


def view_reads(con: sqlite3.Connection, seed: int = 0, draw: bool = True) -> ViewReads:
    """``ViewReads`` for ``report_view(…, seed=seed)``: read once per database state (the dashboard keeps
    them), so a filter change reads only what depends on the filters. ``draw=False``: without the
    resamples (for a view with no rows, which has no intervals)."""
    total, left_out = conversion_counts(con)
    resamples = resample_draw(con, seed=seed) if draw else None
    return ViewReads(resamples, model_coverage(con), total, left_out, incomplete_days(con))


def report_view(
    con: sqlite3.Connection,
    start: Optional[str] = None,
    end: Optional[str] = None,
    channels: Optional[Iterable[str]] = None,
    by: str = "session-date",
    seed: int = 0,
    grain: str = "day",
    reads: Optional[ViewReads] = None,
    read_credit: Optional[Callable[[Optional[str], Optional[str], str], pd.DataFrame]] = None,
) -> ReportView:
    """Everything the report shows for these filters; intervals from ``intervals.report_intervals``
    (200 resamples, ``seed``), marked ``few`` where they rest on fewer than FEW_CONVERSIONS. ``grain``:
    the period of the table's rows (day, week, month). ``reads``: ``view_reads(con, seed)`` of this
    database state, ``read_credit``: ``intervals.credit_rows`` of it without the connection (both kept by
    the dashboard); the same view as without them."""
    rows = read_report(con, start, end, list(channels) if channels else None, by)
    reads = reads if reads is not None else view_reads(con, seed, draw=len(rows) > 0)
    totals = channel_totals(rows)
    bound_cols = ["CPO_low", "CPO_high", "ROAS_low", "ROAS_high", "support"]
    if len(rows):
        # One read of the credit and one draw for all three (a channel's or the total's sums are the
        # same whatever period its dates are grouped in).
        per_channel, overall, bounds = report_interval_tables(
            con,
            rows,
            [("channel_name",), (), ("channel_name", "date")],
            basis=by,
            grain=grain,
            seed=seed,
            draw=reads.draw,
            read_credit=read_credit,
        )
        totals = _joined(totals, per_channel, ["channel_name"], bound_cols)
        kpi_bounds = {c: float(overall.iloc[0][c]) for c in bound_cols}
        first, last = start or str(rows["date"].min()), end or str(rows["date"].max())
        bounds = bounds.assign(date=clip_periods(bounds["date"], grain, first, last))
        periods = _joined(by_period(rows, grain, first, last), bounds, ["channel_name", "date"], bound_cols)
        if grain != "day":
            spans = period_table(grain, first, last)[["date", "days", "length"]]
            periods = periods.merge(spans, on="date", how="left")
    else:
        first, last = start or "", end or ""
        for c in bound_cols:
            totals[c] = pd.Series([], dtype=float)
        kpi_bounds = dict.fromkeys(bound_cols, float("nan"))
        periods = rows.assign(**{c: pd.Series([], dtype=float) for c in bound_cols})
    totals["few"] = totals["support"].fillna(0) < FEW_CONVERSIONS
    coverage = reads.coverage
    late = shown_incomplete(reads.incomplete, by, first, last)
    return ReportView(
        rows=rows,
        totals=totals,
        kpis=kpis(rows),
        kpi_bounds=kpi_bounds,
        periods=periods,
        basis=by,
        grain=grain,
        coverage=coverage,
        warnings=[message for _, message, _, _ in warnings_of(coverage, late)],
        incomplete=late,
        all_conversions=reads.all_conversions,
        unattributed=reads.unattributed,
        first=first,
        last=last,
    )


def _joined(left: pd.DataFrame, right: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """``left.merge(right[keys + columns], on=keys, how="left")`` where ``right`` has one row per key and
    ``left`` has each of its keys: ``right``'s columns put in ``left``'s row order by position (a merge of
    two small frames on string keys was a tenth of a view's time). Any other case is merged."""
    positions = _positions(left, right, keys)
    if positions is None:
        return left.merge(right[keys + columns], on=keys, how="left")
    out = left.reset_index(drop=True)
    for column in columns:
        out[column] = right[column].to_numpy()[positions]
    return out


def _positions(left: pd.DataFrame, right: pd.DataFrame, keys: list[str]) -> Optional[np.ndarray]:
    """For each row of ``left``, the row of ``right`` with its ``keys``; None unless every row of ``left``
    has exactly one."""
    if any(right[key].isna().any() for key in keys):
        return None
    positions = key_positions([right[key] for key in keys], [left[key] for key in keys])
    return None if positions is None or (positions < 0).any() else positions


def shown_incomplete(late: Optional[IncompleteDays], basis: str, first: str, last: str) -> Optional[IncompleteDays]:
    """The incomplete session days inside ``first``…``last`` (None when there are none): a warning
    about a day the view does not show, or on a conversion-date view (where credit is dated by the
    order, which has happened), would be about something the reader is not looking at."""
    if late is None or basis != "session-date" or not first or not last:
        return None
    keep = [i for i, day in enumerate(late.days) if first <= day <= last]
    if not keep:
        return None
    return IncompleteDays(late.last_conversion, [late.days[i] for i in keep], [late.share_in[i] for i in keep])


def conversion_counts(con: sqlite3.Connection) -> tuple[int, dict]:
    """The conversions in the database, and those the stored runs could not attribute by reason."""
    from .db import table_exists

    total = (
        int(con.execute("SELECT count(*) FROM conversions").fetchone()[0]) if table_exists(con, "conversions") else 0
    )
    left_out: dict = {}
    if table_exists(con, "pipeline_unattributed"):
        left_out = {
            r: int(n) for r, n in con.execute("SELECT reason, count(*) FROM pipeline_unattributed GROUP BY reason")
        }
    return total, left_out


def attributed_text(attributed: int, view: ReportView) -> str:
    """'1,949 of 2,000 conversions (51 have no earlier session)': how many of the database's
    conversions the report's credit covers, and why the others are missing."""
    total = view.all_conversions
    if total <= attributed:
        return f"{attributed:,} conversions"
    missing = total - attributed
    no_session = view.unattributed.get(NO_SESSION_REASON, 0)
    if no_session == missing:
        why = f"{missing:,} {'has' if missing == 1 else 'have'} no earlier session"
    else:
        why = f"{missing:,} not attributed" + (
            f", {no_session:,} of them without an earlier session" if no_session else ""
        )
    return f"{attributed:,} of {total:,} conversions ({why})"
