"""The HTTP client against the local server: what is retried, how long it waits, what stops at once."""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.ihc_api.client import ApiClient
from pipeline.ihc_api.errors import IhcApiError
from pipeline.ihc_api.local_server import Fault, LocalIhcServer
from pipeline.ihc_api.run import build_body
from pipeline.ihc_api.synthetic import make_journeys

KEY = "client-test-key-0123456789"


@pytest.fixture
def server():
    with LocalIhcServer(KEY) as srv:
        yield srv


def body() -> bytes:
    return build_body(make_journeys([2, 1], seed=3), None)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(server, sleeps=None, **overrides) -> ApiClient:
    return ApiClient(
        server.client_config(**overrides), sleep=sleeps if sleeps is not None else Sleeps(), rng=random.Random(0)
    )


def test_a_good_request_sends_key_conv_type_and_json(server):
    with client_for(server, conv_type_id="my_type") as client:
        reply = client.post(body())
    assert reply.status == 200 and reply.attempts == 1 and len(reply.payload["value"]) == 3
    [received] = server.received
    assert received.key_ok and received.conv_type_id == "my_type"
    assert "Content-Type" in received.header_names
    assert received.n_journeys == 2 and received.n_sessions == 3


def test_429_is_retried_after_the_retry_after_delay(server):
    sleeps = Sleeps()
    server.inject(Fault.http(429, retry_after=0.25), Fault.http(429, retry_after="0"))
    with client_for(server, sleeps) as client:
        reply = client.post(body())
    assert reply.status == 200 and reply.attempts == 3 and client.retries == 2
    assert sleeps == [0.25]  # Retry-After honoured exactly; "0" means no wait
    assert [r.status for r in server.received] == [429, 429, 200]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_with_growing_jittered_backoff(server, status):
    sleeps = Sleeps()
    server.inject(*[Fault.http(status)] * 3)
    with client_for(server, sleeps, backoff_base=0.001, backoff_max=1.0) as client:
        reply = client.post(body())
    assert reply.attempts == 4 and len(server.received) == 4 and len(sleeps) == 3
    # equal jitter: wait n lies in [base·2^(n-1)/2, base·2^(n-1)]
    for n, wait in enumerate(sleeps, start=1):
        ceiling = 0.001 * 2 ** (n - 1)
        assert ceiling / 2 <= wait <= ceiling


def test_backoff_is_capped():
    client = ApiClient(LocalIhcServer(KEY).client_config(backoff_base=1.0, backoff_max=4.0), rng=random.Random(1))
    waits = [client.backoff(n) for n in range(1, 10)]
    assert all(w <= 4.0 for w in waits) and all(w >= 2.0 for w in waits[3:])


def test_a_500_reported_only_in_the_body_is_retried(server):
    server.inject(Fault.http(500, message="response value was None", in_body=True))
    with client_for(server) as client:
        assert client.post(body()).attempts == 2


def test_dropped_connection_is_retried(server):
    server.inject(Fault.drop(), Fault.drop())
    with client_for(server) as client:
        reply = client.post(body())
    assert reply.attempts == 3
    assert [r.fault for r in server.received] == ["drop", "drop", "ok"]


def test_a_slow_answer_times_out_and_is_retried(server):
    server.inject(Fault.slow(2.0))
    with client_for(server, read_timeout=0.2) as client:
        reply = client.post(body())
    assert reply.attempts == 2
    assert [r.fault for r in server.received] == ["slow", "ok"]


@pytest.mark.parametrize("headers", [False, True], ids=["body", "headers"])
def test_an_answer_that_trickles_is_cut_at_the_read_timeout_and_retried(server, headers):
    """One byte every 0.1 s, of the body or (``headers``) from the status line on (about 150 bytes of
    headers: 15 s): no single read waits the 1 s read timeout, so the client waited for the whole answer
    — a server trickling for ever held the run for ever (the headers until the header deadline, the body
    until ``_read_body``'s bound). Now the whole answer must arrive within the read timeout; past it, a
    retryable timeout, and the retry gets the answer."""
    server.inject(Fault.trickle(0.1, headers=headers))
    outcome: list = []
    started = time.monotonic()
    with client_for(server, read_timeout=1.0) as client:
        worker = threading.Thread(target=lambda: outcome.append(client.post(body())), daemon=True)
        worker.start()
        worker.join(30)
        assert not worker.is_alive(), "the client still reads the trickling answer after 30 s"
    [reply] = outcome
    assert reply.attempts == 2 and reply.status == 200 and len(reply.payload["value"]) == 3
    assert [r.fault for r in server.received] == ["trickle_headers" if headers else "trickle", "ok"]
    assert time.monotonic() - started < 10  # 1 s cut + the second answer, not the 15 s of trickle


@pytest.mark.parametrize(
    "headers, message",
    [(False, "not complete within 0.5 s"), (True, "no answer within 0.5 s")],
    ids=["body", "headers"],
)
def test_an_answer_that_trickles_for_ever_stops_within_the_retry_budget(server, headers, message):
    server.inject(*[Fault.trickle(0.1, headers=headers)] * 10)
    with client_for(server, read_timeout=0.5, max_retry_seconds=2) as client:
        started = time.monotonic()
        with pytest.raises(IhcApiError, match=message) as caught:
            client.post(body())
    assert caught.value.retryable and time.monotonic() - started < 10
    assert KEY not in str(caught.value)


def test_malformed_json_is_retried(server):
    server.inject(Fault.of("malformed_json"))
    with client_for(server) as client:
        reply = client.post(body())
    assert reply.attempts == 2 and reply.status == 200


@pytest.mark.parametrize(
    "status, words", [(400, "invalid input"), (403, "wrong API key"), (406, "could not be parsed")]
)
def test_client_errors_stop_at_once_with_the_server_message(server, status, words):
    server.inject(Fault.http(status, message=f"server says no ({status})"))
    with client_for(server) as client:
        with pytest.raises(IhcApiError) as caught:
            client.post(body())
    assert len(server.received) == 1  # never retried
    assert caught.value.status == status
    message = str(caught.value)
    assert f"{status} " in message and words in message and f"server says no ({status})" in message
    assert "\n" not in message


def test_a_wrong_key_is_a_403_from_the_server_itself():
    with LocalIhcServer("the-right-key") as srv:
        config = srv.client_config(api_key="the-wrong-key")
        with ApiClient(config) as client:
            with pytest.raises(IhcApiError, match="403") as caught:
                client.post(body())
        assert "the-wrong-key" not in str(caught.value)
        assert [r.key_ok for r in srv.received] == [False]


def test_attempts_are_bounded(server):
    server.inject(*[Fault.http(503)] * 10)
    with client_for(server, max_attempts=3) as client:
        with pytest.raises(IhcApiError, match="gave up after 3 attempts") as caught:
            client.post(body())
    assert len(server.received) == 3 and caught.value.retryable


def test_total_retry_time_is_bounded(server):
    server.inject(*[Fault.http(503)] * 50)
    with client_for(server, max_attempts=50, backoff_base=0.05, backoff_max=0.05, max_retry_seconds=0.3) as client:
        client.sleep = __import__("time").sleep  # real sleeps so that time passes
        with pytest.raises(IhcApiError, match="retry budget"):
            client.post(body())
    assert 3 <= len(server.received) < 50


def test_a_retry_after_beyond_the_budget_stops_at_once(server):
    sleeps = Sleeps()
    server.inject(Fault.http(429, message="daily quota exhausted", retry_after=86400))
    with client_for(server, sleeps, max_retry_seconds=60) as client:
        with pytest.raises(IhcApiError, match="asks to wait 86400 s") as caught:
            client.post(body())
    assert sleeps == [] and len(server.received) == 1
    assert "daily quota exhausted" in str(caught.value)


def test_retry_after_as_http_date(server):
    sleeps = Sleeps()
    server.inject(Fault.http(503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"))  # in the past: no wait
    with client_for(server, sleeps) as client:
        assert client.post(body()).attempts == 2
    assert sleeps == []


def test_connection_refused_is_retried_then_reported(server):
    config = server.client_config(max_attempts=2)
    server.stop()
    with ApiClient(config, sleep=Sleeps()) as client:
        with pytest.raises(IhcApiError, match="gave up after 2 attempts.*connection failed") as caught:
            client.post(body())
    assert caught.value.status is None


def test_redirects_are_not_followed():
    """A redirect could carry the key header to another host: the client refuses it."""
    hits = []

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        config = LocalIhcServer(KEY).client_config()
        from pipeline.ihc_api import with_overrides

        config = with_overrides(config, api_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1/compute_ihc")
        with ApiClient(config) as client:
            with pytest.raises(IhcApiError, match="307.*not followed"):
                client.post(body())
        assert hits == ["/v1/compute_ihc?conv_type_id=local"]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_server_answer_is_json_with_one_row_per_session(server):
    with client_for(server) as client:
        reply = client.post(body())
    rows = reply.payload["value"]
    assert json.loads(json.dumps(rows)) == rows
    assert {(r["conversion_id"], r["session_id"]) for r in rows} == {("c0", "c0-s0"), ("c0", "c0-s1"), ("c1", "c1-s0")}
    assert reply.payload["partialFailureErrors"] == []
