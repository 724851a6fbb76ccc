"""Views of the channel report for the dashboard: totals per channel, KPI tiles, daily series.

Every number comes from the rows ``export.read_report`` returns (the same rows the CSV export writes),
and every ratio from ``export.add_ratios``: CPO = cost / ihc and ROAS = ihc_revenue / cost, NaN where
the denominator is 0 — shown empty, never as infinity or a fake 0. Totals are sums of the rows first,
ratios of the sums second (a ratio of sums, not an average of daily ratios).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np
import pandas as pd

from .export import add_ratios

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


def daily(report: pd.DataFrame, metric: str, channels: Optional[Iterable[str]] = None) -> pd.DataFrame:
    """One row per (date, channel): the metric of that channel-day (ratios from that day's sums)."""
    if metric not in DAILY_METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    rows = report
    if channels is not None:
        rows = rows[rows["channel_name"].isin(list(channels))]
    by_day = rows.groupby(["date", "channel_name"], as_index=False, sort=True)[SUMMED].sum()
    by_day = add_ratios(by_day)
    return by_day[["date", "channel_name", metric]].rename(columns={metric: "value"})


def undefined_note(totals: pd.DataFrame, metric: str) -> str:
    """A sentence naming the channels where ``metric`` is undefined, or '' when there are none."""
    missing = totals.loc[totals[metric].isna(), "channel_name"].tolist()
    if not missing:
        return ""
    why = "no attributed conversion" if metric == "CPO" else "no cost"
    names = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    return f"{metric} is undefined ({why}) for: {names}."


def table(report: pd.DataFrame) -> pd.DataFrame:
    """The report rows as the dashboard's table shows them (the export's columns, NaN kept)."""
    out = report.copy()
    for col in ("CPO", "ROAS"):
        out[col] = out[col].astype(np.float64)
    return out
