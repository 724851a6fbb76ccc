"""Attribution models and their registry: ``get_model(name).attribute(journeys)``.

Each model module registers itself on import; ``load_all`` imports them, so adding a model is one new
module plus one line in ``MODEL_MODULES``.
"""

from __future__ import annotations

import importlib

from .base import (  # noqa: F401 - the public interface
    CREDIT_COLUMNS,
    JOURNEY_COLUMNS,
    Credits,
    JourneyIndex,
    Model,
    available_models,
    get_model,
    register,
)

MODEL_MODULES = ["heuristics", "ihc", "markov", "shapley"]
_loaded = False


def load_all() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for name in MODEL_MODULES:
            importlib.import_module(f"{__name__}.{name}")


def load_until(model: str, registry: dict) -> None:
    """Import model modules in order until ``model`` is registered (a run of ``linear`` need not
    load the IHC or Markov code)."""
    for name in MODEL_MODULES:
        if model in registry:
            return
        importlib.import_module(f"{__name__}.{name}")
