"""Stage 6 — export: the channel report with CPO and ROAS, filtered, as a CSV analysts can open safely.

- CPO = cost / ihc (cost per attributed order); ROAS = ihc_revenue / cost (attributed revenue per euro).
  Where the denominator is 0 the cell is **empty**: never ``inf``, never a fake 0.
- Filters: date range (inclusive) and channel names.
- Date basis (``by``): ``session-date`` (the default, the challenge's ``channel_reporting``: credit on the
  day of the session that earned it) or ``conversion-date`` (credit on the day of the conversion, as GA4
  and a shop's back end count orders). Cost is always on the day it was spent.
- Text cells starting with ``=``, ``+``, ``-``, ``@`` (or a tab / carriage return) are prefixed with ``'``
  so a spreadsheet shows them as text instead of running them as formulas (CSV injection).
- UTF-8, comma-separated, ``\\n`` line ends, header ``channel_name,date,cost,ihc,ihc_revenue,CPO,ROAS``.
  Money (cost, ihc_revenue, CPO) is written with 2 decimals, ihc and ROAS with 4.
- ``intervals``: four more columns after those, ``CPO_low,CPO_high,ROAS_low,ROAS_high``: the 90% bootstrap
  interval of each row's CPO and ROAS (``pipeline.intervals``); empty where undefined or unbounded.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import pandas as pd

from .db import table_exists
from .errors import InputError
from .outputs import write_bytes
from .report import DAY_COLUMNS, credit_by_day_sql

EXPORT_COLUMNS = ["channel_name", "date", "cost", "ihc", "ihc_revenue", "CPO", "ROAS"]
INTERVAL_COLUMNS = ["CPO_low", "CPO_high", "ROAS_low", "ROAS_high"]
DECIMALS = {"cost": 2, "ihc": 4, "ihc_revenue": 2, "CPO": 2, "ROAS": 4}
DECIMALS.update({c: DECIMALS[c.split("_")[0]] for c in INTERVAL_COLUMNS})
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
DATE_BASES = ("session-date", "conversion-date")

# By conversion date: cost per channel-day as stored (the day it was spent), credit and revenue on the
# day of the conversion they belong to; a channel-day with either appears. Sums in fixed point.
CONVERSION_DATE_SQL = f"""
WITH credit AS ({credit_by_day_sql(DAY_COLUMNS["conversion-date"])}), cost AS (
    SELECT channel_name, date, cost FROM channel_reporting
    WHERE (:start IS NULL OR date >= :start) AND (:end IS NULL OR date <= :end)
), days AS (SELECT channel_name, date FROM credit UNION SELECT channel_name, date FROM cost)
SELECT d.channel_name, d.date, coalesce(cost.cost, 0.0), coalesce(credit.ihc, 0.0), coalesce(credit.ihc_revenue, 0.0)
FROM days d
LEFT JOIN cost ON cost.channel_name = d.channel_name AND cost.date = d.date
LEFT JOIN credit ON credit.channel_name = d.channel_name AND credit.date = d.date
ORDER BY d.date, d.channel_name
"""


def add_ratios(report: pd.DataFrame) -> pd.DataFrame:
    """Add CPO and ROAS; NaN where the denominator is 0 (or missing)."""
    out = report.copy()
    cost = out["cost"].to_numpy(dtype=np.float64)
    ihc = out["ihc"].to_numpy(dtype=np.float64)
    rev = out["ihc_revenue"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["CPO"] = np.where(ihc != 0, cost / np.where(ihc != 0, ihc, 1.0), np.nan)
        out["ROAS"] = np.where(cost != 0, rev / np.where(cost != 0, cost, 1.0), np.nan)
    return out


def has_report(con: sqlite3.Connection) -> bool:
    """A channel report has been written (``channel_reporting`` exists and has a row)."""
    return (
        table_exists(con, "channel_reporting")
        and con.execute("SELECT 1 FROM channel_reporting LIMIT 1").fetchone() is not None
    )


def read_report(
    con: sqlite3.Connection,
    start: Optional[str] = None,
    end: Optional[str] = None,
    channels: Optional[Iterable[str]] = None,
    by: str = "session-date",
) -> pd.DataFrame:
    """The stored channel report with CPO/ROAS, filtered, sorted by date then channel; ``by`` is the
    date basis of the credit (``DATE_BASES``)."""
    if by not in DATE_BASES:
        raise InputError(f"unknown date basis {by!r}: use one of {', '.join(DATE_BASES)}")
    if not table_exists(con, "channel_reporting"):
        raise InputError("there is no channel report yet; run `report` (or `run`) first")
    if by == "conversion-date":
        rows = con.execute(CONVERSION_DATE_SQL, {"start": start, "end": end}).fetchall()
    else:
        rows = con.execute(
            "SELECT channel_name, date, cost, ihc, ihc_revenue FROM channel_reporting "
            "WHERE (:start IS NULL OR date >= :start) AND (:end IS NULL OR date <= :end) "
            "ORDER BY date, channel_name",
            {"start": start, "end": end},
        ).fetchall()
    report = pd.DataFrame.from_records(rows, columns=EXPORT_COLUMNS[:5])
    if channels:
        report = report[report["channel_name"].isin(list(channels))].reset_index(drop=True)
    return add_ratios(report)


def with_intervals(
    con: sqlite3.Connection, report: pd.DataFrame, seed: int = 0, by: str = "session-date"
) -> pd.DataFrame:
    """``report`` (rows of ``read_report`` on date basis ``by``) with its rows' CPO/ROAS intervals as
    four more columns."""
    from .intervals import report_intervals

    bounds = report_intervals(con, report, by=("channel_name", "date"), basis=by, seed=seed)
    return report.merge(bounds[["channel_name", "date", *INTERVAL_COLUMNS]], on=["channel_name", "date"], how="left")


def escape_cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _number(value: float, decimals: int) -> str:
    """Fixed decimals; empty for NaN/inf (an undefined ratio), '-0.00' written as '0.00'."""
    if not np.isfinite(value):
        return ""
    return f"{value + 0.0:.{decimals}f}".replace("-0." + "0" * decimals, "0." + "0" * decimals)


def to_csv_bytes(report: pd.DataFrame) -> bytes:
    """The export CSV of report rows (with CPO/ROAS, and the interval columns when ``report`` has
    them) as UTF-8 bytes."""
    columns = EXPORT_COLUMNS + (INTERVAL_COLUMNS if INTERVAL_COLUMNS[0] in report.columns else [])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    text_cols = {c: [escape_cell(str(v)) for v in report[c].tolist()] for c in ("channel_name", "date")}
    num_cols = {
        c: [_number(v, DECIMALS[c]) for v in report[c].to_numpy(dtype=np.float64).tolist()] for c in columns[2:]
    }
    for i in range(len(report)):
        writer.writerow([text_cols["channel_name"][i], text_cols["date"][i]] + [num_cols[c][i] for c in columns[2:]])
    return buf.getvalue().encode("utf-8")


def export_csv(
    con: sqlite3.Connection,
    path: str | Path,
    start: Optional[str] = None,
    end: Optional[str] = None,
    channels: Optional[Iterable[str]] = None,
    *,
    intervals: bool = False,
    seed: int = 0,
    by: str = "session-date",
) -> int:
    """Write the filtered report to ``path`` (atomically, a regular file only; ``-``: stdout); returns
    the number of rows. ``intervals``: add the 90% bootstrap intervals of CPO and ROAS (deterministic
    per ``seed``). The caller checks first that ``path`` is no input (``outputs.check_csv_target``)."""
    report = read_report(con, start, end, channels, by)
    if intervals:
        report = with_intervals(con, report, seed=seed, by=by)
    write_bytes(path, to_csv_bytes(report))
    return len(report)
