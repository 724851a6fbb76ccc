"""The model interface and registry: a model maps journeys to per-session credit.

A ``Model`` is a name, a description, default parameters and a function ``fn(index, params, context)``
over a ``pipeline.journey_index.JourneyIndex`` (the journeys in canonical order) returning ``Credits``.
Models register themselves on import; ``get_model`` imports the modules of ``MODEL_MODULES`` in order
until the asked-for one is registered, so a run of ``linear`` never loads the IHC or Markov code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from ..errors import InputError
from ..progress import Progress

if TYPE_CHECKING:
    import pandas as pd

    from ..journey_index import Credits, JourneyIndex

# numpy (through journey_index) is imported when a model computes: choosing one needs none of it.
ModelFn = Callable[..., "Credits"]


@dataclass(frozen=True)
class Model:
    """A named attribution model with default parameters.

    ``fn(index, params, context)`` returns ``Credits``. ``context`` carries what some models need
    beyond the converting journeys (``non_converting``: the paths that did not convert, for Markov and
    Shapley — a JourneyIndex, or a ``weighted_paths.PathSummary`` of distinct paths; ``progress``: a
    progress callback).
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
        from ..journey_index import as_index

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
        import numpy as np

        from ..journey_index import JOURNEY_COLUMNS, as_index

        context: dict[str, Any] = {"progress": progress}
        if self.needs_non_converting and hasattr(non_converting, "non_conversions"):
            context["non_converting"] = non_converting  # a PathSummary: weighted distinct paths
        elif self.needs_non_converting:
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


MODEL_MODULES = ["heuristics", "ihc", "markov", "shapley"]
_loaded = False


def load_all() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for name in MODEL_MODULES:
            importlib.import_module(f"{__package__}.{name}")


def load_until(model: str, registry: dict) -> None:
    """Import model modules in order until ``model`` is registered (a run of ``linear`` need not
    load the IHC or Markov code)."""
    for name in MODEL_MODULES:
        if model in registry:
            return
        importlib.import_module(f"{__package__}.{name}")


def get_model(name: str) -> Model:
    load_until(name, _REGISTRY)  # models register themselves on import
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown model {name!r}; available: {', '.join(available_models())}") from None


def available_models() -> list[str]:
    load_all()
    return sorted(_REGISTRY)
