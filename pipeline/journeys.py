"""Stage 2 — journeys: for each conversion, the sessions of its user strictly before it.

One SQL query builds all journeys at once: SQLite scans ``session_sources`` once and probes the small
set of converting users (never the reverse, which would index every session by user). A session is in a
conversion's journey when it has the same user_id and its timestamp is *strictly* earlier than the
conversion's (a session at exactly the conversion time is not), and, with ``lookback_days``, no more
than that many days earlier (inclusive). Timestamps are compared as 'YYYY-MM-DD HH:MM:SS' text, which
orders like time because validation guarantees that exact format.

The result is in the IHC API's session-record format (``conversion = 0`` on every session), sorted by
conversion, time and session_id, plus ``ts`` (epoch seconds). Conversions in range with no earlier
session are kept in ``Journeys.conversions`` with 0 sessions: counted and reported, never dropped.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from .errors import InputError
from .models.base import JOURNEY_COLUMNS, timestamps_to_seconds
from .progress import Progress, ensure

NO_CHANNEL = "(not set)"


@dataclass(frozen=True)
class Window:
    """Which conversions (by conv_date, inclusive) and how far back their sessions may lie."""

    start: Optional[str] = None
    end: Optional[str] = None
    lookback_days: Optional[int] = None

    def __post_init__(self):
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and not _is_date(value):
                raise InputError(f"--{name} {value!r} is not a date (YYYY-MM-DD)")
        if self.start and self.end and self.start > self.end:
            raise InputError(f"--start {self.start} is after --end {self.end}")
        if self.lookback_days is not None and (
            not isinstance(self.lookback_days, int) or self.lookback_days < 1
        ):
            raise InputError("--lookback-days must be a whole number of days ≥ 1")

    def as_params(self) -> dict:
        return {"start": self.start, "end": self.end, "lookback_days": self.lookback_days}

    def sql_params(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "lookback": None if self.lookback_days is None else f"-{self.lookback_days} days",
        }


def _is_date(value: str) -> bool:
    try:
        return pd.Timestamp(value).strftime("%Y-%m-%d") == value
    except (ValueError, TypeError):
        return False


@dataclass
class Journeys:
    frame: pd.DataFrame  # JOURNEY_COLUMNS + ts, sorted by conversion_id, ts, session_id
    conversions: pd.DataFrame  # conversion_id, sessions (0 = no earlier session) for every conversion in range
    window: Window

    @property
    def without_sessions(self) -> pd.Series:
        return self.conversions.loc[self.conversions["sessions"] == 0, "conversion_id"]

    def summary(self) -> dict:
        lengths = self.conversions["sessions"]
        return {
            "conversions": int(len(self.conversions)),
            "with_sessions": int((lengths > 0).sum()),
            "without_sessions": int((lengths == 0).sum()),
            "sessions": int(len(self.frame)),
            "distinct_sessions": int(self.frame["session_id"].nunique()),
            "max_length": int(lengths.max()) if len(lengths) else 0,
        }


SESSION_TS = "s.event_date || ' ' || s.event_time"

# Conversions in range, then their sessions. SQLite must scan the sessions once and probe an index of
# the few converting users (`users`, `conv`): left to itself it may instead build an index of every
# session by user, ~15× slower on the demo database; CROSS JOIN fixes the loop order.
_CONVERSIONS_CTE = """
conv AS MATERIALIZED (
    SELECT conv_id, user_id, conv_date || ' ' || conv_time AS conv_ts
    FROM conversions
    WHERE conv_id IS NOT NULL
      AND (:start IS NULL OR conv_date >= :start)
      AND (:end IS NULL OR conv_date <= :end)),
users AS MATERIALIZED (SELECT DISTINCT user_id FROM conv WHERE user_id IS NOT NULL)
"""

JOURNEYS_SQL = f"""
WITH {_CONVERSIONS_CTE}
SELECT c.conv_id, s.session_id, {SESSION_TS} AS ts_text,
       coalesce(s.channel_name, '{NO_CHANNEL}'),
       CAST(s.holder_engagement AS INTEGER), CAST(s.closer_engagement AS INTEGER),
       CAST(s.impression_interaction AS INTEGER)
FROM session_sources s CROSS JOIN conv c ON c.user_id = s.user_id  -- CROSS: sessions outer, scanned once
WHERE s.user_id IN users
  AND {SESSION_TS} < c.conv_ts
  AND (:lookback IS NULL OR {SESSION_TS} >= datetime(c.conv_ts, :lookback))
ORDER BY c.conv_id, ts_text, s.session_id
"""

CONVERSIONS_SQL = f"WITH {_CONVERSIONS_CTE} SELECT conv_id FROM conv ORDER BY conv_id"


def build_journeys(
    con: sqlite3.Connection, window: Window = Window(), progress: Optional[Progress] = None
) -> Journeys:
    """All journeys of the conversions in ``window`` (reads only)."""
    progress = ensure(progress)
    progress(0, 2, "journeys: selecting sessions strictly before each conversion")
    params = window.sql_params()
    rows = con.execute(JOURNEYS_SQL, params).fetchall()
    conv_ids = [r[0] for r in con.execute(CONVERSIONS_SQL, params)]
    frame = journeys_frame(rows)
    counts = frame.groupby("conversion_id", sort=False).size() if len(frame) else pd.Series(dtype="int64")
    conversions = pd.DataFrame({"conversion_id": pd.Series(conv_ids, dtype=object)})
    conversions["sessions"] = (
        conversions["conversion_id"].map(counts).fillna(0).astype(np.int64)
        if len(conversions)
        else pd.Series(dtype=np.int64)
    )
    progress(2, 2, f"journeys: {len(frame):,} sessions in {len(conversions):,} conversions")
    return Journeys(frame, conversions, window)


def journeys_frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows (conv_id, session_id, ts_text, channel, h, c, imp) → the journeys DataFrame."""
    cols = ["conversion_id", "session_id", "timestamp", "channel_label",
            "holder_engagement", "closer_engagement", "impression_interaction"]
    frame = pd.DataFrame.from_records(rows, columns=cols) if rows else pd.DataFrame(columns=cols)
    for flag in ("holder_engagement", "closer_engagement", "impression_interaction"):
        frame[flag] = frame[flag].astype(np.int8)
    frame["conversion"] = np.int8(0)
    frame = frame[JOURNEY_COLUMNS]
    frame["ts"] = timestamps_to_seconds(frame["timestamp"]) if len(frame) else np.zeros(0, np.int64)
    return frame


# ---- persistence: the current journeys set, so `attribute` can run as a separate command -----------


def save_journeys(con: sqlite3.Connection, journeys: Journeys) -> int:
    """Replace the stored journeys set; call inside a transaction."""
    con.execute("DELETE FROM pipeline_journeys")
    con.execute("DELETE FROM pipeline_journey_conversions")
    f = journeys.frame
    con.executemany(
        "INSERT INTO pipeline_journeys (conversion_id, session_id, timestamp, channel_label,"
        " holder_engagement, closer_engagement, conversion, impression_interaction)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        zip(*(f[c].tolist() for c in JOURNEY_COLUMNS)),
    )
    c = journeys.conversions
    con.executemany(
        "INSERT INTO pipeline_journey_conversions (conversion_id, sessions) VALUES (?, ?)",
        zip(c["conversion_id"].tolist(), c["sessions"].tolist()),
    )
    return len(f)


def load_journeys(con: sqlite3.Connection, window: Window) -> Journeys:
    """The stored journeys set (as built for ``window``)."""
    rows = con.execute(
        "SELECT conversion_id, session_id, timestamp, channel_label, holder_engagement,"
        " closer_engagement, impression_interaction FROM pipeline_journeys"
        " ORDER BY conversion_id, timestamp, session_id"
    ).fetchall()
    conv = con.execute(
        "SELECT conversion_id, sessions FROM pipeline_journey_conversions ORDER BY conversion_id"
    ).fetchall()
    conversions = pd.DataFrame.from_records(conv, columns=["conversion_id", "sessions"])
    conversions["sessions"] = conversions["sessions"].astype(np.int64)
    return Journeys(journeys_frame(rows), conversions, window)


# ---- paths that did not convert (for Markov and Shapley) --------------------------------------------

NON_CONVERTING_SQL = f"""
WITH {_CONVERSIONS_CTE}
SELECT 'nc:' || s.user_id, s.session_id, {SESSION_TS}, coalesce(s.channel_name, '{NO_CHANNEL}'),
       CAST(s.holder_engagement AS INTEGER), CAST(s.closer_engagement AS INTEGER),
       CAST(s.impression_interaction AS INTEGER)
FROM session_sources s
WHERE s.user_id IS NOT NULL AND s.user_id NOT IN users
  AND (:first IS NULL OR s.event_date >= :first) AND (:end IS NULL OR s.event_date <= :end)
"""


def build_non_converting(
    con: sqlite3.Connection, window: Window = Window(), progress: Optional[Progress] = None
) -> pd.DataFrame:
    """One path per user with no conversion in the window: their sessions dated in the window, and
    with ``lookback_days`` only those within that many days before the user's last such session.
    ``conversion_id`` is the synthetic path id ``'nc:' + user_id``."""
    progress = ensure(progress)
    progress(0, 1, "journeys: paths that did not convert")
    params = {**window.sql_params(), "first": window.start}
    frame = journeys_frame(con.execute(NON_CONVERTING_SQL, params).fetchall())
    if window.lookback_days is not None and len(frame):
        last = frame.groupby("conversion_id", sort=False)["ts"].transform("max")
        frame = frame[frame["ts"] >= last - window.lookback_days * 86_400].reset_index(drop=True)
    progress(1, 1, f"journeys: {frame['conversion_id'].nunique():,} paths without conversion")
    return frame
