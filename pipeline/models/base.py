"""The model interface: a model maps a journeys DataFrame to per-session credit.

Journeys come in the IHC API's session-record format (``JOURNEY_COLUMNS``), optionally with an ``ts``
column (int64 epoch seconds, UTC) that saves parsing the ``timestamp`` strings. A model never loops over
journeys in Python: it receives a ``JourneyIndex`` — the rows sorted by (journey, time, session_id) with
the group arrays every vectorised model needs — and returns one value per row for each of the phases
``initializer``, ``holder``, ``closer`` (NaN where the model has no phases) and ``ihc`` (the credit,
summing to 1 per conversion).

Because every model sees the rows in the same canonical order, results do not depend on the order in
which the rows arrived. Sessions with the same timestamp inside a journey are ordered by session_id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import numpy as np

from ..errors import InputError
from ..journey_index import (  # noqa: F401 - moved to pipeline.journey_index; importers follow in the next commit
    CREDIT_COLUMNS,
    FLAG_COLUMNS,
    JOURNEY_COLUMNS,
    TIMESTAMP_FORMAT,
    Credits,
    JourneyIndex,
    as_index,
    seconds_to_timestamps,
    stable_journey_time_order,
    timestamps_to_seconds,
)
from ..progress import Progress

if TYPE_CHECKING:
    import pandas as pd

ModelFn = Callable[..., Credits]


@dataclass(frozen=True)
class Model:
    """A named attribution model with default parameters.

    ``fn(index, params, context)`` returns ``Credits``. ``context`` carries what some models need
    beyond the converting journeys (``non_converting``: a JourneyIndex of paths that did not convert,
    for Markov and Shapley; ``progress``: a progress callback).
    """

    name: str
    description: str
    fn: ModelFn
    defaults: Mapping[str, Any] = field(default_factory=dict)
    needs_non_converting: bool = False
    check_params: Optional[Callable[[dict], dict]] = None

    def resolve_params(self, params: Optional[Mapping[str, Any]] = None) -> dict:
        """Defaults overlaid with ``params``; unknown names are an input error."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise InputError(f"model {self.name!r} has no parameter {', '.join(unknown)} (known: {known})")
        merged = {**self.defaults, **params}
        return self.check_params(merged) if self.check_params else merged

    def attribute(
        self,
        journeys: "pd.DataFrame | JourneyIndex",
        params: Optional[Mapping[str, Any]] = None,
        *,
        non_converting: "Optional[pd.DataFrame | JourneyIndex]" = None,
        progress: Optional[Progress] = None,
    ) -> "pd.DataFrame":
        """Credit per (conversion_id, session_id): the columns of ``CREDIT_COLUMNS``."""
        index = as_index(journeys)
        return self.credits(index, params, non_converting=non_converting, progress=progress).to_frame(index)

    def credits(
        self,
        index: JourneyIndex,
        params: Optional[Mapping[str, Any]] = None,
        *,
        non_converting: "Optional[pd.DataFrame | JourneyIndex]" = None,
        progress: Optional[Progress] = None,
    ) -> Credits:
        """The model's arrays, aligned with ``index`` (what the pipeline stores; no DataFrame)."""
        context: dict[str, Any] = {"progress": progress}
        if self.needs_non_converting:
            context["non_converting"] = as_index(
                non_converting
                if non_converting is not None
                else {c: np.zeros(0, dtype=object) for c in JOURNEY_COLUMNS}
            )
        return self.fn(index, self.resolve_params(params), context)


_REGISTRY: dict[str, Model] = {}


def register(model: Model) -> Model:
    if model.name in _REGISTRY:
        raise ValueError(f"model {model.name!r} registered twice")
    _REGISTRY[model.name] = model
    return model


def get_model(name: str) -> Model:
    from . import load_until  # models register themselves on import

    load_until(name, _REGISTRY)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown model {name!r}; available: {', '.join(available_models())}") from None


def available_models() -> list[str]:
    from . import load_all

    load_all()
    return sorted(_REGISTRY)
