"""Markov/Shapley path summaries computed by an engine (DuckDB-dialect SQL, compiled per engine as the rest
of the set work): the ``PathSummary`` that ``pipeline.path_summary.path_summary`` builds from SQLite,
equal field by field (parity tests on DuckDB and on a real Postgres).

The engine returns only journey-sized data: one row per converting journey (its path and revenue, in
conversion order, as SQLite's GROUP BY gives them — the revenue sums are then taken by pandas in the
same order, so they are bit-identical) and one row per DISTINCT non-converting path with its count
(integers, exact in any order). A path is written as SQLite's does: each channel's UTF-8 bytes in upper
hex, joined with ',' in (time, session_id) byte order — so any character in a channel name is safe and
the keys sort as SQLite's do.

Paths, as ``journeys.build_journeys`` / ``build_non_converting`` define them:
- converting: the sessions of the conversion's user strictly before it, with ``lookback_days`` no more
  than that many days before the conversion (inclusive); conversions without such a session have none;
- non-converting: per user with no conversion in the window, the sessions dated in the window, with
  ``lookback_days`` only those no more than that many days before the user's last such session.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..models.weighted_paths import PathSummary
from ..schema import channel_sql
from ..window import Window

FMT = "%Y-%m-%d %H:%M:%S"


def _back(ts: str) -> str:
    """``ts`` moved back by $lookback_days days, as 'YYYY-MM-DD HH:MM:SS' text."""
    return f"strftime(try_strptime({ts}, '{FMT}') - to_days(CAST($lookback_days AS INTEGER)), '{FMT}')"


def summary_sql(engine: Any) -> tuple[str, str]:
    """(converting, non-converting) queries over ``engine.present``; parameters $start, $end,
    $lookback_days."""
    from .duckdb import _text

    s, c = engine.present["session_sources"], engine.present["conversions"]
    s_date = _text("s.event_date", s["event_date"])
    s_ts = f"{s_date} || ' ' || {_text('s.event_time', s['event_time'])}"
    c_date = _text("conv_date", c["conv_date"])
    channel = f"hex({channel_sql('s.channel_name')})"
    in_window = f"($start IS NULL OR {c_date} >= $start) AND ($end IS NULL OR {c_date} <= $end)"
    converting = f"""
    WITH conv AS (
        SELECT conv_id, user_id, {c_date} || ' ' || {_text("conv_time", c["conv_time"])} AS conv_ts,
               coalesce(revenue, 0) AS revenue
        FROM conversions
        WHERE conv_id IS NOT NULL AND user_id IS NOT NULL AND {in_window}),
    s AS (
        SELECT c.conv_id AS u, {s_ts} AS ts, CAST(s.session_id AS VARCHAR) AS sid, {channel} AS ch,
               c.revenue AS revenue, c.conv_ts
        FROM session_sources s JOIN conv c ON c.user_id = s.user_id)
    SELECT u, string_agg(ch, ',' ORDER BY ts, sid) AS path, max(revenue) AS revenue
    FROM s
    WHERE ts < conv_ts AND ($lookback_days IS NULL OR ts >= {_back("conv_ts")})
    GROUP BY u
    ORDER BY u
    """
    non_converting = f"""
    WITH users AS (
        SELECT DISTINCT user_id FROM conversions
        WHERE conv_id IS NOT NULL AND user_id IS NOT NULL AND {in_window}),
    s AS (
        SELECT s.user_id AS u, {s_ts} AS ts, CAST(s.session_id AS VARCHAR) AS sid, {channel} AS ch
        FROM session_sources s
        WHERE s.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users WHERE users.user_id = s.user_id)
          AND ($start IS NULL OR {s_date} >= $start) AND ($end IS NULL OR {s_date} <= $end)),
    last AS (SELECT u, max(ts) AS last_ts FROM s GROUP BY u),
    paths AS (
        SELECT s.u, string_agg(s.ch, ',' ORDER BY s.ts, s.sid) AS path
        FROM s JOIN last ON last.u = s.u
        WHERE $lookback_days IS NULL OR s.ts >= {_back("last.last_ts")}
        GROUP BY s.u)
    SELECT path, count(*) AS n FROM paths GROUP BY path
    """
    return converting, non_converting


def _params(window: Window) -> dict:
    return {"start": window.start, "end": window.end, "lookback_days": window.lookback_days}


def non_converting_summary(engine: Any, window: Window = Window()) -> PathSummary:
    """The paths of the users without a conversion in ``window`` and how many took each
    (``pipeline.path_summary.non_converting_summary``'s, from this engine): what Markov and Shapley
    take as ``non_converting`` beside the journeys."""
    from ..path_summary import summary_from_counts

    _, null_sql = summary_sql(engine)
    return summary_from_counts({key: float(n) for key, n in engine.sql(null_sql, _params(window))}, None)


def path_summary(engine: Any, window: Window = Window()) -> PathSummary:
    """The ``PathSummary`` of ``window`` (``pipeline.path_summary.path_summary``'s, from this engine)."""
    import pandas as pd

    from ..path_summary import _decode

    converting_sql, null_sql = summary_sql(engine)
    params = _params(window)
    conv = engine.sql(converting_sql, params)
    null = engine.sql(null_sql, params)
    # As path_summary.path_summary: the non-converting paths decoded first (sorted by their hex key),
    # then every journey's key with its counts, summed per key by pandas in conversion order.
    null_keys = np.array([r[0] for r in null], dtype=object)
    null_counts = np.array([float(r[1]) for r in null], dtype=np.float64)
    if len(null_keys):
        per_path = pd.Series(null_counts).groupby(null_keys, sort=True).sum()
        null_keys, null_counts = per_path.index.to_numpy(dtype=object), per_path.to_numpy()
    n_conv = len(conv)
    frame = pd.DataFrame(
        {
            "key": np.concatenate((np.array([r[1] for r in conv], dtype=object), null_keys)),
            "conversions": np.concatenate((np.ones(n_conv), np.zeros(len(null_keys)))),
            "non_conversions": np.concatenate((np.zeros(n_conv), null_counts)),
            "value": np.concatenate((np.array([float(r[2]) for r in conv]), np.zeros(len(null_keys)))),
        }
    )
    if frame.empty:
        return PathSummary.empty()
    totals = frame.groupby("key", sort=True).sum()
    return _decode(
        totals.index.to_numpy(dtype=object),
        totals["non_conversions"].to_numpy(),
        totals["conversions"].to_numpy(),
        totals["value"].to_numpy(),
    )
