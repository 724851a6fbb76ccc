"""Fitting an IHC profile to request→response pairs of the real API (a user's own conversion type).

Input: *pairs*, a DataFrame with one row per session sent — the API record columns (``conversion_id``,
``session_id``, ``timestamp``, ``channel_label``, the four flags) plus what the API answered for it
(``real_initializer``, ``real_holder``, ``real_closer``, ``real_ihc``) and ``group``, the conversion the
row belongs to (a conversion split across requests has several journeys but one group; folds never
separate a group). ``pairs_from_vectors`` reads the format of ``ihc_api_vectors.jsonl``;
``pairs_from_answers`` joins sent records with stored answers.

``fit_profile(pairs, base)`` fits, in this order, each part from the data that identifies it:

1. **inactivity cut**: the first session with initializer credit starts the active journey; the gap
   before it (when it is not the journey's first session) is longer than the cut, every gap inside the
   active part is not. The cut is put midway between the longest kept and the shortest cutting gap;
2. **phase weights**: ``ihc·Σw[phase non-empty] = Σ w·P`` holds per session, linear in the weights:
   least squares with ``Σw = 1``;
3. **initializer curve** ``f``: ``I_k / I_first = f(gap before k)`` per active later session;
   **closer curve** ``g``: ``C_k / C_anchor = g(hours to the anchor)`` per earlier ``c=1`` session.
   Weighted isotonic regression (``f`` non-decreasing, ``g`` non-increasing, as the model says), so
   the curve has a point wherever the data has one and keeps the steps the API's closer curve has;
   collinear points are then dropped (within ``CURVE_TOLERANCE``);
4. **holder** penalty ``(p1, p2, p3)`` and interaction ``κ``: least squares on the holder shares of
   journeys with at least two engaged active sessions, with the fitted curves and the answered closer;
5. **channel weights**: per channel and phase, multiplicative weights fitted on the mixed-channel
   journeys of channels with at least ``MIN_CHANNEL_JOURNEYS`` such journeys; kept only when they cut
   the in-sample ihc error of those journeys by at least a quarter (otherwise the sample does not
   identify them and the profile has none).

A part the sample cannot fit (too few or too uniform observations) keeps the base profile's value;
``Calibration.notes`` says which part was fitted from how many observations and which was kept.

``cross_validate(pairs, folds, seed)`` measures the held-out fidelity: k folds by group, each fold
attributed with the profile fitted on the others and with the base profile; per-session mean/p99/max
absolute error of each phase and ihc on sessions of multi-session journeys, and the channel-share WAPE
(Σ over channels |model credit − API credit| / Σ API credit). Everything is numpy over all journeys at
once; the fit on the 2,945 real vectors takes well under a second (``bench/bench_calibrate.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from scipy.optimize import isotonic_regression, least_squares

from ..errors import InputError
from ..journey_index import PHASES, VALUE_COLUMNS, JourneyIndex
from .fidelity import load_vectors
from .model import attribute_index
from .ordering import request_order_index
from .phases import uncut_initializer_share
from .profile import HolderRule, Profile, load_profile, profile_from_dict
from .records import MODEL_COLUMNS, attribute_records
from .scope import journey_scope

REAL_COLUMNS = [f"real_{c}" for c in VALUE_COLUMNS]
MIN_CURVE_POINTS = 8  # observations below which a curve keeps the base profile's
MIN_WEIGHT_ROWS = 10  # sessions of multi-session journeys below which the phase weights are kept
MIN_HOLDER_JOURNEYS = 5  # journeys with >= 2 engaged sessions below which the holder rule is kept
MIN_CHANNEL_JOURNEYS = 30  # mixed-channel journeys a channel needs before its weights are fitted
CURVE_TOLERANCE = 2e-4  # curve points closer than this to the line through their neighbours are dropped
DEFAULT_FOLDS = 5
NEUTRAL_HOLDER = HolderRule(penalty=(0.75, 0.0, 0.0), interaction=0.0)  # the spec's hint (1 − 0.75·I)(1 − 0.75·C)


@dataclass
class Calibration:
    profile: Profile
    notes: list[str] = field(default_factory=list)  # one line per part: fitted from what, or kept
    fitted: dict = field(default_factory=dict)  # part -> True (fitted) / False (kept from the base)


# ---- pairs --------------------------------------------------------------------------------------


def pairs_from_vectors(path: "str | Path | None" = None) -> pd.DataFrame:
    """Pairs from a vectors file (``ihc_api_vectors.jsonl`` format); the group is the conversion id."""
    vectors = load_vectors(path)
    if vectors.empty:
        raise InputError(f"vector file {path} holds no request/response pairs")
    group = vectors["conversion_id"].str.split(":", n=1).str[1]
    return vectors.assign(group=group)


def pairs_from_answers(records: pd.DataFrame, answers: pd.DataFrame) -> pd.DataFrame:
    """Sent session records joined with the API's answers (``conversion_id, session_id`` + values).

    Conversions with a session that has no answer are left out (an incomplete pair teaches nothing)."""
    values = answers[["conversion_id", "session_id", *VALUE_COLUMNS]].rename(
        columns={c: f"real_{c}" for c in VALUE_COLUMNS}
    )
    merged = records.reset_index(drop=True).merge(values, on=["conversion_id", "session_id"], how="left")
    missing = merged["real_ihc"].isna()
    if missing.any():
        incomplete = merged.loc[missing, "conversion_id"].unique()
        merged = merged[~merged["conversion_id"].isin(incomplete)]
    return merged.assign(group=merged["conversion_id"].astype(str)).reset_index(drop=True)


# ---- the observations in model order ------------------------------------------------------------


@dataclass
class _Obs:
    index: JourneyIndex  # in request order
    real: dict  # phase -> array in index order
    gap: np.ndarray  # hours since the previous session (inf for the first)
    active: np.ndarray  # from the first session with initializer credit on
    first_active: np.ndarray
    anchor: np.ndarray  # the last session
    hours_to_anchor: np.ndarray
    multi: np.ndarray  # per row: the journey has >= 2 active sessions
    impression: np.ndarray  # bool: an ad impression (its memberships carry the profile's impression factors)


def _observations(pairs: pd.DataFrame) -> _Obs:
    missing = [c for c in REAL_COLUMNS if c not in pairs.columns]
    if missing:
        raise InputError(f"calibration pairs lack column(s) {', '.join(missing)}")
    frame = pairs.reset_index(drop=True)
    for flag in ("conversion", "impression_interaction"):
        if flag not in frame.columns:
            frame = frame.assign(**{flag: 0})
    index, order = request_order_index(frame, columns=MODEL_COLUMNS)
    real = {c: frame[f"real_{c}"].to_numpy(dtype=np.float64)[order] for c in VALUE_COLUMNS}
    n = index.n_rows
    hours = index.hours
    gap = np.full(n, np.inf)
    gap[1:] = hours[1:] - hours[:-1]
    gap[index.is_first] = np.inf
    pos = index.pos
    big = np.iinfo(np.int64).max
    first_pos = np.minimum.reduceat(np.where(real["initializer"] > 0, pos, big), index.start)
    first_pos = np.where(first_pos == big, index.length, first_pos)  # no credit at all: nothing active
    active = pos >= first_pos[index.journey]
    first_active = pos == first_pos[index.journey]
    anchor = index.is_last
    last_row = index.start + index.length - 1
    hours_to_anchor = hours[last_row][index.journey] - hours
    active_count = index.journey_sum(active.astype(np.float64))
    impression = index.flag("impression_interaction") == 1
    multi = (active_count >= 2)[index.journey]
    return _Obs(index, real, gap, active, first_active, anchor, hours_to_anchor, multi, impression)


# ---- the parts ----------------------------------------------------------------------------------


def _channel_factor(obs: _Obs, table: dict, phase: str) -> np.ndarray:
    """Per row: the channel's weight for ``phase`` in ``table`` (1 for channels not in it)."""
    if not table:
        return np.ones(obs.index.n_rows)
    codes, labels = obs.index.channel_codes
    per_label = np.array([table.get(str(lab), {}).get(phase, 1.0) for lab in labels], dtype=np.float64)
    return per_label[codes]


def _fit_cut(obs: _Obs, base: Profile, notes: list[str]) -> tuple[Optional[float], bool]:
    kept = obs.gap[obs.active & ~obs.first_active & np.isfinite(obs.gap)]
    cutting = obs.gap[obs.first_active & ~obs.index.is_first]
    low = float(kept.max()) if len(kept) else None
    high = float(cutting.min()) if len(cutting) else None
    if low is not None and high is not None and low < high:
        at_one = _gap_where_initializer_reaches_one(obs)
        if at_one is not None and low < at_one < high:
            cut: Optional[float] = round(at_one, 3)
            how = "where the initializer curve reaches 1 (a full restart), between"
        else:
            cut = round((low + high) / 2, 3)
            how = "midway between"
        notes.append(
            f"inactivity cut: {cut:g} h, {how} the longest kept gap ({low:.2f} h) and the shortest "
            f"cutting gap ({high:.2f} h; {len(cutting)} journeys cut)"
        )
        return cut, True
    if low is not None and high is not None:
        notes.append(
            f"inactivity cut: kept {base.cut_hours} h from the base profile — the sample is inconsistent "
            f"(a {low:.2f} h gap kept, a {high:.2f} h gap cut)"
        )
        return base.cut_hours, False
    if high is None:
        cut = base.cut_hours if base.cut_hours is None or low is None or base.cut_hours > low else round(low + 0.01, 3)
        notes.append(
            f"inactivity cut: no journey of the sample was cut (longest kept gap "
            f"{'none' if low is None else f'{low:.2f} h'}); kept {cut} h"
            + (" from the base profile" if cut == base.cut_hours else ", just above that gap")
        )
        return cut, False
    cut = base.cut_hours if base.cut_hours is not None and base.cut_hours < high else round(high - 0.01, 3)
    notes.append(f"inactivity cut: only bounded above ({high:.2f} h cut, no long gap kept); kept {cut} h")
    return cut, False


def _gap_where_initializer_reaches_one(obs: _Obs) -> Optional[float]:
    """The gap at which the initializer membership ``I_k / I_first``, extrapolated linearly from the
    observations in the last 10 hours of kept gaps, reaches 1; None when it does not rise there.

    In the real API's conversion type the curve reaches 1 just where the cut is (52.8 h): a session after
    a long enough gap restarts the journey fully. Used only inside the interval the sample allows.
    """
    first_value = np.zeros(obs.index.n_journeys)
    first_value[obs.index.journey[obs.first_active]] = obs.real["initializer"][obs.first_active]
    i_first = first_value[obs.index.journey]
    rows = obs.active & ~obs.first_active & np.isfinite(obs.gap) & (i_first > 0) & ~obs.impression
    if rows.sum() < MIN_CURVE_POINTS:
        return None
    x, y = obs.gap[rows], obs.real["initializer"][rows] / i_first[rows]
    top = x >= x.max() - 10.0
    if top.sum() < 3 or np.ptp(x[top]) < 1.0:
        return None
    slope, intercept = np.polyfit(x[top], y[top], 1)
    if slope <= 0:
        return None
    return float((1.0 - intercept) / slope)


def _fit_phase_weights(obs: _Obs, base: Profile, notes: list[str]) -> tuple[dict, bool]:
    rows = obs.active & obs.multi
    r = {c: v[rows] for c, v in obs.real.items()}
    holder_used = (obs.index.journey_sum(obs.real["holder"]) > 0)[obs.index.journey][rows]
    design = np.column_stack(
        [r["initializer"] - r["ihc"], r["holder"] - r["ihc"] * holder_used, r["closer"] - r["ihc"]]
    )
    if rows.sum() < MIN_WEIGHT_ROWS or holder_used.sum() < 2:
        notes.append(
            f"phase weights: kept the base profile's — {int(rows.sum())} sessions of multi-session journeys, "
            f"{int(holder_used.sum())} with holder credit (need {MIN_WEIGHT_ROWS} and 2)"
        )
        return dict(base.phase_weights), False
    gram = design.T @ design
    try:
        w = np.linalg.solve(gram, np.ones(3))
    except np.linalg.LinAlgError:
        w = np.full(3, np.nan)
    w = w / w.sum() if np.isfinite(w).all() and w.sum() != 0 else w
    if not np.isfinite(w).all() or (w < 0).any():
        notes.append("phase weights: kept the base profile's — the sample does not determine them")
        return dict(base.phase_weights), False
    notes.append(
        f"phase weights: {w[0]:.4f} / {w[1]:.4f} / {w[2]:.4f} from {int(rows.sum())} sessions of multi-session journeys"
    )
    return {p: round(float(x), 6) for p, x in zip(PHASES, w)}, True


def _isotonic_curve(x: np.ndarray, y: np.ndarray, weight: np.ndarray, increasing: bool) -> list[list[float]]:
    """Weighted isotonic fit through the observations, as curve points (steps kept, collinear dropped)."""
    order = np.argsort(x, kind="stable")
    x, y, weight = x[order], y[order], weight[order]
    ux, start = np.unique(x, return_index=True)
    wsum = np.add.reduceat(weight, start)
    ymean = np.add.reduceat(weight * y, start) / wsum
    fitted = isotonic_regression(ymean, weights=wsum, increasing=increasing).x
    fitted = np.maximum(fitted, 0.0)
    # a block of equal fitted values is flat from its first to its last x: keep both ends
    new_block = np.concatenate(([True], np.diff(fitted) != 0))
    end_block = np.concatenate((new_block[1:], [True]))
    keep = new_block | end_block
    return _simplify(ux[keep], fitted[keep])


def _simplify(xs: np.ndarray, ys: np.ndarray) -> list[list[float]]:
    """Drop points whose removal moves the curve by less than CURVE_TOLERANCE (Douglas-Peucker)."""
    keep = np.zeros(len(xs), dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, len(xs) - 1)]
    while stack:  # loops over curve segments (tens to hundreds), not sessions
        a, b = stack.pop()
        if b - a < 2:
            continue
        inner = np.arange(a + 1, b)
        span = xs[b] - xs[a]
        line = ys[a] + (ys[b] - ys[a]) * ((xs[inner] - xs[a]) / span if span > 0 else 0.0)
        dev = np.abs(ys[inner] - line)
        k = int(np.argmax(dev))
        if dev[k] > CURVE_TOLERANCE:
            keep[inner[k]] = True
            stack += [(a, inner[k]), (inner[k], b)]
    return [[round(float(x), 4), round(float(y), 5)] for x, y in zip(xs[keep], ys[keep])]


def _fit_initializer_curve(obs: _Obs, base: Profile, notes: list[str], table: Optional[dict] = None):
    """``table``: channel weights already fitted; the ratios are corrected by them."""
    factor = _channel_factor(obs, table or {}, "initializer")
    first_value = np.zeros(obs.index.n_journeys)
    first_value[obs.index.journey[obs.first_active]] = (obs.real["initializer"] / factor)[obs.first_active]
    i_first = first_value[obs.index.journey]
    rows = obs.active & ~obs.first_active & np.isfinite(obs.gap) & (i_first > 0) & ~obs.impression
    if rows.sum() < MIN_CURVE_POINTS:
        notes.append(f"initializer curve: kept the base profile's — {int(rows.sum())} observations")
        return base.initializer_curve.points(), False
    x = obs.gap[rows]
    y = obs.real["initializer"][rows] / factor[rows] / i_first[rows]
    points = _isotonic_curve(x, y, i_first[rows] ** 2, increasing=True)
    if len(points) < 2:
        points = [[0.0, points[0][1]], [max(points[0][0], 1.0), points[0][1]]]
    notes.append(
        f"initializer curve: {len(points)} points from {int(rows.sum())} observations "
        f"(gaps {x.min():.2f}–{x.max():.2f} h; flat beyond), non-decreasing"
    )
    return points, True


def _fit_closer_curve(obs: _Obs, base: Profile, notes: list[str], table: Optional[dict] = None):
    factor = _channel_factor(obs, table or {}, "closer")
    anchor_value = np.zeros(obs.index.n_journeys)
    anchor_value[obs.index.journey[obs.anchor]] = (obs.real["closer"] / factor)[obs.anchor]
    c_anchor = anchor_value[obs.index.journey]
    engaged = obs.index.flag("closer_engagement") == 1
    rows = obs.active & ~obs.anchor & engaged & (c_anchor > 0) & ~obs.impression
    if rows.sum() < MIN_CURVE_POINTS:
        notes.append(f"closer curve: kept the base profile's — {int(rows.sum())} observations")
        return base.closer_curve.points(), False
    x = obs.hours_to_anchor[rows]
    y = obs.real["closer"][rows] / factor[rows] / c_anchor[rows]
    points = _isotonic_curve(x, y, c_anchor[rows] ** 2, increasing=False)
    if points[0][0] > 0:
        points = [[0.0, max(1.0, points[0][1])], *points]  # the anchor itself has membership 1
    notes.append(
        f"closer curve: {len(points)} points from {int(rows.sum())} observations "
        f"(hours to the anchor {x.min():.2f}–{x.max():.2f}; flat beyond), non-increasing"
    )
    return points, True


def _holder_rows(obs: _Obs, profile: Profile):
    engaged = obs.index.flag("holder_engagement") == 1
    holder_used = (obs.index.journey_sum(obs.real["holder"]) > 0)[obs.index.journey]
    factor = profile.impression_factors["holder"]
    eligible = engaged & obs.active & holder_used & (~obs.impression | (factor > 0))
    per_journey = obs.index.journey_sum(eligible.astype(np.float64))
    rows = eligible & (per_journey >= 2)[obs.index.journey]
    scope = journey_scope(obs.index, profile)
    i_uncut = uncut_initializer_share(obs.index, profile, scope)
    return rows, i_uncut


def _fit_holder(obs: _Obs, profile: Profile, base: Profile, notes: list[str]) -> tuple[HolderRule, bool]:
    rows, i_uncut = _holder_rows(obs, profile)
    factor = np.where(obs.impression, profile.impression_factors["holder"], 1.0)
    factor = (factor * _channel_factor(obs, dict(profile.channel_weights), "holder"))[rows]
    journeys = np.unique(obs.index.journey[rows])
    if len(journeys) < MIN_HOLDER_JOURNEYS:
        notes.append(
            f"holder rule: kept the base profile's — {len(journeys)} journeys with two or more engaged "
            f"sessions (need {MIN_HOLDER_JOURNEYS})"
        )
        return base.holder, False
    journey = obs.index.journey[rows]
    codes = np.searchsorted(journeys, journey)
    i_share, c_share, real = i_uncut[rows], obs.real["closer"][rows], obs.real["holder"][rows]
    n_groups = len(journeys)

    def shares(theta: np.ndarray) -> np.ndarray:
        p1, p2, p3, kappa = theta
        w = 1.0 - (i_share * (p1 + i_share * (p2 + i_share * p3))) - (c_share * (p1 + c_share * (p2 + c_share * p3)))
        w = np.maximum(w + kappa * i_share * c_share, 1e-9) * factor
        return w / np.bincount(codes, weights=w, minlength=n_groups)[codes]

    # started from the spec's neutral hint, not from the base profile: the fit owes nothing to it
    start = np.array([*NEUTRAL_HOLDER.penalty, NEUTRAL_HOLDER.interaction], dtype=np.float64)
    result = least_squares(lambda t: shares(t) - real, start, method="trf", x_scale=1.0)
    theta = result.x
    start = np.array([*base.holder.penalty, base.holder.interaction], dtype=np.float64)
    before = float(np.sqrt(np.mean((shares(start) - real) ** 2)))
    after = float(np.sqrt(np.mean((shares(theta) - real) ** 2)))
    if not result.success or not np.isfinite(theta).all() or after > before:
        notes.append("holder rule: kept the base profile's — the fit did not improve on it")
        return base.holder, False
    rule = HolderRule(
        penalty=(round(float(theta[0]), 6), round(float(theta[1]), 6), round(float(theta[2]), 6)),
        interaction=round(float(theta[3]), 6),
        cut_gap_membership=base.holder.cut_gap_membership,
        min_sessions=base.holder.min_sessions,
    )
    notes.append(
        f"holder rule: penalty ({theta[0]:.4f}, {theta[1]:.4f}, {theta[2]:.4f}), interaction {theta[3]:.4f} "
        f"from {int(rows.sum())} sessions of {len(journeys)} journeys (rms error of the holder shares: base {before:.4f}, fitted "
        f"{after:.4f})"
    )
    return rule, True


def _fit_channel_weights(
    pairs: pd.DataFrame, obs: _Obs, profile: Profile, notes: list[str], start_table: Optional[dict] = None
) -> tuple[dict, bool]:
    codes, labels = obs.index.channel_codes
    mixed_j = np.maximum.reduceat(codes, obs.index.start) != np.minimum.reduceat(codes, obs.index.start)
    mixed_j &= obs.index.journey_sum((obs.active).astype(np.float64)) >= 2
    mixed_rows = mixed_j[obs.index.journey]
    if not mixed_j.any():
        notes.append("channel weights: none — the sample has no mixed-channel journey, so they are not identified")
        return {}, False
    journeys_per_channel = np.zeros(len(labels))
    for_channel = pd.DataFrame({"j": obs.index.journey[mixed_rows], "c": codes[mixed_rows]}).drop_duplicates()
    journeys_per_channel += np.bincount(for_channel["c"].to_numpy(), minlength=len(labels))
    fitted = np.flatnonzero(journeys_per_channel >= MIN_CHANNEL_JOURNEYS)
    if len(fitted) < 2:
        notes.append(
            f"channel weights: none — {int(mixed_j.sum())} mixed-channel journeys, fewer than two channels with "
            f"{MIN_CHANNEL_JOURNEYS} of them: the sample does not identify them"
        )
        return {}, False
    all_ids = pd.unique(pairs["conversion_id"])  # index journeys are in order of first appearance
    sub = pairs[pairs["conversion_id"].isin(set(all_ids[mixed_j].tolist()))].reset_index(drop=True)
    for flag in ("conversion", "impression_interaction"):
        if flag not in sub.columns:
            sub = sub.assign(**{flag: 0})
    sub_index, order = request_order_index(sub, columns=MODEL_COLUMNS)  # built once for every evaluation
    real = sub[REAL_COLUMNS].to_numpy()[order]
    names = [str(labels[i]) for i in fitted]

    def residual(theta: np.ndarray) -> np.ndarray:
        table = {nm: {p: float(np.exp(theta[3 * k + j])) for j, p in enumerate(PHASES)} for k, nm in enumerate(names)}
        credits = attribute_index(sub_index, replace(profile, channel_weights=table))
        model = np.column_stack([credits.phase(p, len(credits.ihc)) for p in PHASES] + [credits.ihc])
        return (model - real).ravel()

    none = np.zeros(3 * len(names))
    before = float(np.abs(residual(none)[3::4]).mean())
    start_table = start_table or {}
    start = np.log([start_table.get(nm, {}).get(p, 1.0) for nm in names for p in PHASES])
    result = least_squares(residual, start, method="trf", diff_step=1e-3, max_nfev=10 if start_table else 30)
    after = float(np.abs(residual(result.x)[3::4]).mean())
    if not result.success or after > 0.75 * before:
        notes.append(
            f"channel weights: none — fitted on {int(mixed_j.sum())} mixed-channel journeys they change the ihc "
            f"error only {before:.5f} → {after:.5f}: the sample does not identify them"
        )
        return {}, False
    theta = result.x.reshape(-1, 3)  # relative to the channels not fitted, which weigh 1
    table = {
        name: {p: round(float(np.exp(theta[k, j])), 4) for j, p in enumerate(PHASES)} for k, name in enumerate(names)
    }
    notes.append(
        f"channel weights: {len(names)} channels from {int(mixed_j.sum())} mixed-channel journeys "
        f"(ihc error of those journeys {before:.5f} → {after:.5f}); other channels weigh 1"
    )
    return table, True


# ---- the fit ------------------------------------------------------------------------------------


def fit_profile(
    pairs: pd.DataFrame,
    base: "Profile | str | None" = "default",
    *,
    name: str = "calibrated",
    channel_weights: bool = True,
) -> Calibration:
    """A profile fitted to ``pairs`` (see the module docstring); unfitted parts come from ``base``."""
    base = load_profile(base)
    if len(pairs) == 0:
        raise InputError("calibration needs at least one request/response pair")
    obs = _observations(pairs)
    notes: list[str] = []
    fitted: dict = {}
    cut, fitted["cut_hours"] = _fit_cut(obs, base, notes)
    weights, fitted["phase_weights"] = _fit_phase_weights(obs, base, notes)
    doc = {**base.to_dict(), "name": name, "conv_type_ids": [], "phase_weights": weights, "cut_hours": cut}
    doc = _fit_shapes(obs, base, doc, {}, notes, fitted)
    if channel_weights:
        table, fitted["channel_weights"] = _fit_channel_weights(pairs, obs, profile_from_dict(doc, name), notes)
        for _ in range(2):  # with channel weights the shapes are refitted on corrected ratios, then the weights
            if not table:
                break
            doc = _fit_shapes(obs, base, doc, table, [], {})
            table, _ = _fit_channel_weights(pairs, obs, profile_from_dict(doc, name), [], start_table=table)
        if table:
            doc = _fit_shapes(obs, base, doc, table, [], {})
    else:
        fitted["channel_weights"] = False
        notes.append("channel weights: not fitted (switched off)")
    kept = [k for k, v in fitted.items() if not v]
    n_conv = pairs["group"].nunique() if "group" in pairs.columns else pairs["conversion_id"].nunique()
    doc["description"] = f"Calibrated on {n_conv:,} conversions ({len(pairs):,} sessions) of API answers; " + (
        f"kept from {base.name}: {', '.join(kept)}" if kept else f"every part fitted (base {base.name})"
    )
    return Calibration(profile_from_dict(doc, name), notes, fitted)


def _fit_shapes(obs: _Obs, base: Profile, doc: dict, table: dict, notes: list[str], fitted: dict) -> dict:
    """The curves and the holder rule given the channel weights ``table``; returns the new document."""
    init_points, fitted["initializer_curve"] = _fit_initializer_curve(obs, base, notes, table)
    closer_points, fitted["closer_curve"] = _fit_closer_curve(obs, base, notes, table)
    doc = {**doc, "initializer_curve": init_points, "closer_curve": closer_points, "channel_weights": table}
    holder, fitted["holder"] = _fit_holder(obs, profile_from_dict(doc, doc["name"]), base, notes)
    holder_doc = {
        "penalty": list(holder.penalty),
        "interaction": holder.interaction,
        "cut_gap_membership": holder.cut_gap_membership,
        "min_sessions": holder.min_sessions,
    }
    return {**doc, "holder": holder_doc}


# ---- held-out fidelity --------------------------------------------------------------------------


def folds_by_group(groups: pd.Series, folds: int, seed: int) -> np.ndarray:
    """Fold number per row: groups shuffled deterministically by ``seed``, dealt round-robin."""
    unique = np.sort(pd.unique(groups.astype(str)))
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(unique), dtype=np.int64)
    fold_of[rng.permutation(len(unique))] = np.arange(len(unique)) % folds
    return fold_of[np.searchsorted(unique, groups.astype(str).to_numpy())]


def error_stats(pairs: pd.DataFrame, predicted: pd.DataFrame) -> dict:
    """Per-session mean/p99/max absolute error of each phase on sessions of multi-session journeys,
    and the channel-share WAPE over all sessions. ``predicted`` is aligned with ``pairs``."""
    length = pairs.groupby("conversion_id", sort=False)["session_id"].transform("size").to_numpy()
    multi = length >= 2
    out: dict = {"conversions": int(pairs["conversion_id"].nunique()), "sessions": int(multi.sum())}
    for c in VALUE_COLUMNS:
        err = np.abs(predicted[c].to_numpy() - pairs[f"real_{c}"].to_numpy())[multi]
        out[f"{c}_mean"] = float(err.mean()) if len(err) else float("nan")
        out[f"{c}_p99"] = float(np.quantile(err, 0.99)) if len(err) else float("nan")
        out[f"{c}_max"] = float(err.max()) if len(err) else float("nan")
    channels = pairs["channel_label"].astype(str).to_numpy()
    real = pd.Series(pairs["real_ihc"].to_numpy()).groupby(channels).sum()
    model = pd.Series(predicted["ihc"].to_numpy()).groupby(channels).sum()
    out["channel_wape"] = float((model - real).abs().sum() / real.sum()) if real.sum() > 0 else float("nan")
    return out


@dataclass
class CrossValidation:
    folds: int
    calibrated: dict  # error_stats of the held-out predictions of the calibrated profiles
    base: dict  # error_stats of the base profile on the same sessions
    base_name: str

    def table(self) -> pd.DataFrame:
        """One row per (profile, phase): mean, p99, max; plus channel-share WAPE in the ihc row."""
        rows = []
        for label, stats in (
            (f"calibrated ({self.folds}-fold held out)", self.calibrated),
            (self.base_name, self.base),
        ):
            for c in VALUE_COLUMNS:
                rows.append(
                    {
                        "profile": label,
                        "phase": c,
                        "mean": stats[f"{c}_mean"],
                        "p99": stats[f"{c}_p99"],
                        "max": stats[f"{c}_max"],
                        "channel_share_wape": stats["channel_wape"] if c == "ihc" else float("nan"),
                    }
                )
        return pd.DataFrame(rows)

    def as_dict(self) -> dict:
        return {"folds": self.folds, "calibrated": self.calibrated, "base": self.base, "base_name": self.base_name}


def cross_validate(
    pairs: pd.DataFrame,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    base: "Profile | str | None" = "default",
    channel_weights: bool = True,
) -> CrossValidation:
    """Held-out fidelity of the calibration (k folds by group) beside the base profile's."""
    base = load_profile(base)
    pairs = pairs.reset_index(drop=True)
    groups = pairs["group"] if "group" in pairs.columns else pairs["conversion_id"]
    n_groups = groups.nunique()
    folds = max(2, min(folds, n_groups))
    if n_groups < 2:
        raise InputError("held-out fidelity needs at least two conversions")
    fold = folds_by_group(groups, folds, seed)
    predicted = pd.DataFrame(index=pairs.index, columns=VALUE_COLUMNS, dtype=np.float64)
    for k in range(folds):  # a handful of folds, each vectorised
        held = fold == k
        calibration = fit_profile(pairs[~held], base, channel_weights=channel_weights)
        values = attribute_records(pairs[held], calibration.profile, round_values=True)
        predicted.loc[held, VALUE_COLUMNS] = values[VALUE_COLUMNS].to_numpy()
    base_values = attribute_records(pairs, base, round_values=True)
    return CrossValidation(folds, error_stats(pairs, predicted), error_stats(pairs, base_values), base.name)


def format_fidelity(cv: CrossValidation) -> str:
    lines = [
        f"held-out fidelity ({cv.folds}-fold by conversion; {cv.calibrated['conversions']:,} journeys, "
        f"{cv.calibrated['sessions']:,} sessions of multi-session journeys): absolute error per session",
        f"{'profile':<34}{'phase':<13}{'mean':>9}{'p99':>9}{'max':>9}   channel-share WAPE",
    ]
    for _, r in cv.table().iterrows():
        wape = "" if np.isnan(r["channel_share_wape"]) else f"   {100 * r['channel_share_wape']:.3f}%"
        lines.append(f"{r['profile']:<34}{r['phase']:<13}{r['mean']:>9.5f}{r['p99']:>9.5f}{r['max']:>9.5f}{wape}")
    return "\n".join(lines)
