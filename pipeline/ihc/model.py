"""The offline IHC model: scope → phases → (redistribution) → blend → (rounding), all journeys at once.

``attribute_index`` works on a ``JourneyIndex`` and returns ``Credits`` (the pipeline model interface);
``ordering.request_order_index`` builds the index the way the API orders sessions.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from ..journey_index import Credits, JourneyIndex
from .blend import blend, round_api
from .factors import phase_factors
from .phases import compute_phases
from .profile import Profile, load_profile
from .redistribution import parse_redistribution, redistribute
from .scope import journey_scope


def attribute_index(
    index: JourneyIndex,
    profile: "Profile | str | None" = None,
    *,
    round_values: bool = False,
    redistribution: Optional[Mapping[str, Any]] = None,
) -> Credits:
    profile = load_profile(profile)
    rules = parse_redistribution(redistribution)
    scope = journey_scope(index, profile)
    phases = compute_phases(index, profile, scope, phase_factors(index, profile))
    shares = {"initializer": phases.initializer, "holder": phases.holder, "closer": phases.closer}
    for phase, rule in rules.items():
        shares[phase] = redistribute(index, shares[phase], rule, scope.active)
    ihc = blend(index, shares, profile.phase_weights)
    if round_values:
        shares = {k: round_api(v) for k, v in shares.items()}
        ihc = round_api(ihc)
    return Credits(ihc=ihc, **shares)
