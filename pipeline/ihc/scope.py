"""Which sessions of a journey take part: the conversion anchor and the inactivity cut (spec §2.2).

All arrays are per row of a ``JourneyIndex`` (rows sorted by journey, then time). A journey's sessions
run up to its *anchor*: the last session, or — with ``conversion_session = "anchor"`` — the first session
flagged ``conversion=1`` (sessions after it are not part of the journey). Inside that range, a gap longer
than ``cut_hours`` starts the journey afresh: only the sessions after the last such gap are *active*.
Sessions outside the active part get 0 in every phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..journey_index import JourneyIndex
from .profile import Profile


@dataclass(frozen=True)
class Scope:
    gap: np.ndarray  # hours since the previous session of the journey (inf for the first)
    in_range: np.ndarray  # bool: at or before the journey's anchor
    active: np.ndarray  # bool: in range and after the last cut
    first_active: np.ndarray  # bool: first session of the active part
    anchor: np.ndarray  # bool: the session the closer is anchored on
    hours_to_anchor: np.ndarray  # hours from the session to the anchor session
    sessions_in_range: np.ndarray  # per row: sessions of the journey up to the anchor


def within_journey_cumsum(index: JourneyIndex, values: np.ndarray) -> np.ndarray:
    """Inclusive running sum of ``values`` restarting at every journey."""
    total = np.cumsum(values)
    before_start = total[index.start] - values[index.start]
    return total - before_start[index.journey]


def journey_scope(index: JourneyIndex, profile: Profile) -> Scope:
    n = index.n_rows
    hours = index.hours
    pos = index.pos
    gap = np.full(n, np.inf)
    if n > 1:
        gap[1:] = hours[1:] - hours[:-1]
    gap[index.is_first] = np.inf

    last_pos = index.length - 1
    if profile.conversion_session == "anchor" and "conversion" in index.columns and n:
        conv_pos = np.where(index.flag("conversion") == 1, pos, np.iinfo(np.int64).max)
        first_conv = np.minimum.reduceat(conv_pos, index.start)
        last_pos = np.minimum(last_pos, first_conv)
    anchor_pos = last_pos[index.journey] if n else np.zeros(0, dtype=np.int64)
    in_range = pos <= anchor_pos

    if profile.cut_hours is None:
        breaks = np.zeros(n, dtype=np.int64)
    else:
        breaks = ((gap > profile.cut_hours) & ~index.is_first & in_range).astype(np.int64)
    segment = within_journey_cumsum(index, breaks) if n else breaks
    anchor_row = index.start + last_pos
    active = in_range & (segment == segment[anchor_row][index.journey]) if n else in_range
    first_active = active & (index.is_first | (breaks == 1))
    anchor = pos == anchor_pos
    hours_to_anchor = hours[anchor_row][index.journey] - hours if n else hours
    return Scope(
        gap=gap,
        in_range=in_range,
        active=active,
        first_active=first_active,
        anchor=anchor,
        hours_to_anchor=hours_to_anchor,
        sessions_in_range=(anchor_pos + 1),
    )
