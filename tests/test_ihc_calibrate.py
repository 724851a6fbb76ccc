"""Calibration of an offline IHC profile: on the real API vectors (skips without ../shared), on answers of
the local IHC server computed from a randomly drawn profile, and on hand-built journeys."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from pipeline.db import open_database
from pipeline.ihc import calibrate
from pipeline.ihc.fidelity import VECTORS_NAME
from pipeline.ihc.profile import load_profile
from pipeline.ihc.records import attribute_records
from pipeline.ihc_api import calibration
from pipeline.ihc_api.local_server import LocalIhcServer, default_value_function
from pipeline.journeys import Window, build_journeys
from pipeline.models import get_model
from tests.calibration_support import random_profile
from tests.ihc_support import journey, shared_file

KEY = "calibration-test-key-7c1d"


def multi_session_errors(pairs: pd.DataFrame, predicted: pd.DataFrame) -> np.ndarray:
    length = pairs.groupby("conversion_id")["session_id"].transform("size").to_numpy()
    return np.abs(predicted["ihc"].to_numpy() - pairs["real_ihc"].to_numpy())[length >= 2]


def test_fitted_on_30_percent_of_the_real_vectors_predicts_the_other_70():
    pairs = calibrate.pairs_from_vectors(shared_file(VECTORS_NAME))
    fold = calibrate.folds_by_group(pairs["group"], 10, seed=17)  # 30% of the conversions: folds 0-2
    train, test = pairs[fold < 3], pairs[fold >= 3].reset_index(drop=True)
    assert set(train["group"]).isdisjoint(set(test["group"]))
    assert 0.27 < train["group"].nunique() / pairs["group"].nunique() < 0.33
    fitted = calibrate.fit_profile(train, "default")
    assert all(fitted.fitted[part] for part in ("cut_hours", "phase_weights", "initializer_curve", "closer_curve"))
    assert fitted.fitted["holder"] and not fitted.fitted["channel_weights"]  # 1 mixed-channel journey
    errors = multi_session_errors(test, attribute_records(test, fitted.profile, round_values=True))
    assert len(errors) > 700
    print(f"held-out 70%: ihc mean {errors.mean():.5f}, p99 {np.quantile(errors, 0.99):.5f}, max {errors.max():.4f}")
    assert errors.mean() <= 0.0006
    assert np.quantile(errors, 0.99) <= 0.003
    default_errors = multi_session_errors(test, attribute_records(test, "default", round_values=True))
    assert default_errors.mean() > 10 * errors.mean()  # `default` is not this conversion type


def test_cross_validation_reports_every_phase_beside_default():
    pairs = calibrate.pairs_from_vectors(shared_file(VECTORS_NAME))
    cv = calibrate.cross_validate(pairs, folds=5, seed=0)
    table = cv.table()
    assert len(table) == 8 and set(table["phase"]) == {"initializer", "holder", "closer", "ihc"}
    assert cv.calibrated["ihc_mean"] < cv.base["ihc_mean"] / 10
    assert cv.calibrated["sessions"] == cv.base["sessions"] > 1000
    text = calibrate.format_fidelity(cv)
    assert "default" in text and "WAPE" in text


@pytest.fixture(scope="module")
def larger_demo(tmp_path_factory):
    """100k sessions / 2,000 conversions: a sample of 300 is a minority of its multi-session journeys."""
    from pipeline.demo import DemoSize, write_demo_db

    path = tmp_path_factory.mktemp("demo") / "larger_demo.db"
    write_demo_db(path, DemoSize(sessions=100_000, conversions=2_000, days=10, seed=3))
    return path


def calibrate_against(demo, tmp_path, truth_doc: dict, seed: int):
    """(fitted Calibration, truth answers, fitted answers, the journeys) for all of the demo's conversions."""
    truth_path = tmp_path / "truth.json"
    truth_path.write_text(json.dumps(truth_doc))
    db = tmp_path / "demo.db"
    shutil.copy(demo, db)
    con = open_database(db, write=True)
    values = default_value_function({"profile": str(truth_path), "round": True})
    with LocalIhcServer(KEY, value_function=values) as server:
        config = server.client_config()
        plan = calibration.plan_calibration(con, 300, seed, config)
        pairs, _ = calibration.send_sample(con, plan, config)
    assert pairs["conversion_id"].nunique() == 300
    fitted = calibrate.fit_profile(pairs, "default", name="mine")
    frame = build_journeys(con, Window()).frame
    con.close()
    model = get_model("ihc")
    truth = model.attribute(frame, {"profile": str(truth_path), "round": True})
    mine = model.attribute(frame, {"profile": fitted.profile.to_dict(), "round": True})
    return fitted, truth, mine, frame


def ihc_error_and_wape(truth, mine, frame) -> tuple[np.ndarray, float]:
    assert (truth[["conversion_id", "session_id"]].to_numpy() == mine[["conversion_id", "session_id"]].to_numpy()).all()
    err = np.abs(truth["ihc"].to_numpy() - mine["ihc"].to_numpy())
    channels = frame.set_index(["conversion_id", "session_id"]).loc[
        pd.MultiIndex.from_frame(truth[["conversion_id", "session_id"]]), "channel_label"
    ]
    by_channel = (
        pd.DataFrame({"truth": truth["ihc"].to_numpy(), "mine": mine["ihc"].to_numpy()}, index=channels.to_numpy())
        .groupby(level=0)
        .sum()
    )
    return err, float((by_channel["truth"] - by_channel["mine"]).abs().sum() / by_channel["truth"].sum())


@pytest.mark.parametrize("seed", [21, 22])
def test_reproduces_a_drawn_profile_on_a_larger_database_from_a_minority_sample(larger_demo, tmp_path, seed):
    truth_doc = random_profile(seed)
    fitted, truth, mine, frame = calibrate_against(larger_demo, tmp_path, truth_doc, seed)
    err, wape = ihc_error_and_wape(truth, mine, frame)
    print(
        f"seed {seed}: cut {truth_doc['cut_hours']} h, ihc mean {err.mean():.6f}, max {err.max():.4f}, WAPE {wape:.5%}"
    )
    assert err.mean() <= 0.001 and wape <= 0.005
    assert not fitted.fitted["channel_weights"]  # the truth has none: the sample must not invent them


def test_channel_weights_are_fitted_when_the_sample_identifies_them(larger_demo, tmp_path):
    truth_doc = random_profile(1)
    truth_doc["channel_weights"] = {
        "Direct Traffic": {"initializer": 0.7, "holder": 1.1, "closer": 0.6},
        "Paid Search Brand": {"initializer": 1.2, "holder": 1.0, "closer": 1.3},
    }
    fitted, truth, mine, frame = calibrate_against(larger_demo, tmp_path, truth_doc, 0)
    assert fitted.fitted["channel_weights"]
    table = fitted.profile.to_dict()["channel_weights"]
    assert table["Direct Traffic"]["closer"] == pytest.approx(0.6, abs=0.03)
    assert table["Direct Traffic"]["holder"] == pytest.approx(1.1, abs=0.03)
    assert table["Paid Search Brand"]["closer"] == pytest.approx(1.3, abs=0.05)
    assert any(note.startswith("channel weights: ") and "channels from" in note for note in fitted.notes)
    err, wape = ihc_error_and_wape(truth, mine, frame)
    print(f"with channel weights: ihc mean {err.mean():.6f}, WAPE {wape:.5%}")
    assert err.mean() <= 0.001 and wape <= 0.005


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_reproduces_a_randomly_drawn_profile_served_by_the_local_server(small_demo, tmp_path, seed):
    truth_doc = random_profile(seed)
    fitted, truth, mine, frame = calibrate_against(small_demo, tmp_path, truth_doc, seed)
    err, wape = ihc_error_and_wape(truth, mine, frame)
    print(
        f"seed {seed}: cut {truth_doc['cut_hours']} h, ihc mean {err.mean():.6f}, max {err.max():.4f}, WAPE {wape:.5%}"
    )
    assert err.mean() <= 0.001
    assert wape <= 0.005
    assert abs(fitted.profile.phase_weights["holder"] - truth_doc["phase_weights"]["holder"]) < 0.01


def test_a_tiny_sample_keeps_the_base_profile_and_says_which_parts():
    pairs = journey([1.0, 5.0], cid="a")
    real = attribute_records(pairs, "challenge", round_values=True)
    pairs = pairs.assign(**{f"real_{c}": real[c].to_numpy() for c in ("initializer", "holder", "closer", "ihc")})
    fitted = calibrate.fit_profile(pairs, "default")
    base = load_profile("default")
    assert not any(fitted.fitted.values())
    assert fitted.profile.initializer_curve.points() == base.initializer_curve.points()
    assert fitted.profile.phase_weights == base.phase_weights
    text = "\n".join(fitted.notes)
    for part in ("phase weights: kept", "initializer curve: kept", "closer curve: kept", "holder rule: kept"):
        assert part in text
    assert "channel weights: none" in text


def test_phase_weights_and_cut_are_recovered_exactly_from_hand_built_journeys():
    """Journeys with gaps either side of a 30 h cut, answered by a profile with weights .5/.2/.3."""
    doc = {**load_profile("default").to_dict(), "cut_hours": 30.0}
    doc["phase_weights"] = {"initializer": 0.5, "holder": 0.2, "closer": 0.3}
    parts = []
    rng = np.random.default_rng(0)
    for k in range(60):
        gaps = list(rng.uniform(0.05, 29.0, rng.integers(1, 4)))
        if k % 3 == 0:
            gaps.insert(0, float(rng.uniform(31.0, 60.0)))  # a cut before the rest
        parts.append(journey(gaps, cid=f"c{k}", c=[int(x) for x in rng.integers(0, 2, len(gaps) + 1)]))
    pairs = pd.concat(parts, ignore_index=True)
    real = attribute_records(pairs, doc, round_values=True)
    pairs = pairs.assign(**{f"real_{c}": real[c].to_numpy() for c in ("initializer", "holder", "closer", "ihc")})
    fitted = calibrate.fit_profile(pairs, "default")
    weights = fitted.profile.phase_weights
    assert weights["initializer"] == pytest.approx(0.5, abs=2e-3)
    assert weights["holder"] == pytest.approx(0.2, abs=2e-3)
    assert 29.0 <= fitted.profile.cut_hours <= 31.0
    assert fitted.fitted["cut_hours"]


def test_curves_are_monotone_and_keep_steps():
    x = np.array([0.05, 0.08, 0.09, 0.11, 0.12, 0.2, 1.0, 2.0])
    y = np.array([1.0, 1.0, 1.0, 0.85, 0.85, 0.84, 0.6, 0.5])
    points = np.array(calibrate._isotonic_curve(x, y, np.ones_like(x), increasing=False))
    assert (np.diff(points[:, 1]) <= 0).all()
    assert np.interp(0.09, points[:, 0], points[:, 1]) == pytest.approx(1.0)
    assert np.interp(0.11, points[:, 0], points[:, 1]) == pytest.approx(0.85)
    noisy = np.array([0.1, 0.3, 0.2, 0.5])  # a dip: pooled, never decreasing
    points = np.array(calibrate._isotonic_curve(np.arange(4.0), noisy, np.ones(4), increasing=True))
    assert (np.diff(points[:, 1]) >= 0).all()
