"""Channel-set Shapley: hand-computed values, the closed form against the full permutation formula,
the coalition cap, edge cases."""

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.models import get_model
from pipeline.models.channel_paths import channel_paths
from pipeline.models.shapley import fit_shapley
from tests.models_testkit import attribute_paths, index_of, journeys_frame, random_paths, reference_shapley

# converting: A>B, B, A>A>B, C>B>A>D; non-converting: B, C>A
CONV = [["A", "B"], ["B"], ["A", "A", "B"], ["C", "B", "A", "D"]]
NULL = [["B"], ["C", "A"]]


def fit(conv, null, **params):
    null_index = index_of(journeys_frame(null, prefix="n")) if null is not None else None
    return fit_shapley(channel_paths(index_of(journeys_frame(conv)), null_index), **params)


def attribute(conv, null, params=None):
    return attribute_paths("shapley", conv, null, params)


def test_values_by_hand():
    # channel sets and their worth r(T) = conversion rate:
    #   {A,B}: 2 conversions / 2 paths = 1     {B}: 1 / 2 = 1/2
    #   {A,B,C,D}: 1 / 1 = 1                   {A,C}: 0 / 1 = 0
    # φ(i) = Σ_{T ∋ i} r(T)/|T|:
    #   A = 1/2 + 1/4 + 0/2 = 3/4     B = 1/2 + 1/2 + 1/4 = 5/4
    #   C = 1/4 + 0/2 = 1/4           D = 1/4                       Σ = 5/2
    result = fit(CONV, NULL)
    assert list(result.labels) == ["A", "B", "C", "D"]
    assert result.value == pytest.approx([3 / 4, 5 / 4, 1 / 4, 1 / 4], abs=1e-12)
    assert result.share == pytest.approx([0.3, 0.5, 0.1, 0.1], abs=1e-12)
    sets = result.sets_table().set_index("channels")
    assert sets.loc["A + B", ["size", "conversions", "paths", "worth"]].tolist() == [2, 2, 2, 1]
    assert sets.loc["B", "worth"] == 0.5 and sets.loc["A + C", "worth"] == 0.0


def test_per_session_credit_by_hand():
    got = attribute(CONV, NULL)
    assert [got["c0s000"], got["c0s001"]] == pytest.approx([0.3 / 0.8, 0.5 / 0.8])  # A>B
    assert got["c1s000"] == 1.0
    assert [got["c2s000"], got["c2s001"], got["c2s002"]] == pytest.approx(
        [0.3 / 0.8 / 2, 0.3 / 0.8 / 2, 0.5 / 0.8]
    )  # A>A>B: A's part split over its two sessions
    assert [got[f"c3s{i:03d}"] for i in range(4)] == pytest.approx([0.1, 0.5, 0.3, 0.1])


def test_closed_form_equals_the_full_permutation_formula():
    # the reference averages marginal contributions over all 4! orderings of v(S) = Σ_{T⊆S} r(T)
    ref = reference_shapley(CONV, NULL)
    assert fit(CONV, NULL).value == pytest.approx([ref[c] for c in "ABCD"], abs=1e-12)


def test_conversions_worth_is_efficient():
    # r(T) = conversions: {A,B} 2, {B} 1, {A,B,C,D} 1, {A,C} 0
    # A = 2/2 + 1/4 = 5/4;  B = 2/2 + 1 + 1/4 = 9/4;  C = D = 1/4;  Σ = 4 = all conversions
    result = fit(CONV, NULL, worth="conversions")
    assert result.value == pytest.approx([5 / 4, 9 / 4, 1 / 4, 1 / 4], abs=1e-12)
    assert result.value.sum() == pytest.approx(len(CONV))


def test_coalition_cap_keeps_the_most_recent_channels():
    # cap 2: C>B>A>D keeps {A, D} (touched last); A>A>B keeps {A, B}
    # sets: {A,B} 2/2 = 1, {B} 1/2, {A,D} 1/1 = 1, {A,C} 0/1 = 0
    # A = 1/2 + 1/2 + 0 = 1;  B = 1/2 + 1/2 = 1;  C = 0;  D = 1/2
    result = fit(CONV, NULL, max_coalition_size=2)
    assert result.value == pytest.approx([1, 1, 0, 1 / 2], abs=1e-12)
    ref = reference_shapley(CONV, NULL, cap=2)
    assert result.value == pytest.approx([ref[c] for c in "ABCD"], abs=1e-12)
    # per session: C>B>A>D gets B 1/2.5, A 1/2.5, D 0.5/2.5; C has share 0 → 0
    got = attribute(CONV, NULL, {"max_coalition_size": 2})
    assert [got[f"c3s{i:03d}"] for i in range(4)] == pytest.approx([0.0, 0.4, 0.4, 0.2])


def test_cap_recency_counts_the_last_touch_of_a_repeated_channel():
    # A>B>A with cap 1: A was touched last → {A}
    result = fit([["A", "B", "A"], ["B"]], [], max_coalition_size=1)
    assert result.value == pytest.approx([1.0, 1.0])  # {A}: 1/1, {B}: 1/1
    result = fit([["B", "A", "B"], ["B"]], [], max_coalition_size=1)
    assert result.value == pytest.approx([0.0, 1.0])  # both paths have set {B}: rate 2/2


def test_single_channel_journeys_and_no_non_converting_paths():
    # without non-converting paths every observed set has rate 1
    # sets {A}, {B}, {A,B}: A = 1 + 1/2, B = 1 + 1/2
    conv = [["A"], ["B"], ["A", "B"], ["A", "A"]]
    for null in (None, []):
        result = fit(conv, null)
        assert result.value == pytest.approx([1.5, 1.5])
        got = attribute(conv, null)
        assert got["c0s000"] == 1.0 and got["c1s000"] == 1.0
        assert [got["c3s000"], got["c3s001"]] == [0.5, 0.5]


def test_channel_never_in_non_converting_paths_and_one_only_there():
    conv = [["A", "C"], ["B"], ["C"]]
    null = [["D", "A"], ["B", "D"], ["A"]]
    ref = reference_shapley(conv, null)
    result = fit(conv, null)
    assert result.value == pytest.approx([ref[c] for c in "ABCD"], abs=1e-12)
    assert result.value[3] == 0.0  # D never converts: every set it is in has rate 0


def test_many_channels_use_several_mask_words():
    # 130 channels → three 64-bit words per channel set
    rng = np.random.default_rng(5)
    channels = [f"ch{i:03d}" for i in range(130)]
    conv = random_paths(rng, 400, channels, mean_length=2.0)
    null = random_paths(rng, 400, channels, mean_length=2.0)
    result = fit(conv, null, max_coalition_size=3)
    # closed form computed in Python over the capped sets (the permutation formula is too big here)
    from collections import Counter

    def capped(path):
        recent = []
        for c in reversed(path):
            if c not in recent:
                recent.append(c)
        return frozenset(recent[:3])

    conv_sets = Counter(capped(p) for p in conv)
    all_sets = conv_sets + Counter(capped(p) for p in null)
    expected = Counter()
    for t, n in all_sets.items():
        for c in t:
            expected[c] += conv_sets[t] / n / len(t)
    assert result.value == pytest.approx([expected[c] for c in result.labels], abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_matches_the_permutation_formula_on_random_paths(seed):
    rng = np.random.default_rng(seed)
    channels = list("abcde")
    conv = random_paths(rng, 40, channels)
    null = random_paths(rng, 60, channels)
    for cap in (1, 2, 5):
        ref = reference_shapley(conv, null, cap=cap)
        result = fit(conv, null, max_coalition_size=cap)
        assert result.value == pytest.approx([ref[c] for c in result.labels], abs=1e-12)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"worth": "revenue"}, "worth must be one of"),
        ({"max_coalition_size": 0}, "between 1 and 64"),
        ({"max_coalition_size": "four"}, "integer"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(InputError, match=message):
        get_model("shapley").attribute(journeys_frame([["A"]]), params)


def test_empty_input():
    assert len(get_model("shapley").attribute(journeys_frame([]))) == 0
