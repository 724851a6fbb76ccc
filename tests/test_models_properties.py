"""Properties every model must have, over random journeys (hypothesis): credit ≥ 0, credit sums to 1
per conversion (1e-9), results independent of row order; Markov and Shapley agree with their slow
references on random inputs."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.models import available_models, get_model
from pipeline.models.channel_paths import channel_paths
from pipeline.models.markov import fit_markov
from pipeline.models.shapley import fit_shapley
from tests.models_testkit import journeys_frame, reference_markov, reference_shapley

CHANNELS = ["a", "b", "c", "d", "e"]
session = st.tuples(st.sampled_from(CHANNELS), st.integers(0, 5))  # (channel, hour): ties happen
journey = st.lists(session, min_size=1, max_size=6)
MODEL_PARAMS = [
    ("last-click", {}),
    ("first-click", {}),
    ("linear", {}),
    ("time-decay", {}),
    ("time-decay", {"half_life_hours": 0.5}),
    ("position-based", {}),
    ("position-based", {"first": 0.1, "last": 0.6}),
    ("markov", {}),
    ("markov", {"order": 2}),
    ("markov", {"order": 4, "collapse_repeats": True}),
    ("shapley", {}),
    ("shapley", {"max_coalition_size": 2, "worth": "conversions"}),
    ("ihc", {}),
    ("ihc", {"profile": "challenge"}),
]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def frame_of(journeys, prefix):
    return journeys_frame(
        [[c for c, _ in j] for j in journeys],
        prefix=prefix,
        hours=[[h for _, h in j] for j in journeys],
    )


def canonical_paths(journeys):
    """Channel paths in the model's order: by time, ties by session_id (= position in the list)."""
    return [[c for (c, _), _ in sorted(zip(j, range(len(j))), key=lambda x: (x[0][1], x[1]))] for j in journeys]


def test_every_registered_model_is_covered():
    assert {name for name, _ in MODEL_PARAMS} == set(available_models())


@pytest.mark.parametrize("name, params", MODEL_PARAMS, ids=lambda v: str(v))
@SETTINGS
@given(
    conv=st.lists(journey, min_size=1, max_size=8),
    null=st.lists(journey, max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_credit_is_a_distribution_per_conversion_and_ignores_row_order(name, params, conv, null, seed):
    model = get_model(name)
    frame, null_frame = frame_of(conv, "c"), frame_of(null, "n")
    result = model.attribute(frame, params, non_converting=null_frame)

    assert len(result) == len(frame)
    assert (result["ihc"] >= 0).all()
    sums = result.groupby("conversion_id")["ihc"].sum()
    assert len(sums) == len(conv)
    assert np.allclose(sums.to_numpy(), 1.0, rtol=0, atol=1e-9)

    rng = np.random.default_rng(seed)
    shuffled = frame.iloc[rng.permutation(len(frame))]
    shuffled_null = null_frame.iloc[rng.permutation(len(null_frame))]
    again = model.attribute(shuffled, params, non_converting=shuffled_null)
    merged = result.merge(again, on=["conversion_id", "session_id"], suffixes=("", "_shuffled"))
    assert len(merged) == len(frame)
    assert np.allclose(merged["ihc"], merged["ihc_shuffled"], rtol=0, atol=1e-12)


@SETTINGS
@given(
    conv=st.lists(journey, min_size=1, max_size=8),
    null=st.lists(journey, max_size=6),
    order=st.integers(1, 3),
)
def test_markov_matches_the_reference(conv, null, order):
    paths = channel_paths(_index(frame_of(conv, "c")), _index(frame_of(null, "n")))
    result = fit_markov(paths, order)
    ref = reference_markov(canonical_paths(conv), canonical_paths(null), order)
    assert result.removal_effect == pytest.approx([ref[c] for c in result.labels], abs=1e-9)


@SETTINGS
@given(
    conv=st.lists(journey, min_size=1, max_size=8),
    null=st.lists(journey, max_size=6),
    cap=st.integers(1, 5),
    worth=st.sampled_from(["rate", "conversions"]),
)
def test_shapley_matches_the_permutation_formula(conv, null, cap, worth):
    paths = channel_paths(_index(frame_of(conv, "c")), _index(frame_of(null, "n")))
    result = fit_shapley(paths, cap, worth)
    ref = reference_shapley(canonical_paths(conv), canonical_paths(null), cap, worth)
    assert result.value == pytest.approx([ref[c] for c in result.labels], abs=1e-9)


def _index(frame: pd.DataFrame):
    from pipeline.journey_index import JourneyIndex

    return JourneyIndex.from_frame(frame)
