"""Chunking whole journeys within both limits; truncation of over-long journeys; input fingerprints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import InputError
from pipeline.ihc_api.chunking import plan_chunks
from pipeline.ihc_api.request_records import prepare_journeys
from pipeline.ihc_api.synthetic import make_journeys


def test_plan_chunks_hand_example():
    # sizes 3,4,2,5,1 with at most 2 journeys and 7 sessions per request
    assert plan_chunks(np.array([3, 4, 2, 5, 1]), 2, 7) == [(0, 2), (2, 4), (4, 5)]
    # session limit binds first
    assert plan_chunks(np.array([3, 4, 2, 5, 1]), 10, 6) == [(0, 1), (1, 3), (3, 5)]
    # a journey exactly at the session limit travels alone
    assert plan_chunks(np.array([1, 6, 1]), 10, 6) == [(0, 1), (1, 2), (2, 3)]
    assert plan_chunks(np.array([], dtype=np.int64), 100, 3000) == []


def test_plan_chunks_refuses_a_journey_over_the_limit():
    with pytest.raises(ValueError):
        plan_chunks(np.array([2, 7]), 10, 6)


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 60), min_size=0, max_size=300),
    max_journeys=st.integers(1, 120),
    max_sessions=st.integers(60, 400),
)
def test_plan_chunks_properties(sizes, max_journeys, max_sessions):
    sizes = np.array(sizes, dtype=np.int64)
    chunks = plan_chunks(sizes, max_journeys, max_sessions)
    covered = []
    for start, stop in chunks:
        assert stop > start
        assert stop - start <= max_journeys
        assert sizes[start:stop].sum() <= max_sessions
        covered.extend(range(start, stop))
    assert covered == list(range(len(sizes)))  # every journey once, in order, never split
    # greedy: the next journey would not have fitted into the chunk before it
    for (start, stop), _ in zip(chunks, chunks[1:]):
        assert stop - start == max_journeys or sizes[start : stop + 1].sum() > max_sessions


def test_prepare_truncates_long_journeys_to_their_most_recent_sessions():
    journeys = make_journeys([2, 7, 3], seed=4)
    prepared = prepare_journeys(journeys, max_sessions=4)
    conversions = prepared.conversions.set_index("conversion_id")
    assert conversions.loc["c1", "sessions"] == 7 and conversions.loc["c1", "sessions_sent"] == 4
    assert list(prepared.truncated["conversion_id"]) == ["c1"]
    long_rows = prepared.rows[prepared.rows["conversion_id"] == "c1"]
    # rows are in time order: the first three are not sent, the last four are
    assert long_rows["timestamp"].is_monotonic_increasing
    assert long_rows["sent"].tolist() == [False, False, False, True, True, True, True]
    assert prepared.rows.loc[prepared.rows["conversion_id"] != "c1", "sent"].all()


def test_prepare_orders_canonically_whatever_the_row_order():
    journeys = make_journeys([3, 2, 4], seed=5)
    shuffled = journeys.sample(frac=1, random_state=1)
    a = prepare_journeys(journeys, 3000)
    b = prepare_journeys(shuffled, 3000)
    # same fingerprints whatever the order (conversions may be listed in another order)
    left = a.conversions.set_index("conversion_id")[["h1", "h2"]].sort_index()
    right = b.conversions.set_index("conversion_id")[["h1", "h2"]].sort_index()
    pd.testing.assert_frame_equal(left, right)
    assert a.fingerprint() == b.fingerprint()


def test_fingerprint_changes_only_for_the_changed_conversion():
    journeys = make_journeys([3, 2, 4], seed=6)
    before = prepare_journeys(journeys, 3000).conversions.set_index("conversion_id")
    changed = journeys.copy()
    changed.loc[changed["session_id"] == "c1-s1", "channel_label"] = "Referral-changed"
    after = prepare_journeys(changed, 3000).conversions.set_index("conversion_id")
    differs = (before[["h1", "h2"]] != after[["h1", "h2"]]).any(axis=1)
    assert differs.to_dict() == {"c0": False, "c1": True, "c2": False}
    # a new truncation limit that cuts c2 changes c2's fingerprint
    cut = prepare_journeys(journeys, 3).conversions.set_index("conversion_id")
    assert (before.loc["c2", ["h1", "h2"]] != cut.loc["c2", ["h1", "h2"]]).any()
    assert (before.loc["c0", ["h1", "h2"]] == cut.loc["c0", ["h1", "h2"]]).all()


def test_prepare_normalises_types_for_json():
    journeys = pd.DataFrame(
        {
            "conversion_id": [7, 7],
            "session_id": [1, 2],
            "timestamp": pd.to_datetime(["2024-01-01 10:00:00", "2024-01-01 11:00:00"]),
            "channel_label": ["A", "B"],
            "holder_engagement": [1.0, 0.0],
            "closer_engagement": [True, False],
            "conversion": [0, 0],
            "impression_interaction": [0, 0],
            "extra_column": ["ignored", "ignored"],
        }
    )
    rows = prepare_journeys(journeys, 3000).rows
    assert rows["conversion_id"].tolist() == ["7", "7"]
    assert rows["timestamp"].tolist() == ["2024-01-01 10:00:00", "2024-01-01 11:00:00"]
    assert rows["closer_engagement"].tolist() == [1, 0]
    assert "extra_column" not in rows.columns


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda df: df.drop(columns="channel_label"), "lack column"),
        (lambda df: df.assign(timestamp="01/02/2024 10:00"), "is not 'YYYY-MM-DD HH:MM:SS'"),
        (lambda df: df.assign(holder_engagement=2), "must be 0 or 1"),
        (lambda df: df.assign(closer_engagement="yes"), "must be 0 or 1"),
        (lambda df: df.assign(session_id="same"), "appears twice"),
        (lambda df: df.assign(conversion_id=None), "conversion_id is empty"),
    ],
)
def test_bad_journeys_are_input_errors(change, message):
    journeys = make_journeys([2, 1], seed=7)
    with pytest.raises(InputError, match=message):
        prepare_journeys(change(journeys), 3000)


def test_a_session_may_belong_to_two_conversions():
    journeys = make_journeys([2, 2], seed=8)
    journeys.loc[journeys["conversion_id"] == "c1", "session_id"] = ["c0-s0", "c1-s1"]
    prepared = prepare_journeys(journeys, 3000)
    assert prepared.n_conversions == 2 and len(prepared.rows) == 4


def test_epoch_seconds_may_replace_timestamp_strings():
    journeys = make_journeys([2, 1], seed=9)
    with_ts = journeys.drop(columns="timestamp").assign(
        ts=pd.to_datetime(journeys["timestamp"]).astype("datetime64[s]").astype("int64")
    )
    a = prepare_journeys(journeys, 3000)
    b = prepare_journeys(with_ts, 3000)
    pd.testing.assert_frame_equal(a.rows, b.rows)
    assert a.fingerprint() == b.fingerprint()
