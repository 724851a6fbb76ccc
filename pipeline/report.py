"""Stage 5 — report: rebuild ``channel_reporting`` for a range of session dates.

One row per channel_name and event_date of the sessions in range:
- ``cost``: the sum of those sessions' costs, each session counted once however many conversions it
  belongs to (costs are summed over sessions, never over attribution rows — the classic single-query
  join of costs and attribution counts a session shared by two conversions twice);
- ``ihc``: the sum of the credit those sessions received (from every stored conversion);
- ``ihc_revenue``: the sum of credit × the conversion's revenue (a NULL revenue counts 0).
Channel-days with sessions but no attribution stay, with ihc 0.

Split in two so the expensive part can start early: ``channel_day_costs`` (one pass over all sessions)
does not depend on attribution; ``channel_day_credit`` reads only the attributed sessions.
"""

from __future__ import annotations

import sqlite3
from typing import Optional

import pandas as pd

from .db import table_exists
from .journeys import NO_CHANNEL
from .progress import Progress, ensure
from .schema import ensure_output_tables

RANGE = "(:start IS NULL OR s.event_date >= :start) AND (:end IS NULL OR s.event_date <= :end)"

COSTS_SQL = f"""
SELECT coalesce(s.channel_name, '{NO_CHANNEL}') AS channel_name, s.event_date AS date,
       count(*) AS sessions, total(sc.cost) AS cost
FROM session_sources s LEFT JOIN session_costs sc ON sc.session_id = s.session_id
WHERE {RANGE}
GROUP BY 1, 2
"""

CREDIT_SQL = f"""
SELECT coalesce(s.channel_name, '{NO_CHANNEL}') AS channel_name, s.event_date AS date,
       total(a.ihc) AS ihc, total(a.ihc * coalesce(c.revenue, 0)) AS ihc_revenue
FROM attribution_customer_journey a
JOIN session_sources s ON s.session_id = a.session_id
JOIN conversions c ON c.conv_id = a.conv_id
WHERE {RANGE}
GROUP BY 1, 2
"""

REPORT_COLUMNS = ["channel_name", "date", "cost", "ihc", "ihc_revenue"]


def channel_day_costs(con: sqlite3.Connection, start: Optional[str] = None, end: Optional[str] = None) -> pd.DataFrame:
    """(channel_name, date, sessions, cost) for every channel-day with sessions in range."""
    rows = con.execute(COSTS_SQL, {"start": start, "end": end}).fetchall()
    return pd.DataFrame.from_records(rows, columns=["channel_name", "date", "sessions", "cost"])


def channel_day_credit(con: sqlite3.Connection, start: Optional[str] = None, end: Optional[str] = None) -> pd.DataFrame:
    """(channel_name, date, ihc, ihc_revenue) of the attributed sessions in range."""
    columns = ["channel_name", "date", "ihc", "ihc_revenue"]
    if not table_exists(con, "attribution_customer_journey"):
        return pd.DataFrame(columns=columns)
    rows = con.execute(CREDIT_SQL, {"start": start, "end": end}).fetchall()
    return pd.DataFrame.from_records(rows, columns=columns)


def combine(costs: pd.DataFrame, credit: pd.DataFrame) -> pd.DataFrame:
    """The report rows: every channel-day with sessions, with its credit or 0."""
    report = costs.merge(credit, on=["channel_name", "date"], how="left")
    report[["ihc", "ihc_revenue"]] = report[["ihc", "ihc_revenue"]].fillna(0.0)
    return report.sort_values(["date", "channel_name"], kind="stable").reset_index(drop=True)[REPORT_COLUMNS]


def write_report(con: sqlite3.Connection, report: pd.DataFrame, start: Optional[str], end: Optional[str]) -> int:
    """Replace the range's rows of channel_reporting; call inside a transaction."""
    ensure_output_tables(con)
    con.execute(
        "DELETE FROM channel_reporting WHERE (:start IS NULL OR date >= :start) AND (:end IS NULL OR date <= :end)",
        {"start": start, "end": end},
    )
    con.executemany(
        "INSERT INTO channel_reporting (channel_name, date, cost, ihc, ihc_revenue) VALUES (?, ?, ?, ?, ?)",
        zip(*(report[c].tolist() for c in REPORT_COLUMNS)),
    )
    return len(report)


def build_report(
    con: sqlite3.Connection,
    start: Optional[str] = None,
    end: Optional[str] = None,
    progress: Optional[Progress] = None,
    costs: Optional[pd.DataFrame] = None,
) -> pd.DataFrame:
    """Compute the report rows for the range (reads only); ``costs`` may be precomputed."""
    progress = ensure(progress)
    if costs is None:
        progress(0, 2, "report: cost per channel and day")
        costs = channel_day_costs(con, start, end)
    progress(1, 2, "report: attributed conversions and revenue per channel and day")
    report = combine(costs, channel_day_credit(con, start, end))
    progress(2, 2, f"report: {len(report):,} channel-days")
    return report
