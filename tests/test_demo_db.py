"""The demo database: deterministic per seed and shaped like the challenge data."""

import sqlite3

import numpy as np
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


def _is_hex(values, length: int) -> bool:
    return all(len(v) == length and all(ch in "0123456789abcdef" for ch in v) for v in values)


def test_ids_are_shaped_like_the_real_data():
    """64-hex session and conversion ids and 40-hex user ids, as in ../shared/data/challenge_journeys.json."""
    t = generate(DemoSize(sessions=20_000, conversions=300, seed=5))
    sessions, conversions, costs = t["session_sources"], t["conversions"], t["session_costs"]
    assert _is_hex(sessions["session_id"], 64) and _is_hex(conversions["conv_id"], 64)
    assert _is_hex(sessions["user_id"], 40) and _is_hex(conversions["user_id"], 40)
    assert all(isinstance(v, str) for v in sessions["session_id"])  # TEXT in SQLite, not BLOB
    # unique where they must be; users shared between sessions and conversions as before
    assert sessions["session_id"].is_unique and conversions["conv_id"].is_unique
    assert set(costs["session_id"]) <= set(sessions["session_id"])
    assert conversions["user_id"].isin(sessions["user_id"]).mean() > 0.9
    assert sessions["user_id"].nunique() < len(sessions)  # users with several sessions
    assert not set(sessions["session_id"]) & set(conversions["conv_id"])


def test_real_shaped_and_short_ids_describe_the_same_data():
    """The id shape is the only difference: the short-ids flag maps one-to-one onto the hex ids."""
    size = DemoSize(sessions=20_000, conversions=300, seed=5)
    hexed, short = generate(size), generate(DemoSize(20_000, 300, seed=5, short_ids=True))
    s = short["session_sources"]
    assert s["session_id"].str.fullmatch(r"S\d{7}").all() and s["user_id"].str.fullmatch(r"U\d{7}").all()
    assert short["conversions"]["conv_id"].str.fullmatch(r"C\d{6}").all()
    for name in hexed:
        h, k = hexed[name], short[name]
        id_cols = [c for c in h.columns if c.endswith("_id")]
        pd.testing.assert_frame_equal(h.drop(columns=id_cols), k.drop(columns=id_cols))
        for col in id_cols:  # the same partition of rows: equal short ids ⇔ equal hex ids
            pairs = pd.DataFrame({"h": h[col], "k": k[col]}).drop_duplicates()
            assert pairs["h"].is_unique and pairs["k"].is_unique
    # users map the same way across tables
    both = pd.concat(
        [pd.DataFrame({"h": hexed[t]["user_id"], "k": short[t]["user_id"]}) for t in ("session_sources", "conversions")]
    ).drop_duplicates()
    assert both["h"].is_unique and both["k"].is_unique


def test_hex_ids_deterministic_per_seed_and_unique_at_scale():
    from pipeline.demo import _hex_ids

    numbers = np.arange(2_000_000)
    a = _hex_ids(numbers, 64, 42, "S")
    assert len(set(a)) == len(a)
    assert (_hex_ids(numbers[:1000], 64, 42, "S") == a[:1000]).all()
    assert not (_hex_ids(numbers[:1000], 64, 43, "S") == a[:1000]).any()
    assert not set(_hex_ids(numbers[:1000], 64, 42, "C")) & set(a[:1000])
    users = _hex_ids(numbers[:1000], 40, 42, "U")
    assert _is_hex(users, 40) and _is_hex(a[:1000], 64)


def test_demo_db_cli_short_ids_flag(tmp_path):
    from pipeline.cli import main

    real, short = tmp_path / "real.db", tmp_path / "short.db"
    assert main(["demo-db", str(real), "--sessions", "3000", "--conversions", "100", "--seed", "9"]) == 0
    assert (
        main(["demo-db", str(short), "--sessions", "3000", "--conversions", "100", "--seed", "9", "--short-ids"]) == 0
    )
    q = "SELECT min(length(session_id)), max(length(session_id)), max(length(user_id)) FROM session_sources"
    assert sqlite3.connect(real).execute(q).fetchone() == (64, 64, 40)
    assert sqlite3.connect(short).execute(q).fetchone() == (8, 8, 8)
    q = "SELECT typeof(conv_id), length(conv_id), typeof(user_id) FROM conversions LIMIT 1"
    assert sqlite3.connect(real).execute(q).fetchone() == ("text", 64, "text")
    assert sqlite3.connect(short).execute(q).fetchone() == ("text", 7, "text")
