"""Incomplete days: the last session days, whose conversions have not all happened yet.

A session earns credit when its user converts, which can be days later. Near the end of the data the
later conversions have not happened yet, so the last session days show too little credit: their CPO
reads high and their ROAS low, and a trend chart seems to fall off a cliff. How much is missing follows
from the lag between a session and the conversion it is credited for, measured on the stored
attribution itself (credit-weighted, in whole days): with ``F(k)`` the share of credit that arrived
within ``k`` days, a session day ``d`` has had ``E − d`` days to convert (``E``: the last conversion date),
so about ``F(E − d)`` of its eventual credit is in. A day is **incomplete** when that is below
``COMPLETE`` (95%).

The lag distribution comes from the journeys that *did* convert within the data, so it leans towards
short lags and the estimate is a lower bound on what is missing. Before any attribution there is no
estimate.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date
from itertools import accumulate
from typing import Iterable, Optional

from .db import table_exists
from .labels import counted

COMPLETE = 0.95

LAG_SQL = """
SELECT CAST(julianday(c.conv_date) - julianday(s.event_date) AS INTEGER) AS lag, total(a.ihc)
FROM attribution_customer_journey a
JOIN session_sources s ON s.session_id = a.session_id
JOIN conversions c ON c.conv_id = a.conv_id
GROUP BY 1
"""
LAST_CONVERSION_SQL = "SELECT max(conv_date) FROM conversions WHERE date(conv_date, '+0 days') IS conv_date"


@dataclass(frozen=True)
class IncompleteDays:
    """The session days with less than ``COMPLETE`` of their credit in, and how much is in for each."""

    last_conversion: str
    days: list[str]
    share_in: list[float]  # estimated share of the eventual credit already in, per day

    def _shares(self) -> str:
        low, high = min(self.share_in), max(self.share_in)
        return f"{low:.0%}" if f"{low:.0%}" == f"{high:.0%}" else f"{low:.0%}–{high:.0%}"

    def warning(self) -> str:
        if not self.days:
            return ""
        span = self.days[0] if len(self.days) == 1 else f"{self.days[0]} … {self.days[-1]}"
        n = len(self.days)
        return (
            f"the last {counted(n, 'session day', one='')} ({span}) {'are' if n != 1 else 'is'} incomplete: "
            f"judging by how long the attributed journeys took to convert, only {self._shares()} of "
            f"{'their' if n != 1 else 'its'} eventual conversions had happened by {self.last_conversion}, "
            f"so {'their' if n != 1 else 'its'} CPO reads high and {'their' if n != 1 else 'its'} ROAS low"
        )


def lag_distribution(con: sqlite3.Connection) -> list[float]:
    """``F[k]``: the share of the stored credit earned by sessions at most ``k`` days before their
    conversion (cumulative, ending at 1.0); empty before any attribution."""
    if not table_exists(con, "attribution_customer_journey"):
        return []
    return cumulative_shares((int(k), v) for k, v in con.execute(LAG_SQL) if k is not None)


def cumulative_shares(credit_by_lag: Iterable[tuple[int, float]]) -> list[float]:
    """``F[k]`` from (lag in days, credit) pairs (negative lags left out). Plain Python over a few dozen
    lags (no numpy: this runs on every ``run``, the up-to-date one too)."""
    rows = [(k, v) for k, v in credit_by_lag if k >= 0]
    if not rows:
        return []
    credit = [0.0] * (max(k for k, _ in rows) + 1)
    for k, v in rows:
        credit[k] += v
    total = sum(credit)
    return [c / total for c in accumulate(credit)] if total > 0 else []


def incomplete_days(con: sqlite3.Connection, threshold: float = COMPLETE) -> IncompleteDays | None:
    """The incomplete last session days of the stored attribution, or None without one."""
    cdf = lag_distribution(con)
    if not len(cdf):
        return None
    return incomplete_from(cdf, con.execute(LAST_CONVERSION_SQL).fetchone()[0], threshold)


def incomplete_from(cdf: list[float], last: Optional[str], threshold: float = COMPLETE) -> IncompleteDays | None:
    """The incomplete last session days given ``F`` (``cumulative_shares``) and the last (valid)
    conversion date; None without either."""
    if not len(cdf) or last is None:
        return None
    end = date.fromisoformat(last)
    days, shares = [], []
    for k in range(len(cdf)):  # k days to convert: at most the lags seen (a few dozen), not per session
        if cdf[k] >= threshold:
            break
        days.append(date.fromordinal(end.toordinal() - k).isoformat())
        shares.append(float(cdf[k]))
    return IncompleteDays(last, days[::-1], shares[::-1])
