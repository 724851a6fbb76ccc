"""The API key never appears in a log line, an exception, progress output, a table or a file."""

from __future__ import annotations

import io
import logging
import sqlite3

import pytest

from pipeline.cli import main
from pipeline.ihc_api import IhcApiError, attribute_via_api
from pipeline.ihc_api.local_server import Fault, LocalIhcServer
from pipeline.ihc_api.synthetic import make_journeys, random_sizes
from pipeline.progress import StderrProgress

KEY = "SUPER-SECRET-KEY-Zx81-do-not-leak"


def files_of(db_path):
    return [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]


def test_key_absent_everywhere_even_when_the_server_echoes_it(tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 and the local server included
    db_path = tmp_path / "product.db"
    conn = sqlite3.connect(db_path)
    stream = io.StringIO()
    stderr_progress = StderrProgress(stream=stream, rate=1000)
    messages = []

    def progress(done, total, message):
        messages.append(message)
        stderr_progress(done, total, message)

    journeys = make_journeys(random_sizes(80, seed=1), seed=1)
    errors = []
    with LocalIhcServer(KEY) as server:
        config = server.client_config(max_journeys=10)
        assert KEY not in repr(config)
        server.inject(
            Fault.ok(),
            Fault.http(503, message=f"overloaded, key {KEY}"),  # retried: the problem shows in progress
            Fault.http(429, message=f"slow down {KEY}", retry_after=0.01),
            Fault.drop(),
            Fault.partial(count=2, message=f"failed for key {KEY}"),  # reasons are stored in a table
            Fault.ok(),
            Fault.http(400, message=f"invalid request with x-api-key {KEY}"),  # fatal, echoed
        )
        with pytest.raises(IhcApiError) as caught:
            attribute_via_api(conn, journeys, config, progress=progress)
        errors.append(caught.value)
        result = attribute_via_api(conn, journeys, config, progress=progress)  # resume to the end
        # the key was really sent on every request (so the test is about redaction, not absence)
        assert all(r.key_ok for r in server.received)
        assert len(server.received) == 7 + 5  # 8 chunks, 3 committed before the 400

        # a wrong-key check through the CLI prints nothing of the key it was given
        exit_code = main(
            [
                "ihc-api-check",
                "--api-key",
                KEY + "-wrong",
                "--conv-type-id",
                "t",
                "--api-url",
                server.url,
                "--max-attempts",
                "1",
            ]
        )
        assert exit_code == 1
    conn.close()

    assert len(result.failed) == 2 and "***" in result.failed["reason"].iloc[0]
    texts = [str(e) for e in errors] + [repr(e) for e in errors]
    texts += messages + [stream.getvalue()]
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    texts += [result.summary.line(), str(result.summary.as_dict()), result.failed.to_csv()]
    assert any("***" in t for t in texts)  # the echoed key was there to redact
    for text in texts:
        assert KEY not in text
    assert "403" in captured.out or "REJECTED" in captured.out

    for path in files_of(db_path):
        assert KEY.encode() not in path.read_bytes(), path.name
    with sqlite3.connect(db_path) as check:
        for (table,) in check.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in check.execute(f"SELECT * FROM {table}"):
                assert all(KEY not in str(value) for value in row), table


def test_the_key_is_only_ever_in_the_header():
    """Not in the URL (query string), not in the body: what the server received."""
    seen = []

    class Recording(LocalIhcServer):
        pass

    with Recording(KEY) as server:
        conn = sqlite3.connect(":memory:")
        import requests

        original = requests.Session.send

        def spy(self, request, **kwargs):
            seen.append((request.url, request.body, dict(request.headers)))
            return original(self, request, **kwargs)

        requests.Session.send = spy
        try:
            attribute_via_api(conn, make_journeys([2, 1]), server.client_config())
        finally:
            requests.Session.send = original
    assert seen
    for url, body, headers in seen:
        assert KEY not in url
        assert KEY.encode() not in (body if isinstance(body, bytes) else str(body).encode())
        assert headers["x-api-key"] == KEY
