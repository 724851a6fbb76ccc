"""Checking answers: every session back exactly once, numbers in [0, 1], ihc summing to 1, 206 failures."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.ihc_api.answers import check_reply

SENT = pd.DataFrame(
    {
        "conversion_id": ["a", "a", "b", "c", "c", "c"],
        "session_id": ["a1", "a2", "b1", "c1", "c2", "c3"],
    }
)


def good_rows() -> list[dict]:
    def row(c, s, i, h, cl, ihc):
        return {"conversion_id": c, "session_id": s, "initializer": i, "holder": h, "closer": cl, "ihc": ihc}

    return [
        row("a", "a1", 1.0, 0.5, 0.0, 0.5),
        row("a", "a2", 0.0, 0.5, 1.0, 0.5),
        row("b", "b1", 1.0, 0.0, 1.0, 1.0),
        row("c", "c1", 0.7, 0.0, 0.0, 0.2333),
        row("c", "c2", 0.3, 1.0, 0.1, 0.4667),
        row("c", "c3", 0.0, 0.0, 0.9, 0.3),
    ]


def payload(rows, partial=None, status=200):
    return {"statusCode": status, "value": rows, "partialFailureErrors": partial or []}


def failed_as_dict(checked) -> dict:
    return dict(zip(checked.failed["conversion_id"], checked.failed["reason"]))


def test_a_complete_answer_is_accepted_as_is():
    checked = check_reply(SENT, payload(good_rows()))
    assert checked.failed.empty
    assert len(checked.credits) == 6
    assert list(checked.credits.columns) == ["conversion_id", "session_id", "initializer", "holder", "closer", "ihc"]
    assert checked.credits.set_index("session_id").loc["c2", "ihc"] == 0.4667
    assert checked.unexpected_rows == 0


def test_row_order_of_the_answer_does_not_matter():
    checked = check_reply(SENT, payload(list(reversed(good_rows()))))
    assert checked.failed.empty and len(checked.credits) == 6


def test_a_missing_session_fails_its_conversion_only():
    rows = [r for r in good_rows() if r["session_id"] != "c2"]
    checked = check_reply(SENT, payload(rows))
    assert failed_as_dict(checked) == {"c": "1 of 3 session(s) missing from the API's answer"}
    assert set(checked.credits["conversion_id"]) == {"a", "b"}  # nothing of c is half-kept


def test_a_conversion_missing_entirely_is_failed_not_dropped():
    rows = [r for r in good_rows() if r["conversion_id"] != "b"]
    checked = check_reply(SENT, payload(rows))
    assert failed_as_dict(checked) == {"b": "1 of 1 session(s) missing from the API's answer"}


def test_duplicate_and_unsent_sessions_fail_their_conversion():
    rows = good_rows() + [dict(good_rows()[0])]
    checked = check_reply(SENT, payload(rows))
    assert failed_as_dict(checked) == {"a": "the API returned a session more than once"}
    rows = good_rows() + [{**good_rows()[2], "session_id": "b9"}]
    checked = check_reply(SENT, payload(rows))
    assert failed_as_dict(checked) == {"b": "the API returned a session that was not sent"}


def test_rows_for_conversions_never_sent_are_counted_and_ignored():
    rows = good_rows() + [{**good_rows()[2], "conversion_id": "zzz"}]
    checked = check_reply(SENT, payload(rows))
    assert checked.failed.empty and checked.unexpected_rows == 1 and len(checked.credits) == 6


@pytest.mark.parametrize("bad", ["0.5", None, True, 1.2, -0.1, float("nan")])
def test_values_must_be_numbers_in_unit_interval(bad):
    rows = good_rows()
    rows[3]["holder"] = bad
    checked = check_reply(SENT, payload(rows))
    assert failed_as_dict(checked) == {"c": "the API returned a value that is not a number in [0, 1]"}
    assert set(checked.credits["conversion_id"]) == {"a", "b"}


def test_a_missing_value_column_fails_every_conversion():
    rows = [{k: v for k, v in r.items() if k != "closer"} for r in good_rows()]
    checked = check_reply(SENT, payload(rows))
    assert set(checked.failed["conversion_id"]) == {"a", "b", "c"}


def test_ihc_must_sum_to_one_within_tolerance():
    rows = good_rows()
    rows[0]["ihc"] = 0.5009  # a sums to 1.0009: accepted (rounding)
    rows[5]["ihc"] = 0.35  # c sums to 1.05: rejected
    checked = check_reply(SENT, payload(rows))
    assert failed_as_dict(checked) == {"c": "ihc sums to 1.0500, not 1"}


def test_a_split_journey_summing_to_two_is_caught():
    rows = good_rows()
    rows[0]["ihc"], rows[1]["ihc"] = 1.0, 1.0
    checked = check_reply(SENT, payload(rows))
    assert failed_as_dict(checked) == {"a": "ihc sums to 2.0000, not 1"}


def test_long_journeys_get_the_rounding_bound_of_four_decimals():
    n = 60
    sent = pd.DataFrame({"conversion_id": ["L"] * n, "session_id": [f"s{i}" for i in range(n)]})
    share = round(1 / n, 4)  # 0.0167 · 60 = 1.002: off by more than 1e-3 only because of rounding
    rows = [
        {"conversion_id": "L", "session_id": f"s{i}", "initializer": 0.0, "holder": 0.0, "closer": 0.0, "ihc": share}
        for i in range(n)
    ]
    assert check_reply(sent, payload(rows)).failed.empty
    rows[0]["ihc"] = 0.05  # now off by 0.0353: beyond 60 · 0.5e-4
    assert len(check_reply(sent, payload(rows)).failed) == 1


def test_partial_failures_as_objects():
    rows = [r for r in good_rows() if r["conversion_id"] != "b"]
    partial = [{"conversion_id": "b", "message": "journey could not be parsed"}]
    checked = check_reply(SENT, payload(rows, partial, 206))
    assert failed_as_dict(checked) == {"b": "partial failure reported by the API: journey could not be parsed"}
    assert set(checked.credits["conversion_id"]) == {"a", "c"}
    assert checked.partial_errors == 1


def test_partial_failures_as_strings_or_other_keys():
    rows = [r for r in good_rows() if r["conversion_id"] != "c"]
    checked = check_reply(SENT, payload(rows, ["conversion c failed: timeout in model"], 206))
    assert failed_as_dict(checked) == {
        "c": "partial failure reported by the API: conversion c failed: timeout in model"
    }
    checked = check_reply(SENT, payload(rows, [{"conversionId": "c", "error": "boom"}], 206))
    assert failed_as_dict(checked) == {"c": "partial failure reported by the API: boom"}


def test_a_named_conversion_is_failed_even_if_its_rows_came_back():
    partial = [{"conversion_id": "a", "message": "half done"}]
    checked = check_reply(SENT, payload(good_rows(), partial, 206))
    assert set(checked.failed["conversion_id"]) == {"a"}
    assert "a" not in set(checked.credits["conversion_id"])


def test_a_206_with_unreadable_errors_still_fails_the_missing_conversions():
    rows = [r for r in good_rows() if r["conversion_id"] != "a"]
    checked = check_reply(SENT, payload(rows, [{"code": 17}], 206))
    assert failed_as_dict(checked) == {"a": "2 of 2 session(s) missing from the API's answer"}


def test_value_none_or_not_a_list_fails_everything():
    for value in (None, "oops", []):
        checked = check_reply(SENT, {"statusCode": 206, "value": value, "partialFailureErrors": []})
        assert set(checked.failed["conversion_id"]) == {"a", "b", "c"}
        assert checked.credits.empty


def test_rows_that_are_not_objects_are_counted():
    rows = good_rows() + ["garbage", 3]
    checked = check_reply(SENT, payload(rows))
    assert checked.failed.empty and checked.unexpected_rows == 2
