"""Confidence on CPO and ROAS: 90% intervals from a bootstrap over conversions.

A channel-day's CPO and ROAS often rest on a handful of attributed conversions; a point estimate alone
hides that. The interval says how much the figure would move had a different sample of customers
converted, keeping the attribution of each conversion and the cost as they are:

- **Resampling unit: the conversion.** Each resample draws ``n`` of the ``n`` attributed conversions with
  replacement (multinomial counts, ``numpy.random.default_rng(seed)``: the same intervals for the same
  database and seed). A conversion keeps its per-session credit as stored in
  ``attribution_customer_journey``, so a resample's credit of a group is ``Σ count(conv) × credit(conv,
  group)`` — one sparse matrix product for all resamples and groups at once (no model is re-run).
- **Cost is fixed** (it is spent whatever converts); revenue moves with the credit.
- **Per resample**: CPO = cost / credit, ROAS = revenue-weighted credit / cost. A resample in which the
  group got no credit has an unbounded CPO (``inf``); a group without cost has CPO 0 where it has credit.
- **Interval**: the 5th and 95th percentiles of the resamples (``level`` = 0.9; the ``inverted_cdf``
  quantile, which picks resampled values and handles ``inf``), widened where needed to contain the point
  estimate. An unbounded upper CPO bound means that in more than 5% of the resamples the group got no
  credit; the CSV leaves such a cell empty, like every undefined ratio.
- **Support**: the number of distinct conversions that gave the group credit. Figures resting on fewer
  than ``FEW_CONVERSIONS`` are marked on the dashboard.

Limits (see docs/models.md, "Confidence intervals"): the bootstrap treats conversions as independent
and the attribution model as fixed; it says nothing about the model's own error (Compare models for
that), nor about cost data errors. With very few conversions (1–3) the intervals are as wide as the
data allows, not a statement of probability.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from .db import table_exists
from .report import DAY_COLUMNS
from .schema import channel_sql
from .window import period_start

LEVEL = 0.9
RESAMPLES = 200
FEW_CONVERSIONS = 10

# {day}: s.event_date (credit dated by session) or c.conv_date (by conversion), as export.DATE_BASES
CREDIT_ROWS_SQL = f"""
SELECT a.conv_id, {channel_sql("s.channel_name")} AS channel_name, {{day}} AS date,
       a.ihc AS ihc, a.ihc * coalesce(c.revenue, 0) AS revenue
FROM attribution_customer_journey a
JOIN session_sources s ON s.session_id = a.session_id
JOIN conversions c ON c.conv_id = a.conv_id
WHERE (:start IS NULL OR {{day}} >= :start) AND (:end IS NULL OR {{day}} <= :end)
"""

POPULATION_SQL = "SELECT DISTINCT conv_id FROM attribution_customer_journey ORDER BY conv_id"


@dataclass(frozen=True)
class Intervals:
    """Per group: the four bounds (NaN where undefined, ``inf`` where unbounded) and the support."""

    cpo_low: np.ndarray
    cpo_high: np.ndarray
    roas_low: np.ndarray
    roas_high: np.ndarray
    support: np.ndarray  # distinct conversions with credit in the group

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "CPO_low": self.cpo_low,
                "CPO_high": self.cpo_high,
                "ROAS_low": self.roas_low,
                "ROAS_high": self.roas_high,
                "support": self.support,
            }
        )


def resample_counts(n_conversions: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """How many times each of ``n_conversions`` conversions is drawn in each resample (``resamples`` ×
    ``n_conversions``, float64): the one draw every interval of a seed shares. Column-major: the sparse
    products take ``counts.T``, which is then contiguous (scipy copied a row-major draw, 3 MB at 2,000
    conversions, for each of a view's six products)."""
    rng = np.random.default_rng(seed)
    p = np.full(n_conversions, 1.0 / n_conversions)
    return np.asfortranarray(rng.multinomial(n_conversions, p, size=resamples).astype(np.float64))


def bootstrap(
    conversion: np.ndarray,
    group: np.ndarray,
    credit: np.ndarray,
    revenue: np.ndarray,
    cost: np.ndarray,
    *,
    n_conversions: Optional[int] = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
    counts: Optional[np.ndarray] = None,
) -> Intervals:
    """Intervals for ``len(cost)`` groups from per-row credit.

    Each row is one (conversion, group) credit: ``conversion`` codes in ``range(n)``, ``group`` codes in
    ``range(len(cost))``, ``credit`` and ``revenue`` (credit × the conversion's revenue). ``cost`` per group.
    ``n_conversions``: the population resampled (default: the highest code + 1); conversions without a
    row here still take part in the draw, so a group's interval does not depend on which others are shown.
    ``counts``: ``resample_counts(n, resamples, seed)`` drawn already (several groupings share one draw).
    """
    conversion = np.asarray(conversion, dtype=np.int64)
    group = np.asarray(group, dtype=np.int64)
    credit = np.asarray(credit, dtype=np.float64)
    revenue = np.asarray(revenue, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    n_groups = len(cost)
    n_conv = n_conversions if n_conversions is not None else (int(conversion.max()) + 1 if len(conversion) else 0)
    shape = (n_conv, n_groups)
    credit_m = sparse.csr_matrix((credit, (conversion, group)), shape=shape)
    revenue_m = sparse.csr_matrix((revenue, (conversion, group)), shape=shape)
    support_m = sparse.csr_matrix(((credit > 0).astype(np.float64), (conversion, group)), shape=shape)
    support = np.asarray((support_m > 0).sum(axis=0)).ravel().astype(np.int64)

    point_credit = np.asarray(credit_m.sum(axis=0)).ravel()
    point_revenue = np.asarray(revenue_m.sum(axis=0)).ravel()
    if n_conv:
        counts = resample_counts(n_conv, resamples, seed) if counts is None else counts
        credit_b = np.asarray(credit_m.T @ counts.T).T  # resamples × groups
        revenue_b = np.asarray(revenue_m.T @ counts.T).T
    else:
        credit_b = np.zeros((resamples, n_groups))
        revenue_b = np.zeros((resamples, n_groups))

    has_cost = cost != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        cpo_b = np.where(credit_b > 0, cost / np.where(credit_b > 0, credit_b, 1.0), np.where(has_cost, np.inf, 0.0))
        roas_b = revenue_b / np.where(has_cost, cost, 1.0)
        point_cpo = np.where(point_credit > 0, cost / np.where(point_credit > 0, point_credit, 1.0), np.nan)
        point_roas = np.where(has_cost, point_revenue / np.where(has_cost, cost, 1.0), np.nan)
    tail = (1.0 - level) / 2.0
    cpo_low, cpo_high = _bounds(cpo_b, tail, point_cpo)
    roas_low, roas_high = _bounds(roas_b, tail, point_roas)
    return Intervals(cpo_low, cpo_high, roas_low, roas_high, support)


def difference_intervals(
    conversion: np.ndarray,
    group: np.ndarray,
    credit_a: np.ndarray,
    credit_b: np.ndarray,
    n_groups: int,
    n_conversions: int,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
    counts: Optional[np.ndarray] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The interval of ``Σ (credit_b − credit_a)`` per group under a paired bootstrap over conversions:
    both models see the same resampled conversions, so what differs is the models, not the sample.

    Rows as in ``bootstrap`` (``credit_a`` and ``credit_b`` aligned: two models' credit of the same
    sessions; pass credit × revenue for revenue). A difference whose interval contains 0 is within the
    noise. Since both models share each channel's cost, a CPO difference has the opposite sign of the
    credit difference and a ROAS difference the sign of the revenue difference: the two intervals
    decide all three metrics."""
    conversion = np.asarray(conversion, dtype=np.int64)
    group = np.asarray(group, dtype=np.int64)
    diff = np.asarray(credit_b, dtype=np.float64) - np.asarray(credit_a, dtype=np.float64)
    point = np.bincount(group, weights=diff, minlength=n_groups)
    if n_conversions == 0:
        return point, point
    matrix = sparse.csr_matrix((diff, (conversion, group)), shape=(n_conversions, n_groups))
    counts = resample_counts(n_conversions, resamples, seed) if counts is None else counts
    samples = np.asarray(matrix.T @ counts.T).T
    tail = (1.0 - level) / 2.0
    low, high = _bounds(samples, tail, point)
    return low, high


def _bounds(samples: np.ndarray, tail: float, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``tail`` and ``1 - tail`` quantiles per column, widened to contain ``point``; NaN where the
    point estimate is undefined."""
    low = np.quantile(samples, tail, axis=0, method="inverted_cdf")
    high = np.quantile(samples, 1.0 - tail, axis=0, method="inverted_cdf")
    defined = np.isfinite(point)
    low = np.where(defined, np.minimum(low, np.where(defined, point, 0.0)), np.nan)
    high = np.where(defined, np.maximum(high, np.where(defined, point, 0.0)), np.nan)
    return low, high


@dataclass(frozen=True)
class Draw:
    """The population every interval resamples and its one draw (``resample_counts``)."""

    population: pd.Index  # every attributed conversion, in conv_id order
    counts: Optional[np.ndarray]  # resamples × len(population); None when nothing is attributed


def resample_draw(con: sqlite3.Connection, resamples: int = RESAMPLES, seed: int = 0) -> Draw:
    """Every attributed conversion is drawn, in conv_id order, whatever a report shows: the same
    channel-day gets the same interval in a filtered and an unfiltered export."""
    population = (
        pd.Index([c for (c,) in con.execute(POPULATION_SQL)])
        if table_exists(con, "attribution_customer_journey")
        else pd.Index([])
    )
    return Draw(population, resample_counts(len(population), resamples, seed) if len(population) else None)


def credit_rows(
    con: sqlite3.Connection, start: Optional[str] = None, end: Optional[str] = None, by: str = "session-date"
) -> pd.DataFrame:
    """Per attributed session in range: conv_id, channel_name, date (of the session, or of the
    conversion with ``by="conversion-date"``), ihc, revenue (ihc × revenue)."""
    columns = ["conv_id", "channel_name", "date", "ihc", "revenue"]
    if not table_exists(con, "attribution_customer_journey"):
        return pd.DataFrame({c: [] for c in columns})
    sql = CREDIT_ROWS_SQL.format(day=DAY_COLUMNS[by])
    rows = con.execute(sql, {"start": start, "end": end}).fetchall()
    return pd.DataFrame.from_records(rows, columns=columns)


def credit_within(credit: pd.DataFrame, start: Optional[str] = None, end: Optional[str] = None) -> pd.DataFrame:
    """The rows of ``credit_rows`` (of a wider range) dated ``start``…``end`` ('YYYY-MM-DD', None: open), in
    their order: what ``credit_rows`` reads for that range (the dashboard reads once per filter range and
    slices it for each channel filter, whose rows can span fewer days)."""
    if start is None and end is None:
        return credit
    dates = credit["date"]
    keep = np.ones(len(credit), dtype=bool)
    if start is not None:
        keep &= (dates >= start).to_numpy(dtype=bool)
    if end is not None:
        keep &= (dates <= end).to_numpy(dtype=bool)
    return credit if keep.all() else credit[keep].reset_index(drop=True)


def report_intervals(
    con: sqlite3.Connection,
    report: pd.DataFrame,
    *,
    by: Sequence[str] = ("channel_name", "date"),
    basis: str = "session-date",
    grain: str = "day",
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> pd.DataFrame:
    """Intervals for the rows of ``report`` (``export.read_report``'s channel-days) summed per ``by``:
    one row per group with its ``by`` columns, cost, CPO_low, CPO_high, ROAS_low, ROAS_high and support.
    ``by=("channel_name", "date")``: per channel-day; ``("channel_name",)``: per channel over the rows'
    dates; ``()``: one row for all of them (the KPI tiles). Only credit to the report's channel-days
    counts, so a filtered report gets the intervals of what it shows. ``basis``: the date basis of
    ``report`` (``export.DATE_BASES``); ``grain``: week or month groups the dates into periods."""
    return report_interval_tables(
        con, report, [by], basis=basis, grain=grain, resamples=resamples, seed=seed, level=level
    )[0]


def key_positions(table: list, rows: list) -> Optional[np.ndarray]:
    """For each row (its key values: one array per key column), the position in ``table`` (one array per
    key column) of the same key values; -1 where there is none. None when a key occurs twice in ``table``.
    Codes from each column's unique values, combined (a MultiIndex or a merge on string keys was a tenth
    of a report view's time)."""
    n_rows = len(rows[0]) if rows else 0
    table_code = np.zeros(len(table[0]) if table else 0, dtype=np.int64)
    row_code = np.zeros(n_rows, dtype=np.int64)
    missing = np.zeros(n_rows, dtype=bool)
    size = 1
    for column, values in zip(table, rows):
        unique = pd.Index(column).unique()
        code = unique.get_indexer(values)
        missing |= code < 0
        table_code = table_code * len(unique) + unique.get_indexer(column)
        row_code = row_code * len(unique) + np.where(code < 0, 0, code)
        size *= len(unique)
    if len(np.unique(table_code)) != len(table_code):
        return None
    if size == 0:  # an empty table: no row has a position
        return np.full(n_rows, -1, dtype=np.int64)
    position = np.full(size, -1, dtype=np.int64)
    position[table_code] = np.arange(len(table_code))
    return np.where(missing, -1, position[row_code])


def report_interval_tables(
    con: sqlite3.Connection,
    report: pd.DataFrame,
    groupings: Sequence[Sequence[str]],
    *,
    basis: str = "session-date",
    grain: str = "day",
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
    draw: Optional[Draw] = None,
    read_credit: Optional[Callable[[Optional[str], Optional[str], str], pd.DataFrame]] = None,
) -> list[pd.DataFrame]:
    """``report_intervals`` for several groupings at once (the Report page's tiles, channels and
    channel-days): the credit rows are read once and the resamples drawn once. ``draw``:
    ``resample_draw(con, resamples, seed)`` made already; ``read_credit``: ``credit_rows`` without the
    connection (a cache of it); both give the same numbers as reading here."""
    start = report["date"].min() if len(report) else None
    end = report["date"].max() if len(report) else None
    credit = read_credit(start, end, basis) if read_credit else credit_rows(con, start, end, basis)
    # The credit of the report's channel-days, in the credit's order (what an inner merge on channel and
    # date keeps), found by codes: the report's channels and dates, and their pairs.
    channels = pd.Index(report["channel_name"].unique())
    days = pd.Index(report["date"].unique())
    n_days = max(len(days), 1)
    report_key = channels.get_indexer(report["channel_name"]) * n_days + days.get_indexer(report["date"])
    credit_channel = channels.get_indexer(credit["channel_name"])
    credit_day = days.get_indexer(credit["date"])
    credit_key = np.where((credit_channel >= 0) & (credit_day >= 0), credit_channel * n_days + credit_day, -1)
    kept = np.isin(credit_key, report_key)
    row_channel, row_day = credit_channel[kept], credit_day[kept]
    if grain != "day":  # week or month: each date stands for its period (window.period_start)
        report = report.assign(date=period_start(report["date"], grain))
        day_period = pd.Index(period_start(pd.Series(days, dtype=object), grain))
    else:
        day_period = days
    if len(row_channel) and draw is None:
        draw = resample_draw(con, resamples, seed)
    population = draw.population if draw is not None and len(row_channel) else pd.Index([])
    counts = draw.counts if draw is not None and len(row_channel) else None
    conversion = population.get_indexer(credit["conv_id"].to_numpy()[kept])
    ihc = credit["ihc"].to_numpy(dtype=np.float64)[kept]
    revenue = credit["revenue"].to_numpy(dtype=np.float64)[kept]
    row_keys = {"channel_name": channels.to_numpy()[row_channel], "date": day_period.to_numpy()[row_day]}
    tables = []
    for by in map(list, groupings):
        if by:
            groups = report.groupby(by, sort=True)["cost"].sum()
            levels = [groups.index.get_level_values(i) for i in range(len(by))]
            group_code = key_positions(levels, [row_keys[c] for c in by])  # (a groupby's keys: each once)
            assert group_code is not None
            out = groups.reset_index()
        else:
            out = pd.DataFrame({"cost": [float(report["cost"].sum())]})
            group_code = np.zeros(len(row_channel), dtype=np.int64)
        result = bootstrap(
            conversion,
            group_code,
            ihc,
            revenue,
            out["cost"].to_numpy(dtype=np.float64),
            resamples=resamples,
            seed=seed,
            n_conversions=len(population),
            level=level,
            counts=counts,
        )
        tables.append(pd.concat([out.reset_index(drop=True), result.frame()], axis=1))
    return tables
