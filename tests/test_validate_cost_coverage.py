"""Validation warns about cost that is missing where the report would not show it."""

from __future__ import annotations

from pipeline.db import open_database
from pipeline.validate import validate
from tests.helpers import make_db, run_db

SESSIONS = [
    # Search: sessions on 09-01 and 09-02, cost on both; Video Ads: sessions on 09-01 and 09-02, cost on
    # 09-01 only (and a zero cost on 09-02); Direct: sessions, no cost row at all.
    ("s1", "u1", "2023-09-01", "10:00:00", "Search", 0, 0, 0),
    ("s2", "u1", "2023-09-02", "10:00:00", "Search", 0, 0, 0),
    ("s3", "u2", "2023-09-01", "10:00:00", "Video Ads", 0, 0, 0),
    ("s4", "u2", "2023-09-02", "10:00:00", "Video Ads", 0, 0, 0),
    ("s5", "u1", "2023-09-02", "11:00:00", "Direct", 0, 0, 0),
]
CONVERSIONS = [("c1", "u1", "2023-09-03", "12:00:00", 100.0), ("c2", "u2", "2023-09-03", "12:00:00", 10.0)]
COSTS = [("s1", 1.0), ("s2", 1.0), ("s3", 2.0), ("s4", 0.0)]


def _findings(db):
    return {f.code: f for f in validate(open_database(db)).findings}


def test_channels_without_cost_and_days_without_cost(tmp_path):
    db = make_db(tmp_path / "c.db", SESSIONS, CONVERSIONS, COSTS)
    found = _findings(db)
    unpaid = found["channel_without_cost"]
    assert unpaid.severity == "warning" and unpaid.count == 1
    assert "1 channel has sessions but no cost at all: Direct;" in unpaid.message
    assert "share" not in unpaid.message  # no attribution yet
    gaps = found["cost_on_some_days"]
    assert gaps.count == 1 and gaps.examples == ["2023-09-02"]
    assert "Video Ads has cost on 1 of its 2 days with sessions" in gaps.message
    assert [f.message for f in validate(open_database(db)).findings if "Search" in f.message] == []

    # after a run, the unpaid channel's share of the credit: u1's c1 over s1, s2, s5 (linear: 1/3 each)
    # and u2's c2 over s3, s4 -> Direct holds 1/3 of 2 conversions = 16.7%
    run_db(db, model="linear")
    message = _findings(db)["channel_without_cost"].message
    assert "no cost at all: by share of the last attribution's credit, Direct 16.7%;" in message
    assert message.endswith(
        "the report shows no CPO for it (—) and the Blended CPO tile counts its conversions as free"
    )


def test_fully_paid_channels_give_no_cost_warning(tmp_path):
    costs = [*COSTS[:3], ("s4", 0.5), ("s5", 0.1)]
    assert not {"channel_without_cost", "cost_on_some_days"} & set(
        _findings(make_db(tmp_path / "p.db", SESSIONS, CONVERSIONS, costs))
    )


def test_a_session_without_date_in_a_paid_channel_is_reported_not_a_crash(tmp_path):
    """A NULL event_date used to reach sorted() beside text dates (TypeError) instead of the finding."""
    sessions = [*SESSIONS, ("s6", "u2", None, "10:00:00", "Video Ads", 0, 0, 0)]
    found = _findings(make_db(tmp_path / "n.db", sessions, CONVERSIONS, COSTS))
    assert found["bad_event_date"].severity == "fatal" and found["bad_event_date"].count == 1
    assert found["cost_on_some_days"].count == 1  # 09-02; the dateless session is no day
