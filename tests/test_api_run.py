"""attribute_via_api end to end against the local server: limits, whole journeys, faults, resume."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import InputError, PipelineError
from pipeline.ihc_api import IhcApiError, attribute_via_api, load_config
from pipeline.ihc_api.local_server import Fault, LocalIhcServer
from pipeline.ihc_api.synthetic import make_journeys, random_sizes
from tests.api_support import posts as received_posts

KEY = "run-test-key-9f8e7d6c5b4a"
CREDIT_COLUMNS = ["conversion_id", "session_id", "initializer", "holder", "closer", "ihc"]


@pytest.fixture
def server():
    with LocalIhcServer(KEY) as srv:
        yield srv


def answered_rows(server) -> pd.DataFrame:
    """Every value row the server sent back in a successful answer."""
    parts = [r.answered for r in server.received if r.status in (200, 206) and r.answered is not None]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CREDIT_COLUMNS)


def stored(conn) -> pd.DataFrame:
    return pd.read_sql_query("SELECT * FROM ihc_api_results", conn)


def conversions_per_request(server) -> list[set]:
    return [set(r.journeys["conversion_id"]) for r in received_posts(server) if r.journeys is not None]


def test_stores_and_returns_exactly_what_the_server_answered(server, conn):
    journeys = make_journeys(random_sizes(230, seed=1, longest=12), seed=1)
    config = server.client_config(max_journeys=40, max_sessions=120)
    result = attribute_via_api(conn, journeys, config)

    assert list(result.credits.columns) == CREDIT_COLUMNS
    assert len(result.credits) == len(journeys) and result.failed.empty
    expected = answered_rows(server)
    got = result.credits.merge(expected, on=["conversion_id", "session_id"], suffixes=("", "_server"))
    assert len(got) == len(journeys)
    for column in ["initializer", "holder", "closer", "ihc"]:
        np.testing.assert_array_equal(got[column].to_numpy(), got[f"{column}_server"].to_numpy(dtype=float))
    # the table holds the same values, marked as sent
    table = stored(conn)
    assert len(table) == len(journeys) and (table["sent"] == 1).all()
    both = table.merge(result.credits, on=["conversion_id", "session_id"], suffixes=("_db", ""))
    np.testing.assert_array_equal(both["ihc_db"].to_numpy(), both["ihc"].to_numpy())
    # each conversion sums to 1
    sums = result.credits.groupby("conversion_id")["ihc"].sum()
    assert (sums.sub(1).abs() <= 1e-3).all()
    summary = result.summary
    assert summary.requests == summary.chunks == summary.chunks_total == len(received_posts(server))
    assert summary.attributed == 230 and summary.sent_sessions == len(journeys)


def test_credits_follow_the_canonical_journey_order(server, conn):
    journeys = make_journeys([3, 1, 2], seed=2).iloc[::-1]  # rows reversed
    result = attribute_via_api(conn, journeys, server.client_config())
    assert result.credits["session_id"].tolist() == ["c2-s0", "c2-s1", "c1-s0", "c0-s0", "c0-s1", "c0-s2"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(1, 25), min_size=1, max_size=80),
    max_journeys=st.integers(1, 30),
    max_sessions=st.integers(5, 60),
)
def test_no_request_over_a_limit_and_no_journey_ever_split(server, sizes, max_journeys, max_sessions):
    server.clear()
    journeys = make_journeys(sizes, seed=len(sizes))
    server.max_journeys, server.max_sessions = max_journeys, max_sessions  # the server enforces them too
    config = server.client_config(max_journeys=max_journeys, max_sessions=max_sessions)
    with sqlite3.connect(":memory:") as connection:
        result = attribute_via_api(connection, journeys, config)
    posts = received_posts(server)
    assert all(r.status == 200 for r in posts)
    assert all(r.n_journeys <= max_journeys and r.n_sessions <= max_sessions for r in posts)
    seen = {}
    for request_number, request in enumerate(posts):
        for conversion_id, group in request.journeys.groupby("conversion_id"):
            assert conversion_id not in seen, "a journey was split across requests"
            seen[conversion_id] = (request_number, len(group))
    expected = journeys.groupby("conversion_id").size().clip(upper=max_sessions)
    assert {c: n for c, (_, n) in seen.items()} == expected.to_dict()
    assert len(result.credits) == len(journeys)
    assert result.summary.truncated_journeys == int((np.array(sizes) > max_sessions).sum())


def test_a_journey_longer_than_the_session_limit_sends_its_latest_sessions(server, conn):
    journeys = make_journeys([3, 35, 2], seed=3)
    server.max_sessions = 20
    result = attribute_via_api(conn, journeys, server.client_config(max_sessions=20))
    long_sent = pd.concat([r.journeys for r in received_posts(server)])
    long_sent = long_sent[long_sent["conversion_id"] == "c1"]
    long_all = journeys[journeys["conversion_id"] == "c1"].sort_values("timestamp")
    assert sorted(long_sent["session_id"]) == sorted(long_all["session_id"].iloc[-20:])
    credits = result.credits[result.credits["conversion_id"] == "c1"].set_index("session_id")
    earlier = long_all["session_id"].iloc[:15]
    assert (credits.loc[earlier, ["initializer", "holder", "closer", "ihc"]] == 0).all().all()
    assert abs(credits["ihc"].sum() - 1) <= 1e-3
    assert result.summary.truncated_journeys == 1 and result.summary.truncated_sessions == 15
    assert result.failed.empty and "c1" in set(result.truncated["conversion_id"])
    assert result.warnings and "most recent 20 sessions" in result.warnings[0]
    table = stored(conn)
    assert int((table["sent"] == 0).sum()) == 15


def test_206_keeps_the_good_rows_and_records_each_failure(server, conn):
    journeys = make_journeys(random_sizes(30, seed=4), seed=4)
    server.inject(Fault.partial(count=2, message="model could not run"))
    result = attribute_via_api(conn, journeys, server.client_config(max_journeys=10))
    failed = set(result.failed["conversion_id"])
    assert failed == {"c0", "c1"}
    assert result.failed["reason"].str.contains("model could not run").all()
    assert failed.isdisjoint(result.credits["conversion_id"])
    assert set(result.credits["conversion_id"]) == set(journeys["conversion_id"]) - failed
    table = stored(conn)
    assert failed.isdisjoint(table["conversion_id"])  # never half-written
    ledger = pd.read_sql_query("SELECT conversion_id, status, reason FROM ihc_api_ledger", conn)
    assert set(ledger.loc[ledger["status"] == "failed", "conversion_id"]) == failed
    assert result.summary.partial_failures == 2 and result.summary.failed == 2

    # running again sends nothing and reports the same failures; retry_failed re-sends only them
    before = len(received_posts(server))
    again = attribute_via_api(conn, journeys, server.client_config(max_journeys=10))
    assert len(received_posts(server)) == before
    assert set(again.failed["conversion_id"]) == failed and len(again.credits) == len(result.credits)
    retried = attribute_via_api(conn, journeys, server.client_config(max_journeys=10), retry_failed=True)
    last = received_posts(server)[before:]
    assert len(last) == 1 and set(last[0].journeys["conversion_id"]) == failed
    assert retried.failed.empty and len(retried.credits) == len(journeys)


@pytest.mark.parametrize(
    "fault", ["missing_session", "duplicate_session", "bad_value", "string_value", "sum_off", "extra_session"]
)
def test_bad_answers_fail_the_affected_conversion_only(server, conn, fault):
    journeys = make_journeys([3, 2, 2, 1], seed=5)
    server.inject(Fault.of(fault))
    result = attribute_via_api(conn, journeys, server.client_config())
    assert len(result.failed) == 1
    bad = result.failed["conversion_id"].iloc[0]
    assert bad not in set(result.credits["conversion_id"])
    assert len(result.credits) == int((journeys["conversion_id"] != bad).sum())
    assert bad not in set(stored(conn)["conversion_id"])


@pytest.mark.parametrize(
    "fault",
    [
        Fault.http(429, retry_after=0.01),
        Fault.http(500),
        Fault.http(502),
        Fault.http(503),
        Fault.http(504),
        Fault.drop(),
        Fault.of("malformed_json"),
    ],
)
def test_transient_faults_mid_run_are_retried_without_losing_anything(server, conn, fault):
    journeys = make_journeys(random_sizes(25, seed=6), seed=6)
    server.inject(Fault.ok(), fault)
    result = attribute_via_api(conn, journeys, server.client_config(max_journeys=10))
    assert result.failed.empty and len(result.credits) == len(journeys)
    assert result.summary.retries == 1 and result.summary.requests == result.summary.chunks_total + 1


def test_a_timeout_mid_run_is_retried(server, conn):
    journeys = make_journeys([2, 2, 2], seed=7)
    server.inject(Fault.slow(4.0))
    # 1 s: far beyond a normal answer even on a loaded machine, far below the injected 4 s
    result = attribute_via_api(conn, journeys, server.client_config(read_timeout=1.0))
    assert len(result.credits) == 6 and result.summary.retries >= 1
    first, second = [r for r in server.received if r.method == "POST"][:2]
    assert first.fault == "slow" and second.journeys.equals(first.journeys)  # the same chunk, re-sent


def run_until_fatal(server, conn, journeys, config, fatal_at: int):
    server.inject(*[Fault.ok()] * (fatal_at - 1), Fault.http(403, message="quota exceeded for this key"))
    with pytest.raises(IhcApiError) as caught:
        attribute_via_api(conn, journeys, config)
    return caught.value


def test_resume_after_a_fatal_error_sends_only_the_missing_chunks(server, conn):
    journeys = make_journeys(random_sizes(95, seed=8), seed=8)
    config = server.client_config(max_journeys=10)
    error = run_until_fatal(server, conn, journeys, config, fatal_at=4)
    assert "403" in str(error) and "quota exceeded for this key" in str(error)
    assert "Answered and saved: 3 of 10 requests" in str(error) and "Running again sends only those" in str(error)
    first = received_posts(server)
    assert len(first) == 4
    done_first = set().union(*[set(r.journeys["conversion_id"]) for r in first[:3]])
    assert set(pd.read_sql_query("SELECT conversion_id FROM ihc_api_ledger", conn)["conversion_id"]) == done_first

    result = attribute_via_api(conn, journeys, config)
    second = received_posts(server)[4:]
    assert len(second) == 7  # 10 chunks - 3 done
    sent_second = set().union(*[set(r.journeys["conversion_id"]) for r in second])
    assert sent_second.isdisjoint(done_first)
    assert sent_second | done_first == set(journeys["conversion_id"])
    # the result covers the earlier run's conversions too, with the values answered then
    assert len(result.credits) == len(journeys) and result.summary.already_done == len(done_first)
    expected = answered_rows(server)
    merged = result.credits.merge(expected, on=["conversion_id", "session_id"], suffixes=("", "_s"))
    np.testing.assert_array_equal(merged["ihc"].to_numpy(), merged["ihc_s"].to_numpy(dtype=float))
    runs = pd.read_sql_query(
        "SELECT status, chunks_done, chunks_total FROM ihc_api_runs ORDER BY started_at, rowid", conn
    )
    assert runs.values.tolist() == [["failed", 3, 10], ["finished", 7, 7]]

    # a finished run sends nothing; force re-sends everything
    attribute_via_api(conn, journeys, config)
    assert len(received_posts(server)) == 11
    forced = attribute_via_api(conn, journeys, config, force=True)
    assert len(received_posts(server)) == 21 and forced.summary.already_done == 0


def test_resume_after_ctrl_c(server, conn):
    journeys = make_journeys(random_sizes(60, seed=9), seed=9)
    config = server.client_config(max_journeys=10)

    def interrupt_after_two(done, total, message):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        attribute_via_api(conn, journeys, config, progress=interrupt_after_two)
    assert len(received_posts(server)) == 2
    status = conn.execute("SELECT status FROM ihc_api_runs").fetchone()[0]
    assert status == "interrupted"
    result = attribute_via_api(conn, journeys, config)
    assert len(received_posts(server)) == 6 and len(result.credits) == len(journeys)


def test_quota_429_beyond_the_budget_stops_and_resumes(server, conn):
    journeys = make_journeys(random_sizes(40, seed=10), seed=10)
    config = server.client_config(max_journeys=10, max_retry_seconds=30)
    server.inject(Fault.ok(), Fault.http(429, message="Limit Exceeded", retry_after=3600))
    with pytest.raises(IhcApiError, match="asks to wait 3,600 s.*Answered and saved: 1 of 4 requests"):
        attribute_via_api(conn, journeys, config)
    result = attribute_via_api(conn, journeys, config)
    assert len(received_posts(server)) == 2 + 3 and len(result.credits) == len(journeys)


def test_a_chunk_is_committed_whole_or_not_at_all(server, conn):
    """A crash between writing a chunk's results and its ledger rows leaves nothing of that chunk."""
    journeys = make_journeys([2] * 30, seed=11)
    config = server.client_config(max_journeys=10)
    attribute_via_api(conn, journeys.iloc[:0], config)  # creates the tables
    conn.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON ihc_api_ledger WHEN NEW.conversion_id = 'c15' "
        "BEGIN SELECT RAISE(ABORT, 'simulated crash'); END"
    )
    conn.commit()
    with pytest.raises(sqlite3.IntegrityError):
        attribute_via_api(conn, journeys, config)
    table = stored(conn)
    assert set(table["conversion_id"]) == {f"c{i}" for i in range(10)}  # chunk 1 only
    assert conn.execute("SELECT count(*) FROM ihc_api_ledger").fetchone()[0] == 10
    assert conn.execute("SELECT status FROM ihc_api_runs ORDER BY rowid DESC").fetchone()[0] == "failed"
    conn.execute("DROP TRIGGER boom")
    conn.commit()
    result = attribute_via_api(conn, journeys, config)
    assert len(result.credits) == 60 and len(received_posts(server)) == 2 + 2


def test_only_changed_conversions_are_sent_again(server, conn):
    journeys = make_journeys(random_sizes(50, seed=12), seed=12)
    config = server.client_config(max_journeys=25)
    attribute_via_api(conn, journeys, config)
    n = len(received_posts(server))
    changed = journeys.copy()
    changed.loc[changed["conversion_id"] == "c7", "holder_engagement"] = (
        1 - changed.loc[changed["conversion_id"] == "c7", "holder_engagement"]
    )
    extra = make_journeys([2], seed=13, prefix="new")
    result = attribute_via_api(conn, pd.concat([changed, extra], ignore_index=True), config)
    [request] = received_posts(server)[n:]
    assert set(request.journeys["conversion_id"]) == {"c7", "new0"}
    assert len(result.credits) == len(journeys) + 2
    # the stored rows of c7 were replaced, not duplicated
    assert stored(conn).duplicated(["conversion_id", "session_id"]).sum() == 0


def test_another_conversion_type_or_redistribution_is_another_run(server, conn):
    journeys = make_journeys([2, 1], seed=14)
    attribute_via_api(conn, journeys, server.client_config(conv_type_id="type_a"))
    attribute_via_api(conn, journeys, server.client_config(conv_type_id="type_b"))
    rule = {
        "holder": {
            "direction": "any_session",
            "receive_threshold": 0,
            "redistribution_channel_labels": ["Direct Traffic"],
        }
    }
    attribute_via_api(conn, journeys, server.client_config(conv_type_id="type_a", redistribution_parameter=rule))
    posts = received_posts(server)
    assert [r.conv_type_id for r in posts] == ["type_a", "type_b", "type_a"]
    assert posts[2].redistribution_parameter == rule and posts[0].redistribution_parameter is None
    assert conn.execute("SELECT count(*) FROM ihc_api_keys").fetchone()[0] == 3


def test_missing_configuration_fails_before_any_work(server, conn):
    journeys = make_journeys([2], seed=15)
    config = load_config({"api_url": server.url, "conv_type_id": "t"}, environ={}, env_file=False)
    with pytest.raises(InputError, match="IHC_API_KEY"):
        attribute_via_api(conn, journeys, config)
    assert server.received == []
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0


def test_bad_journeys_fail_before_any_request(server, conn):
    journeys = make_journeys([2], seed=16).assign(holder_engagement=3)
    with pytest.raises(InputError, match="holder_engagement"):
        attribute_via_api(conn, journeys, server.client_config())
    assert server.received == []


def test_empty_journeys_send_nothing(server, conn):
    result = attribute_via_api(conn, make_journeys([], seed=0), server.client_config())
    assert result.credits.empty and result.failed.empty and server.received == []
    assert list(result.credits.columns) == CREDIT_COLUMNS


def test_refuses_a_connection_with_an_open_transaction(server, conn):
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    assert conn.in_transaction
    with pytest.raises(PipelineError, match="open transaction"):
        attribute_via_api(conn, make_journeys([1]), server.client_config())


def test_progress_reports_chunks_rate_and_retries(server, conn):
    journeys = make_journeys(random_sizes(30, seed=17), seed=17)
    server.inject(Fault.ok(), Fault.http(503))
    calls = []
    attribute_via_api(
        conn, journeys, server.client_config(max_journeys=10), progress=lambda d, t, m: calls.append((d, t, m))
    )
    assert calls[0][:2] == (0, 3) and "30 conversions to send in 3 requests" in calls[0][2]
    retry = [m for _, _, m in calls if "retry 1" in m]
    assert retry and "503" in retry[0]
    chunk_messages = [m for d, _, m in calls if m.startswith("IHC API: 3/3 requests answered")]
    assert chunk_messages and "sessions/s" in chunk_messages[0] and "1 retry" in chunk_messages[0]
    assert calls[-1][:2] == (3, 3)
    done = [d for d, _, _ in calls]
    assert done == sorted(done)


def test_works_with_the_challenge_journeys_when_available(server, conn):
    from pathlib import Path

    data = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "challenge_journeys.json"
    if not data.exists():
        pytest.skip("../shared/data/challenge_journeys.json not found beside the checkout")
    journeys = pd.read_json(data, dtype={"conversion_id": str, "session_id": str, "timestamp": str})
    server.max_sessions = 200  # a free account
    result = attribute_via_api(conn, journeys, server.client_config(max_sessions=200))
    assert len(result.credits) == len(journeys) == 3703
    assert result.credits["conversion_id"].nunique() == 1940 and result.failed.empty
    assert all(r.n_sessions <= 200 and r.n_journeys <= 100 for r in received_posts(server))
    sums = result.credits.groupby("conversion_id")["ihc"].sum()
    assert (sums.sub(1).abs() <= 1e-3).all()


def test_recent_runs_for_a_status_display(server, conn):
    from pipeline.ihc_api import recent_runs

    assert recent_runs(conn).empty  # no tables yet: empty, no error
    journeys = make_journeys([2, 1, 1], seed=18)
    server.inject(Fault.http(406, message="cannot parse journey c0"))
    with pytest.raises(IhcApiError, match="406.*cannot parse journey c0"):
        attribute_via_api(conn, journeys, server.client_config(conv_type_id="shop"))
    attribute_via_api(conn, journeys, server.client_config(conv_type_id="shop"))
    runs = recent_runs(conn)
    assert runs["status"].tolist() == ["finished", "failed"]
    assert (runs["conv_type_id"] == "shop").all() and (runs["api_url"] == server.url).all()
    assert "cannot parse journey c0" in runs["message"].iloc[1]
