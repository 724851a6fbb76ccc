"""Weighted distinct channel paths: the input Markov and Shapley fit on.

A ``PathSummary`` has one row per distinct channel path (a sequence of channel labels in time order)
with how many journeys converted along it, how many did not, and the conversion value. It is what a
database computes with one GROUP BY (``pipeline.path_summary`` does it in SQLite; a warehouse can do
the same) and what the models need: every quantity Markov and Shapley learn — transition counts,
channel-set counts — is a sum over paths, so a path seen n times counts as one path of weight n.
Counts are whole numbers held in float64, exact up to 2⁵³, so fitting a summary gives bit-for-bit
the fit of the paths it summarises.

The path is held as channel codes (``codes``, ``start``, ``length``) over the sorted alphabet
``labels``, which lists exactly the channels the paths use. Nothing here depends on SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from ..errors import InputError
from .channel_paths import ChannelPaths, PathSet

if TYPE_CHECKING:
    import pandas as pd

SUMMARY_COLUMNS = ["path", "n_conversions", "n_non_conversions", "value"]


@dataclass(frozen=True)
class PathSummary:
    """Distinct channel paths with their conversion and non-conversion counts and value."""

    labels: np.ndarray  # sorted channel labels; code i is labels[i]; every label is used by some path
    codes: np.ndarray  # int64 channel codes of all paths, concatenated, each path in time order
    start: np.ndarray  # int64 first code of each path
    length: np.ndarray  # int64 channels per path (≥ 1)
    conversions: np.ndarray  # float64 journeys along this path that converted
    non_conversions: np.ndarray  # float64 journeys along this path that did not
    value: np.ndarray  # float64 conversion value of the converting ones

    @property
    def n_paths(self) -> int:
        return len(self.start)

    @classmethod
    def empty(cls) -> "PathSummary":
        z = np.zeros(0, dtype=np.int64)
        f = np.zeros(0)
        return cls(np.zeros(0, dtype=object), z, z, z, f, f, f)

    @classmethod
    def from_paths(
        cls,
        paths: Sequence[Sequence],
        conversions: Sequence[float],
        non_conversions: Sequence[float],
        value: Optional[Sequence[float]] = None,
    ) -> "PathSummary":
        """From paths given as sequences of channel labels (rows may repeat a path: they add up)."""
        import pandas as pd

        lengths = np.fromiter((len(p) for p in paths), dtype=np.int64, count=len(paths))
        if (lengths == 0).any():
            raise InputError("path summary: a path has no channel")
        flat = np.array([label for p in paths for label in p], dtype=object)
        if any(label is None or (isinstance(label, float) and label != label) for label in flat.tolist()):
            raise InputError("path summary: a path has a missing channel label")
        codes, labels = pd.factorize(flat, sort=True)
        conv = _counts(conversions, len(paths), "n_conversions")
        null = _counts(non_conversions, len(paths), "n_non_conversions")
        val = np.zeros(len(paths)) if value is None else np.asarray(value, dtype=np.float64)
        if len(val) != len(paths) or not np.isfinite(val).all():
            raise InputError("path summary: value must be one finite number per path")
        start = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64) if len(paths) else lengths
        return cls(np.asarray(labels, dtype=object), codes.astype(np.int64), start, lengths, conv, null, val)

    @classmethod
    def from_frame(cls, frame: "pd.DataFrame", separator: Optional[str] = None) -> "PathSummary":
        """From a DataFrame with SUMMARY_COLUMNS (``value`` optional). ``path`` is a sequence of
        channel labels per row, or a string split at ``separator`` when one is given."""
        missing = [c for c in SUMMARY_COLUMNS[:3] if c not in frame.columns]
        if missing:
            raise InputError(f"path summary lacks column(s): {', '.join(missing)}")
        paths = frame["path"].tolist()
        if separator is not None:
            paths = [str(p).split(separator) for p in paths]
        value = frame["value"].to_numpy() if "value" in frame.columns else None
        return cls.from_paths(paths, frame["n_conversions"].to_numpy(), frame["n_non_conversions"].to_numpy(), value)

    def frame(self, separator: Optional[str] = None) -> "pd.DataFrame":
        """SUMMARY_COLUMNS; ``path`` as a tuple of labels, or joined with ``separator``."""
        import pandas as pd

        names = self.labels[self.codes]
        tuples = [tuple(names[s : s + n].tolist()) for s, n in zip(self.start.tolist(), self.length.tolist())]
        paths: list = tuples if separator is None else [separator.join(map(str, p)) for p in tuples]
        return pd.DataFrame(
            {
                "path": paths,
                "n_conversions": self.conversions,
                "n_non_conversions": self.non_conversions,
                "value": self.value,
            }
        )

    def select(self, rows: np.ndarray) -> "PathSummary":
        """The summary of some rows (a boolean mask), with the alphabet cut to the channels they use."""
        keep_rows = np.asarray(rows, dtype=bool)
        per_code_row = np.repeat(keep_rows, self.length)
        codes = self.codes[per_code_row]
        used = np.zeros(len(self.labels), dtype=bool)
        used[codes] = True
        new_code = np.cumsum(used) - 1
        length = self.length[keep_rows]
        start = np.concatenate(([0], np.cumsum(length)[:-1])).astype(np.int64) if len(length) else length
        return PathSummary(
            self.labels[used],
            new_code[codes].astype(np.int64),
            start,
            length,
            self.conversions[keep_rows],
            self.non_conversions[keep_rows],
            self.value[keep_rows],
        )

    def path_set(self, which: str) -> PathSet:
        """The paths that converted (``"conversions"``) or did not (``"non_conversions"``) as a
        weighted PathSet over this summary's codes; paths with a weight of 0 are left out."""
        weight = self.conversions if which == "conversions" else self.non_conversions
        keep = weight > 0
        length = self.length[keep]
        codes = self.codes[np.repeat(keep, self.length)]
        start = np.concatenate(([0], np.cumsum(length)[:-1])).astype(np.int64) if len(length) else length
        journey = np.repeat(np.arange(len(length), dtype=np.int64), length)
        return PathSet(codes, journey, start, length, weight[keep].astype(np.float64))

    def channel_paths(self) -> ChannelPaths:
        """Converting and non-converting paths over this summary's alphabet, weighted: what
        ``fit_markov`` and ``fit_shapley`` take when Python only fits (a warehouse summarised)."""
        return ChannelPaths(self.labels, self.path_set("conversions"), self.path_set("non_conversions"))


def _counts(values, n: int, name: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    if out.shape != (n,) or not np.isfinite(out).all() or (out < 0).any() or (out != np.floor(out)).any():
        raise InputError(f"path summary: {name} must be one whole number ≥ 0 per path")
    return out
