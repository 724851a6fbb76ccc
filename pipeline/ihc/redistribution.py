"""``redistribution_parameter`` (spec §1.7): move the credit of listed channels to other sessions.

The API documents the parameter but not its semantics; this is the spec's most plausible reading and
is approximate. Per phase: every session whose channel is listed (a *donor*) gives its whole share in
that phase to *receivers* of the same journey — active sessions of unlisted channels whose own share
is at least ``receive_threshold`` — that lie earlier than the donor (``earlier_sessions_only``), later
(``later_sessions_only``) or anywhere (``any_session``). Receivers take it in proportion to their own
share (equally if those shares are all 0). A donor with no receiver keeps its share. Each phase still
sums to what it summed to before, so the blend is unchanged in form.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from ..errors import InputError
from ..journey_index import PHASES, JourneyIndex

DIRECTIONS = ("earlier_sessions_only", "later_sessions_only", "any_session")


def parse_redistribution(raw: Optional[Mapping[str, Any]]) -> dict[str, dict]:
    """Validate a ``redistribution_parameter`` object; ``None``/empty means no redistribution."""
    if not raw:
        return {}
    if not isinstance(raw, Mapping):
        raise InputError("redistribution_parameter must be an object keyed by phase")
    out = {}
    for phase, rule in raw.items():
        if phase not in PHASES:
            raise InputError(f"redistribution_parameter: unknown phase {phase!r}")
        if not isinstance(rule, Mapping):
            raise InputError(f"redistribution_parameter.{phase} must be an object")
        direction = rule.get("direction", "any_session")
        if direction not in DIRECTIONS:
            raise InputError(f"redistribution_parameter.{phase}.direction must be one of {', '.join(DIRECTIONS)}")
        threshold = rule.get("receive_threshold", 0)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
            raise InputError(f"redistribution_parameter.{phase}.receive_threshold must be a number >= 0")
        labels = rule.get("redistribution_channel_labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise InputError(
                f"redistribution_parameter.{phase}.redistribution_channel_labels must be a list of strings"
            )
        out[phase] = {"direction": direction, "threshold": float(threshold), "labels": labels}
    return out


def _running(index: JourneyIndex, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum over earlier rows, sum over later rows) of ``values`` within each journey."""
    inclusive = np.cumsum(values)
    start_offset = inclusive[index.start] - values[index.start]
    inclusive = inclusive - start_offset[index.journey]
    total = index.journey_sum(values)[index.journey]
    return inclusive - values, total - inclusive


def redistribute(index: JourneyIndex, share: np.ndarray, rule: dict, active: np.ndarray) -> np.ndarray:
    """One phase's shares after moving the donors' credit to their receivers."""
    if not rule["labels"] or index.n_rows == 0:
        return share
    listed = np.isin(index.column("channel_label"), list(rule["labels"]))
    donor = listed & (share > 0)
    if not donor.any():
        return share
    receiver = active & ~listed & (share >= rule["threshold"])
    weight = np.where(receiver, share, 0.0)
    count = receiver.astype(np.float64)
    direction = rule["direction"]
    if direction == "any_session":
        w_avail = index.journey_sum(weight)[index.journey]
        n_avail = index.journey_sum(count)[index.journey]
    else:
        (w_before, w_after), (n_before, n_after) = _running(index, weight), _running(index, count)
        early = direction == "earlier_sessions_only"
        w_avail, n_avail = (w_before, n_before) if early else (w_after, n_after)
    gives = donor & (n_avail > 0)
    by_share = np.where(gives & (w_avail > 0), share / np.where(w_avail > 0, w_avail, 1.0), 0.0)
    equally = np.where(gives & (w_avail <= 0), share / np.where(n_avail > 0, n_avail, 1.0), 0.0)
    if direction == "any_session":
        got_share = index.journey_sum(by_share)[index.journey]
        got_equal = index.journey_sum(equally)[index.journey]
    else:
        (s_before, s_after), (e_before, e_after) = _running(index, by_share), _running(index, equally)
        # a receiver takes from donors after it (earlier_sessions_only) or before it (later_...)
        got_share, got_equal = (s_after, e_after) if early else (s_before, e_before)
    received = np.where(receiver, weight * got_share + got_equal, 0.0)
    return np.where(gives, 0.0, share) + received
