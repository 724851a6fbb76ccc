"""Attribute session records in the API's format: the plain library function behind ``ihc-local``.

``attribute_records(journeys, profile)`` takes a journeys DataFrame (API record columns) and returns the
API's per-session values in the input row order. The stdin stand-in for the API (``ihc_api/standin.py``)
calls it; the HTTP stand-in (``ihc_api/local_server.py``) goes through the registered model ``ihc``.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd

from ..errors import InputError
from ..journey_index import CREDIT_COLUMNS
from .model import attribute_index
from .ordering import request_order_index
from .profile import Profile

REQUIRED = ["conversion_id", "session_id", "timestamp", "channel_label", "holder_engagement", "closer_engagement"]
OPTIONAL_FLAGS = ["conversion", "impression_interaction"]  # default 0 when absent
MODEL_COLUMNS = ["channel_label", "holder_engagement", "closer_engagement"] + OPTIONAL_FLAGS


def attribute_records(
    journeys: pd.DataFrame,
    profile: "Profile | str | None" = "challenge",
    *,
    round_values: bool = True,
    redistribution: Optional[Mapping[str, Any]] = None,
) -> pd.DataFrame:
    """Columns ``conversion_id, session_id, initializer, holder, closer, ihc``, one row per input row.

    Journeys are grouped by ``conversion_id`` within this call only (like one API request); sessions
    are ordered by time, ties by input order (like the API). Values are rounded to 4 decimals unless
    ``round_values`` is False.
    """
    missing = [c for c in REQUIRED if c not in journeys.columns and not (c == "timestamp" and "ts" in journeys.columns)]
    if missing:
        raise InputError(f"journeys lack column(s): {', '.join(missing)}")
    frame = journeys.reset_index(drop=True)
    for flag in OPTIONAL_FLAGS:
        if flag not in frame.columns:
            frame = frame.assign(**{flag: 0})
    index, order = request_order_index(frame, columns=MODEL_COLUMNS)
    credits = attribute_index(index, profile, round_values=round_values, redistribution=redistribution)
    out = {"conversion_id": frame["conversion_id"], "session_id": frame["session_id"]}
    for phase in CREDIT_COLUMNS[2:]:
        values = np.empty(len(frame))
        values[order] = getattr(credits, phase)
        out[phase] = values
    return pd.DataFrame(out, columns=CREDIT_COLUMNS)
