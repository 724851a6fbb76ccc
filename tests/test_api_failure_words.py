"""An IHC API failure in words (``ihc_api.failure.explain``) and the quota estimate (``ihc_api.quota``),
against the real local HTTP server of the protocol on 127.0.0.1 (faults injected), a closed port, and
an unresolvable host name. Used the same way by the run (CLI and dashboard) and ``ihc-api-check``."""

from __future__ import annotations

import socket
import sqlite3

import pytest

from pipeline.ihc_api import IhcApiError, attribute_via_api
from pipeline.ihc_api.config import with_overrides
from pipeline.ihc_api.failure import connection_cause
from pipeline.ihc_api.local_server import Fault, LocalIhcServer
from pipeline.ihc_api.probe import check_api
from pipeline.ihc_api.quota import estimate_run
from pipeline.ihc_api.synthetic import make_journeys
from tests.api_support import posts
from tests.helpers import cli

KEY = "failure-words-key-7c6b5a"


@pytest.fixture
def server():
    with LocalIhcServer(KEY) as srv:
        yield srv


def closed_port_config(server, **changes):
    """A config aimed at the server's port once it is stopped: nothing listens there."""
    config = server.client_config(**changes)
    server.stop()
    return config


def fails(conn, journeys, config) -> IhcApiError:
    with pytest.raises(IhcApiError) as caught:
        attribute_via_api(conn, journeys, config)
    return caught.value


def test_a_closed_port_says_refused_and_that_nothing_was_sent(server, conn):
    journeys = make_journeys([2] * 25, seed=1)
    config = closed_port_config(server, max_journeys=10, max_attempts=3)
    error = fails(conn, journeys, config)
    text = str(error)
    assert text.startswith("the IHC API could not be reached: connection refused by 127.0.0.1:")
    assert "(tried 3 times" in text
    assert "Nothing was sent: no conversion reached the IHC API and no quota was used" in text
    assert "Running again sends the 25 conversions not answered yet." in text
    assert "the rest" not in text and "HTTPConnectionPool" not in text and "Errno" not in text
    assert error.cause == "refused" and error.status is None
    assert "HTTPConnectionPool" in error.detail  # the technical line stays for the record
    message = conn.execute("SELECT message FROM ihc_api_runs").fetchone()[0]
    assert message.startswith("the IHC API could not be reached: connection refused")


@pytest.mark.parametrize(
    ("gai_errno", "words"),
    [
        (socket.EAI_NONAME, "could not be reached: name not resolved (ihc.example.invalid) — no network, or a wrong"),
        (socket.EAI_AGAIN, "could not be reached: no network (ihc.example.invalid)"),
    ],
)
def test_an_unresolvable_host_says_so(conn, monkeypatch, gai_errno, words):
    """The host's name lookup fails (the system resolver is replaced so that no query leaves this
    machine; everything above it — urllib3, requests, the client — is the real code)."""
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):
        if host == "ihc.example.invalid":
            raise socket.gaierror(gai_errno, "lookup failed (test)")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with LocalIhcServer(KEY) as srv:
        config = with_overrides(srv.client_config(max_attempts=2), api_url="https://ihc.example.invalid/v1/compute_ihc")
    error = fails(conn, make_journeys([1, 2], seed=2), config)
    assert words in str(error)
    assert "Nothing was sent" in str(error) and "Running again sends the 2 conversions not answered yet." in str(error)
    report = check_api(config)
    assert not report.ok and words in report.verdict() and report.verdict().endswith("Nothing was sent.")


def test_the_key_refused_mid_run_says_what_was_saved(server, conn):
    journeys = make_journeys([2] * 25, seed=3)
    config = server.client_config(max_journeys=10)
    server.inject(Fault.ok(), Fault.http(403, message="no such key"))
    text = str(fails(conn, journeys, config))
    assert text.startswith("the key was refused — check that it was copied whole")
    assert "403 missing or wrong API key: no such key" in text
    assert "Answered and saved: 1 of 3 requests (10 of 25 conversions); the other 15 conversions were not" in text
    assert text.endswith("Running again sends only those.")
    before = len(posts(server))
    attribute_via_api(conn, journeys, config)
    assert len(posts(server)) - before == 2  # only the 15 not answered, in 2 requests


def test_a_refused_first_request_and_an_unknown_conversion_type(conn):
    with LocalIhcServer(KEY, conv_type_ids={"trained"}) as srv:
        text = str(fails(conn, make_journeys([1, 1, 1], seed=4), srv.client_config()))
    assert text.startswith("the IHC API refused the request — check the conversion type id")
    assert "The first request (3 conversions) was refused; nothing was attributed." in text


def test_a_timeout_says_the_request_may_have_counted(server, conn):
    server.inject(Fault.slow(3.0))
    config = server.client_config(read_timeout=0.5, max_attempts=1)
    text = str(fails(conn, make_journeys([2, 2], seed=5), config))
    assert text.startswith("the IHC API did not answer in time (timeout)")
    assert "The first request (2 conversions) was sent but not answered — the API may have counted it" in text


def test_a_quota_wait_beyond_the_budget(server, conn):
    server.inject(Fault.http(429, message="Limit Exceeded", retry_after=3600))
    config = server.client_config(max_retry_seconds=30)
    text = str(fails(conn, make_journeys([1, 1], seed=6), config))
    assert text.startswith("the IHC API asks to wait 3,600 s before the next request — the account's quota may")
    assert "429 too many requests: Limit Exceeded" in text


def test_a_dropped_connection(server, conn):
    server.inject(Fault.drop())
    text = str(fails(conn, make_journeys([1], seed=7), server.client_config(max_attempts=1)))
    assert text.startswith("the connection to the IHC API broke before its answer came")


def test_connection_cause_reads_the_exception_chain():
    import requests

    with LocalIhcServer(KEY) as srv:
        url = srv.url
    with pytest.raises(requests.ConnectionError) as caught:
        requests.post(url, timeout=2)
    assert connection_cause(caught.value) == "refused"
    assert connection_cause(socket.gaierror(socket.EAI_NONAME, "x")) == "name"
    assert connection_cause(ConnectionResetError(104, "reset")) == "dropped"


def test_the_cli_says_it_in_the_same_words(small_demo, tmp_path, server):
    url = server.url
    server.stop()
    db = tmp_path / "api.db"
    db.write_bytes(small_demo.read_bytes())
    env = {"IHC_API_KEY": KEY, "IHC_CONV_TYPE_ID": "local", "IHC_API_MAX_ATTEMPTS": "2", "IHC_API_BACKOFF_BASE": "0"}
    r = cli("run", db, "--model", "ihc-api", "--api-url", url, env=env, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the IHC API could not be reached: connection refused by 127.0.0.1:")
    assert "Nothing was sent" in last and KEY not in r.stderr + r.stdout
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM ihc_api_results").fetchone()[0] == 0
    con.close()
    check = cli("ihc-api-check", "--api-url", url, env=env, cwd=tmp_path)
    assert check.returncode == 1
    assert "FAILED: the IHC API could not be reached: connection refused" in check.stdout
    assert check.stdout.strip().endswith("Nothing was sent.")


# ---- the quota estimate ----------------------------------------------------------------------------


def test_the_estimate_matches_what_the_run_sends(server, conn):
    journeys = make_journeys([3] * 12 + [7] * 5, seed=8)
    config = server.client_config(max_journeys=5, max_sessions=20)
    empty_conn = sqlite3.connect(":memory:")
    first = estimate_run(empty_conn, journeys, config)
    assert empty_conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0  # nothing created
    assert (first.conversions, first.to_send, first.sessions, first.already_done) == (17, 17, 71, 0)
    result = attribute_via_api(conn, journeys, config)
    assert first.requests == result.summary.chunks_total == len(posts(server))
    assert sum(r.n_sessions for r in posts(server)) == first.sessions
    assert first.line().startswith("A run sends 17 conversions (71 sessions) in ")
    assert "17 conversions of your quota" in first.line()

    again = estimate_run(conn, journeys, config)
    assert again.to_send == 0 and again.requests == 0 and again.already_done == 17
    assert "a run sends nothing and uses no quota" in again.line()
    assert estimate_run(conn, journeys, config, force=True).to_send == 17


def test_the_estimate_after_a_partial_run_and_with_truncation(server, conn):
    journeys = make_journeys([2] * 20 + [9], seed=9)
    config = server.client_config(max_journeys=10, max_sessions=8)
    server.inject(Fault.ok(), Fault.http(403, message="stop"))
    fails(conn, journeys, config)
    estimate = estimate_run(conn, journeys, config)
    answered = posts(server)[0].n_journeys  # the first request was answered: 4 journeys of 2 (8 sessions)
    assert answered == 4
    assert estimate.already_done == 4 and estimate.to_send == 17 and estimate.truncated_journeys == 1
    before = len(posts(server))
    result = attribute_via_api(conn, journeys, config)
    assert result.summary.sent_conversions == estimate.to_send
    assert len(posts(server)) - before == estimate.requests
    line = estimate.line()
    assert "not sent again: 4 already answered by an earlier run" in line
    assert "1 journey longer than 8 sessions are sent as their latest 8" in line


def test_retries_are_shown_in_words_while_waiting(server, conn):
    config = closed_port_config(server, max_attempts=3)
    seen = []
    with pytest.raises(IhcApiError):
        attribute_via_api(conn, make_journeys([1, 1], seed=10), config, progress=lambda d, t, m: seen.append(m))
    retries = [m for m in seen if "retry" in m]
    assert retries[0] == "IHC API: request 1 of 1: connection refused; retry 1 in 0 s"
    assert not any("HTTPConnectionPool" in m for m in seen)


def test_the_estimate_of_a_window_of_a_database(small_demo):
    from pipeline.db import open_database
    from pipeline.ihc_api.config import load_config
    from pipeline.ihc_api.quota import estimate_window
    from pipeline.window import Window

    con = open_database(small_demo)
    try:
        config = load_config({"conv_type_id": "t", "max_sessions": "200"}, env_file=False, environ={})
        whole = estimate_window(con, Window(), config)
        some = estimate_window(con, Window(start="2023-09-05", end="2023-09-05"), config)
        n_with_sessions, n_sessions = con.execute(
            "SELECT count(DISTINCT c.conv_id), count(*) FROM conversions c JOIN session_sources s "
            "ON s.user_id = c.user_id AND s.event_date || ' ' || s.event_time < c.conv_date || ' ' || c.conv_time"
        ).fetchone()
    finally:
        con.close()
    assert (whole.to_send, whole.sessions) == (n_with_sessions, n_sessions)
    assert whole.requests >= -(-n_sessions // 200) and 0 < some.to_send < whole.to_send
