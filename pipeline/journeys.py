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
from functools import cached_property
from typing import TYPE_CHECKING, Optional

import numpy as np

from .errors import InputError
from .journey_index import JOURNEY_COLUMNS, JourneyIndex, timestamps_to_seconds
from .progress import Progress, ensure
from .schema import channel_sql
from .window import Window

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Journeys:
    """The journeys of one window: session records in canonical order, and every conversion in the
    window with its number of sessions (0 = no earlier session)."""

    columns: dict  # JOURNEY_COLUMNS + ts → numpy arrays, sorted by conversion_id, ts, session_id
    conversion_ids: np.ndarray  # every conversion in the window, sorted
    sessions: np.ndarray  # sessions per conversion, aligned with conversion_ids
    window: Window
    # (conv_id, user has no session at all) of the conversions of any date with no session strictly
    # before them, in conv_id order (None: not read, as for stored journeys). Validation reports them;
    # ``scans.WITHOUT_EARLIER_SESSIONS_SQL`` gives the same rows.
    without_earlier_sessions: Optional[list] = None

    @cached_property
    def index(self) -> JourneyIndex:
        return JourneyIndex.from_columns(self.columns)

    @property
    def frame(self) -> "pd.DataFrame":
        return self.index.frame

    @property
    def conversions(self) -> "pd.DataFrame":
        import pandas as pd

        return pd.DataFrame({"conversion_id": self.conversion_ids, "sessions": self.sessions})

    @property
    def without_sessions(self) -> np.ndarray:
        return self.conversion_ids[self.sessions == 0]

    def summary(self) -> dict:
        n_rows = len(self.columns["ts"])
        first = str(self.columns["timestamp"].min())[:10] if n_rows else None
        return {
            "conversions": int(len(self.conversion_ids)),
            "with_sessions": int((self.sessions > 0).sum()),
            "without_sessions": int((self.sessions == 0).sum()),
            "sessions": int(n_rows),
            "distinct_sessions": int(len(np.unique(self.columns["session_id"]))) if n_rows else 0,
            "max_length": int(self.sessions.max()) if len(self.sessions) else 0,
            "first_session_date": first,
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

# Every conversion with a user (any date) meets every session of its user (any time): the pair is
# in a journey when ``in_journey``, decided here per pair. Reading all pairs costs nothing more (the
# scan is the same), and validation's "conversions without an earlier session" come out of the same
# scan: those whose pairs are all ``before = 0`` (whatever the window), and those whose user met no
# session at all, marked ``in_journey = -1``. A run then need not scan for them.
JOURNEYS_SQL = f"""
WITH every_conv AS MATERIALIZED (
    SELECT conv_id, user_id, conv_date || ' ' || conv_time AS conv_ts,
           conv_id IS NOT NULL AND (:start IS NULL OR conv_date >= :start)
                               AND (:end IS NULL OR conv_date <= :end) AS in_window
    FROM conversions
    WHERE user_id IS NOT NULL),
users AS MATERIALIZED (SELECT DISTINCT user_id FROM every_conv),
pairs AS MATERIALIZED (
    SELECT c.conv_id, s.session_id, {SESSION_TS} AS ts_text, {channel_sql("s.channel_name")} AS channel,
           CAST(s.holder_engagement AS INTEGER) AS h, CAST(s.closer_engagement AS INTEGER) AS c,
           CAST(s.impression_interaction AS INTEGER) AS i,
           coalesce(c.in_window AND {SESSION_TS} < c.conv_ts
                    AND (:lookback IS NULL OR {SESSION_TS} >= datetime(c.conv_ts, :lookback)), 0) AS in_journey,
           coalesce({SESSION_TS} < c.conv_ts, 0) AS before, s.user_id
    FROM session_sources s CROSS JOIN every_conv c ON c.user_id = s.user_id  -- CROSS: sessions outer, scanned once
    WHERE s.user_id IN users)
SELECT conv_id, session_id, ts_text, channel, h, c, i, in_journey, before FROM pairs
UNION ALL
SELECT conv_id, NULL, NULL, NULL, NULL, NULL, NULL, -1, 0 FROM every_conv WHERE user_id NOT IN (SELECT user_id FROM pairs)
ORDER BY 1, 3, 2
"""

CONVERSIONS_SQL = f"WITH {_CONVERSIONS_CTE} SELECT conv_id FROM conv ORDER BY conv_id"


def build_journeys(con: sqlite3.Connection, window: Window = Window(), progress: Optional[Progress] = None) -> Journeys:
    """All journeys of the conversions in ``window`` (reads only)."""
    progress = ensure(progress)
    progress(0, 2, "journeys: selecting sessions strictly before each conversion")
    params = window.sql_params()
    rows = con.execute(JOURNEYS_SQL, params).fetchall()
    (conv_ids,) = object_columns(con.execute(CONVERSIONS_SQL, params).fetchall(), 1)
    journeys = journeys_from_rows(rows, conv_ids, window)
    progress(2, 2, f"journeys: {len(journeys.columns['ts']):,} sessions in {len(conv_ids):,} conversions")
    return journeys


def journeys_from_rows(rows: list, conv_ids: np.ndarray, window: Window) -> Journeys:
    """``JOURNEYS_SQL``'s rows of whole conversions, and the window's conversions among them
    (``CONVERSIONS_SQL``), → their Journeys (``journey_batches`` calls it once per batch)."""
    raw = object_columns(rows, len(ROW_COLUMNS) + 2)
    in_journey = raw[-2].astype(np.int8)
    columns = journey_columns([c[in_journey == 1] for c in raw[:-2]])
    without = _without_earlier_sessions(raw[0], in_journey, raw[-1].astype(bool))
    return Journeys(columns, conv_ids, sessions_per(conv_ids, columns["conversion_id"]), window, without)


def _without_earlier_sessions(conv: np.ndarray, in_journey: np.ndarray, before: np.ndarray) -> list[tuple]:
    """(conv_id, no session at all) of the conversions none of whose pairs comes before them; the rows
    are grouped by conversion in conv_id order, which the result keeps."""
    if not len(conv):
        return []
    starts = np.flatnonzero(np.r_[True, conv[1:] != conv[:-1]])
    none_before = ~np.logical_or.reduceat(before, starts)
    at_all = in_journey[starts] == -1
    return list(zip(conv[starts][none_before].tolist(), at_all[none_before].tolist()))


def object_columns(rows: list[tuple], n_columns: int) -> list[np.ndarray]:
    """A query's rows → one object array per column (``n_columns`` empty ones when there are none)."""
    if not rows:
        return [np.zeros(0, dtype=object) for _ in range(n_columns)]
    return [np.array(column, dtype=object) for column in zip(*rows)]


def sessions_per(conversion_ids: np.ndarray, row_conversions: np.ndarray) -> np.ndarray:
    """How many rows each of the (sorted) conversion_ids has."""
    if len(row_conversions) == 0:
        return np.zeros(len(conversion_ids), dtype=np.int64)
    ids, counts = np.unique(row_conversions, return_counts=True)
    pos = np.clip(np.searchsorted(ids, conversion_ids), 0, len(ids) - 1)
    return np.where(ids[pos] == conversion_ids, counts[pos], 0).astype(np.int64)


ROW_COLUMNS = [c for c in JOURNEY_COLUMNS if c != "conversion"]  # what the journeys query reads


def journey_columns(raw: list) -> dict:
    """The ROW_COLUMNS (conv_id, session_id, ts_text, channel, h, c, imp), as sequences of equal
    length, → columns in the session-record format."""
    cols = {name: np.asarray(values, dtype=object) for name, values in zip(ROW_COLUMNS, raw)}
    n = len(cols["conversion_id"])
    for flag in ("holder_engagement", "closer_engagement", "impression_interaction"):
        cols[flag] = _flag(cols[flag], flag)
    cols["conversion"] = np.zeros(n, dtype=np.int8)
    cols["ts"] = timestamps_to_seconds(cols["timestamp"])
    return {name: cols[name] for name in [*JOURNEY_COLUMNS, "ts"]}


def _flag(values: np.ndarray, name: str) -> np.ndarray:
    """A 0/1 column as int8; InputError for anything else (NULL included), which validation details."""
    try:
        as_float = np.asarray(values).astype(np.float64)  # NULL (None) becomes NaN
    except (TypeError, ValueError):
        as_float = np.full(len(values), np.nan)
    if not ((as_float == 0) | (as_float == 1)).all():
        raise InputError(f"session_sources.{name} has a value other than 0 or 1; `validate` lists them")
    return as_float.astype(np.int8)


# ---- persistence: the current journeys set, so `attribute` can run as a separate command -----------


def save_journeys(con: sqlite3.Connection, journeys: Journeys) -> int:
    """Replace the stored journeys set; call inside a transaction."""
    clear_journeys(con)
    return append_journeys(con, journeys)


def clear_journeys(con: sqlite3.Connection) -> None:
    con.execute("DELETE FROM pipeline_journeys")
    con.execute("DELETE FROM pipeline_journey_conversions")


def append_journeys(con: sqlite3.Connection, journeys: Journeys) -> int:
    """Add ``journeys`` (a batch of whole journeys) to the stored set; call inside a transaction."""
    cols = journeys.columns
    con.executemany(
        "INSERT INTO pipeline_journeys (conversion_id, session_id, timestamp, channel_label,"
        " holder_engagement, closer_engagement, conversion, impression_interaction)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        zip(*(cols[c].tolist() for c in JOURNEY_COLUMNS)),
    )
    con.executemany(
        "INSERT INTO pipeline_journey_conversions (conversion_id, sessions) VALUES (?, ?)",
        zip(journeys.conversion_ids.tolist(), journeys.sessions.tolist()),
    )
    return len(cols["ts"])


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
    ids, counts = object_columns(conv, 2)
    return Journeys(journey_columns(object_columns(rows, len(ROW_COLUMNS))), ids, counts.astype(np.int64), window)


# ---- paths that did not convert (for Markov and Shapley) --------------------------------------------

# Only what path models read: which path, when, which channel (+ session_id for tie order). Fetching
# the flags too costs 40% more on the demo's 446k non-converting sessions; they are all 0 here.
NON_CONVERTING_SQL = f"""
WITH {_CONVERSIONS_CTE}
SELECT s.user_id, s.session_id, {SESSION_TS}, {channel_sql("s.channel_name")}
FROM session_sources s
WHERE s.user_id IS NOT NULL AND s.user_id NOT IN users
  AND (:first IS NULL OR s.event_date >= :first) AND (:end IS NULL OR s.event_date <= :end)
"""


def build_non_converting(
    con: sqlite3.Connection, window: Window = Window(), progress: Optional[Progress] = None
) -> JourneyIndex:
    """One path per user with no conversion in the window: their sessions dated in the window, and
    with ``lookback_days`` only those within that many days before the user's last such session.
    ``conversion_id`` is the path's id (the user_id); the engagement flags are 0 (path models ignore them)."""
    progress = ensure(progress)
    progress(0, 1, "journeys: paths that did not convert")
    params = {**window.sql_params(), "first": window.start}
    rows = con.execute(NON_CONVERTING_SQL, params).fetchall()
    users, sessions, stamps, channels = object_columns(rows, 4)
    zeros = np.zeros(len(rows), dtype=np.int8)
    index = JourneyIndex.from_columns(
        {
            "conversion_id": users,
            "session_id": sessions,
            "timestamp": stamps,
            "channel_label": channels,
            **{
                flag: zeros
                for flag in ("holder_engagement", "closer_engagement", "conversion", "impression_interaction")
            },
        }
    )
    if window.lookback_days is not None and index.n_rows:
        last = np.maximum.reduceat(index.ts, index.start)[index.journey]
        keep = index.ts >= last - window.lookback_days * 86_400
        index = JourneyIndex.from_columns({k: v[keep] for k, v in index.columns.items()})
    progress(1, 1, f"journeys: {index.n_journeys:,} paths without conversion")
    return index
