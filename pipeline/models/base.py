"""The model interface: a model maps a journeys DataFrame to per-session credit.

Journeys come in the IHC API's session-record format (``JOURNEY_COLUMNS``), optionally with an ``ts``
column (int64 epoch seconds, UTC) that saves parsing the ``timestamp`` strings. A model never loops over
journeys in Python: it receives a ``JourneyIndex`` — the rows sorted by (journey, time, session_id) with
the group arrays every vectorised model needs — and returns one value per row for each of the phases
``initializer``, ``holder``, ``closer`` (NaN where the model has no phases) and ``ihc`` (the credit,
summing to 1 per conversion).

Because every model sees the rows in the same canonical order, results do not depend on the order in
which the rows arrived. Sessions with the same timestamp inside a journey are ordered by session_id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping, Optional

import numpy as np
import pandas as pd

from ..errors import InputError
from ..progress import Progress

JOURNEY_COLUMNS = [
    "conversion_id",
    "session_id",
    "timestamp",
    "channel_label",
    "holder_engagement",
    "closer_engagement",
    "conversion",
    "impression_interaction",
]
FLAG_COLUMNS = ["holder_engagement", "closer_engagement", "conversion", "impression_interaction"]
CREDIT_COLUMNS = ["conversion_id", "session_id", "initializer", "holder", "closer", "ihc"]
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def timestamps_to_seconds(values: pd.Series) -> np.ndarray:
    """'YYYY-MM-DD HH:MM:SS' strings (optionally with ' +HHMM') → int64 epoch seconds, UTC."""
    parsed = pd.to_datetime(values, format="mixed", utc=True, errors="coerce")
    if parsed.isna().any():
        bad = values[parsed.isna()].iloc[0]
        raise InputError(f"timestamp {bad!r} is not 'YYYY-MM-DD HH:MM:SS'")
    return parsed.astype("datetime64[s, UTC]").astype("int64").to_numpy()


def seconds_to_timestamps(seconds: np.ndarray) -> np.ndarray:
    return pd.to_datetime(seconds, unit="s").strftime(TIMESTAMP_FORMAT).to_numpy(dtype=object)


@dataclass
class JourneyIndex:
    """Journeys sorted canonically, with the per-row and per-journey arrays models work on.

    ``frame`` rows are sorted by journey, then time, then session_id; ``journey[i]`` is the journey
    number (0..n_journeys-1) of row i, ``start``/``length`` describe each journey's block of rows.
    """

    frame: pd.DataFrame
    ts: np.ndarray  # int64 epoch seconds per row
    journey: np.ndarray  # int64 journey number per row
    start: np.ndarray  # int64 first row of each journey
    length: np.ndarray  # int64 rows per journey

    @classmethod
    def from_frame(cls, journeys: pd.DataFrame) -> "JourneyIndex":
        missing = [c for c in JOURNEY_COLUMNS if c not in journeys.columns and c != "timestamp"]
        if "timestamp" not in journeys.columns and "ts" not in journeys.columns:
            missing.append("timestamp")
        if missing:
            raise InputError(f"journeys lack column(s): {', '.join(missing)}")
        frame = journeys.reset_index(drop=True)
        ts = (
            frame["ts"].to_numpy(dtype=np.int64)
            if "ts" in frame.columns
            else timestamps_to_seconds(frame["timestamp"])
        )
        n = len(frame)
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(frame.assign(ts=ts), ts, empty, empty, empty)
        codes, _ = pd.factorize(frame["conversion_id"], sort=False)
        codes = codes.astype(np.int64)
        order = np.lexsort((ts, codes))
        order = _break_timestamp_ties(order, codes, ts, frame["session_id"])
        if not np.array_equal(order, np.arange(n)):
            frame = frame.take(order).reset_index(drop=True)
            codes, ts = codes[order], ts[order]
        boundary = np.empty(n, dtype=bool)
        boundary[0] = True
        np.not_equal(codes[1:], codes[:-1], out=boundary[1:])
        start = np.flatnonzero(boundary)
        length = np.diff(np.append(start, n))
        journey = np.cumsum(boundary) - 1
        if "ts" not in frame.columns:
            frame = frame.assign(ts=ts)
        return cls(frame, ts, journey, start, length)

    # ---- derived arrays, computed on first use -------------------------------------------------
    @property
    def n_rows(self) -> int:
        return len(self.ts)

    @property
    def n_journeys(self) -> int:
        return len(self.start)

    @cached_property
    def pos(self) -> np.ndarray:
        """0-based position of each row inside its journey."""
        return np.arange(self.n_rows, dtype=np.int64) - self.start[self.journey]

    @cached_property
    def rows_in_journey(self) -> np.ndarray:
        """Length of each row's journey, per row."""
        return self.length[self.journey]

    @cached_property
    def is_first(self) -> np.ndarray:
        return self.pos == 0

    @cached_property
    def is_last(self) -> np.ndarray:
        return self.pos == self.rows_in_journey - 1

    @cached_property
    def hours(self) -> np.ndarray:
        """Timestamps in hours since the earliest session (float64, exact to the second)."""
        if self.n_rows == 0:
            return np.zeros(0)
        return (self.ts - self.ts.min()) / 3600.0

    def flag(self, column: str) -> np.ndarray:
        return self.frame[column].to_numpy(dtype=np.int8)

    @cached_property
    def channel_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """(code per row, channel labels) with labels sorted, so codes are stable across runs."""
        codes, labels = pd.factorize(self.frame["channel_label"], sort=True)
        return codes.astype(np.int64), np.asarray(labels, dtype=object)

    def journey_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-row array over each journey."""
        if self.n_rows == 0:
            return np.zeros(0, dtype=np.float64)
        return np.add.reduceat(values, self.start)

    def normalise(self, weights: np.ndarray) -> np.ndarray:
        """Scale per-row weights to sum to 1 in each journey; journeys with no weight get 0."""
        totals = self.journey_sum(weights.astype(np.float64))
        per_row = totals[self.journey]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(per_row > 0, weights / np.where(per_row > 0, per_row, 1.0), 0.0)


def _break_timestamp_ties(order, codes, ts, session_ids) -> np.ndarray:
    """Within a journey, sessions sharing a timestamp are ordered by session_id (row-order free)."""
    c, t = codes[order], ts[order]
    tied = (c[1:] == c[:-1]) & (t[1:] == t[:-1])
    if not tied.any():
        return order
    in_tie = np.zeros(len(order), dtype=bool)
    in_tie[1:] |= tied
    in_tie[:-1] |= tied
    positions = np.flatnonzero(in_tie)
    rows = order[positions]
    sids = session_ids.to_numpy(dtype=str)[rows]
    sub = np.lexsort((sids, ts[rows], codes[rows]))
    order = order.copy()
    order[positions] = rows[sub]
    return order


@dataclass(frozen=True)
class Credits:
    """Per-row results of a model, aligned with ``JourneyIndex.frame``."""

    ihc: np.ndarray
    initializer: Optional[np.ndarray] = None
    holder: Optional[np.ndarray] = None
    closer: Optional[np.ndarray] = None

    def to_frame(self, index: JourneyIndex) -> pd.DataFrame:
        nan = np.full(index.n_rows, np.nan)
        return pd.DataFrame(
            {
                "conversion_id": index.frame["conversion_id"].to_numpy(),
                "session_id": index.frame["session_id"].to_numpy(),
                "initializer": nan if self.initializer is None else self.initializer,
                "holder": nan if self.holder is None else self.holder,
                "closer": nan if self.closer is None else self.closer,
                "ihc": self.ihc,
            }
        )


ModelFn = Callable[..., Credits]


@dataclass(frozen=True)
class Model:
    """A named attribution model with default parameters.

    ``fn(index, params, context)`` returns ``Credits``. ``context`` carries what some models need
    beyond the converting journeys (``non_converting``: a JourneyIndex of paths that did not convert,
    for Markov and Shapley; ``progress``: a progress callback).
    """

    name: str
    description: str
    fn: ModelFn
    defaults: Mapping[str, Any] = field(default_factory=dict)
    needs_non_converting: bool = False
    check_params: Optional[Callable[[dict], dict]] = None

    def resolve_params(self, params: Optional[Mapping[str, Any]] = None) -> dict:
        """Defaults overlaid with ``params``; unknown names are an input error."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise InputError(
                f"model {self.name!r} has no parameter {', '.join(unknown)} (known: {known})"
            )
        merged = {**self.defaults, **params}
        return self.check_params(merged) if self.check_params else merged

    def attribute(
        self,
        journeys: pd.DataFrame | JourneyIndex,
        params: Optional[Mapping[str, Any]] = None,
        *,
        non_converting: Optional[pd.DataFrame | JourneyIndex] = None,
        progress: Optional[Progress] = None,
    ) -> pd.DataFrame:
        """Credit per (conversion_id, session_id): the columns of ``CREDIT_COLUMNS``."""
        index = journeys if isinstance(journeys, JourneyIndex) else JourneyIndex.from_frame(journeys)
        context: dict[str, Any] = {"progress": progress}
        if self.needs_non_converting:
            if non_converting is None:
                non_converting = pd.DataFrame(columns=JOURNEY_COLUMNS)
            context["non_converting"] = (
                non_converting
                if isinstance(non_converting, JourneyIndex)
                else JourneyIndex.from_frame(non_converting)
            )
        credits = self.fn(index, self.resolve_params(params), context)
        return credits.to_frame(index)


_REGISTRY: dict[str, Model] = {}


def register(model: Model) -> Model:
    if model.name in _REGISTRY:
        raise ValueError(f"model {model.name!r} registered twice")
    _REGISTRY[model.name] = model
    return model


def get_model(name: str) -> Model:
    from . import load_all  # models register themselves on import

    load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(
            f"unknown model {name!r}; available: {', '.join(available_models())}"
        ) from None


def available_models() -> list[str]:
    from . import load_all

    load_all()
    return sorted(_REGISTRY)
