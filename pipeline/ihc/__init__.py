"""The offline IHC model (spec ``../shared/spec/IHC.md``; documented in ``docs/ihc.md``).

Public entry points:

* ``load_profile(name_or_path)`` — a ``Profile`` (built-ins: ``default``, ``challenge``);
* ``attribute_index(index, profile, round_values=, redistribution=)`` — ``Credits`` for a JourneyIndex
  (what the registered pipeline model ``ihc`` calls);
* ``attribute_records(journeys_df, profile)`` — the API's per-session values for API-format records;
* ``fidelity.replay`` / ``fidelity.summarise`` — the replay of the real API vectors;
* ``channel_weights.import_channel_weights`` — an ``IHC_channel_weights.csv`` into a profile.
"""

# Everything loads on first use: importing the package (e.g. for the profile names in the CLI's help)
# costs nothing, the model brings numpy, the record-level entry points bring pandas.
_LAZY = {
    "attribute_index": "model",
    "Profile": "profile",
    "builtin_profiles": "profile",
    "load_profile": "profile",
    "profile_for_conv_type": "profile",
    "attribute_records": "records",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
