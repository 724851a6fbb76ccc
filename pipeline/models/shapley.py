"""Channel-set Shapley values with the usual (Zhao et al., 2018) simplification.

Each path (converting or not) is reduced to its *channel set*: the distinct channels it touched, order
and repeats ignored, capped at the ``max_coalition_size`` channels touched most recently (closest to
the conversion or to the end of the path). For every observed set T, r(T) is its worth: by default
the conversion rate of the paths whose set is exactly T (converting / (converting + non-converting));
with ``worth="conversions"`` the number of conversions, which ignores non-converting paths.

The coalition game is v(S) = Σ_{T ⊆ S} r(T): a coalition is worth what all the channel sets it covers
produce. v is a sum of unanimity games r(T)·[T ⊆ S], whose Shapley value gives r(T)/|T| to each member
of T, so the Shapley value of channel i is exactly

    φ(i) = Σ_{T ∋ i} r(T) / |T|

— the full 2ⁿ-coalition formula reduces to one pass over the observed sets. Shares are φ / Σφ;
``credit_by_channel_share`` turns them into per-session credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..journey_index import Credits, JourneyIndex
from .base import Model, register
from .channel_paths import ChannelPaths, channel_paths, credit_by_channel_share
from .params import as_int

if TYPE_CHECKING:
    import pandas as pd
# pandas loads when a table is asked for, not when the registry lists models.

WORTHS = ("rate", "conversions")
MAX_CAP = 64


@dataclass(frozen=True)
class ShapleyFit:
    """Channel-level Shapley values and the channel sets they came from."""

    labels: np.ndarray
    value: np.ndarray  # φ per channel
    set_size: np.ndarray  # per observed channel set (after the cap): number of channels
    set_conversions: np.ndarray  # converting paths with exactly this set
    set_paths: np.ndarray  # all paths (converting or not) with exactly this set
    set_worth: np.ndarray  # r(T)
    member_set: np.ndarray  # (set, channel) memberships, sorted by set then channel code
    member_channel: np.ndarray

    @property
    def share(self) -> np.ndarray:
        total = self.value.sum()
        return self.value / total if total > 0 else np.zeros_like(self.value)

    def sets_table(self) -> pd.DataFrame:
        """One row per observed channel set: its channels, size, conversions, paths and worth."""
        import pandas as pd

        return pd.DataFrame(
            {
                "channels": _set_labels(self.member_set, self.member_channel, self.labels, len(self.set_size)),
                "size": self.set_size,
                "conversions": self.set_conversions,
                "paths": self.set_paths,
                "worth": self.set_worth,
            }
        )

    def table(self, conversions: float) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            {
                "channel": self.labels,
                "shapley_value": self.value,
                "share": self.share,
                "conversions": self.share * conversions,
            }
        )


def _group_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Index where each run of equal values starts."""
    boundary = np.empty(len(sorted_values), dtype=bool)
    boundary[:1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=boundary[1:])
    return np.flatnonzero(boundary)


def _capped_channel_pairs(
    codes: np.ndarray, journey: np.ndarray, n_channels: int, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (journey, channel) pairs, keeping per journey the ``cap`` channels touched most
    recently; sorted by journey then channel."""
    key = journey * n_channels + codes
    # rows are grouped by journey, so the keys are nearly sorted and a stable sort is cheap; within
    # equal keys it keeps time order, so a group's last element is the channel's last session
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = _group_starts(sorted_key)
    ends = np.append(starts[1:], len(key)) - 1
    pair_journey, pair_channel = np.divmod(sorted_key[ends], n_channels)
    last_row = order[ends]
    # sorting the pairs by their last session groups them by journey, least recent first
    by_recency = np.argsort(last_row, kind="stable")
    j_sorted = pair_journey[by_recency]
    group_start = _group_starts(j_sorted)
    group_len = np.diff(np.append(group_start, len(j_sorted)))
    rank_from_end = np.empty(len(j_sorted), dtype=np.int64)
    rank_from_end[by_recency] = np.repeat(group_start + group_len, group_len) - 1 - np.arange(len(j_sorted))
    keep = rank_from_end < cap
    return pair_journey[keep], pair_channel[keep]


def _set_ids(
    pair_journey: np.ndarray, pair_channel: np.ndarray, n_journeys: int, n_channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Channel-set number per journey, and the first journey of each set.

    A set is identified exactly by its bitmask (one 64-bit word per 64 channels); each word is
    numbered with a 1-d unique and the numbers are folded word by word into one set number.
    """
    words = max(1, -(-n_channels // 64))
    first_pair = _group_starts(pair_journey)  # every journey has at least one pair
    bit = np.left_shift(np.uint64(1), (pair_channel % 64).astype(np.uint64))
    word_of = pair_channel // 64
    set_id = np.zeros(0, dtype=np.int64)
    for w in range(words):
        bits = np.where(word_of == w, bit, np.uint64(0)) if words > 1 else bit
        mask = np.bitwise_or.reduceat(bits, first_pair)
        if w == 0:
            key = mask
        else:
            distinct, number = np.unique(mask, return_inverse=True)
            key = set_id * len(distinct) + number.ravel()  # < n_journeys², fits int64
        _, first_journey, set_id = np.unique(key, return_index=True, return_inverse=True)
        set_id = set_id.ravel().astype(np.int64)
    return set_id, first_journey


def fit_shapley(paths: ChannelPaths, max_coalition_size: int = 4, worth: str = "rate") -> ShapleyFit:
    """Shapley value of every channel: φ(i) = Σ_{T ∋ i} r(T)/|T| over the observed channel sets."""
    n_channels = paths.n_channels
    both, converted = paths.combined()
    if paths.converting.n_journeys == 0 or n_channels == 0:
        empty = np.zeros(0, dtype=np.int64)
        return ShapleyFit(paths.labels, np.zeros(n_channels), empty, empty, empty, empty, empty, empty)
    pair_journey, pair_channel = _capped_channel_pairs(both.codes, both.journey, n_channels, max_coalition_size)
    set_id, first_journey = _set_ids(pair_journey, pair_channel, both.n_journeys, n_channels)
    n_sets = len(first_journey)
    if both.weight is None:
        conversions = np.bincount(set_id, weights=converted, minlength=n_sets)
        n_paths: np.ndarray = np.bincount(set_id, minlength=n_sets).astype(np.float64)
    else:  # distinct paths of a summary, each standing for ``weight`` paths
        conversions = np.bincount(set_id, weights=converted * both.weight, minlength=n_sets)
        n_paths = np.bincount(set_id, weights=both.weight, minlength=n_sets)
    worth_of_set = conversions / n_paths if worth == "rate" else conversions
    # a set's members are the (capped) channels of its first journey
    representative = np.zeros(both.n_journeys, dtype=bool)
    representative[first_journey] = True
    chosen = representative[pair_journey]
    member_set = set_id[pair_journey[chosen]]
    member_channel = pair_channel[chosen]
    by_set = np.argsort(member_set, kind="stable")  # channels stay sorted within each set
    member_set, member_channel = member_set[by_set], member_channel[by_set]
    size = np.bincount(member_set, minlength=n_sets)
    value = np.bincount(member_channel, weights=worth_of_set[member_set] / size[member_set], minlength=n_channels)
    return ShapleyFit(paths.labels, value, size, conversions, n_paths, worth_of_set, member_set, member_channel)


def _set_labels(member_set, member_channel, labels, n_sets) -> list[str]:
    """' + '-joined channel labels of each set (members are sorted by set, then channel code)."""
    bounds = np.searchsorted(member_set, np.arange(n_sets + 1))
    names = labels[member_channel]
    return [" + ".join(names[bounds[s] : bounds[s + 1]]) for s in range(n_sets)]


def shapley(index: JourneyIndex, params: dict, context: dict) -> Credits:
    """Per-session credit from Shapley shares (see ``credit_by_channel_share``)."""
    if index.n_rows == 0:
        return Credits(ihc=np.zeros(0))
    paths = channel_paths(index, context.get("non_converting"))
    # with a path summary, converting journeys are counted as distinct paths too (the same fit)
    fitted = paths.distinct() if hasattr(context.get("non_converting"), "non_conversions") else paths
    fit = fit_shapley(fitted, params["max_coalition_size"], params["worth"])
    return Credits(ihc=credit_by_channel_share(index, paths.converting, fit.share, paths.n_channels))


def _check(params: dict) -> dict:
    worth = str(params["worth"]).strip().lower()
    if worth not in WORTHS:
        raise InputError(f"model 'shapley': worth must be one of {', '.join(WORTHS)}, got {params['worth']!r}")
    cap = as_int("shapley", "max_coalition_size", params["max_coalition_size"], low=1, high=MAX_CAP)
    return {"max_coalition_size": cap, "worth": worth}


register(
    Model(
        "shapley",
        "Each channel's fair share of what the sets of channels it appears in are worth (Shapley "
        "values), learned from the journeys that converted and those that did not; each journey's "
        "credit goes to its channels in proportion.",
        shapley,
        defaults={"max_coalition_size": 4, "worth": "rate"},
        needs_non_converting=True,
        check_params=_check,
    )
)
