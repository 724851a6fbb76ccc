"""Which conversions a run covers (by conv_date) and how far back their sessions may lie; the periods
(day, week, month) a report can be grouped by.

Plain Python (pandas only inside ``period_start``), so the command line can check dates before loading anything heavy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Optional

from .errors import InputError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Window:
    """Which conversions (by conv_date, inclusive) and how far back their sessions may lie."""

    start: Optional[str] = None
    end: Optional[str] = None
    lookback_days: Optional[int] = None

    def __post_init__(self):
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and not is_iso_date(value):
                raise InputError(f"--{name} {value!r} is not a date (YYYY-MM-DD)")
        if self.start and self.end and self.start > self.end:
            raise InputError(f"--start {self.start} is after --end {self.end}")
        if self.lookback_days is not None and (not isinstance(self.lookback_days, int) or self.lookback_days < 1):
            raise InputError("--lookback-days must be a whole number of days ≥ 1")

    def as_params(self) -> dict:
        return {"start": self.start, "end": self.end, "lookback_days": self.lookback_days}

    def sql_params(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "lookback": None if self.lookback_days is None else f"-{self.lookback_days} days",
        }


def is_iso_date(value) -> bool:
    """Exactly 'YYYY-MM-DD', and a real day (not '2023-02-30', not '2023-9-1', not a number)."""
    try:
        return date.fromisoformat(value).isoformat() == value
    except (ValueError, TypeError):
        return False


def report_range(window: Window, journeys_summary: dict) -> tuple[Optional[str], Optional[str]]:
    """The session dates whose report rows a run may change: from the earliest session of its
    journeys (or the window start, if earlier) to the window end; unbounded where the window is."""
    start = window.start
    first = journeys_summary.get("first_session_date")
    if start is not None and first is not None:
        start = min(start, first)
    return start, window.end


def date_span(picked, first: Optional[date], last: Optional[date]) -> tuple[Optional[str], Optional[str]]:
    """A date picker's value (a tuple of one or two dates while the user picks) → ``(start, end)`` as
    'YYYY-MM-DD' or None. One rule for every page: an end equal to the data's first (start) or last
    (end) day is no bound at all, each end on its own, so the whole range is the same as no filter."""
    start = end = None
    if isinstance(picked, (tuple, list)) and len(picked) >= 1:
        start = picked[0].isoformat() if picked[0] != first else None
        if len(picked) == 2:
            end = picked[1].isoformat() if picked[1] != last else None
    return start, end


GRAINS = ("day", "week", "month")


def period_start(dates: pd.Series, grain: str) -> pd.Series:
    """Each 'YYYY-MM-DD' date's period as the ISO date it starts on: itself, the Monday of its week, or
    the first of its month."""
    if grain == "day":
        return dates
    if grain not in GRAINS:
        raise ValueError(f"unknown grain {grain!r}")
    import pandas as pd

    days = pd.to_datetime(dates, format="%Y-%m-%d")
    starts = (
        days - pd.to_timedelta(days.dt.day_of_week, unit="D")
        if grain == "week"
        else days.dt.to_period("M").dt.start_time
    )
    return starts.dt.strftime("%Y-%m-%d")
