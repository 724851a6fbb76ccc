"""Channel paths shared by the data-driven models (Markov, Shapley).

Both models look at journeys as sequences of channel codes, over converting journeys *and* the paths
that did not convert, with one channel alphabet for the two. ``ChannelPaths`` holds those arrays (one
entry per session, in the canonical JourneyIndex order) and ``credit_by_channel_share`` turns the
channel-level shares a model learns into per-session credit for each conversion.

Per-session convention (documented in docs/models.md): a conversion's credit is split over the
*distinct* channels present in its journey in proportion to their global shares, then equally among
that channel's sessions in the journey. A journey whose channels all have share 0 falls back to the
linear model (1/n per session).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..errors import InputError
from ..journey_index import JourneyIndex

if TYPE_CHECKING:
    pass
# pandas loads when paths are built, not when the registry lists models.


@dataclass(frozen=True)
class PathSet:
    """Sessions of some journeys as channel codes; rows grouped by journey in time order."""

    codes: np.ndarray  # int64 channel code per session
    journey: np.ndarray  # int64 journey number per session (0..n_journeys-1)
    start: np.ndarray  # int64 first session of each journey
    length: np.ndarray  # int64 sessions per journey
    # How many journeys each path stands for (a distinct path of a summary); None: 1 each
    weight: Optional[np.ndarray] = None

    def weights(self) -> np.ndarray:
        """Weight per journey as float64 (1.0 each when unweighted)."""
        return np.ones(self.n_journeys) if self.weight is None else np.asarray(self.weight, dtype=np.float64)

    @property
    def n_rows(self) -> int:
        return len(self.codes)

    @property
    def n_journeys(self) -> int:
        return len(self.start)

    @property
    def last(self) -> np.ndarray:
        """Row of each journey's last session."""
        return self.start + self.length - 1

    def first_mask(self) -> np.ndarray:
        mask = np.zeros(self.n_rows, dtype=bool)
        mask[self.start] = True
        return mask

    def collapse_repeats(self) -> "PathSet":
        """Drop sessions whose channel equals the previous session's channel in the same journey."""
        if self.n_rows == 0:
            return self
        keep = np.ones(self.n_rows, dtype=bool)
        keep[1:] = (self.codes[1:] != self.codes[:-1]) | (self.journey[1:] != self.journey[:-1])
        if keep.all():
            return self
        journey = self.journey[keep]
        length = np.bincount(journey, minlength=self.n_journeys).astype(np.int64)
        start = np.concatenate(([0], np.cumsum(length)[:-1])).astype(np.int64)
        return PathSet(self.codes[keep], journey, start, length, self.weight)


_P1, _P2, _BASE = 2_147_483_647, 2_147_483_629, 1_000_003  # two primes < 2³¹ and a hash base


def distinct_paths(paths: PathSet) -> PathSet:
    """The distinct paths of an unweighted PathSet, each weighted by how many journeys took it (in
    order of first appearance); the same fit, less to count. Paths are grouped by a hash of their
    channel codes, and every path is then checked against its group's first path, code by code: on
    any difference (a hash collision) the paths are returned as they are, so the result is exact."""
    import pandas as pd

    if paths.weight is not None or paths.n_journeys < 2:
        return paths
    pos = np.arange(paths.n_rows, dtype=np.int64) - paths.start[paths.journey]
    width = int(paths.length.max())
    keys = []
    for prime in (_P1, _P2):
        power = np.ones(width, dtype=np.int64)
        for i in range(1, width):
            power[i] = power[i - 1] * _BASE % prime
        terms = (paths.codes + 1) * power[pos] % prime  # < 2⁶² before the modulo
        keys.append(np.add.reduceat(terms, paths.start) % prime)  # sums < n_rows · 2³¹
    group, _ = pd.factorize((keys[0] << 31) | keys[1])
    first = np.unique(group, return_index=True)[1]  # first journey of each group
    rep = first[group]
    if not (paths.length[rep] == paths.length).all():
        return paths
    if not (paths.codes[paths.start[rep][paths.journey] + pos] == paths.codes).all():
        return paths
    weight = np.bincount(group).astype(np.float64)
    keep = np.zeros(paths.n_journeys, dtype=bool)
    keep[first] = True
    rows = keep[paths.journey]
    length = paths.length[keep]
    start = np.concatenate(([0], np.cumsum(length)[:-1])).astype(np.int64)
    journey = np.repeat(np.arange(len(length), dtype=np.int64), length)
    return PathSet(paths.codes[rows], journey, start, length, weight[group[keep]])


@dataclass(frozen=True)
class ChannelPaths:
    """Converting and non-converting paths over one sorted channel alphabet ``labels``."""

    labels: np.ndarray  # channel labels, sorted; code i is labels[i]
    converting: PathSet
    non_converting: PathSet

    @property
    def n_channels(self) -> int:
        return len(self.labels)

    def distinct(self) -> "ChannelPaths":
        """The same paths as weighted distinct paths (``distinct_paths``): the same fit."""
        return ChannelPaths(self.labels, distinct_paths(self.converting), distinct_paths(self.non_converting))

    def combined(self, collapse_repeats: bool = False) -> tuple[PathSet, np.ndarray]:
        """One PathSet of the converting then the non-converting paths, and a per-journey flag
        telling which converted."""
        conv, null = self.converting, self.non_converting
        if collapse_repeats:
            conv, null = conv.collapse_repeats(), null.collapse_repeats()
        both = PathSet(
            np.concatenate((conv.codes, null.codes)),
            np.concatenate((conv.journey, null.journey + conv.n_journeys)),
            np.concatenate((conv.start, null.start + conv.n_rows)),
            np.concatenate((conv.length, null.length)),
            None if conv.weight is None and null.weight is None else np.concatenate((conv.weights(), null.weights())),
        )
        converted = np.zeros(both.n_journeys, dtype=bool)
        converted[: conv.n_journeys] = True
        return both, converted


def _path_set(index: JourneyIndex, codes: np.ndarray) -> PathSet:
    return PathSet(codes, index.journey, index.start, index.length)


def _checked_codes(index: JourneyIndex, what: str) -> tuple[np.ndarray, np.ndarray]:
    codes, labels = index.channel_codes
    if index.n_rows and codes.min() < 0:
        raise InputError(f"{what}: {int((codes < 0).sum())} session(s) have no channel_label")
    return codes, labels


def channel_paths(index: JourneyIndex, non_converting) -> ChannelPaths:
    """Encode converting journeys and non-converting paths with one channel alphabet.

    ``non_converting`` is a JourneyIndex (one row per session), or a ``PathSummary`` of distinct
    paths (its ``non_conversions`` are the weights; the two give the same fit), or None."""
    import pandas as pd

    codes, labels = _checked_codes(index, "journeys")
    if hasattr(non_converting, "non_conversions"):  # a PathSummary (weighted distinct paths)
        summary = non_converting.select(non_converting.non_conversions > 0)
        null_set, null_labels = summary.path_set("non_conversions"), summary.labels
    elif non_converting is not None and non_converting.n_rows:
        null_codes, null_labels = _checked_codes(non_converting, "non-converting paths")
        null_set = _path_set(non_converting, null_codes)
    else:
        null_set = None
    if null_set is None or null_set.n_rows == 0:
        empty = np.zeros(0, dtype=np.int64)
        return ChannelPaths(labels, _path_set(index, codes), PathSet(empty, empty, empty, empty))
    union = pd.Index(labels).union(pd.Index(null_labels))  # sorted: codes stay stable across runs
    union_labels = np.asarray(union, dtype=object)
    conv_map = union.get_indexer(pd.Index(labels)).astype(np.int64)
    null_map = union.get_indexer(pd.Index(null_labels)).astype(np.int64)
    return ChannelPaths(
        union_labels,
        _path_set(index, conv_map[codes] if len(labels) else codes),
        PathSet(null_map[null_set.codes], null_set.journey, null_set.start, null_set.length, null_set.weight),
    )


def sessions_of_channel_in_journey(paths: PathSet, n_channels: int) -> np.ndarray:
    """For every session, how many sessions of its journey share its channel (≥ 1)."""
    n = paths.n_rows
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    key = paths.journey * n_channels + paths.codes
    if paths.n_journeys * n_channels <= 32_000_000:  # direct bins: cheaper than sorting
        counts = np.bincount(key, minlength=paths.n_journeys * n_channels)
        return counts[key]
    order = np.argsort(key, kind="stable")  # rows are sorted by journey: nearly sorted, fast
    sorted_key = key[order]
    boundary = np.empty(n, dtype=bool)
    boundary[0] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=boundary[1:])
    group = np.cumsum(boundary) - 1
    group_size = np.bincount(group)
    out = np.empty(n, dtype=np.int64)
    out[order] = group_size[group]
    return out


def credit_by_channel_share(index: JourneyIndex, paths: PathSet, shares: np.ndarray, n_channels: int) -> np.ndarray:
    """Per-session credit from channel shares.

    A conversion's credit goes to the distinct channels of its journey in proportion to ``shares``,
    then equally among that channel's sessions in the journey: a session of channel c gets
    ``share[c] / n_sessions_of_c / (sum of shares of the journey's distinct channels)``. A journey
    whose channels all have share 0 is split equally over its sessions.
    """
    if index.n_rows == 0:
        return np.zeros(0, dtype=np.float64)
    weight = shares[paths.codes]
    weight /= sessions_of_channel_in_journey(paths, n_channels)
    # per journey, the weights add up to the sum of the shares of its distinct channels
    totals = np.add.reduceat(weight, index.start)
    empty = totals <= 0
    if empty.any():
        fallback = empty[index.journey]
        weight[fallback] = 1.0
        totals[empty] = index.length[empty]
    weight /= totals[index.journey]
    return weight
