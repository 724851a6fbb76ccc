"""Approximate/assumed behaviours (docs/ihc.md): conversion=1 not last, impressions, channel weights,
redistribution_parameter; and profile loading. Expected values are computed by hand."""

import json

import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.ihc import attribute_records, load_profile
from pipeline.ihc.channel_weights import import_channel_weights, read_channel_weights
from pipeline.ihc.profile import profile_from_dict
from pipeline.models import get_model
from tests.ihc_support import journey


def run(df, profile="challenge", **kw):
    return attribute_records(df, profile, round_values=False, **kw)


def with_changes(**changes):
    doc = load_profile("challenge").to_dict()
    doc.update(changes)
    return profile_from_dict(doc, "test")


# ---- conversion=1 on a session that is not the last -------------------------------------------
def test_conversion_session_anchors_the_closer_and_ends_the_journey():
    df = journey([0.05, 0.05, 0.05], c=[1, 1, 0, 0], conversion=[0, 1, 0, 0])
    out = run(df)
    # the journey ends at session 2: sessions 3-4 take no part; session 2 is the closer's anchor
    assert out["ihc"].iloc[2:].tolist() == [0.0, 0.0]
    assert out["closer"].iloc[:2].to_numpy() == pytest.approx([0.5, 0.5])  # g(0.05 h) = 1
    assert out["ihc"].sum() == pytest.approx(1.0)


def test_conversion_flag_ignored_when_profile_says_so():
    df = journey([0.05, 0.05], c=[0, 0, 1], conversion=[1, 0, 0])
    out = run(df, with_changes(conversion_session="ignore"))
    assert out["closer"].tolist() == [0.0, 0.0, 1.0]
    plain = run(journey([0.05, 0.05], c=[0, 0, 1]))
    assert out["ihc"].to_numpy() == pytest.approx(plain["ihc"].to_numpy())


def test_conversion_on_last_session_changes_nothing():
    a = run(journey([3.0, 0.5], c=[1, 0, 1], conversion=[0, 0, 1]))
    b = run(journey([3.0, 0.5], c=[1, 0, 1]))
    assert a["ihc"].to_numpy() == pytest.approx(b["ihc"].to_numpy())


# ---- impression_interaction=1 --------------------------------------------------------------------
def test_impression_gets_no_holder_and_no_early_closer_credit():
    df = journey([0.05, 0.05], h=[1, 1, 1], c=[1, 1, 1], impression=[0, 1, 0])
    out = run(df)
    assert out["holder"].iloc[1] == 0.0
    assert out["closer"].iloc[1] == 0.0
    assert out["closer"].iloc[[0, 2]].to_numpy() == pytest.approx([0.5, 0.5])


def test_impression_as_first_or_last_session_keeps_its_fixed_role():
    out = run(journey([0.05], h=[1, 1], c=[1, 1], impression=[1, 1]))
    assert out["initializer"].iloc[0] == 1.0 and out["closer"].iloc[1] == 1.0
    assert out["holder"].sum() == 0.0  # no engaged visit: empty holder, weights renormalised
    assert out["ihc"].sum() == pytest.approx(1.0)


# ---- channel weights ---------------------------------------------------------------------------
def test_channel_weights_multiply_raw_memberships():
    weights = {"A": {"initializer": 1.0, "holder": 1.0, "closer": 2.0}}
    df = journey([0.05], h=[0, 0], c=[1, 1], channels=["A", "B"])
    out = run(df, with_changes(channel_weights=weights))
    # raw closer memberships [g(.05)·2, 1] = [2, 1]
    assert out["closer"].to_numpy() == pytest.approx([2 / 3, 1 / 3])


def test_import_channel_weights_csv(tmp_path):
    csv = tmp_path / "IHC_channel_weights.csv"
    csv.write_text(
        "Channel,Initializer Weight,Holder Weight,Closer Weight\n"
        "Direct Traffic,0.74,1.12,0.65\nFB & IG Ads,1.04,1,1.06\n"
    )
    assert read_channel_weights(csv)["Direct Traffic"] == {"initializer": 0.74, "holder": 1.12, "closer": 0.65}
    prof = import_channel_weights(csv, "challenge", "mine")
    assert prof.name == "mine" and prof.channel_weights["FB & IG Ads"]["closer"] == 1.06
    assert prof.phase_weights == load_profile("challenge").phase_weights
    csv.write_text("channel,initializer weight\nx,1\n")
    with pytest.raises(InputError, match="lacks column"):
        read_channel_weights(csv)


# ---- redistribution_parameter ------------------------------------------------------------------
CH = ["Direct", "Search", "Direct", "Search"]


def test_redistribution_any_session_moves_share_proportionally():
    df = journey([0.05, 0.05, 0.05], h=[1, 1, 1, 1], c=[0, 0, 0, 1], channels=CH)
    base = run(df)
    rule = {"holder": {"direction": "any_session", "receive_threshold": 0, "redistribution_channel_labels": ["Direct"]}}
    out = run(df, redistribution=rule)
    h = base["holder"].to_numpy()
    donated = h[0] + h[2]
    expect = [0, h[1] + donated * h[1] / (h[1] + h[3]), 0, h[3] + donated * h[3] / (h[1] + h[3])]
    assert out["holder"].to_numpy() == pytest.approx(expect)
    assert out["ihc"].sum() == pytest.approx(1.0)
    assert out["initializer"].to_numpy() == pytest.approx(base["initializer"].to_numpy())


def test_redistribution_earlier_only_keeps_share_without_earlier_receiver():
    df = journey([0.05, 0.05, 0.05], h=[1, 1, 1, 1], c=[0, 0, 0, 1], channels=CH)
    base = run(df)["holder"].to_numpy()
    rule = {
        "holder": {
            "direction": "earlier_sessions_only",
            "receive_threshold": 0,
            "redistribution_channel_labels": ["Direct"],
        }
    }
    out = run(df, redistribution=rule)["holder"].to_numpy()
    # session 0 (Direct) has no earlier session: keeps; session 2 gives all to session 1
    assert out == pytest.approx([base[0], base[1] + base[2], 0.0, base[3]])


def test_redistribution_later_only_with_threshold():
    df = journey([0.02, 0.02, 0.02], h=[1, 1, 1, 1], c=[1, 1, 1, 1], channels=CH)
    base = run(df)["closer"].to_numpy()
    assert base == pytest.approx([0.25] * 4)  # g(T < 0.1 h) = 1
    rule = {
        "closer": {
            "direction": "later_sessions_only",
            "receive_threshold": 0.3,
            "redistribution_channel_labels": ["Direct"],
        }
    }
    assert run(df, redistribution=rule)["closer"].to_numpy() == pytest.approx(base)  # nobody ≥ .3
    rule["closer"]["receive_threshold"] = 0.2
    out = run(df, redistribution=rule)["closer"].to_numpy()
    # session 0 gives .25 to sessions 1 and 3 (equal shares): .125 each; session 2 gives .25 to 3
    assert out == pytest.approx([0.0, 0.375, 0.0, 0.625])


def test_bad_redistribution_is_an_input_error():
    with pytest.raises(InputError, match="direction"):
        run(journey([1.0]), redistribution={"holder": {"direction": "sideways"}})


# ---- profiles ----------------------------------------------------------------------------------
def test_json_and_toml_profiles_are_equivalent(tmp_path):
    doc = load_profile("challenge").to_dict()
    doc["cut_hours"] = 40.0
    (tmp_path / "p.json").write_text(json.dumps(doc))
    lines = []
    for key, value in doc.items():
        if isinstance(value, dict):
            continue
        lines.append(f"{key} = {json.dumps(value)}")
    for key, value in doc.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items() if not isinstance(v, dict)]
    (tmp_path / "p.toml").write_text("\n".join(lines) + "\n")
    a, b = load_profile(tmp_path / "p.json"), load_profile(tmp_path / "p.toml")
    assert a.to_dict() == b.to_dict() and a.cut_hours == 40.0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"phase_weights": {"initializer": "x"}}, "phase_weights.initializer"),
        ({"closer_curve": [[1, 0.5]]}, "closer_curve"),
        ({"initializer_curve": [[2, 0], [1, 1]]}, "non-decreasing"),
        ({"conversion_session": "first"}, "conversion_session"),
        ({"colour": "red"}, "unknown key"),
    ],
)
def test_bad_profile_is_an_input_error(change, message):
    doc = load_profile("challenge").to_dict()
    doc.update(change)
    with pytest.raises(InputError, match=message):
        profile_from_dict(doc, "bad")


def test_unknown_profile_name_is_an_input_error():
    with pytest.raises(InputError, match="unknown IHC profile"):
        load_profile("nonexistent")


def test_registered_model_matches_library_and_checks_params():
    df = pd.concat([journey([2.5, 30.0], c=[1, 0, 1], cid="a"), journey([0.3], cid="b")])
    model = get_model("ihc")
    out = model.attribute(df, {"profile": "challenge", "round": True})
    lib = attribute_records(df, "challenge").set_index(["conversion_id", "session_id"])
    got = out.set_index(["conversion_id", "session_id"]).loc[lib.index]
    assert got["ihc"].to_numpy() == pytest.approx(lib["ihc"].to_numpy())
    assert model.resolve_params({})["profile"] == "default"
    with pytest.raises(InputError):
        model.resolve_params({"profile": "nope"})
