"""Rule-based models: credit depends only on a session's position (or age) in its journey.

Conventions: a journey is the conversion's sessions sorted by time (ties by session_id); every session
counts, repeated channels included (two sessions of the same channel get credit as two sessions, they
are never merged); models without phases leave initializer/holder/closer empty (NaN). None of these
models looks at non-converting paths.

numpy (and ``journey_index``, built on it) is imported inside each model function: choosing a model,
which every ``run`` does — the one with every stage up to date too — loads this module, not numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InputError
from .base import Model, register
from .params import as_float

if TYPE_CHECKING:
    from ..journey_index import Credits, JourneyIndex


def last_click(index: JourneyIndex, params: dict, context: dict) -> Credits:
    """All credit to the last session before the conversion."""
    import numpy as np

    from ..journey_index import Credits

    return Credits(ihc=index.is_last.astype(np.float64))


def linear(index: JourneyIndex, params: dict, context: dict) -> Credits:
    """Equal credit to every session of the journey: 1/n each."""
    from ..journey_index import Credits

    return Credits(ihc=1.0 / index.rows_in_journey)


def first_click(index: JourneyIndex, params: dict, context: dict) -> Credits:
    """All credit to the first session of the journey."""
    import numpy as np

    from ..journey_index import Credits

    return Credits(ihc=index.is_first.astype(np.float64))


def time_decay(index: JourneyIndex, params: dict, context: dict) -> Credits:
    """Credit halves every ``half_life_hours`` before the conversion: weight 2^(-age / half-life).

    The conversion's own time is not part of a journey, so ages are measured back from the journey's
    last session. That changes nothing: 2^(-(T - t)/h) for any reference T common to the journey
    differs from 2^(-(t_last - t)/h) by one factor per journey, which the normalisation removes. The
    last session has weight 1, so the per-journey sum is never 0 (very old sessions may underflow to
    exactly 0 credit).
    """
    import numpy as np

    from ..journey_index import Credits

    if index.n_rows == 0:
        return Credits(ihc=np.zeros(0))
    last_ts = index.ts[index.start + index.length - 1][index.journey]
    age_hours = (last_ts - index.ts) / 3600.0
    weight = np.exp2(-age_hours / params["half_life_hours"])
    return Credits(ihc=index.normalise(weight))


def position_based(index: JourneyIndex, params: dict, context: dict) -> Credits:
    """``first`` to the first session, ``last`` to the last, the rest equally to the middle ones.

    A one-session journey gives its session 1. A two-session journey has no middle: first and last
    get first/(first+last) and last/(first+last) (0.5/0.5 for 40/20/40), or 0.5 each when both
    shares are 0.
    """
    import numpy as np

    from ..journey_index import Credits

    first, last = params["first"], params["last"]
    n = index.rows_in_journey
    middle = (1.0 - first - last) / np.maximum(n - 2, 1)
    credit = np.where(index.is_first, first, np.where(index.is_last, last, middle))
    ends = first + last
    two = n == 2
    credit[two] = np.where(index.is_first[two], first, last) / ends if ends > 0 else 0.5
    credit[n == 1] = 1.0
    return Credits(ihc=credit)


def _check_time_decay(params: dict) -> dict:
    half_life = as_float("time-decay", "half_life_hours", params["half_life_hours"], low=0.0, low_open=True)
    return {"half_life_hours": half_life}


def _check_position_based(params: dict) -> dict:
    first = as_float("position-based", "first", params["first"], low=0.0, high=1.0)
    last = as_float("position-based", "last", params["last"], low=0.0, high=1.0)
    if first + last > 1.0 + 1e-12:
        raise InputError(
            f"model 'position-based': first + last must be <= 1 (the middle gets the rest), got {first} + {last}"
        )
    return {"first": first, "last": min(last, 1.0 - first)}


register(Model("last-click", "All credit to the last session before the conversion.", last_click))
register(Model("first-click", "All credit to the first session of the journey.", first_click))
register(Model("linear", "Equal credit to every session of the journey.", linear))
register(
    Model(
        "time-decay",
        "The later a session, the more credit: a session one half-life (set below) before the "
        "conversion gets half the credit of one just before it, two half-lives before: a quarter.",
        time_decay,
        defaults={"half_life_hours": 168.0},
        check_params=_check_time_decay,
    )
)
register(
    Model(
        "position-based",
        "40% of the credit to the first session, 40% to the last (both set below), the rest shared "
        "equally by the sessions between; a journey of 2 sessions splits it between them in that ratio, "
        "a single session gets it all.",
        position_based,
        defaults={"first": 0.4, "last": 0.4},
        check_params=_check_position_based,
    )
)
