"""The local stand-in server speaks the API protocol (spec §1) and answers our documented choices."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import requests

from pipeline.ihc_api.local_server import (
    STAND_IN_LABEL,
    LocalIhcServer,
    ValueFunction,
    default_value_function,
    stand_in_values,
)
from pipeline.ihc_api.synthetic import make_journeys

KEY = "server-test-key"


def records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def post(server, body, key=KEY, conv_type="t", raw=None):
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["x-api-key"] = key
    params = {"conv_type_id": conv_type} if conv_type is not None else {}
    data = raw if raw is not None else json.dumps(body)
    return requests.post(server.url, params=params, data=data, headers=headers, timeout=10)


@pytest.fixture
def server():
    with LocalIhcServer(
        KEY, max_journeys=3, max_sessions=6, value_function=ValueFunction(STAND_IN_LABEL, stand_in_values)
    ) as srv:
        yield srv


def test_listens_on_loopback_only():
    with pytest.raises(ValueError):
        LocalIhcServer(KEY, host="0.0.0.0")


def test_key_is_checked_first(server):
    body = {"customer_journeys": records(make_journeys([1]))}
    assert post(server, body, key=None).status_code == 403
    assert post(server, body, key="wrong").status_code == 403
    answer = requests.get(server.url, timeout=10)
    assert answer.status_code == 403 and answer.json()["statusCode"] == 403
    assert requests.get(server.url, headers={"x-api-key": KEY}, timeout=10).status_code == 405
    assert post(server, body).status_code == 200


def test_stand_in_values_by_hand(server):
    journeys = pd.DataFrame(
        {
            "conversion_id": ["a", "a", "a", "b", "c", "c"],
            "session_id": ["a1", "a2", "a3", "b1", "c1", "c2"],
            "timestamp": [
                "2024-01-01 10:00:00",
                "2024-01-01 11:00:00",
                "2024-01-01 12:00:00",
                "2024-01-02 10:00:00",
                "2024-01-03 10:00:00",
                "2024-01-03 10:05:00",
            ],
            "channel_label": ["X"] * 6,
            "holder_engagement": [1, 0, 1, 1, 0, 0],
            "closer_engagement": [0] * 6,
            "conversion": [0] * 6,
            "impression_interaction": [0] * 6,
        }
    )
    answer = post(server, {"customer_journeys": records(journeys.iloc[::-1])})  # order does not matter
    assert answer.status_code == 200
    assert answer.headers["X-Local-Ihc-Values"] == STAND_IN_LABEL
    payload = answer.json()
    assert payload["statusCode"] == 200 and payload["partialFailureErrors"] == []
    got = pd.DataFrame(payload["value"]).set_index("session_id")
    # a: I=[1,0,0] H=[.5,0,.5] C=[0,0,1] -> ihc=(I+H+C)/3; b: one session, H empty -> ihc=(1+1)/2;
    # c: no holder -> ihc=(I+C)/2
    expected = {
        "a1": (1, 0.5, 0, 0.5),
        "a2": (0, 0, 0, 0),
        "a3": (0, 0.5, 1, 0.5),
        "b1": (1, 0, 1, 1),
        "c1": (1, 0, 0, 0.5),
        "c2": (0, 0, 1, 0.5),
    }
    for session, values in expected.items():
        assert tuple(got.loc[session, ["initializer", "holder", "closer", "ihc"]]) == values


def test_values_are_rounded_to_four_decimals():
    journeys = make_journeys([3], seed=1).assign(holder_engagement=1)
    with LocalIhcServer(KEY, value_function=ValueFunction(STAND_IN_LABEL, stand_in_values)) as srv:
        payload = post(srv, {"customer_journeys": records(journeys)}).json()
    ihc = [row["ihc"] for row in payload["value"]]
    assert sorted(ihc) == [0.1111, 0.4444, 0.4444]  # (1+1/3)/3 and (1/3)/3, rounded


def test_over_the_limits_is_a_400_naming_the_limit(server):
    too_many_journeys = records(make_journeys([1, 1, 1, 1]))
    answer = post(server, {"customer_journeys": too_many_journeys})
    assert answer.status_code == 400 and "too many customer journeys in one request: 4 > 3" in answer.text
    too_many_sessions = records(make_journeys([4, 3]))
    answer = post(server, {"customer_journeys": too_many_sessions})
    assert answer.status_code == 400 and "too many sessions in one request: 7 > 6" in answer.text
    assert post(server, {"customer_journeys": records(make_journeys([2, 2, 2]))}).status_code == 200


@pytest.mark.parametrize(
    "kwargs, status, words",
    [
        ({"conv_type": None}, 400, "conv_type_id is required"),
        ({"raw": "not json"}, 400, "JSON object"),
        ({"body": {"journeys": []}}, 400, "customer_journeys"),
        ({"body": {"customer_journeys": []}}, 400, "non-empty"),
        ({"body": {"customer_journeys": "x"}}, 400, "customer_journeys"),
    ],
)
def test_bad_requests_are_400(server, kwargs, status, words):
    body = kwargs.pop("body", {"customer_journeys": records(make_journeys([1]))})
    answer = post(server, body, **kwargs)
    assert answer.status_code == status and words in answer.json()["message"]


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda r: r.pop("channel_label"), "lacks channel_label"),
        (lambda r: r.update(timestamp="2024/01/01 10:00"), "timestamp"),
        (lambda r: r.update(timestamp=1704103200), "timestamp must be a non-empty string"),
        (lambda r: r.update(holder_engagement=2), "holder_engagement must be 0 or 1"),
        (lambda r: r.update(conversion_id=17), "conversion_id must be a non-empty string"),
    ],
)
def test_unparseable_journeys_are_406(server, change, words):
    rows = records(make_journeys([2]))
    change(rows[1])
    answer = post(server, {"customer_journeys": rows})
    assert answer.status_code == 406 and words in answer.json()["message"]


def test_impression_interaction_is_optional(server):
    rows = records(make_journeys([2]))
    for row in rows:
        row.pop("impression_interaction")
    assert post(server, {"customer_journeys": rows}).status_code == 200


def test_timestamps_with_offsets_are_accepted(server):
    rows = records(make_journeys([1]))
    rows[0]["timestamp"] = rows[0]["timestamp"] + " +0200"
    assert post(server, {"customer_journeys": rows}).status_code == 200


def test_unknown_conversion_type_when_the_account_has_a_list():
    with LocalIhcServer(KEY, conv_type_ids={"trained"}) as srv:
        body = {"customer_journeys": records(make_journeys([1]))}
        assert post(srv, body, conv_type="trained").status_code == 200
        answer = post(srv, body, conv_type="other")
        assert answer.status_code == 400 and "not trained" in answer.text


def test_redistribution_parameter_must_be_an_object_and_reaches_the_value_function():
    seen = []

    def values(frame, context):
        seen.append(context)
        return stand_in_values(frame, context)

    with LocalIhcServer(KEY, value_function=values) as srv:
        rows = records(make_journeys([1]))
        assert post(srv, {"customer_journeys": rows, "redistribution_parameter": [1]}).status_code == 400
        rule = {"holder": {"direction": "any_session"}}
        assert post(srv, {"customer_journeys": rows, "redistribution_parameter": rule}).status_code == 200
    assert seen == [{"conv_type_id": "t", "redistribution_parameter": rule}]


def test_a_pluggable_value_function_is_used_and_a_failing_one_is_a_500():
    def constant(frame, context):
        out = frame[["conversion_id", "session_id"]].copy()
        out["initializer"] = out["holder"] = out["closer"] = 0.25
        out["ihc"] = 1.0 / frame.groupby("conversion_id")["session_id"].transform("size")
        return out

    def broken(frame, context):
        raise RuntimeError("model crashed")

    with LocalIhcServer(KEY, value_function=constant) as srv:
        payload = post(srv, {"customer_journeys": records(make_journeys([4]))}).json()
        assert {row["ihc"] for row in payload["value"]} == {0.25}
    with LocalIhcServer(KEY, value_function=broken) as srv:
        answer = post(srv, {"customer_journeys": records(make_journeys([1]))})
        assert answer.status_code == 500 and "response value was None" in answer.text


def test_default_value_function_is_labelled():
    function = default_value_function()
    assert function.label == STAND_IN_LABEL or "IHC model" in function.label
    frame = function.fn(make_journeys([3, 1], seed=2), {})
    assert set(frame.columns) >= {"conversion_id", "session_id", "initializer", "holder", "closer", "ihc"}
    assert frame.groupby("conversion_id")["ihc"].sum().sub(1).abs().max() < 1e-9


def test_records_what_it_received_without_the_key(server):
    post(server, {"customer_journeys": records(make_journeys([2, 1]))})
    [received] = server.received
    assert received.key_ok and received.n_journeys == 2 and received.n_sessions == 3
    assert KEY not in repr(received)
    assert received.answered is not None and len(received.answered) == 3


def test_model_parameters_are_checked_at_start_up():
    from pipeline.errors import InputError

    with pytest.raises(InputError):
        default_value_function({"no_such_parameter": "1"})


def test_offline_model_gets_the_redistribution_parameter(monkeypatch):
    """With a model named 'ihc' registered, requests' redistribution reaches its parameters."""
    import pipeline.models as models
    from pipeline.journey_index import Credits
    from pipeline.models.base import Model

    seen = []

    def fake(index, params, context):
        seen.append(dict(params))
        frame = stand_in_values(index.frame, {})  # index.frame is already in canonical order
        return Credits(
            ihc=frame["ihc"].to_numpy(),
            initializer=frame["initializer"].to_numpy(),
            holder=frame["holder"].to_numpy(),
            closer=frame["closer"].to_numpy(),
        )

    model = Model("ihc", "fake", fake, defaults={"profile": "default", "redistribution": None})
    monkeypatch.setattr(models, "available_models", lambda: ["ihc"])
    monkeypatch.setattr(models, "get_model", lambda name: model)
    function = default_value_function({"profile": "challenge"})
    assert "profile=challenge" in function.label
    rule = {"closer": {"direction": "later_sessions_only"}}
    with LocalIhcServer(KEY, value_function=function) as srv:
        rows = records(make_journeys([2]))
        assert post(srv, {"customer_journeys": rows, "redistribution_parameter": rule}).status_code == 200
        assert post(srv, {"customer_journeys": rows}).status_code == 200
    assert seen == [{"profile": "challenge", "redistribution": rule}, {"profile": "challenge", "redistribution": None}]


def test_an_input_error_from_the_value_function_is_a_400():
    from pipeline.errors import InputError

    def refuses(frame, context):
        raise InputError("redistribution: unknown direction")

    with LocalIhcServer(KEY, value_function=refuses) as srv:
        answer = post(srv, {"customer_journeys": records(make_journeys([1]))})
    assert answer.status_code == 400 and "unknown direction" in answer.json()["message"]
