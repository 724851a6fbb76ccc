"""Exact removal-effect Markov model: hand-computed chains, edge cases, references, and the
cross-check against the ChannelAttribution package (Monte-Carlo)."""

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pipeline.errors import InputError
from pipeline.models import get_model
from pipeline.models import markov as markov_module
from pipeline.models.channel_paths import channel_paths, credit_by_channel_share
from pipeline.models.markov import fit_markov
from tests.models_testkit import attribute_paths, index_of, journeys_frame, random_paths, reference_markov

# converting journeys A>B, B, A>A>B; non-converting paths B, C>A
CONV = [["A", "B"], ["B"], ["A", "A", "B"]]
NULL = [["B"], ["C", "A"]]


def fit(conv, null, order=1, **kw):
    null_index = index_of(journeys_frame(null, prefix="n")) if null is not None else None
    return fit_markov(channel_paths(index_of(journeys_frame(conv)), null_index), order, **kw)


def attribute(conv, null, params=None):
    return attribute_paths("markov", conv, null, params)


def test_order1_removal_effects_by_hand():
    # transition counts (self-loops counted): start→A 2, start→B 2, start→C 1;
    # A→A 1, A→B 2, A→null 1;  B→conv 3, B→null 1;  C→A 1
    # conversion probability f from each state:
    #   f(B) = 3/4;  f(A) = 1/4 f(A) + 2/4 f(B)  →  f(A) = 1/2;  f(C) = f(A) = 1/2
    #   P = 2/5·1/2 + 2/5·3/4 + 1/5·1/2 = 3/5
    # remove A: f(A)=f(C)=0 → P = 2/5·3/4 = 3/10 → RE = 1 − (3/10)/(3/5) = 1/2
    # remove B: f(B)=f(A)=f(C)=0 → P = 0 → RE = 1
    # remove C: P = 3/5 − 1/5·1/2 = 1/2 → RE = 1 − (1/2)/(3/5) = 1/6
    result = fit(CONV, NULL)
    assert list(result.labels) == ["A", "B", "C"]
    assert result.conversion_probability == pytest.approx(3 / 5, abs=1e-12)
    assert result.removal_effect == pytest.approx([1 / 2, 1, 1 / 6], abs=1e-12)
    # shares: RE / ΣRE with ΣRE = 5/3
    assert result.share == pytest.approx([3 / 10, 3 / 5, 1 / 10], abs=1e-12)
    table = result.table(conversions=3)
    assert table["conversions"].tolist() == pytest.approx([0.9, 1.8, 0.3], abs=1e-12)


def test_order1_per_session_credit_by_hand():
    # shares A 0.3, B 0.6 (C is not in any converting journey)
    got = attribute(CONV, NULL)
    assert got["c0s000"] == pytest.approx(0.3 / 0.9)  # A>B: A 1/3
    assert got["c0s001"] == pytest.approx(0.6 / 0.9)  #      B 2/3
    assert got["c1s000"] == pytest.approx(1.0)  # B alone
    # A>A>B: A's 1/3 split over its two sessions, B 2/3
    assert [got["c2s000"], got["c2s001"], got["c2s002"]] == pytest.approx([1 / 6, 1 / 6, 2 / 3])


def test_order2_removal_effects_by_hand():
    # order-2 states: (A) (B) (C) (A,B) (A,A) (C,A)
    # start→(A) 2, start→(B) 2, start→(C) 1;  (A)→(A,B) 1, (A)→(A,A) 1;  (A,A)→(A,B) 1;
    # (A,B)→conv 2;  (B)→conv 1, (B)→null 1;  (C)→(C,A) 1;  (C,A)→null 1
    # f(A,B)=1, f(A,A)=1, f(A)=1, f(B)=1/2, f(C)=f(C,A)=0 → P = 2/5·1 + 2/5·1/2 = 3/5
    # remove A [(A),(A,B),(A,A),(C,A)]: P = 2/5·1/2 = 1/5 → RE = 1 − 1/3 = 2/3
    # remove B [(B),(A,B)]: nothing reaches conversion → RE = 1
    # remove C [(C),(C,A)]: P unchanged → RE = 0
    result = fit(CONV, NULL, order=2)
    assert result.conversion_probability == pytest.approx(3 / 5, abs=1e-12)
    assert result.removal_effect == pytest.approx([2 / 3, 1, 0], abs=1e-12)
    assert result.n_states == 7  # start + 6
    got = attribute(CONV, NULL, {"order": 2})
    assert got["c0s000"] == pytest.approx(0.4) and got["c0s001"] == pytest.approx(0.6)


def test_self_loops_do_not_matter_at_order_1_but_do_at_order_2():
    assert fit(CONV, NULL, collapse_repeats=True).removal_effect == pytest.approx(
        fit(CONV, NULL).removal_effect, abs=1e-12
    )
    collapsed = fit(CONV, NULL, order=2, collapse_repeats=True)
    assert collapsed.n_states == 6  # (A,A) is gone: A>A>B is read as A>B
    assert collapsed.removal_effect == pytest.approx([2 / 3, 1, 0], abs=1e-12)


def test_single_channel_journeys():
    # start→A 3 (A, A converting; A not), start→B 1;  A→conv 2, A→null 1;  B→conv 1
    # f(A) = 2/3, f(B) = 1 → P = 3/4·2/3 + 1/4 = 3/4
    # remove A → P = 1/4 → RE 2/3;  remove B → P = 1/2 → RE 1/3
    result = fit([["A"], ["A"], ["B"]], [["A"]])
    assert result.removal_effect == pytest.approx([2 / 3, 1 / 3], abs=1e-12)
    got = attribute([["A"], ["B"], ["A", "A", "A"]], [["A"]])
    assert got["c0s000"] == 1.0 and got["c1s000"] == 1.0
    assert [got[f"c2s{i:03d}"] for i in range(3)] == pytest.approx([1 / 3] * 3)


def test_no_non_converting_paths():
    # every path converts, P = 1: start→A 2/3, start→B 1/3; A→B 1/2, A→C 1/2; B, C → conv
    # remove A: P = 1/3 → RE 2/3;  remove B: P = 1 − (2/3·1/2 + 1/3) = 1/3 → RE 2/3;
    # remove C: P = 1 − 2/3·1/2 = 2/3 → RE 1/3;  shares 0.4, 0.4, 0.2
    conv = [["A", "B"], ["B"], ["A", "C"]]
    for null in (None, []):
        result = fit(conv, null)
        assert result.conversion_probability == pytest.approx(1.0)
        assert result.removal_effect == pytest.approx([2 / 3, 2 / 3, 1 / 3], abs=1e-12)
        got = attribute(conv, null)
        assert [got["c0s000"], got["c0s001"]] == pytest.approx([0.5, 0.5])
        assert [got["c2s000"], got["c2s001"]] == pytest.approx([2 / 3, 1 / 3])


def test_channel_only_in_non_converting_paths_and_one_never_in_them():
    # D appears only in non-converting paths, C only in converting ones
    conv = [["A", "C"], ["B"], ["C"]]
    null = [["D", "A"], ["B", "D"], ["A"]]
    result = fit(conv, null)
    ref = reference_markov(conv, null)
    assert list(result.labels) == ["A", "B", "C", "D"]
    assert result.removal_effect == pytest.approx([ref[c] for c in "ABCD"], abs=1e-12)
    got = get_model("markov").attribute(journeys_frame(conv), non_converting=journeys_frame(null, "n"))
    assert got.groupby("conversion_id")["ihc"].sum().tolist() == pytest.approx([1, 1, 1], abs=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_matches_a_slow_reference_on_random_paths(order):
    rng = np.random.default_rng(order)
    channels = ["a", "b", "c", "d", "e"]
    conv = random_paths(rng, 60, channels, weights=[5, 1, 1, 1, 2])
    null = random_paths(rng, 90, channels)
    result = fit(conv, null, order=order)
    ref = reference_markov(conv, null, order)
    assert result.removal_effect == pytest.approx([ref[c] for c in result.labels], abs=1e-10)


def test_series_path_agrees_with_the_fundamental_matrix_at_order_1():
    rng = np.random.default_rng(7)
    channels = list("abcdefgh")
    paths = channel_paths(
        index_of(journeys_frame(random_paths(rng, 300, channels))),
        index_of(journeys_frame(random_paths(rng, 300, channels), prefix="n")),
    )
    chain = markov_module._build_chain(paths, 1, False)
    p_dense, removed_dense = markov_module._order1_removed(chain)
    sparse_chain = markov_module._Chain(sp.csr_matrix(chain.q), chain.r, None, chain.base)
    p_series, removed_series = markov_module._series_removed(sparse_chain, 1, 8, lambda *a: None)
    assert p_series == pytest.approx(p_dense, abs=1e-13)
    assert removed_series == pytest.approx(removed_dense, abs=1e-13)


def test_long_self_loops_converge():
    # a channel repeated 200 times: the self-loop is taken out analytically, so the series is short
    conv = [["A"] * 200 + ["B"], ["B"]]
    null = [["A"] * 50]
    for order in (1, 3):
        ref = reference_markov(conv, null, order)
        assert fit(conv, null, order=order).removal_effect == pytest.approx([ref["A"], ref["B"]], abs=1e-12)


def test_zero_shares_fall_back_to_linear():
    index = index_of(journeys_frame([["A", "B", "A"], ["B"]]))
    paths = channel_paths(index, None)
    credit = credit_by_channel_share(index, paths.converting, np.array([0.0, 0.0]), 2)
    assert credit.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0])
    credit = credit_by_channel_share(index, paths.converting, np.array([0.0, 1.0]), 2)
    assert credit.tolist() == pytest.approx([0.0, 1.0, 0.0, 1.0])  # A has share 0: B gets it all


def test_empty_input():
    assert len(get_model("markov").attribute(journeys_frame([]))) == 0
    result = fit([], [["A"]])
    assert result.removal_effect.tolist() == [0.0]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"order": 5}, "order must be between 1 and 4"),
        ({"order": 1.5}, "order must be an integer"),
        ({"order": True}, "integer"),
        ({"collapse_repeats": "maybe"}, "true or false"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(InputError, match=message):
        get_model("markov").attribute(journeys_frame([["A"]]), params)


def test_missing_channel_label_is_an_input_error():
    frame = journeys_frame([["A", "B"]])
    frame.loc[1, "channel_label"] = None
    with pytest.raises(InputError, match="no channel_label"):
        get_model("markov").attribute(frame)


def test_results_are_repeatable():
    rng = np.random.default_rng(3)
    conv = journeys_frame(random_paths(rng, 200, list("abcdef")))
    null = journeys_frame(random_paths(rng, 200, list("abcdef")), prefix="n")
    model = get_model("markov")
    first = model.attribute(conv, {"order": 3}, non_converting=null)
    second = model.attribute(conv, {"order": 3}, non_converting=null)
    pd.testing.assert_frame_equal(first, second)


# ---- cross-check with ChannelAttribution (PyPI; Monte-Carlo) -------------------------------------


def _channelattribution():
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import ChannelAttribution
    except Exception as exc:  # noqa: BLE001 - missing package or its undeclared matplotlib dependency
        pytest.skip(f"ChannelAttribution is not importable here ({type(exc).__name__}: {exc})")
    return ChannelAttribution


def test_order1_agrees_with_channelattribution_within_1_percent():
    ca = _channelattribution()
    rng = np.random.default_rng(11)
    channels = ["display", "email", "organic", "paid_search", "social"]
    conv_paths = random_paths(rng, 3000, channels, weights=[1, 3, 2, 4, 1])
    null_paths = random_paths(rng, 4000, channels, weights=[4, 1, 2, 2, 3])
    result = fit(conv_paths, null_paths)
    ours = dict(zip(result.labels, result.table(len(conv_paths))["conversions"]))

    data = (
        pd.DataFrame(
            {
                "path": [" > ".join(p) for p in conv_paths + null_paths],
                "conv": [1] * len(conv_paths) + [0] * len(null_paths),
            }
        )
        .assign(null=lambda d: 1 - d["conv"])
        .groupby("path", as_index=False)[["conv", "null"]]
        .sum()
    )
    with contextlib.redirect_stdout(io.StringIO()):
        theirs = ca.markov_model(
            data, "path", "conv", var_null="null", order=1, nsim_start=1e6, seed=0, verbose=False, flg_pro=False
        )
    theirs = dict(zip(theirs["channel_name"], theirs["total_conversions"]))
    assert set(theirs) == set(ours)
    for channel, value in ours.items():
        assert theirs[channel] == pytest.approx(value, rel=0.01), channel


def test_a_series_that_cannot_finish_is_a_clear_error(monkeypatch):
    from pipeline.errors import PipelineError

    monkeypatch.setattr(markov_module, "SERIES_MAX_STEPS", 4)
    with pytest.raises(PipelineError, match="did not absorb within 4 steps"):
        fit([["A", "B", "C", "D"]], [], order=2)
