"""The offline IHC model (spec ``../shared/spec/IHC.md``; documented in ``docs/ihc.md``).

Public entry points:

* ``load_profile(name_or_path)`` — a ``Profile`` (built-ins: ``default``, ``challenge``);
* ``attribute_index(index, profile, round_values=, redistribution=)`` — ``Credits`` for a JourneyIndex
  (what the registered pipeline model ``ihc`` calls);
* ``attribute_records(journeys_df, profile)`` — the API's per-session values for API-format records;
* ``respond(request_body, profile)`` — the API drop-in: request body → response body;
* ``fidelity.replay`` / ``fidelity.summarise`` — the replay of the real API vectors;
* ``channel_weights.import_channel_weights`` — an ``IHC_channel_weights.csv`` into a profile.
"""

from .model import attribute_index  # noqa: F401
from .profile import Profile, builtin_profiles, load_profile, profile_for_conv_type  # noqa: F401

# The record-level entry points need pandas; they load on first use so that the pipeline's model
# (attribute_index, numpy only) starts without it.
_LAZY = {"respond": "api_local", "attribute_records": "records"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
