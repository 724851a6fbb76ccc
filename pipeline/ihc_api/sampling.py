"""Choosing the conversions whose journeys are sent to the API for a calibration.

``sample_conversions(conversions, n, seed, max_sessions)``: ``n`` conversions, the same for the same
seed and input (whatever its row order), stratified by journey length. One-session journeys teach the
fit nothing (their answer is always I = C = ihc = 1), so the sample is dealt over the multi-session
strata first — equal shares, a stratum with fewer journeys than its share gives the rest to the others
(long journeys are rare and carry the most information) — and takes one-session journeys only when the
multi-session ones run out. Journeys longer than ``max_sessions`` (the per-request session limit) are
never sampled: they could not be sent whole.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError

# (lowest, highest, label) journey lengths per stratum; one-session journeys last
STRATA = [(2, 2, "2"), (3, 3, "3"), (4, 5, "4-5"), (6, 8, "6-8"), (9, 10**9, "9+")]
ONE_SESSION = (1, 1, "1")
STRATUM_LABELS = [ONE_SESSION[2], *(label for _, _, label in STRATA)]  # shortest journeys first, for reading


def allocate(available: list[int], n: int) -> list[int]:
    """Equal shares of ``n`` over strata capped by what each has (water-filling), in stratum order."""
    take = [0] * len(available)
    left = n
    open_ = [i for i, a in enumerate(available) if a > 0]
    while left > 0 and open_:  # at most one round per stratum
        share, extra = divmod(left, len(open_))
        still = []
        for rank, i in enumerate(open_):
            want = share + (1 if rank < extra else 0)
            got = min(want, available[i] - take[i])
            take[i] += got
            left -= got
            if take[i] < available[i]:
                still.append(i)
        if len(still) == len(open_):
            break
        open_ = still
    return take


def sample_conversions(conversions: pd.DataFrame, n: int, seed: int = 0, max_sessions: int = 3000) -> pd.DataFrame:
    """Columns ``conversion_id``, ``sessions``, ``stratum`` of the sampled conversions, sorted by id.

    ``conversions``: ``conversion_id`` and ``sessions`` (journey length; 0 = no session, never sampled).
    """
    if n < 1:
        raise InputError(f"the sample size must be at least 1, got {n}")
    frame = conversions[["conversion_id", "sessions"]].copy()
    frame["conversion_id"] = frame["conversion_id"].astype(str)
    frame = frame[(frame["sessions"] >= 1) & (frame["sessions"] <= max_sessions)]
    frame = frame.sort_values("conversion_id", kind="stable").reset_index(drop=True)
    if frame.empty:
        raise InputError("no conversion has a journey that fits in one request: nothing to sample")
    lengths = frame["sessions"].to_numpy()
    strata = [(lo, hi, label) for lo, hi, label in STRATA]
    members = [np.flatnonzero((lengths >= lo) & (lengths <= hi)) for lo, hi, _ in strata]
    take = allocate([len(m) for m in members], n)
    single = np.flatnonzero(lengths == 1)
    rng = np.random.default_rng(seed)
    picked, labels = [], []
    for (_, _, label), rows, k in zip(strata, members, take):
        chosen = rows[rng.permutation(len(rows))[:k]]
        picked.append(chosen)
        labels += [label] * len(chosen)
    rest = n - sum(take)
    if rest > 0 and len(single):
        chosen = single[rng.permutation(len(single))[:rest]]
        picked.append(chosen)
        labels += [ONE_SESSION[2]] * len(chosen)
    rows = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    out = frame.iloc[rows].assign(stratum=labels)
    return out.sort_values("conversion_id", kind="stable").reset_index(drop=True)
