"""Sums that do not depend on the order rows arrive in.

A float sum depends on the order of its terms: two copies of one database whose keys differ (so that a
join or a GROUP BY meets the rows in another order) printed ``ihc_revenue`` 211.92 vs 211.91 for the same
credits. Every sum that reaches a report is therefore taken in fixed point: each term is rounded (half
away from zero, as SQLite's round()) to an integer number of units (credit: 1e-12 of a conversion;
money: 1e-9 euro), the integers are added
exactly (SQLite's and numpy's 64-bit integer sums), and the total is divided back once. The result is
the same for any order of the terms, on any engine with 64-bit integers, and within ``n × 0.5`` units of
the float sum (n terms): far below what the report prints (4 and 2 decimals).

Limits: a group's total must stay below 2**63 units — 9.2 million conversions' credit or 9.2 billion
euros per channel-day; SQLite raises "integer overflow" beyond that.
"""

from __future__ import annotations

# Standard library only at import: the CLI's scan processes use the SQL half before numpy loads.

CREDIT_SCALE = 10**12  # units per conversion of credit
MONEY_SCALE = 10**9  # units per euro


def sql_sum(expr: str, scale: int) -> str:
    """SQL for the order-independent sum of ``expr`` over a group (0.0 when the group has no value)."""
    return f"coalesce(sum(CAST(round(({expr}) * {scale}) AS INTEGER)), 0) / {float(scale)!r}"


def grouped_sum(groups, values, n_groups: int, scale: int):
    """The order-independent sum of ``values`` per group code in ``range(n_groups)`` (a float64 array)."""
    import numpy as np

    scaled = np.asarray(values, dtype=np.float64) * scale
    # SQLite's round(): half away from zero, as trunc(|x| + 0.5) — so both halves give the same units
    units = (np.sign(scaled) * np.trunc(np.abs(scaled) + 0.5)).astype(np.int64)
    totals = np.zeros(n_groups, dtype=np.int64)
    np.add.at(totals, np.asarray(groups, dtype=np.int64), units)
    return totals / float(scale)
