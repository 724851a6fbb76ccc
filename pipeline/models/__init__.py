"""Attribution models and their registry: ``get_model(name).attribute(journeys)``.

Each model module registers itself on import (``models/base.py`` holds ``Model`` and the registry,
which imports the modules of ``MODEL_MODULES`` lazily), so adding a model is one new module plus one
line in ``MODEL_MODULES``. The journeys a model reads and the credit it returns are
``pipeline.journey_index``'s types.
"""

from __future__ import annotations

from .base import (  # noqa: F401 - the public interface
    MODEL_MODULES,
    Model,
    available_models,
    get_model,
    load_all,
    load_until,
    register,
)
