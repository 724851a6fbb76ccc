"""Markov/Shapley path summaries computed by an engine: the one implementation every engine calls
(DuckDB-dialect SQL, run by DuckDB as it is and compiled by ``engines.dialects`` for Postgres and the
warehouses). ``path_summary(engine, window, bucket_sessions)`` gives the ``PathSummary`` that
``pipeline.path_summary.path_summary`` builds from SQLite, equal field by field (parity tests on DuckDB,
tests/test_engine_paths.py and tests/test_engine_run.py, and on a real Postgres,
tests/test_engine_postgres.py); ``non_converting_summary`` its non-converting part alone.

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

Bounded memory: an ordered ``string_agg`` over every non-converting session is what a buffer-bounded
engine cannot spill (DuckDB), so with ``bucket_sessions`` the non-converting users are summarised in
passes over hash buckets of user_id (``abs(hash(user_id) % buckets) = bucket``; about ``bucket_sessions``
sessions a pass), each within the engine's memory; their counts are whole numbers, added exactly, so the
result does not depend on the number of passes. DuckDB passes ``PATH_BUCKET_SESSIONS``; a server that
spills its own sorts (Postgres) runs one pass (``None``); the bucketed SQL compiles for it too.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..models.weighted_paths import PathSummary
from ..schema import channel_sql
from ..window import Window
from .columns import as_number, as_text

FMT = "%Y-%m-%d %H:%M:%S"
PATH_BUCKET_SESSIONS = 1_500_000  # sessions per pass of the non-converting paths (bounds DuckDB's memory)


def _back(ts: str) -> str:
    """``ts`` moved back by $lookback_days days, as 'YYYY-MM-DD HH:MM:SS' text."""
    return f"strftime(try_strptime({ts}, '{FMT}') - to_days(CAST($lookback_days AS INTEGER)), '{FMT}')"


def summary_sql(engine: Any, bucketed: bool = False, lookback: bool = True) -> tuple[str, str]:
    """(converting, non-converting) queries over ``engine.present``; parameters $start, $end,
    $lookback_days; with ``bucketed`` also $buckets and $bucket (the non-converting users of one bucket);
    without ``lookback`` the non-converting query has no cut before each user's last session (nor
    $lookback_days)."""
    s, c = engine.present["session_sources"], engine.present["conversions"]
    s_date = as_text("s.event_date", s["event_date"])
    s_ts = f"{s_date} || ' ' || {as_text('s.event_time', s['event_time'])}"
    c_date = as_text("conv_date", c["conv_date"])
    channel = f"hex({channel_sql('s.channel_name')})"
    in_window = f"($start IS NULL OR {c_date} >= $start) AND ($end IS NULL OR {c_date} <= $end)"
    converting = f"""
    WITH conv AS (
        SELECT conv_id, user_id, {c_date} || ' ' || {as_text("conv_time", c["conv_time"])} AS conv_ts,
               coalesce({as_number("revenue", c["revenue"])}, 0) AS revenue
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
    bucket = "AND abs(hash(s.user_id) % $buckets) = $bucket" if bucketed else ""
    last = "(SELECT u, ts, sid, ch, max(ts) OVER (PARTITION BY u) AS last_ts FROM s) AS cut"
    kept = f"{last} WHERE ts >= {_back('last_ts')}" if lookback else "s"
    non_converting = f"""
    WITH users AS (
        SELECT DISTINCT user_id FROM conversions
        WHERE conv_id IS NOT NULL AND user_id IS NOT NULL AND {in_window}),
    s AS (
        SELECT s.user_id AS u, {s_ts} AS ts, CAST(s.session_id AS VARCHAR) AS sid, {channel} AS ch
        FROM session_sources s
        WHERE s.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users WHERE users.user_id = s.user_id)
          AND ($start IS NULL OR {s_date} >= $start) AND ($end IS NULL OR {s_date} <= $end) {bucket}),
    paths AS (SELECT u, string_agg(ch, ',' ORDER BY ts, sid) AS path FROM {kept} GROUP BY u)
    SELECT path, count(*) AS n FROM paths GROUP BY path
    """
    return converting, non_converting


def _params(window: Window) -> dict:
    return {"start": window.start, "end": window.end, "lookback_days": window.lookback_days}


def _non_converting_counts(engine: Any, window: Window, bucket_sessions: Optional[int]) -> dict[str, float]:
    """{hex path: number of non-converting users who took it}, in one pass or in passes over buckets."""
    params = _params(window)
    buckets = 1
    if bucket_sessions:
        n_sessions = int(engine.sql("SELECT count(*) FROM session_sources")[0][0])
        buckets = max(1, -(-n_sessions // int(bucket_sessions)))
    _, null_sql = summary_sql(engine, bucketed=buckets > 1, lookback=window.lookback_days is not None)
    counts: dict[str, float] = {}
    for bucket in range(buckets):
        bucket_params = {**params, "buckets": buckets, "bucket": bucket}
        used = {k: v for k, v in bucket_params.items() if f"${k}" in null_sql}  # DuckDB refuses unused ones
        for key, n in engine.sql(null_sql, used):
            counts[key] = counts.get(key, 0.0) + float(n)
    return counts


def non_converting_summary(
    engine: Any, window: Window = Window(), bucket_sessions: Optional[int] = None
) -> PathSummary:
    """The paths of the users without a conversion in ``window`` and how many took each
    (``pipeline.path_summary.non_converting_summary``'s, from this engine): what Markov and Shapley
    take as ``non_converting`` beside the journeys."""
    from ..path_summary import summary_from_counts

    return summary_from_counts(_non_converting_counts(engine, window, bucket_sessions), None)


def path_summary(engine: Any, window: Window = Window(), bucket_sessions: Optional[int] = None) -> PathSummary:
    """The ``PathSummary`` of ``window`` (``pipeline.path_summary.path_summary``'s, from this engine):
    every distinct path with its converting journeys, non-converting users and converting revenue."""
    import pandas as pd

    from ..path_summary import summary_from_frame

    converting_sql, _ = summary_sql(engine)
    conv = engine.sql(converting_sql, _params(window))
    null = _non_converting_counts(engine, window, bucket_sessions)
    # As path_summary.path_summary: the non-converting paths sorted by their hex key, then every journey's
    # key with its counts, summed per key by pandas in conversion order.
    null_keys = np.array(sorted(null), dtype=object)
    null_counts = np.array([null[k] for k in null_keys.tolist()], dtype=np.float64)
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
    return summary_from_frame(frame)
