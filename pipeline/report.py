"""Stage 5 — report: rebuild ``channel_reporting`` for a range of session dates.

One row per channel_name and event_date of the sessions in range:
- ``cost``: the sum of those sessions' costs, each session counted once however many conversions it
  belongs to (costs are summed over sessions, never over attribution rows — the classic single query
  joining costs and attribution counts a session shared by two conversions twice);
- ``ihc``: the sum of the credit those sessions received (from every stored conversion);
- ``ihc_revenue``: the sum of credit × the conversion's revenue (a NULL revenue counts 0).
Channel-days with sessions but no attribution stay, with ihc 0.

The inputs come from ``scans``: the channel-days of all sessions and the cost per channel-day are whole-
table scans that do not depend on attribution (and are shared with validation); only the credit per
channel-day is read here, from the attributed sessions.
"""

from __future__ import annotations

import sqlite3
from typing import Optional

from .db import table_exists
from .progress import Progress, ensure
from .scans import InputScans, open_scans
from .schema import channel_sql, ensure_output_tables
from .sums import CREDIT_SCALE, MONEY_SCALE, sql_sum

# The day credit is dated by, per date basis (export.DATE_BASES): the session's or the conversion's.
DAY_COLUMNS = {"session-date": "s.event_date", "conversion-date": "c.conv_date"}


def credit_by_day_sql(day: str) -> str:
    """Credit and attributed revenue per channel and ``day`` (a DAY_COLUMNS value) in :start…:end,
    summed in fixed point (pipeline.sums): the same figures whatever order the join meets the rows in."""
    return f"""
SELECT {channel_sql("s.channel_name")} AS channel_name, {day} AS date,
       {sql_sum("a.ihc", CREDIT_SCALE)} AS ihc,
       {sql_sum("a.ihc * coalesce(c.revenue, 0)", MONEY_SCALE)} AS ihc_revenue
FROM attribution_customer_journey a
JOIN session_sources s ON s.session_id = a.session_id
JOIN conversions c ON c.conv_id = a.conv_id
WHERE (:start IS NULL OR {day} >= :start) AND (:end IS NULL OR {day} <= :end)
GROUP BY 1, 2
"""


CREDIT_SQL = credit_by_day_sql(DAY_COLUMNS["session-date"])

REPORT_COLUMNS = ["channel_name", "date", "cost", "ihc", "ihc_revenue"]


def _in_range(day: str, start: Optional[str], end: Optional[str]) -> bool:
    return (start is None or day >= start) and (end is None or day <= end)


def channel_day_credit(con: sqlite3.Connection, start: Optional[str] = None, end: Optional[str] = None) -> dict:
    """{(channel_name, date): (ihc, ihc_revenue)} of the attributed sessions in range."""
    if not table_exists(con, "attribution_customer_journey"):
        return {}
    rows = con.execute(CREDIT_SQL, {"start": start, "end": end}).fetchall()
    return {(ch, d): (ihc, rev) for ch, d, ihc, rev in rows}


COST_BY_CHANNEL_SQL = f"""
SELECT {channel_sql("s.channel_name")}, {sql_sum("sc.cost", MONEY_SCALE)}
FROM session_costs sc JOIN session_sources s ON s.session_id = sc.session_id
WHERE (:start IS NULL OR s.event_date >= :start) AND (:end IS NULL OR s.event_date <= :end)
GROUP BY 1
"""


def cost_by_channel(
    con: sqlite3.Connection, start: Optional[str] = None, end: Optional[str] = None
) -> dict[str, float]:
    """Cost per channel of the sessions dated ``start``..``end`` (inclusive; None: unbounded), each
    cost row once. The report's channel-day costs (``scans.COST_PROFILE_SQL``) come from the
    whole-table scans instead, which read every cost row once for validation and the report together."""
    return dict(con.execute(COST_BY_CHANNEL_SQL, {"start": start, "end": end}).fetchall())


def build_report(
    con: sqlite3.Connection,
    start: Optional[str] = None,
    end: Optional[str] = None,
    progress: Optional[Progress] = None,
    scans: Optional[InputScans] = None,
) -> list[tuple]:
    """The report rows (channel_name, date, cost, ihc, ihc_revenue) for the range, sorted by date and
    channel (reads only). ``scans`` may carry the whole-table scans already made by this process."""
    progress = ensure(progress)
    scans = scans or open_scans(con)
    progress(0, 2, "report: cost per channel and day")
    days = [cd for cd in scans.channel_days() if _in_range(cd[1], start, end)]
    costs = scans.channel_day_costs()
    progress(1, 2, "report: attributed conversions and revenue per channel and day")
    credit = channel_day_credit(con, start, end)
    rows = [
        (ch, d, costs.get((ch, d), 0.0), *credit.get((ch, d), (0.0, 0.0)))
        for ch, d in sorted(days, key=lambda cd: (cd[1], cd[0]))
    ]
    progress(2, 2, f"report: {len(rows):,} channel-days")
    return rows


def write_report(con: sqlite3.Connection, rows: list[tuple], start: Optional[str], end: Optional[str]) -> int:
    """Replace the range's rows of channel_reporting; call inside a transaction."""
    ensure_output_tables(con)
    con.execute(
        "DELETE FROM channel_reporting WHERE (:start IS NULL OR date >= :start) AND (:end IS NULL OR date <= :end)",
        {"start": start, "end": end},
    )
    con.executemany(
        "INSERT INTO channel_reporting (channel_name, date, cost, ihc, ihc_revenue) VALUES (?, ?, ?, ?, ?)", rows
    )
    return len(rows)
