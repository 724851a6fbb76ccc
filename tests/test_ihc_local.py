"""The API drop-in, run as the CLI would be: ``python -m pipeline ihc-local < request > response``."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ihc_support import journey, shared_file

ROOT = Path(__file__).resolve().parents[1]


def call(body, *args):
    text = body if isinstance(body, str) else json.dumps(body)
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "ihc-local", *args],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip() else None), proc.stderr


def records(*frames):
    out = []
    for f in frames:
        out += f.to_dict("records")
    return out


def test_valid_request_200_with_4_decimals_in_request_order():
    recs = records(journey([0.2, 30.0], c=[1, 0, 1], cid="a"), journey([], cid="b"))
    recs = [recs[3], recs[2], recs[0], recs[1]]
    code, resp, _ = call({"customer_journeys": recs})
    assert code == 0 and resp["statusCode"] == 200 and resp["partialFailureErrors"] == []
    assert [(v["conversion_id"], v["session_id"]) for v in resp["value"]] == [
        (r["conversion_id"], r["session_id"]) for r in recs
    ]
    for v in resp["value"]:
        assert set(v) == {"conversion_id", "session_id", "initializer", "holder", "closer", "ihc"}
        assert all(round(v[k], 4) == v[k] for k in ["initializer", "holder", "closer", "ihc"])
    assert abs(sum(v["ihc"] for v in resp["value"] if v["conversion_id"] == "a") - 1) <= 1.5e-4
    assert resp["value"][0]["ihc"] == 1.0  # the single-session journey b


def test_bare_list_and_conv_type_id():
    recs = records(journey([0.2], c=[0, 1]))
    code, resp, _ = call(recs, "--conv-type-id", "data_engineering_challenge")
    assert code == 0 and [v["ihc"] for v in resp["value"]] == [0.51, 0.49]
    code, _, err = call(recs, "--conv-type-id", "no_such_type")
    assert code == 2 and "unknown conversion type" in err


def test_invalid_records_give_406_like_the_api_server_and_name_every_problem():
    good = records(journey([0.2], c=[0, 1], cid="good"))
    bad = records(journey([1.0, 1.0], cid="bad"))
    bad[1]["holder_engagement"] = 2
    other = records(journey([], cid="late"))
    other[0]["timestamp"] = "2023-13-01 00:00:00"
    missing = records(journey([], cid="nots"))
    del missing[0]["timestamp"]
    body = {"customer_journeys": good + bad + other + missing + ["not a record"]}
    code, resp, _ = call(body)
    # one answer for a bad record in both stand-ins (issue 11): the spec's 406, nothing attributed
    assert code == 0 and resp["statusCode"] == 406
    assert resp["value"] == []
    errors = {e["index"]: e for e in resp["partialFailureErrors"]}
    assert sorted(errors) == [2, 3, 4, 5, 6, 7]
    assert "holder_engagement must be 0 or 1" in errors[3]["reason"]
    assert errors[2]["reason"] == "journey has an invalid record (index 3)"
    assert "not a valid date" in errors[5]["reason"]
    assert errors[6]["reason"] == "missing field 'timestamp'"
    assert errors[7]["reason"] == "record is not an object"


def test_all_invalid_is_400_and_bad_json_exits_2():
    code, resp, _ = call({"customer_journeys": [{"conversion_id": "x"}]})
    assert resp["statusCode"] == 406 and resp["value"] == []
    code, resp, err = call("{not json")
    assert code == 2 and resp["statusCode"] == 400 and err.startswith("error: request body is not JSON")
    code, resp, _ = call(
        {"customer_journeys": records(journey([0.2])), "redistribution_parameter": {"holder": {"direction": "up"}}}
    )
    assert resp["statusCode"] == 400 and "direction" in resp["partialFailureErrors"][0]["reason"]


def test_redistribution_parameter_is_applied():
    recs = records(journey([0.02, 0.02], h=[1, 1, 1], c=[0, 0, 1], channels=["Direct", "SEO", "SEO"]))
    rule = {"holder": {"direction": "any_session", "receive_threshold": 0, "redistribution_channel_labels": ["Direct"]}}
    _, plain, _ = call({"customer_journeys": recs})
    _, moved, _ = call({"customer_journeys": recs, "redistribution_parameter": rule})
    assert moved["value"][0]["holder"] == 0.0 and plain["value"][0]["holder"] > 0
    assert abs(sum(v["holder"] for v in moved["value"]) - 1) <= 1e-4


def test_real_request_reproduces_the_api():
    line = next(
        text
        for text in shared_file("ihc_api_vectors.jsonl").open()
        if '"confidence": "high"' in text and text.count('"session_id"') >= 16
    )
    vector = json.loads(line)
    code, resp, _ = call({"customer_journeys": vector["request_customer_journeys"]})
    assert code == 0 and resp["statusCode"] == 200
    for got, real in zip(resp["value"], vector["response_value"]):
        assert got["session_id"] == real["session_id"]
        for k in ["initializer", "holder", "closer", "ihc"]:
            assert got[k] == pytest.approx(real[k], abs=0.005)
