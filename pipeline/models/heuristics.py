"""Rule-based models: credit depends only on a session's position in its journey.

Conventions: a journey is the conversion's sessions sorted by time (ties by session_id); every session
counts, repeated channels included; models without phases leave initializer/holder/closer empty (NaN).
"""

from __future__ import annotations

import numpy as np

from .base import Credits, JourneyIndex, Model, register


def last_click(index: JourneyIndex, params: dict, context: dict) -> Credits:
    """All credit to the last session before the conversion."""
    return Credits(ihc=index.is_last.astype(np.float64))


def linear(index: JourneyIndex, params: dict, context: dict) -> Credits:
    """Equal credit to every session of the journey: 1/n each."""
    return Credits(ihc=1.0 / index.rows_in_journey)


register(Model("last-click", "All credit to the last session before the conversion.", last_click))
register(Model("linear", "Equal credit to every session of the journey.", linear))
