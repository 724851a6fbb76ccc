"""Helpers for the model tests: journeys frames from channel paths, random journeys."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from pipeline.journey_index import JourneyIndex

BASE_TS = 1_700_000_000  # 2023-11-14 22:13:20 UTC


def journeys_frame(
    paths: Sequence[Sequence[str]],
    prefix: str = "c",
    hours: Sequence[Sequence[float]] | None = None,
) -> pd.DataFrame:
    """One journey per path (conversion_id f"{prefix}{i}"), sessions one hour apart unless
    ``hours`` gives each session's time (hours after BASE_TS)."""
    rows = []
    for i, path in enumerate(paths):
        for j, channel in enumerate(path):
            h = hours[i][j] if hours is not None else j
            rows.append(
                {
                    "conversion_id": f"{prefix}{i}",
                    "session_id": f"{prefix}{i}s{j:03d}",
                    "channel_label": channel,
                    "ts": BASE_TS + int(round(h * 3600)),
                }
            )
    frame = pd.DataFrame(rows, columns=["conversion_id", "session_id", "channel_label", "ts"])
    frame["timestamp"] = pd.to_datetime(frame["ts"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
    for flag in ("holder_engagement", "closer_engagement", "impression_interaction"):
        frame[flag] = 0
    frame["conversion"] = 0
    frame["ts"] = frame["ts"].astype(np.int64)
    return frame


def credit_of(result: pd.DataFrame) -> dict[str, float]:
    """session_id → ihc credit."""
    return dict(zip(result["session_id"], result["ihc"]))


def attribute_paths(model: str, conv, null, params=None) -> dict[str, float]:
    """session_id → credit from a path model (markov, shapley) run through its public ``attribute``."""
    from pipeline.models import get_model

    null_frame = journeys_frame(null, prefix="n") if null is not None else None
    result = get_model(model).attribute(journeys_frame(conv), params, non_converting=null_frame)
    return credit_of(result)


def index_of(frame: pd.DataFrame) -> JourneyIndex:
    return JourneyIndex.from_frame(frame)


def random_paths(
    rng: np.random.Generator,
    n: int,
    channels: Sequence[str],
    mean_length: float = 3.0,
    weights: Sequence[float] | None = None,
) -> list[list[str]]:
    """``n`` random channel paths with geometric lengths."""
    p = None if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
    lengths = rng.geometric(1 / mean_length, n)
    return [list(rng.choice(channels, size=k, p=p)) for k in lengths]


# ---- slow, obviously-correct references (Python loops over paths; tiny inputs only) -------------


def reference_markov(conv_paths, null_paths, order: int = 1) -> dict[str, float]:
    """Removal effect per channel: count transitions path by path, solve each removal with a dense
    linear solve on the chain without the channel's states."""
    from collections import Counter

    counts: Counter = Counter()
    for paths, end in ((conv_paths, "conv"), (null_paths, "null")):
        for path in paths:
            state = "start"
            for i in range(len(path)):
                nxt = tuple(path[max(0, i - order + 1) : i + 1])
                counts[state, nxt] += 1
                state = nxt
            counts[state, end] += 1
    states = ["start"] + sorted({s for s, _ in counts if s != "start"})
    pos = {s: i for i, s in enumerate(states)}
    q = np.zeros((len(states), len(states)))
    r = np.zeros(len(states))
    out = Counter()
    for (s, _t), k in counts.items():
        out[s] += k
    for (s, t), k in counts.items():
        if t == "conv":
            r[pos[s]] += k / out[s]
        elif t != "null":
            q[pos[s], pos[t]] += k / out[s]

    def p_conv(removed: str | None) -> float:
        keep = [i for i, s in enumerate(states) if s == "start" or removed not in s]
        a = np.eye(len(keep)) - q[np.ix_(keep, keep)]
        return float(np.linalg.solve(a, r[keep])[0])

    full = p_conv(None)
    channels = sorted({c for path in list(conv_paths) + list(null_paths) for c in path})
    return {c: 1.0 - p_conv(c) / full for c in channels}


def reference_shapley(conv_paths, null_paths, cap: int = 4, worth: str = "rate") -> dict[str, float]:
    """Shapley values by the full formula over all orderings of the channels, with
    v(S) = sum of r(T) over observed channel sets T ⊆ S (sets capped to the most recent channels)."""
    import itertools
    import math
    from collections import Counter

    def channel_set(path):
        recent = []
        for c in reversed(path):
            if c not in recent:
                recent.append(c)
        return frozenset(recent[:cap])

    conv = Counter(channel_set(p) for p in conv_paths)
    total = conv + Counter(channel_set(p) for p in null_paths)
    r = {t: (conv[t] / total[t] if worth == "rate" else conv[t]) for t in total}
    channels = sorted({c for path in list(conv_paths) + list(null_paths) for c in path})

    def v(coalition: frozenset) -> float:
        return sum(w for t, w in r.items() if t <= coalition)

    phi = dict.fromkeys(channels, 0.0)
    for order in itertools.permutations(channels):
        coalition: frozenset = frozenset()
        for c in order:
            phi[c] += v(coalition | {c}) - v(coalition)
            coalition = coalition | {c}
    n_orders = math.factorial(len(channels))
    return {c: phi[c] / n_orders for c in channels}
