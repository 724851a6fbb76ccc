"""The demo database: deterministic per seed and shaped like the challenge data."""

import sqlite3

import pandas as pd

from pipeline.db import open_database
from pipeline.demo import CHANNELS, generate
from pipeline.demo_size import DemoSize
from pipeline.journeys import build_journeys
from pipeline.validate import validate


def test_deterministic_per_seed():
    a = generate(DemoSize(sessions=20_000, conversions=300, seed=5))
    b = generate(DemoSize(sessions=20_000, conversions=300, seed=5))
    c = generate(DemoSize(sessions=20_000, conversions=300, seed=6))
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert not a["session_sources"].equals(c["session_sources"])


def test_shape_of_the_default_like_database(small_demo):
    con = sqlite3.connect(small_demo)
    n_sessions, n_users = con.execute("SELECT count(*), count(DISTINCT user_id) FROM session_sources").fetchone()
    assert n_sessions == 20_000
    assert con.execute("SELECT count(*) FROM conversions").fetchone()[0] == 400
    channels = {r[0] for r in con.execute("SELECT DISTINCT channel_name FROM session_sources")}
    assert channels == {c.name for c in CHANNELS} and len(channels) == 16
    # paid channels have costs, unpaid ones none
    paid = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT s.channel_name FROM session_costs c JOIN session_sources s USING (session_id)"
        )
    }
    assert paid == {c.name for c in CHANNELS if c.cpc > 0}
    # most users have a single session
    single = con.execute(
        "SELECT count(*) FROM (SELECT user_id FROM session_sources GROUP BY user_id HAVING count(*) = 1)"
    ).fetchone()[0]
    assert single / n_users > 0.6
    # some users convert twice
    assert (
        con.execute(
            "SELECT count(*) FROM (SELECT user_id FROM conversions GROUP BY user_id HAVING count(*) > 1)"
        ).fetchone()[0]
        > 5
    )
    # engagement flags at realistic rates, all 0/1
    h, c = con.execute("SELECT avg(holder_engagement), avg(closer_engagement) FROM session_sources").fetchone()
    assert 0.2 < h < 0.9 and 0.05 < c < 0.6


def test_journeys_of_the_demo(small_demo):
    con = open_database(small_demo)
    assert validate(con).ok
    j = build_journeys(con)
    lengths = j.conversions["sessions"]
    assert (lengths == 0).sum() > 0  # conversions with no earlier session
    assert ((lengths == 1) | (lengths == 2)).mean() > 0.6  # mostly 1–2 sessions
    assert lengths.max() >= 8  # a long tail
    shared = j.frame.groupby("session_id")["conversion_id"].nunique()
    assert (shared > 1).any()  # sessions in two journeys
    # sessions at exactly their conversion's time exist in the data and are left out of the journey
    same = con.execute(
        "SELECT c.conv_id, s.session_id FROM conversions c JOIN session_sources s ON s.user_id = c.user_id"
        " AND s.event_date = c.conv_date AND s.event_time = c.conv_time"
    ).fetchall()
    assert len(same) >= 1
    in_journeys = set(zip(j.frame["conversion_id"], j.frame["session_id"]))
    assert not in_journeys & set(same)
