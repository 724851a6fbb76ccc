"""Rule-based models: hand-computed credit per session, parameter checks."""

import math

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.models import get_model
from tests.models_testkit import credit_of, journeys_frame


def credits(model, paths, params=None, hours=None):
    return credit_of(get_model(model).attribute(journeys_frame(paths, hours=hours), params))


def test_first_click_gives_everything_to_the_first_session():
    got = credits("first-click", [["A", "B", "C"], ["B"]])
    assert got == {"c0s000": 1.0, "c0s001": 0.0, "c0s002": 0.0, "c1s000": 1.0}


def test_first_click_uses_time_not_row_order():
    frame = journeys_frame([["A", "B"]], hours=[[5.0, 1.0]])  # the B session happened first
    got = credit_of(get_model("first-click").attribute(frame))
    assert got == {"c0s000": 0.0, "c0s001": 1.0}


def test_time_decay_halves_per_half_life():
    # sessions 336 h, 168 h and 0 h before the last one; half-life 168 h → weights 1/4, 1/2, 1
    got = credits("time-decay", [["A", "B", "C"]], hours=[[0, 168, 336]])
    assert got["c0s000"] == pytest.approx(0.25 / 1.75, abs=1e-12)  # 1/7
    assert got["c0s001"] == pytest.approx(0.5 / 1.75, abs=1e-12)  # 2/7
    assert got["c0s002"] == pytest.approx(1.0 / 1.75, abs=1e-12)  # 4/7


def test_time_decay_custom_half_life():
    # half-life 24 h, sessions 12 h apart: weights 2^-0.5 and 1
    got = credits("time-decay", [["A", "B"]], {"half_life_hours": 24}, hours=[[0, 12]])
    w = 2**-0.5
    assert got["c0s000"] == pytest.approx(w / (1 + w), abs=1e-12)  # 0.29289...
    assert got["c0s001"] == pytest.approx(1 / (1 + w), abs=1e-12)  # 0.70710...


def test_time_decay_equal_times_split_equally_and_old_sessions_never_break_the_sum():
    got = credits("time-decay", [["A", "B"], ["A", "B"]], {"half_life_hours": 0.001}, hours=[[3, 3], [0, 10_000]])
    assert got["c0s000"] == got["c0s001"] == 0.5
    assert got["c1s000"] == 0.0  # 2^(-10^7) underflows to 0, the last session keeps weight 1
    assert got["c1s001"] == 1.0


@pytest.mark.parametrize(
    "paths, expected",
    [
        ([["A"]], [1.0]),  # one session: all of it
        ([["A", "B"]], [0.5, 0.5]),  # two: 0.4/(0.4+0.4) each
        ([["A", "B", "C"]], [0.4, 0.2, 0.4]),
        ([["A", "B", "C", "D", "E"]], [0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4]),
    ],
)
def test_position_based_default_40_20_40(paths, expected):
    got = credits("position-based", paths)
    assert [got[f"c0s{i:03d}"] for i in range(len(expected))] == pytest.approx(expected, abs=1e-12)


def test_position_based_custom_shares_and_two_session_rule():
    params = {"first": 0.3, "last": 0.5}
    got = credits("position-based", [["A", "B"], ["A", "B", "C"]], params)
    assert got["c0s000"] == pytest.approx(0.3 / 0.8)  # 0.375
    assert got["c0s001"] == pytest.approx(0.5 / 0.8)  # 0.625
    assert [got["c1s000"], got["c1s001"], got["c1s002"]] == pytest.approx([0.3, 0.2, 0.5])


def test_position_based_all_to_the_middle():
    got = credits("position-based", [["A", "B"], ["A", "B", "C", "D"]], {"first": 0, "last": 0})
    assert [got["c0s000"], got["c0s001"]] == [0.5, 0.5]  # no middle: equal split
    assert [got[f"c1s{i:03d}"] for i in range(4)] == [0.0, 0.5, 0.5, 0.0]


def test_position_based_repeated_channels_count_as_sessions():
    got = credits("position-based", [["A", "A", "A"]])
    assert [got[f"c0s{i:03d}"] for i in range(3)] == pytest.approx([0.4, 0.2, 0.4])


@pytest.mark.parametrize(
    "model, params, message",
    [
        ("time-decay", {"half_life_hours": 0}, "half_life_hours must be > 0"),
        ("time-decay", {"half_life_hours": -5}, "half_life_hours must be > 0"),
        ("time-decay", {"half_life_hours": "a week"}, "must be a number"),
        ("time-decay", {"half_life_hours": float("inf")}, "finite"),
        ("position-based", {"first": 0.7, "last": 0.5}, r"first \+ last must be <= 1"),
        ("position-based", {"first": -0.1}, "first must be >= 0"),
        ("position-based", {"middle": 0.2}, "has no parameter middle"),
        ("first-click", {"x": 1}, "has no parameter x"),
    ],
)
def test_bad_parameters_are_input_errors(model, params, message):
    with pytest.raises(InputError, match=message):
        get_model(model).attribute(journeys_frame([["A", "B"]]), params)


def test_parameters_may_arrive_as_text():
    got = credits("time-decay", [["A", "B"]], {"half_life_hours": "24"}, hours=[[0, 24]])
    assert got["c0s000"] == pytest.approx(1 / 3)
    got = credits("position-based", [["A", "B", "C"]], {"first": "0.5", "last": "0.5"})
    assert [got["c0s000"], got["c0s001"], got["c0s002"]] == [0.5, 0.0, 0.5]


def test_empty_journeys_give_empty_credit():
    for name in ("first-click", "time-decay", "position-based"):
        result = get_model(name).attribute(journeys_frame([]))
        assert len(result) == 0


def test_heuristics_have_no_phases():
    result = get_model("time-decay").attribute(journeys_frame([["A", "B"]]))
    assert result[["initializer", "holder", "closer"]].isna().all().all()
    assert math.isclose(result["ihc"].sum(), 1.0)
    assert np.all(result["ihc"] >= 0)
