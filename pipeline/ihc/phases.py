"""The three phases (spec §2.3–2.5), each one unit of credit per journey, vectorised over all journeys.

* initializer: the first active session has membership 1, every later one ``f(gap before it)``;
* closer: the anchor session has membership 1, every earlier one ``c · g(hours to the anchor)``;
* holder: engaged sessions (h=1) weigh ``HolderRule.weight(I_uncut, C)`` — see ``profile.HolderRule``.

``factors`` (``factors.Factors``) multiply the raw memberships before each phase is normalised over
its journey: channel weights on every session, impression factors on all but the phase's fixed session.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..journey_index import JourneyIndex
from .profile import Profile
from .scope import Scope


@dataclass(frozen=True)
class Phases:
    initializer: np.ndarray
    holder: np.ndarray
    closer: np.ndarray


def initializer_share(index: JourneyIndex, profile: Profile, scope: Scope, factors) -> np.ndarray:
    later = profile.initializer_curve(np.where(np.isfinite(scope.gap), scope.gap, 0.0))
    raw = np.where(scope.first_active, 1.0, later * factors.impression["initializer"])
    raw = raw * factors.channel["initializer"] * scope.active
    return index.normalise(raw)


def closer_share(index: JourneyIndex, profile: Profile, scope: Scope, factors) -> np.ndarray:
    engaged = index.flag("closer_engagement") == 1
    earlier = profile.closer_curve(scope.hours_to_anchor) * engaged * factors.impression["closer"]
    raw = np.where(scope.anchor, 1.0, earlier) * factors.channel["closer"] * scope.active
    return index.normalise(raw)


def uncut_initializer_share(index: JourneyIndex, profile: Profile, scope: Scope) -> np.ndarray:
    """Initializer shares over the whole journey up to the anchor, as if there were no cut.

    The holder reads these: a session that restarts the journey after a long gap is not the journey's
    first contact, so it keeps more holder weight than a true first session (fitted on the vectors).
    """
    gap = np.where(np.isfinite(scope.gap), scope.gap, 0.0)
    raw = profile.initializer_curve(gap)
    if profile.cut_hours is not None:
        raw = np.where(gap > profile.cut_hours, profile.holder.cut_gap_membership, raw)
    raw = np.where(index.is_first, 1.0, raw) * scope.in_range
    return index.normalise(raw)


def holder_share(index, profile: Profile, scope: Scope, closer: np.ndarray, factors) -> np.ndarray:
    engaged = index.flag("holder_engagement") == 1
    eligible = engaged & scope.active & (scope.sessions_in_range >= profile.holder.min_sessions)
    weight = profile.holder.weight(uncut_initializer_share(index, profile, scope), closer)
    factor = factors.channel["holder"] * factors.impression["holder"]
    return index.normalise(np.where(eligible, weight * factor, 0.0))


def compute_phases(index: JourneyIndex, profile: Profile, scope: Scope, factors) -> Phases:
    initializer = initializer_share(index, profile, scope, factors)
    closer = closer_share(index, profile, scope, factors)
    holder = holder_share(index, profile, scope, closer, factors)
    return Phases(initializer, holder, closer)
