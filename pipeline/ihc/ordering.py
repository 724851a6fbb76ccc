"""Build a ``JourneyIndex`` that orders tied timestamps the way the API does: by request order.

The pipeline's ``JourneyIndex.from_frame`` breaks ties by session_id so that results never depend on
row order. The real API sorts sessions by timestamp and keeps the request order for equal timestamps
(one vector has two sessions at the same second; the earlier one in the request got the initializer),
so the API drop-in and the fidelity replay use this index instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..journey_index import JourneyIndex, stable_journey_time_order, timestamps_to_seconds


def request_order_index(frame: pd.DataFrame, columns=None) -> tuple[JourneyIndex, np.ndarray]:
    """(index, order): rows sorted by (journey in order of first appearance, time, request position).

    ``order[i]`` is the input row of sorted row i. ``columns`` limits the columns carried into the
    index (copying wide string columns is the expensive part at millions of rows).
    """
    frame = frame.reset_index(drop=True)
    ts = frame["ts"].to_numpy(dtype=np.int64) if "ts" in frame.columns else timestamps_to_seconds(frame["timestamp"])
    carried = list(frame.columns) if columns is None else list(columns)
    if len(frame) == 0:
        cols = {c: frame[c].to_numpy() for c in carried}
        return JourneyIndex.from_sorted({**cols, "ts": ts}), np.zeros(0, dtype=np.int64)
    codes = pd.factorize(frame["conversion_id"], sort=False)[0].astype(np.int64)
    order = stable_journey_time_order(codes, ts)
    cols = {c: frame[c].to_numpy()[order] for c in carried if c != "ts"}
    cols["ts"] = ts[order]
    return JourneyIndex.from_sorted(cols, journey_codes=codes[order]), order
