"""Helpers for the IHC tests: build journeys from gaps and flags, locate ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BASE = pd.Timestamp("2023-09-01 08:00:00")


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} not found: the shared reference data must sit beside the checkout")
    return path


def journey(
    gaps_hours,
    h=None,
    c=None,
    *,
    cid="j",
    channel="Direct Traffic",
    conversion=None,
    impression=None,
    channels=None,
    start=BASE,
) -> pd.DataFrame:
    """One journey; ``gaps_hours[k]`` is the gap before session k+1 (so n = len(gaps)+1)."""
    n = len(gaps_hours) + 1
    times = [start]
    for g in gaps_hours:
        times.append(times[-1] + pd.Timedelta(seconds=round(g * 3600)))
    return pd.DataFrame(
        {
            "conversion_id": cid,
            "session_id": [f"{cid}-{k}" for k in range(n)],
            "timestamp": [t.strftime("%Y-%m-%d %H:%M:%S") for t in times],
            "channel_label": channels or [channel] * n,
            "holder_engagement": h if h is not None else [1] * n,
            "closer_engagement": c if c is not None else [0] * (n - 1) + [1],
            "conversion": conversion if conversion is not None else [0] * n,
            "impression_interaction": impression if impression is not None else [0] * n,
        }
    )
