"""The ``ihc`` model (the product's default): the offline IHC re-implementation of ``pipeline.ihc``.

Parameters: ``profile`` (built-in name ``default``/``challenge`` or a .json/.toml path), ``round``
(4-decimal rounding like the API), ``redistribution`` (an API ``redistribution_parameter`` object).
Ties in time are broken by session_id here (row-order invariance); the API drop-in keeps request order.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from ..ihc import attribute_index, load_profile
from ..ihc.redistribution import parse_redistribution
from ..journey_index import Credits, JourneyIndex
from .base import Model, register
from .params import as_bool


def ihc(index: JourneyIndex, params: dict, context: dict) -> Credits:
    return attribute_index(
        index,
        params["profile"],
        round_values=params["round"],
        redistribution=params["redistribution"],
    )


def check_params(params: dict) -> dict:
    """Validate early (unknown profile, bad file → InputError before any work); accept CLI strings:
    ``round=true``, ``redistribution=<JSON text or path to a JSON file>``."""
    load_profile(params["profile"])
    params["round"] = as_bool("ihc", "round", params["round"])
    redistribution = params["redistribution"]
    if isinstance(redistribution, str) and redistribution.strip():
        text = redistribution
        if not redistribution.lstrip().startswith("{") and Path(redistribution).is_file():
            text = Path(redistribution).read_text(encoding="utf-8")
        try:
            redistribution = json.loads(text)
        except ValueError:
            raise InputError("redistribution must be a JSON object or a path to a JSON file") from None
    parse_redistribution(redistribution)  # raises InputError when malformed
    params["redistribution"] = redistribution or None
    return params


register(
    Model(
        "ihc",
        "IHC (initializer, holder, closer) computed here, without the web API: each session's credit "
        "from the role it played in the journey; the profile (below) picks how IHC weighs the roles.",
        ihc,
        defaults={"profile": "default", "round": False, "redistribution": None},
        check_params=check_params,
    )
)
