"""Calibration through the API (local server): only the sample is sent, resumable without sending
anything twice, the key appears nowhere; the ``ihc-calibrate`` command and the stored profiles."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.db import open_database
from pipeline.ihc.profile import load_profile
from pipeline.ihc.profile_store import save_profile, stored_profile, stored_profiles
from pipeline.ihc_api import calibration
from pipeline.ihc_api.local_server import LocalIhcServer, default_value_function
from pipeline.ihc_api.sampling import allocate, sample_conversions
from tests.ihc_support import SHARED_DATA

KEY = "CALIBRATE-SECRET-KEY-q93-never-shown"


pytestmark = pytest.mark.usefixtures("no_ihc_environment")


@pytest.fixture
def db(small_demo, tmp_path):
    path = tmp_path / "demo.db"
    shutil.copy(small_demo, path)
    return path


@pytest.fixture
def server():
    with LocalIhcServer(KEY, value_function=default_value_function({"profile": "challenge", "round": True})) as srv:
        yield srv


def posts(server):
    return [r for r in server.received if r.method == "POST" and r.journeys is not None]


def sent_conversions(server) -> list[str]:
    return [c for r in posts(server) for c in pd.unique(r.journeys["conversion_id"])]


def test_sends_exactly_the_sample_and_resumes_without_sending_anything_twice(db, server):
    con = open_database(db, write=True)
    config = server.client_config(max_journeys=40)
    plan = calibration.plan_calibration(con, 120, 5, config)
    assert plan.requests == 3 and len(plan.sample) == 120

    calls = []

    def interrupt_after_two_chunks(done, total, message):
        calls.append(done)
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        calibration.send_sample(con, plan, config, progress=interrupt_after_two_chunks)
    assert len(posts(server)) == 2
    pairs, summary = calibration.send_sample(con, plan, config)
    con.close()
    assert summary.already_done == 80 and len(posts(server)) == 3

    sent = sent_conversions(server)
    assert len(sent) == len(set(sent)) == 120  # nothing twice
    assert set(sent) == set(plan.sample["conversion_id"])  # only the sample
    received = pd.concat([r.journeys for r in posts(server)], ignore_index=True)
    assert sorted(received["session_id"].astype(str)) == sorted(plan.records["session_id"])
    assert pairs["conversion_id"].nunique() == 120 and pairs["real_ihc"].notna().all()


def test_the_command_end_to_end_key_nowhere_resumable_and_from_the_ledger(db, server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IHC_API_KEY", KEY)
    monkeypatch.setenv("IHC_CONV_TYPE_ID", "mine")
    monkeypatch.setenv("IHC_API_URL", server.url)
    out = tmp_path / "mine.json"
    before = db.read_bytes()
    assert main(["ihc-calibrate", str(db), "--sample", "200", "--output", str(out), "--dry-run"]) == 0
    dry = capsys.readouterr()
    assert "calibration sample: 200 of" in dry.out and "sessions to send:" in dry.out
    assert not posts(server) and not out.exists() and db.read_bytes() == before

    argv = ["ihc-calibrate", str(db), "--sample", "200", "--output", str(out), "--max-journeys", "50", "--store"]
    assert main(argv) == 0
    first = capsys.readouterr()
    sessions_listed = len(dry.out.split("sessions to send:\n")[1].strip().splitlines()) - 1
    assert sum(r.n_sessions for r in posts(server)) == sessions_listed
    assert len(posts(server)) == 4
    assert "held-out fidelity (5-fold" in first.out and "default" in first.out and "WAPE" in first.out
    profile = load_profile(out)
    assert profile.name == "mine" and profile.phase_weights["holder"] == pytest.approx(0.374, abs=0.01)

    assert main(argv) == 0  # again: every answer is in the ledger, nothing is sent
    again = capsys.readouterr()
    assert len(posts(server)) == 4
    assert main(["ihc-calibrate", str(db), "--from-ledger", "--output", str(tmp_path / "ledger.json")]) == 0
    ledger = capsys.readouterr()
    assert len(posts(server)) == 4 and "pairs from the ledger: 200 conversions" in ledger.out

    for text in (dry.out, dry.err, first.out, first.err, again.out, again.err, ledger.out, ledger.err):
        assert KEY not in text
    for path in [out, tmp_path / "ledger.json", *tmp_path.glob("demo.db*")]:
        assert KEY.encode() not in path.read_bytes(), path.name
    with sqlite3.connect(db) as check:
        [(name, doc)] = check.execute("SELECT name, profile_json FROM pipeline_ihc_profiles").fetchall()
    assert name == "mine" and json.loads(doc)["phase_weights"] == profile.to_dict()["phase_weights"]


def test_bad_input_is_one_line_and_exit_2(db, tmp_path, capsys):
    out = str(tmp_path / "p.json")
    assert main(["ihc-calibrate", str(db), "--output", out]) == 2
    assert "exactly one of" in capsys.readouterr().err
    assert main(["ihc-calibrate", str(db), "--sample", "10", "--from-ledger", "--output", out]) == 2
    assert main(["ihc-calibrate", str(db), "--from-ledger", "--output", out]) == 2
    assert "no IHC API answers" in capsys.readouterr().err
    assert main(["ihc-calibrate", str(tmp_path / "missing.db"), "--sample", "5", "--output", out, "--dry-run"]) == 2
    with pytest.raises(SystemExit) as caught:
        main(["ihc-calibrate", str(db), "--sample", "0", "--output", out])
    assert caught.value.code == 2
    assert not (tmp_path / "p.json").exists()


def test_answers_with_a_redistribution_parameter_are_refused(db, server):
    from pipeline.errors import InputError

    redistribution = {
        "closer": {
            "direction": "later_sessions_only",
            "receive_threshold": 0.1,
            "redistribution_channel_labels": ["Direct Traffic"],
        }
    }
    config = server.client_config(redistribution_parameter=redistribution)
    con = open_database(db)
    with pytest.raises(InputError, match="without redistribution_parameter"):
        calibration.plan_calibration(con, 10, 0, config)
    con.close()
    assert not posts(server)


def test_from_vectors_and_fidelity_replay_of_the_written_profile(tmp_path, capsys):
    vectors = SHARED_DATA / "ihc_api_vectors.jsonl"
    if not vectors.is_file():
        pytest.skip(f"{vectors} not found: the shared reference data must sit beside the checkout")
    out = tmp_path / "fitted.json"
    assert main(["ihc-calibrate", "--from-vectors", str(vectors), "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "inactivity cut" in text and "calibrated (5-fold held out)" in text
    assert main(["fidelity", "--profile", str(out), "--vectors", str(vectors)]) == 0
    assert "ok   ihc         mean" in capsys.readouterr().out


def test_sample_is_deterministic_stratified_and_prefers_multi_session_journeys():
    conversions = pd.DataFrame(
        {"conversion_id": [f"c{i:03d}" for i in range(300)], "sessions": [1] * 200 + [2] * 60 + [3] * 30 + [7] * 10}
    )
    a = sample_conversions(conversions, 90, seed=1)
    b = sample_conversions(conversions.sample(frac=1.0, random_state=3), 90, seed=1)  # row order free
    assert a.equals(b)
    assert not a.equals(sample_conversions(conversions, 90, seed=2))
    counts = a["stratum"].value_counts().to_dict()
    assert counts == {"2": 50, "3": 30, "6-8": 10}  # 30 each, 6-8 has only 10: its 20 go to the others
    assert sample_conversions(conversions, 110, seed=1)["stratum"].value_counts()["1"] == 10  # then 1-session
    assert sample_conversions(conversions, 50, seed=1)["sessions"].min() >= 2
    assert (sample_conversions(conversions, 300, seed=1, max_sessions=3)["sessions"] <= 3).all()
    assert allocate([5, 100, 100], 60) == [5, 28, 27]


def test_stored_profiles_round_trip(tmp_path):
    con = sqlite3.connect(tmp_path / "p.db", isolation_level=None)
    assert stored_profiles(con) == []
    doc = {**load_profile("challenge").to_dict(), "name": "mine"}
    save_profile(con, load_profile(doc), {"folds": 5}, ["a note"])
    [row] = stored_profiles(con)
    assert row["name"] == "mine" and row["fidelity"] == {"folds": 5} and row["notes"] == ["a note"]
    assert load_profile(stored_profile(con, "mine")).phase_weights == load_profile("challenge").phase_weights
