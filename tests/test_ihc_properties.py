"""Invariants of the offline IHC model over random journeys (hypothesis)."""

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.ihc import attribute_records
from pipeline.journey_index import JOURNEY_COLUMNS
from pipeline.models import get_model

BASE = pd.Timestamp("2023-01-01")
GAPS = st.one_of(st.floats(0, 2), st.floats(0, 60), st.sampled_from([0.0, 52.7, 53.0, 100.0]))


@st.composite
def journeys(draw, max_journeys=6, max_sessions=9):
    rows = []
    for j in range(draw(st.integers(1, max_journeys))):
        n = draw(st.integers(1, max_sessions))
        t = BASE + pd.Timedelta(hours=draw(st.floats(0, 1000)))
        for k in range(n):
            if k:
                t = t + pd.Timedelta(seconds=round(draw(GAPS) * 3600))
            rows.append(
                {
                    "conversion_id": f"c{j}",
                    "session_id": f"s{j}-{k}",
                    "timestamp": t.strftime("%Y-%m-%d %H:%M:%S"),
                    "channel_label": draw(st.sampled_from(["A", "B", "C"])),
                    "holder_engagement": draw(st.integers(0, 1)),
                    "closer_engagement": draw(st.integers(0, 1)),
                    "conversion": draw(st.sampled_from([0, 0, 0, 1])),
                    "impression_interaction": draw(st.sampled_from([0, 0, 1])),
                }
            )
    return pd.DataFrame(rows)


PROFILES = st.sampled_from(["challenge", "default"])
settings.register_profile("ihc", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ihc")


def sums(out, col):
    return out.groupby("conversion_id")[col].sum()


@given(journeys(), PROFILES)
def test_credit_nonnegative_and_phases_sum_to_one(df, profile):
    out = attribute_records(df, profile, round_values=False)
    assert (out[["initializer", "holder", "closer", "ihc"]].to_numpy() >= 0).all()
    for col in ["initializer", "closer", "ihc"]:
        assert np.allclose(sums(out, col), 1.0)
    h = sums(out, "holder")
    assert np.all(np.isclose(h, 1.0) | np.isclose(h, 0.0))


@given(journeys(), PROFILES)
def test_rounded_values_within_api_tolerance(df, profile):
    out = attribute_records(df, profile, round_values=True)
    n = out.groupby("conversion_id").size()
    tol = np.maximum(1e-4, n * 5e-5) + 1e-12
    assert (np.abs(sums(out, "ihc") - 1.0) <= tol).all()
    assert np.allclose(out["ihc"], out["ihc"].round(4))


@given(journeys(), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(df, rnd):
    perm = list(range(len(df)))
    rnd.shuffle(perm)
    model = get_model("ihc")
    a = model.attribute(df, {"profile": "challenge"}).set_index(["conversion_id", "session_id"])
    b = model.attribute(df.iloc[perm], {"profile": "challenge"}).set_index(["conversion_id", "session_id"])
    pd.testing.assert_frame_equal(a.sort_index(), b.sort_index())


@given(journeys(max_journeys=1))
def test_journey_alone_equals_journey_among_others(df):
    other = df.assign(conversion_id="other", session_id=df["session_id"] + "x")
    alone = attribute_records(df, "challenge", round_values=False)
    together = attribute_records(pd.concat([other, df], ignore_index=True), "challenge", round_values=False)
    assert np.allclose(together.iloc[len(df) :][["ihc", "holder"]].to_numpy(), alone[["ihc", "holder"]].to_numpy())


@given(journeys())
def test_sessions_outside_the_journey_get_nothing(df):
    out = attribute_records(df, "challenge", round_values=False)
    # zero initializer and closer ⇒ zero everywhere (a session is out of scope or just unweighted)
    none = (out["initializer"] == 0) & (out["closer"] == 0) & (out["holder"] == 0)
    assert (out.loc[none, "ihc"] == 0).all()


def test_empty_input():
    empty = pd.DataFrame(columns=JOURNEY_COLUMNS)
    assert len(attribute_records(empty, "challenge")) == 0
