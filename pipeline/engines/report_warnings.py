"""The stored report's warnings (``pipeline.report_warnings``) on an engine source: the lines the SQLite
``run`` prints after its report, from the engine's own outputs, for every engine that runs the DuckDB
engine's SQL (DuckDB/Parquet as it is; Postgres and Spark compiled by ``engines.dialects``).

- **Incomplete days** (``completeness``): the credit of ``attribution_customer_journey`` per (conversion
  date, session date), summed by the engine in fixed point (``duckdb._units``: exact, so the figures do
  not depend on the order rows arrive in), turned into whole-day lags here (a few thousand date pairs
  at most) and then into the SQLite engine's cumulative shares and wording; the last conversion date is
  the last valid one (``duckdb._bad_date``, as SQLite's ``date(x, '+0 days') IS x``).
- **Mixed models** (``coverage``): an engine run replaces the whole attribution with one model's
  credit, so an engine source never mixes models; the warning's logic gets no coverage to object to.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Optional

from ..completeness import cumulative_shares, incomplete_from
from ..report_warnings import warnings_of
from ..sums import CREDIT_SCALE
from .columns import as_text
from .duckdb import _bad_date, _units, fixed

DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def report_warnings(engine: Any) -> list[tuple[str, str, int, list]]:
    """(code, message, count, examples) for each warning that applies to the engine's stored report
    (``pipeline.report_warnings.report_warnings``'s); [] before any run."""
    present = engine.present
    if not {"attribution_customer_journey", "session_sources", "conversions"} <= set(present):
        return []
    conv_date = as_text("c.conv_date", present["conversions"]["conv_date"])
    event_date = as_text("s.event_date", present["session_sources"]["event_date"])
    rows = engine.sql(
        f"SELECT {conv_date}, {event_date}, sum({_units('a.ihc', CREDIT_SCALE)})"
        " FROM attribution_customer_journey a"
        " JOIN session_sources s ON s.session_id = a.session_id"
        " JOIN conversions c ON c.conv_id = a.conv_id"
        " GROUP BY 1, 2"
    )
    units: dict[int, int] = {}
    for conv, event, total in rows:
        lag = _days_between(event, conv)
        if lag is not None:
            units[lag] = units.get(lag, 0) + int(total or 0)
    cdf = cumulative_shares((k, fixed(n, CREDIT_SCALE)) for k, n in units.items())
    d = as_text("conv_date", present["conversions"]["conv_date"])
    last = engine.sql(f"SELECT max(CASE WHEN NOT {_bad_date(d)} THEN {d} END) FROM conversions")[0][0]
    return warnings_of([], incomplete_from(cdf, last))


def _days_between(first: Optional[str], last: Optional[str]) -> Optional[int]:
    """Whole days from ``first`` to ``last`` ('YYYY-MM-DD'), as SQLite's julianday difference; None when
    either is not such a date."""
    if not (isinstance(first, str) and isinstance(last, str) and DAY.fullmatch(first) and DAY.fullmatch(last)):
        return None
    try:
        return date.fromisoformat(last).toordinal() - date.fromisoformat(first).toordinal()
    except ValueError:
        return None
