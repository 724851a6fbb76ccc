"""CLI: ``ihc-api-check`` and ``ihc-local-server``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from pipeline.cli import main
from pipeline.ihc_api.local_server import LocalIhcServer
from pipeline.ihc_api.synthetic import make_journeys

REPO = Path(__file__).resolve().parents[1]
KEY = "cli-test-key-abc"


pytestmark = pytest.mark.usefixtures("no_ihc_environment")


@pytest.fixture
def server():
    with LocalIhcServer(KEY) as srv:
        yield srv


def test_check_reports_what_it_learned(server, capsys, monkeypatch):
    monkeypatch.setenv("IHC_API_KEY", KEY)
    monkeypatch.setenv("IHC_CONV_TYPE_ID", "challenge")
    assert main(["ihc-api-check", "--api-url", server.url]) == 0
    out = capsys.readouterr().out
    assert "key: accepted" in out
    assert "conversion type 'challenge': accepted" in out
    assert "latency:" in out and " ms" in out
    assert "server: local stand-in server" in out
    assert "limits: 100 journeys, 3000 sessions per request" in out
    [request] = server.received
    assert request.n_sessions == 1 and request.conv_type_id == "challenge"


def test_check_reads_an_env_file(server, capsys, tmp_path):
    env_file = tmp_path / "api.env"
    env_file.write_text(f"IHC_API_KEY={KEY}\nIHC_CONV_TYPE_ID=t\nIHC_API_URL={server.url}\n")
    assert main(["ihc-api-check", "--env-file", str(env_file)]) == 0
    assert KEY not in capsys.readouterr().out


def test_check_without_a_key_says_so_and_sends_nothing(server, capsys):
    assert main(["ihc-api-check", "--api-url", server.url, "--conv-type-id", "t"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no IHC API key") and err.count("\n") == 1
    assert server.received == []


def test_check_with_a_wrong_key(server, capsys):
    code = main(["ihc-api-check", "--api-url", server.url, "--conv-type-id", "t", "--api-key", "nope"])
    out = capsys.readouterr().out
    assert code == 1 and "FAILED: the key was refused" in out and "403" in out


def test_check_with_an_unknown_conversion_type(capsys):
    with LocalIhcServer(KEY, conv_type_ids={"trained"}) as srv:
        code = main(["ihc-api-check", "--api-url", srv.url, "--conv-type-id", "other", "--api-key", KEY])
    out = capsys.readouterr().out
    assert code == 1 and "refused the request — check the conversion type id" in out and "not trained" in out


def test_check_when_unreachable(server, capsys):
    url = server.url
    server.stop()
    code = main(["ihc-api-check", "--api-url", url, "--conv-type-id", "t", "--api-key", KEY, "--max-attempts", "1"])
    out = capsys.readouterr().out
    assert code == 1 and "could not be reached: connection refused" in out and "Nothing was sent." in out


def test_probe_limits(capsys):
    with LocalIhcServer(KEY, max_sessions=200) as srv:
        args = ["ihc-api-check", "--api-url", srv.url, "--conv-type-id", "t", "--api-key", KEY, "--probe-limits"]
        assert main(args + ["--max-sessions", "200"]) == 0
        out = capsys.readouterr().out
        assert "limits accepted: 100 journeys, 200 sessions in one request" in out
        sizes = [r.n_sessions for r in srv.received]
        assert sizes == [1, 200] and srv.received[1].n_journeys == 100
        assert main(args) == 1  # 3000 sessions: a free account refuses
        out = capsys.readouterr().out
        assert "limits NOT accepted" in out and "too many sessions" in out


def test_help_texts():
    for command in ("ihc-api-check", "ihc-local-server"):
        result = subprocess.run(
            [sys.executable, "-m", "pipeline", command, "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0 and "usage:" in result.stdout and len(result.stdout) > 300


def test_local_server_command_serves_until_ctrl_c(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "ihc-local-server", "--port", "0", "--stand-in"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        first = process.stdout.readline()
        assert first.startswith("IHC local server listening on http://127.0.0.1:")
        url = first.split(" on ", 1)[1].strip()
        lines = [process.stdout.readline() for _ in range(4)]
        assert "stand-in" in lines[0] and "IHC_API_KEY=local-key" in lines[2]
        journeys = json.loads(make_journeys([2]).to_json(orient="records"))
        answer = requests.post(
            url,
            params={"conv_type_id": "t"},
            json={"customer_journeys": journeys},
            headers={"x-api-key": "local-key"},
            timeout=10,
        )
        assert answer.status_code == 200 and len(answer.json()["value"]) == 2
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
        assert process.returncode == 0 and "stopped" in out and "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_local_server_refuses_a_busy_port(capsys, server):
    assert main(["ihc-local-server", "--port", str(server.port)]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model-param", "novalue"], "NAME=VALUE"),
        (["--stand-in", "--model-param", "profile=x"], "not to --stand-in"),
        (["--port", "70000"], "between 0 and 65535"),
    ],
)
def test_local_server_bad_options(capsys, args, words):
    assert main(["ihc-local-server", *args]) == 2
    assert words in capsys.readouterr().err
