"""AppTest: the Pipeline page's "Calibrate offline IHC on a sample" against the local IHC server —
the sessions it will send, sending only those, the fidelity table, "use this profile" and a run with it."""

from __future__ import annotations

import sqlite3

import pandas as pd

from pipeline.ihc_api.local_server import LocalIhcServer, default_value_function
from tests.dashboard_support import api_pipeline_page, no_errors, texts, workspace_of

SECRET = "sk-calib-DO-NOT-SHOW-4e5f6a"


def test_calibrate_on_a_sample_then_use_the_profile(dashboard_env, monkeypatch):
    values = default_value_function({"profile": "challenge", "round": True})
    with LocalIhcServer(SECRET, value_function=values) as server:
        at = api_pipeline_page(monkeypatch, server.url, READ_TIMEOUT="20")
        assert "Calibrate offline IHC on a sample" in texts(at)
        assert "Give the IHC API key" in texts(at)
        at.text_input(key="api_key").input(SECRET).run()
        at.text_input(key="api_conv_type").input("local").run()
        at.number_input(key="calib_sample").set_value(120).run()
        no_errors(at)
        assert "calibration sample: 120 of" in texts(at)
        planned = next(df.value for df in at.dataframe if "session_id" in df.value.columns)
        assert planned["conversion_id"].nunique() == 120
        assert not any(r.method == "POST" for r in server.received)  # shown before anything is sent

        at.button(key="calib_button").click().run()
        no_errors(at)
        text = texts(at)
        assert "Profile **calibrated** fitted and stored" in text and "Held-out fidelity" in text
        fidelity = next(df.value for df in at.dataframe if "phase" in df.value.columns)
        assert set(fidelity["phase"]) == {"initializer", "holder", "closer", "ihc"} and len(fidelity) == 8
        sent = pd.concat([r.journeys for r in server.received if r.method == "POST" and r.journeys is not None])
        assert set(sent["conversion_id"].astype(str)) == set(planned["conversion_id"])  # only the sample
        assert sorted(sent["session_id"].astype(str)) == sorted(planned["session_id"].astype(str))

    at.button(key="calib_use").click().run()
    no_errors(at)
    assert at.selectbox(key="run_model").value == "ihc"
    picker = at.selectbox(key="run:ihc:profile")
    assert any(o.startswith("calibrated — ") for o in picker.options) and picker.value == "calibrated"
    at.button(key="run_button").click().run()
    no_errors(at)
    assert "IHC profile: calibrated" in texts(at)  # the card names the profile in words
    ws = workspace_of(at)
    con = sqlite3.connect(ws.db_path)
    assert con.execute("SELECT name FROM pipeline_ihc_profiles").fetchall() == [("calibrated",)]
    params = con.execute("SELECT params FROM pipeline_stages WHERE stage = 'attribute'").fetchone()[0]
    assert '"name": "calibrated"' in params
    assert SECRET not in texts(at)
    for path in ws.root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_the_calibration_sample_reads_shortest_journeys_first_and_says_its_quota(dashboard_env, monkeypatch):
    """The sample's table listed its strata in the sample's order — "1, 3, 9+, 4-5, 2, 6-8" under a
    header "stratum" — and nothing said that sending it spends quota (the walk, IHC API with a key typed).
    Nothing is sent here: the plan is drawn before any request."""
    import json

    from pipeline.ihc_api.sampling import STRATA

    at = api_pipeline_page(monkeypatch, "http://127.0.0.1:9")
    at.text_input(key="api_key").input("a-key-never-sent").run()
    at.text_input(key="api_conv_type").input("purchase").run()
    no_errors(at)
    table = next(df for df in at.dataframe if "stratum" in df.value.columns)
    lengths = table.value["stratum"].tolist()
    known = ["1", *(label for _, _, label in STRATA)]
    assert lengths == [k for k in known if k in lengths] and len(lengths) >= 5, lengths
    labels = {c: v.get("label") for c, v in json.loads(table.proto.columns).items()}
    assert labels["stratum"] == "Journey length (sessions)"
    assert labels["conversions"] == "Conversions" and labels["sessions"] == "Sessions"
    assert table.value["conversions"].sum() == 300  # the default sample size
    assert "Sending it uses 300 conversions of the account's quota." in texts(at)
