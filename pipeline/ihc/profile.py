"""IHC profiles: everything a trained conversion type can change, read from a JSON or TOML file.

A profile is looked up by name among the files shipped in ``pipeline/ihc/profiles/`` (``default``,
``challenge``) or read from a path. See ``docs/ihc.md`` for the format; every key is optional except
the curves, and missing keys take the values below.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Optional, cast

import numpy as np

from ..errors import InputError
from ..journey_index import PHASES
from .profiles import PROFILE_DIR, builtin_profiles  # noqa: F401 - re-exported

CONVERSION_MODES = ("anchor", "ignore")


@dataclass(frozen=True)
class Curve:
    """A piecewise-linear curve through (x, y) points, flat beyond both ends.

    Two points with nearly equal x express a step (the closer curve has steps every 0.1 h).
    """

    xs: np.ndarray
    ys: np.ndarray

    @classmethod
    def from_points(cls, points: Any, what: str) -> "Curve":
        try:
            arr = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{what} must be a list of [x, y] number pairs") from None
        if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 2:
            raise InputError(f"{what} must be a list of at least two [x, y] pairs")
        if not np.isfinite(arr).all():
            raise InputError(f"{what} has a non-finite number")
        if np.any(np.diff(arr[:, 0]) < 0):
            raise InputError(f"{what}: x values must be non-decreasing")
        if np.any(arr[:, 1] < 0):
            raise InputError(f"{what}: y values must be >= 0")
        return cls(arr[:, 0].copy(), arr[:, 1].copy())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.xs, self.ys)

    def points(self) -> list[list[float]]:
        return [[float(x), float(y)] for x, y in zip(self.xs, self.ys)]


@dataclass(frozen=True)
class HolderRule:
    """Holder weight of an engaged session: ``1 − ψ(I) − ψ(C) + interaction·I·C`` (see docs/ihc.md).

    ``I`` is the session's initializer share computed over the whole (uncut) journey, ``C`` its closer
    share; ``ψ(x) = p1·x + p2·x² + p3·x³`` with ``penalty = (p1, p2, p3)``. A gap longer than the cut
    counts as initializer membership ``cut_gap_membership`` in that uncut share. Journeys with fewer
    than ``min_sessions`` sessions get no holder credit.
    """

    penalty: tuple[float, float, float] = (0.75, 0.0, 0.0)
    interaction: float = 0.0
    cut_gap_membership: float = 1.0
    min_sessions: int = 2

    def psi(self, x: np.ndarray) -> np.ndarray:
        p1, p2, p3 = self.penalty
        return x * (p1 + x * (p2 + x * p3))

    def weight(self, init_share: np.ndarray, closer_share: np.ndarray) -> np.ndarray:
        w = 1.0 - self.psi(init_share) - self.psi(closer_share)
        w += self.interaction * init_share * closer_share
        return np.maximum(w, 0.0)


@dataclass(frozen=True)
class Profile:
    name: str
    initializer_curve: Curve
    closer_curve: Curve
    phase_weights: Mapping[str, float] = field(default_factory=lambda: {p: 1.0 / 3.0 for p in PHASES})
    cut_hours: Optional[float] = None
    holder: HolderRule = HolderRule()
    channel_weights: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    conversion_session: str = "anchor"
    impression_factors: Mapping[str, float] = field(
        default_factory=lambda: {"initializer": 1.0, "holder": 0.0, "closer": 0.0}
    )
    conv_type_ids: tuple[str, ...] = ()
    description: str = ""
    source: str = ""

    def to_dict(self) -> dict:
        """The profile as the JSON document ``profile_from_dict`` reads."""
        return {
            "name": self.name,
            "description": self.description,
            "conv_type_ids": list(self.conv_type_ids),
            "phase_weights": dict(self.phase_weights),
            "cut_hours": self.cut_hours,
            "initializer_curve": self.initializer_curve.points(),
            "closer_curve": self.closer_curve.points(),
            "holder": {
                "penalty": list(self.holder.penalty),
                "interaction": self.holder.interaction,
                "cut_gap_membership": self.holder.cut_gap_membership,
                "min_sessions": self.holder.min_sessions,
            },
            "channel_weights": {k: dict(v) for k, v in self.channel_weights.items()},
            "conversion_session": self.conversion_session,
            "impression_factors": dict(self.impression_factors),
        }


def _number(value: Any, what: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{what} must be a number, got {value!r}")
    if value < minimum:
        raise InputError(f"{what} must be >= {minimum}, got {value!r}")
    return float(value)


def _phase_map(raw: Any, what: str, defaults: Mapping[str, float]) -> dict[str, float]:
    if raw is None:
        return dict(defaults)
    if not isinstance(raw, Mapping):
        raise InputError(f"{what} must be a table with keys {', '.join(PHASES)}")
    unknown = sorted(set(raw) - set(PHASES))
    if unknown:
        raise InputError(f"{what} has unknown key(s) {', '.join(unknown)}")
    out = dict(defaults)
    for phase, value in raw.items():
        out[phase] = _number(value, f"{what}.{phase}")
    return out


KNOWN_KEYS = {
    "name",
    "description",
    "conv_type_ids",
    "phase_weights",
    "cut_hours",
    "initializer_curve",
    "closer_curve",
    "holder",
    "channel_weights",
    "conversion_session",
    "impression_factors",
}


def profile_from_dict(doc: Mapping[str, Any], source: str = "") -> Profile:
    """Validate a profile document; every problem is an ``InputError`` naming the key."""
    if not isinstance(doc, Mapping):
        raise InputError(f"profile {source}: the document must be a table/object")
    unknown = sorted(set(doc) - KNOWN_KEYS)
    if unknown:
        raise InputError(f"profile {source}: unknown key(s) {', '.join(unknown)}")
    for key in ("initializer_curve", "closer_curve"):
        if key not in doc:
            raise InputError(f"profile {source}: missing {key}")
    weights = _phase_map(doc.get("phase_weights"), "phase_weights", {p: 1 / 3 for p in PHASES})
    if sum(weights.values()) <= 0:
        raise InputError("phase_weights must not all be 0")
    cut = doc.get("cut_hours")
    cut = None if cut is None else _number(cut, "cut_hours")
    holder_doc = doc.get("holder", {}) or {}
    if not isinstance(holder_doc, Mapping):
        raise InputError("holder must be a table")
    penalty = holder_doc.get("penalty", (0.75, 0.0, 0.0))
    if not isinstance(penalty, (list, tuple)) or len(penalty) != 3:
        raise InputError("holder.penalty must be three numbers (p1, p2, p3)")
    holder = HolderRule(
        penalty=cast(
            tuple[float, float, float], tuple(_number(p, "holder.penalty", minimum=-math.inf) for p in penalty)
        ),
        interaction=_number(holder_doc.get("interaction", 0.0), "holder.interaction", minimum=-math.inf),
        cut_gap_membership=_number(holder_doc.get("cut_gap_membership", 1.0), "holder.cut_gap_membership"),
        min_sessions=int(_number(holder_doc.get("min_sessions", 2), "holder.min_sessions", minimum=1)),
    )
    channel_doc = doc.get("channel_weights", {}) or {}
    if not isinstance(channel_doc, Mapping):
        raise InputError("channel_weights must be a table channel -> {initializer, holder, closer}")
    channels = {
        str(label): _phase_map(w, f"channel_weights[{label!r}]", {p: 1.0 for p in PHASES})
        for label, w in channel_doc.items()
    }
    mode = doc.get("conversion_session", "anchor")
    if mode not in CONVERSION_MODES:
        raise InputError(f"conversion_session must be one of {', '.join(CONVERSION_MODES)}")
    impression = _phase_map(
        doc.get("impression_factors"),
        "impression_factors",
        {"initializer": 1.0, "holder": 0.0, "closer": 0.0},
    )
    ids = doc.get("conv_type_ids", []) or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InputError("conv_type_ids must be a list of strings")
    return Profile(
        name=str(doc.get("name") or Path(source).stem or "profile"),
        description=str(doc.get("description", "")),
        conv_type_ids=tuple(ids),
        phase_weights=weights,
        cut_hours=cut,
        initializer_curve=Curve.from_points(doc["initializer_curve"], "initializer_curve"),
        closer_curve=Curve.from_points(doc["closer_curve"], "closer_curve"),
        holder=holder,
        channel_weights=channels,
        conversion_session=mode,
        impression_factors=impression,
        source=source,
    )


def read_profile_file(path: Path) -> Profile:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read profile {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            doc = tomllib.loads(data.decode("utf-8"))
        else:
            doc = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"profile {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    return profile_from_dict(doc, str(path))


@lru_cache(maxsize=32)
def _load_cached(path: str, mtime: float) -> Profile:  # noqa: ARG001 - mtime keys the cache
    return read_profile_file(Path(path))


def load_profile(spec: "str | os.PathLike | Profile | Mapping | None" = None) -> Profile:
    """A profile by built-in name (``default``, ``challenge``), by path (.json/.toml), as a profile
    document (a mapping, e.g. a calibrated profile stored in the database), or as given."""
    if isinstance(spec, Profile):
        return spec
    if isinstance(spec, Mapping):
        return profile_from_dict(spec, str(spec.get("name") or "inline profile"))
    spec = "default" if spec is None or spec == "" else os.fspath(spec)
    builtin = PROFILE_DIR / f"{spec}.json"
    path = builtin if "/" not in spec and "\\" not in spec and builtin.is_file() else Path(spec)
    if not path.is_file():
        raise InputError(f"unknown IHC profile {spec!r}: not a file and not one of {', '.join(builtin_profiles())}")
    return _load_cached(str(path.resolve()), path.stat().st_mtime)


def profile_for_conv_type(conv_type_id: str) -> Profile:
    """The built-in profile trained for an API ``conv_type_id`` (or named like it)."""
    for name in builtin_profiles():
        prof = load_profile(name)
        if conv_type_id == prof.name or conv_type_id in prof.conv_type_ids:
            return prof
    raise InputError(
        f"unknown conversion type {conv_type_id!r}; give --profile, or one of: "
        + ", ".join(i for n in builtin_profiles() for i in load_profile(n).conv_type_ids)
    )
