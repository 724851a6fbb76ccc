"""The ``ihc`` model (the product's default): the offline IHC re-implementation of ``pipeline.ihc``.

Parameters: ``profile`` (built-in name ``default``/``challenge`` or a .json/.toml path), ``round``
(4-decimal rounding like the API), ``redistribution`` (an API ``redistribution_parameter`` object).
Ties in time are broken by session_id here (row-order invariance); the API drop-in keeps request order.
"""

from __future__ import annotations

from ..ihc import attribute_index, load_profile
from ..ihc.redistribution import parse_redistribution
from .base import Credits, JourneyIndex, Model, register


def ihc(index: JourneyIndex, params: dict, context: dict) -> Credits:
    return attribute_index(
        index,
        params["profile"],
        round_values=params["round"],
        redistribution=params["redistribution"],
    )


def check_params(params: dict) -> dict:
    load_profile(params["profile"])  # unknown profile or bad file → InputError now, not mid-run
    if not isinstance(params["round"], bool):
        params["round"] = str(params["round"]).strip().lower() in ("1", "true", "yes", "on")
    parse_redistribution(params["redistribution"])
    return params


register(
    Model(
        "ihc",
        "IHC (initializer/holder/closer), offline re-implementation of the IHC API; profile selects "
        "the trained conversion type.",
        ihc,
        defaults={"profile": "default", "round": False, "redistribution": None},
        check_params=check_params,
    )
)
