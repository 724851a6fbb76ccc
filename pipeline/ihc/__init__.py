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

from .api_local import respond  # noqa: F401
from .model import attribute_index  # noqa: F401
from .profile import Profile, builtin_profiles, load_profile, profile_for_conv_type  # noqa: F401
from .records import attribute_records  # noqa: F401
