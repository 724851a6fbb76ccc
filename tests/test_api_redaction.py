"""A server message that quotes the key never leaks any of it: redaction before every cut, in every encoding.

Issue 12 ("Secrets"): messages were cut to 300 characters (``Location`` to 100) before redaction, so a key
straddling the cut left its first characters behind; a key with ``"`` or ``\\`` came back JSON-escaped and
slipped past the redactor. Everything here goes through the real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from pipeline.cli import main
from pipeline.ihc_api import IhcApiError, attribute_via_api
from pipeline.ihc_api.client import ApiClient
from pipeline.ihc_api.local_server import Fault, LocalIhcServer
from pipeline.ihc_api.redact import encodings, one_line, redact
from pipeline.ihc_api.run import build_body
from pipeline.ihc_api.synthetic import make_journeys
from tests.helpers import cli

KEYS = {
    "plain": "SUPER-SECRET-KEY-Zx81-do-not-leak",
    "quotes": 'Qk"7Zx"81-do-not"leak',
    "backslash": "Bk\\7Zx\\81-do-not\\leak",
    "both": "Mk\"7\\Zx/81&<do>+not%leak'",
}
WINDOW = 6  # no run of this many characters of the key, in any encoding, may survive


def leaked(text: str, key: str) -> list[str]:
    """Every WINDOW-character piece of ``key`` (in any of its encodings) that appears in ``text``."""
    found = []
    for variant in {key, *encodings(key)}:
        for i in range(len(variant) - WINDOW + 1):
            piece = variant[i : i + WINDOW]
            if piece in text:
                found.append(piece)
    return found


def one_journey_body():
    return build_body(make_journeys([1], seed=3).assign(sent=True), None)


def cut_positions(key: str, limit: int, prefix: str = "") -> list[int]:
    """Padding lengths that put every character of ``key`` (and its escapes) on the cut edge at ``limit``."""
    longest = max(len(v) for v in encodings(key))
    start = max(0, limit - len(prefix) - longest - 2)
    return list(range(start, limit - len(prefix) + 2))


@pytest.mark.parametrize("name", sorted(KEYS))
def test_unit_redaction_of_every_encoding_and_a_partial_tail(name):
    key = KEYS[name]
    for variant in encodings(key):
        assert redact(f"before {variant} after", [key]) == "before *** after"
    assert redact(json.dumps({"message": f"key {key}"}), [key]) == '{"message": "key ***"}'
    assert redact(repr({"k": key}), [key]).count("***") == 1
    # a text that ends in the start of the key (a server that cut its own message)
    for length in range(6, len(key)):
        assert leaked(redact(f"x {key[:length]}", [key]), key) == [], length
        assert leaked(redact(f"x {key[:length]}…", [key]), key) == [], length
    # one_line redacts before it cuts, at every cut position
    for pad in range(0, 80):
        text = "p" * pad + key + " tail"
        for limit in range(10, 70):
            out = one_line(text, limit, [key])
            assert len(out) <= limit
            assert leaked(out, key) == [], (pad, limit, out)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_a_fatal_message_quoting_the_key_at_every_cut_position(name):
    key = KEYS[name]
    with LocalIhcServer(key) as server:
        config = server.client_config(max_attempts=1)
        body = one_journey_body()
        positions = cut_positions(key, 300)
        faults = [Fault.http(400, message="m" * pad + key + " was refused") for pad in positions]
        # the key as the server's JSON re-escaped it, and inside a list of errors (JSON-dumped by the client)
        faults.append(Fault.http(400, message="m" * 280 + json.dumps(key)))
        server.inject(*faults)
        texts = []
        with ApiClient(config) as client:
            for _ in faults:
                with pytest.raises(IhcApiError) as caught:
                    client.post(body)
                texts += [str(caught.value), repr(caught.value)]
        assert all(r.key_ok for r in server.received)
    assert any("***" in t for t in texts)
    for text in texts:
        assert leaked(text, key) == [], text


@pytest.mark.parametrize("name", sorted(KEYS))
def test_a_redirect_location_quoting_the_key_at_every_cut_position(name):
    key = KEYS[name]
    with LocalIhcServer(key) as server:
        config = server.client_config(max_attempts=1)
        body = one_journey_body()
        prefix = " (redirect to "
        locations = ["http://127.0.0.1/" + "l" * pad + key for pad in cut_positions(key, 100, "http://127.0.0.1/")]
        header_safe = [loc for loc in locations if "\n" not in loc]
        server.inject(*[Fault.http(302, message="moved", location=loc) for loc in header_safe])
        texts = []
        with ApiClient(config) as client:
            for _ in header_safe:
                with pytest.raises(IhcApiError) as caught:
                    client.post(body)
                texts.append(str(caught.value))
    assert all(prefix in t for t in texts)
    for text in texts:
        assert leaked(text, key) == [], text


@pytest.mark.parametrize("name", sorted(KEYS))
def test_partial_failure_reasons_quoting_the_key_are_stored_redacted(name, tmp_path):
    key = KEYS[name]
    db_path = tmp_path / "ledger.db"
    conn = sqlite3.connect(db_path)
    journeys = make_journeys([1] * 80, seed=5)
    with LocalIhcServer(key) as server:
        config = server.client_config(max_journeys=1)
        server.inject(*[Fault.partial(message="r" * pad + key) for pad in cut_positions(key, 200)])
        result = attribute_via_api(conn, journeys, config)
    conn.close()
    reasons = result.failed["reason"].tolist()
    assert len(reasons) == len(cut_positions(key, 200)) and any("***" in r for r in reasons)
    for reason in reasons:
        assert leaked(reason, key) == [], reason
    for path in tmp_path.iterdir():
        raw = path.read_bytes().decode("utf-8", "replace")
        assert leaked(raw, key) == [], path.name


@pytest.mark.parametrize("name", ["quotes", "both"])
def test_ihc_api_check_output_never_shows_the_key(name, capsys):
    key = KEYS[name]
    with LocalIhcServer(key) as server:
        positions = cut_positions(key, 300)
        server.inject(*[Fault.http(400, message="c" * pad + key) for pad in positions])
        args = ["ihc-api-check", "--api-key", key, "--conv-type-id", "t", "--api-url", server.url]
        outputs = []
        for _ in positions:
            assert main([*args, "--max-attempts", "1"]) == 1
            captured = capsys.readouterr()
            outputs.append(captured.out + captured.err)
    assert any("***" in out for out in outputs)
    for out in outputs:
        assert leaked(out, key) == [], out


@pytest.mark.parametrize("pad_offset", [-3, 0, 4])
def test_cli_run_stderr_and_the_database_file_never_hold_the_key(small_demo, tmp_path, pad_offset):
    """``run --model ihc-api`` fails on a 400 that quotes a key with quotes and backslashes across the cut."""
    key = KEYS["both"]
    db = tmp_path / "api.db"
    db.write_bytes(small_demo.read_bytes())
    with LocalIhcServer(key, max_journeys=50, max_sessions=120) as server:
        pad = 300 - len(json.dumps(key)) + pad_offset
        server.inject(Fault.ok(), Fault.http(400, message="z" * pad + json.dumps(key) + " " + key))
        env = {"IHC_API_KEY": key, "IHC_CONV_TYPE_ID": "local"}
        args = ["--api-url", server.url, "--max-journeys", "50", "--max-sessions", "120", "--max-attempts", "1"]
        r = cli("run", db, "--model", "ihc-api", *args, env=env, cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "400" in r.stderr and "***" in r.stderr
    assert leaked(r.stdout + r.stderr, key) == []
    with sqlite3.connect(db) as con:
        (message,) = con.execute("SELECT message FROM ihc_api_runs WHERE status = 'failed'").fetchone()
    assert "***" in message and leaked(message, key) == []
    for path in tmp_path.iterdir():
        if path.is_file():
            assert leaked(path.read_bytes().decode("utf-8", "replace"), key) == [], path.name
    status = cli("status", db, "--json")
    assert leaked(status.stdout + status.stderr, key) == []
