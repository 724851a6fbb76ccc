"""Per-session multipliers of the raw phase memberships: channel weights and impression sessions.

Channel weights (``IHC_channel_weights.csv``): a session's raw membership in a phase is multiplied by
its channel's weight for that phase before the phase is normalised (the spec's most plausible reading,
§1.6; approximate). Channels absent from the table weigh 1.

Impressions (``impression_interaction=1``, an ad view rather than a visit): their raw memberships are
multiplied by ``impression_factors`` (default: initializer 1, holder 0, closer 0 — a view can start a
journey but shows no on-site engagement). The first active session keeps initializer membership 1 and
the anchor keeps closer membership 1 whatever they are, so no phase is ever emptied by these factors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..journey_index import PHASES, JourneyIndex
from .profile import Profile


@dataclass(frozen=True)
class Factors:
    """Per-phase multipliers: ``channel`` applies to every session, ``impression`` to every session
    except the first active one (initializer) and the anchor (closer)."""

    channel: dict[str, np.ndarray | float]
    impression: dict[str, np.ndarray | float]


def phase_factors(index: JourneyIndex, profile: Profile) -> Factors:
    channel: dict[str, np.ndarray | float] = {p: 1.0 for p in PHASES}
    impression: dict[str, np.ndarray | float] = {p: 1.0 for p in PHASES}
    if profile.channel_weights and index.n_rows:
        codes, labels = index.channel_codes
        for phase in PHASES:
            table = np.array(
                [profile.channel_weights.get(str(lab), {}).get(phase, 1.0) for lab in labels],
                dtype=np.float64,
            )
            channel[phase] = table[codes]
    if "impression_interaction" in index.columns and index.n_rows:
        flagged = index.flag("impression_interaction") == 1
        if flagged.any():
            for phase in PHASES:
                impression[phase] = np.where(flagged, profile.impression_factors[phase], 1.0)
    return Factors(channel, impression)
