"""The phase-weight blend (spec §2.1) and the API's 4-decimal rounding.

``ihc = Σ w_p·P_p / Σ w_p·[phase p non-empty in the journey]``: an empty phase (a holder with no
engaged session, a one-session journey) is left out and the weights renormalised.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..journey_index import JourneyIndex

DECIMALS = 4


def blend(index: JourneyIndex, phases: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    numerator = np.zeros(index.n_rows)
    denominator = np.zeros(index.n_journeys)
    for phase, share in phases.items():
        w = float(weights[phase])
        numerator += w * share
        denominator += w * (index.journey_sum(share) > 0)
    per_row = denominator[index.journey] if index.n_rows else denominator
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(per_row > 0, numerator / np.where(per_row > 0, per_row, 1.0), 0.0)


def round_api(values: np.ndarray) -> np.ndarray:
    """Round like the API's response values (4 decimals); -0.0 becomes 0.0."""
    return np.round(values, DECIMALS) + 0.0
