"""Packing whole journeys into requests within both per-request limits.

Journeys are taken in the given order and packed greedily (next fit): a request takes journeys while
it has at most ``max_journeys`` journeys and ``max_sessions`` sessions, and a journey is never split.
Every journey must already fit on its own (``records.prepare_journeys`` truncates longer ones).

The loop runs once per request, not per journey: each request's end is found with a binary search on
the running session total.
"""

from __future__ import annotations

import numpy as np


def plan_chunks(sessions: np.ndarray, max_journeys: int, max_sessions: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` positions into ``sessions`` (sessions per journey, in order).

    Each slice is one request: ``stop - start <= max_journeys`` and
    ``sessions[start:stop].sum() <= max_sessions``; together the slices cover every journey once, in
    order. A journey with more than ``max_sessions`` sessions is a programming error here.
    """
    sessions = np.asarray(sessions, dtype=np.int64)
    if max_journeys < 1 or max_sessions < 1:
        raise ValueError("limits must be at least 1")
    if len(sessions) and (sessions.min() < 1 or sessions.max() > max_sessions):
        raise ValueError("every journey needs between 1 and max_sessions sessions to be packed")
    total = np.concatenate(([0], np.cumsum(sessions)))
    chunks: list[tuple[int, int]] = []
    start, n = 0, len(sessions)
    while start < n:
        # largest stop with total[stop] - total[start] <= max_sessions
        by_sessions = int(np.searchsorted(total, total[start] + max_sessions, side="right")) - 1
        stop = min(by_sessions, start + max_journeys, n)
        chunks.append((start, stop))
        start = stop
    return chunks
