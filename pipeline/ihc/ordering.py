"""Build a ``JourneyIndex`` that orders tied timestamps the way the API does: by request order.

The pipeline's ``JourneyIndex.from_frame`` breaks ties by session_id so that results never depend on
row order. The real API sorts sessions by timestamp and keeps the request order for equal timestamps
(one vector has two sessions at the same second; the earlier one in the request got the initializer),
so the API drop-in and the fidelity replay use this index instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..models.base import JourneyIndex, timestamps_to_seconds


def request_order_index(frame: pd.DataFrame, columns=None) -> tuple[JourneyIndex, np.ndarray]:
    """(index, order): rows sorted by (journey in order of first appearance, time, request position).

    ``order[i]`` is the input row of sorted row i. ``columns`` limits the columns carried into
    ``index.frame`` (copying wide string columns is the expensive part at millions of rows).
    """
    frame = frame.reset_index(drop=True)
    ts = (
        frame["ts"].to_numpy(dtype=np.int64)
        if "ts" in frame.columns
        else timestamps_to_seconds(frame["timestamp"])
    )
    n = len(frame)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return JourneyIndex(frame.assign(ts=ts), ts, empty, empty, empty), empty
    codes, _ = pd.factorize(frame["conversion_id"], sort=False)
    codes = codes.astype(np.int64)
    order = _stable_journey_time_order(codes, ts)
    carried = frame if columns is None else frame[list(columns)]
    frame = carried.take(order).reset_index(drop=True).assign(ts=ts[order])
    codes, ts = codes[order], ts[order]
    boundary = np.empty(n, dtype=bool)
    boundary[0] = True
    np.not_equal(codes[1:], codes[:-1], out=boundary[1:])
    start = np.flatnonzero(boundary)
    length = np.diff(np.append(start, n))
    return JourneyIndex(frame, ts, np.cumsum(boundary) - 1, start, length), order


def _stable_journey_time_order(codes: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Stable argsort by (codes, ts). One combined int64 key sorts with timsort, which is near
    linear on the usual input (journeys contiguous, sessions in time order); lexsort is the fallback
    when the key could overflow."""
    span = int(ts.max()) - int(ts.min()) + 1
    if span > 0 and len(codes) * span < 2**62:
        return np.argsort(codes * span + (ts - ts.min()), kind="stable")
    return np.lexsort((ts, codes))
