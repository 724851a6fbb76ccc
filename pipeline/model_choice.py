"""The model of one run, decided once: its name, its resolved parameters and, for the IHC API, its
settings (checked once, before any work).

``choose_model`` is the one place that applies the default model, resolves a registry model's
parameters (unknown ones are an input error) and requires the API's key and conversion type. Every
stage after it reads the ``ModelChoice``: ``is_api`` instead of comparing names, ``stage_params`` for
the attribute stage's record. This module imports only the standard library at the top (the models
and the API client on demand), so the command line can decide the API settings before it copies the
database or starts its scans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Union

from .ihc_api import MODEL_NAME as API_MODEL

if TYPE_CHECKING:
    from .ihc_api.config import ApiConfig
    from .models import Model


@dataclass(frozen=True)
class ModelChoice:
    name: str
    params: dict  # resolved parameters; for the API what identifies its runs (never the key)
    model: Optional["Model"] = field(default=None, repr=False)  # None for the API
    api: Optional["ApiConfig"] = field(default=None, repr=False)  # the API settings, checked

    @property
    def is_api(self) -> bool:
        return self.model is None

    @property
    def stage_params(self) -> dict:
        """What the attribute stage's record stores (and compares to know it is up to date)."""
        return {"model": self.name, "params": self.params}


def default_model() -> str:
    """``ihc`` (the offline IHC model) where available, else ``linear``."""
    from .models import available_models

    return "ihc" if "ihc" in available_models() else "linear"


def choose_model(
    model: Union[str, "Model", None] = None, params: Optional[dict] = None, api_config: Optional["ApiConfig"] = None
) -> ModelChoice:
    """``model``: a name (None: ``default_model()``), or a ``Model`` object (a registry model, or one
    built around another function, e.g. in a test). ``api_config``: the API settings for
    ``ihc-api`` (None: from the environment and .env)."""
    if model is not None and not isinstance(model, str):
        return ModelChoice(model.name, model.resolve_params(params), model)
    name = model or default_model()
    if name != API_MODEL:
        from .models import get_model

        chosen = get_model(name)
        return ModelChoice(name, chosen.resolve_params(params), chosen)
    if api_config is None:
        from .ihc_api import load_config

        api_config = load_config()
    api_config.require()
    return ModelChoice(name, api_params(api_config), None, api_config)


def api_params(api_config) -> dict:
    """What identifies an API run in the stage record: never the key."""
    from .ihc_api.config import url_for_display

    return {
        "conv_type_id": api_config.conv_type_id,
        "api_url": url_for_display(api_config.api_url),
        "redistribution_parameter": api_config.redistribution_parameter,
    }
