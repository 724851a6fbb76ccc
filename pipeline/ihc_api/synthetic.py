"""Synthetic journeys in the API record format, for tests, the limit probe and throughput measurements."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from ..journey_index import seconds_to_timestamps

CHANNELS = ("Paid Search Brand", "Organic Traffic", "Direct Traffic", "Newsletter & Email", "Referral")


def make_journeys(
    sizes: Sequence[int] | np.ndarray,
    *,
    seed: int = 0,
    prefix: str = "c",
    start: str = "2024-01-01 00:00:00",
    max_gap_hours: float = 30.0,
) -> pd.DataFrame:
    """One journey per entry of ``sizes`` (sessions per journey), ids ``{prefix}{i}`` and ``{prefix}{i}-s{k}``.

    Sessions of a journey are spaced by random gaps of up to ``max_gap_hours``; flags are random 0/1.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    rng = np.random.default_rng(seed)
    n = int(sizes.sum())
    journey = np.repeat(np.arange(len(sizes)), sizes)
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    pos = np.arange(n) - offsets[journey]
    gaps = (rng.random(n) * max_gap_hours * 3600).astype(np.int64)
    gaps[pos == 0] = 0
    cumulative = np.cumsum(gaps)
    cumulative -= np.repeat(cumulative[offsets[:-1]] if len(sizes) else np.zeros(0, np.int64), sizes)
    base = int(pd.Timestamp(start, tz="UTC").timestamp()) + rng.integers(0, 30 * 86400, len(sizes))
    ts = np.repeat(base, sizes) + cumulative
    conversion_ids = np.char.add(prefix, journey.astype(str))
    session_ids = np.char.add(np.char.add(conversion_ids, "-s"), pos.astype(str))
    return pd.DataFrame(
        {
            "conversion_id": conversion_ids.astype(object),
            "session_id": session_ids.astype(object),
            "timestamp": seconds_to_timestamps(ts),
            "channel_label": np.asarray(CHANNELS, dtype=object)[rng.integers(0, len(CHANNELS), n)],
            "holder_engagement": rng.integers(0, 2, n),
            "closer_engagement": rng.integers(0, 2, n),
            "conversion": np.zeros(n, dtype=np.int64),
            "impression_interaction": np.zeros(n, dtype=np.int64),
        }
    ).astype({"conversion_id": str, "session_id": str, "timestamp": str, "channel_label": str})


def random_sizes(n: int, *, seed: int = 0, mean: float = 2.0, longest: Optional[int] = None) -> np.ndarray:
    """``n`` journey lengths ≥ 1, geometric around ``mean``, optionally capped at ``longest``."""
    rng = np.random.default_rng(seed)
    sizes = rng.geometric(1.0 / mean, n).astype(np.int64)
    return np.minimum(sizes, longest) if longest else sizes
