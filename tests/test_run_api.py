"""`run --model ihc-api` end to end: the pipeline against a real HTTP server on 127.0.0.1."""

import sqlite3

import pytest

from pipeline.db import open_database
from pipeline.ihc_api.local_server import Fault, LocalIhcServer
from pipeline.runner import RunOptions, run_pipeline
from tests.api_support import posts
from tests.helpers import cli

KEY = "pipeline-run-key-5a4b3c2d1e"


@pytest.fixture
def server():
    with LocalIhcServer(KEY, max_journeys=50, max_sessions=120) as srv:
        yield srv


def run(db, server, **kw):
    con = open_database(db, write=True)
    try:
        return run_pipeline(con, RunOptions(model="ihc-api", api_config=server.client_config(), **kw))
    finally:
        con.close()


def cli_run(db, server, *extra, env: dict, cwd):
    """``python -m pipeline run DB --model ihc-api --api-url URL EXTRA…`` in a subprocess."""
    return cli("run", db, "--model", "ihc-api", "--api-url", server.url, *extra, env=env, cwd=cwd)


def test_run_stores_what_the_api_answered_with_phases(small_demo, tmp_path, server):
    db = tmp_path / "api.db"
    db.write_bytes(small_demo.read_bytes())
    result = run(db, server)
    con = sqlite3.connect(db)
    n_sessions = con.execute("SELECT count(*) FROM pipeline_journeys").fetchone()[0]
    assert con.execute("SELECT count(*) FROM attribution_customer_journey").fetchone()[0] == n_sessions
    sums = [s for (s,) in con.execute("SELECT sum(ihc) FROM attribution_customer_journey GROUP BY conv_id")]
    assert all(abs(s - 1) <= 1e-3 for s in sums)
    # the API's phase values are kept beside ihc
    answered = {
        (r.conversion_id, r.session_id): (r.initializer, r.holder, r.closer, r.ihc)
        for p in posts(server)
        if p.answered is not None
        for r in p.answered.itertuples()
    }
    stored = {
        (c, s): (i, h, cl, v)
        for c, s, i, h, cl, v in con.execute(
            "SELECT conv_id, session_id, initializer, holder, closer, ihc FROM pipeline_attribution"
        )
    }
    assert stored == answered
    assert con.execute("SELECT DISTINCT model FROM pipeline_attribution").fetchall() == [("ihc-api",)]
    # every request within the limits, no journey split across requests
    seen = set()
    for p in posts(server):
        assert p.n_journeys <= 50 and p.n_sessions <= 120
        ids = set(p.journeys["conversion_id"])
        assert not ids & seen
        seen |= ids
    summary = result.outcomes[1].record.summary
    assert summary["api"]["requests"] == len(posts(server))
    assert con.execute("SELECT count(*) FROM channel_reporting").fetchone()[0] > 0


def test_partial_failures_are_reported_not_attributed_and_rerun_sends_nothing(small_demo, tmp_path, server):
    db = tmp_path / "api.db"
    db.write_bytes(small_demo.read_bytes())
    server.inject(Fault.partial(count=2, message="journey rejected"))
    run(db, server)
    con = sqlite3.connect(db)
    failed = con.execute(
        "SELECT conv_id, reason FROM pipeline_unattributed WHERE reason != 'no session before the conversion'"
    ).fetchall()
    assert len(failed) == 2 and all("journey rejected" in reason for _, reason in failed)
    ids = [c for c, _ in failed]
    assert (
        con.execute(
            f"SELECT count(*) FROM attribution_customer_journey WHERE conv_id IN ({','.join('?' * len(ids))})", ids
        ).fetchone()[0]
        == 0
    )
    before = len(posts(server))
    again = run(db, server)
    assert len(posts(server)) == before  # a finished run sends nothing
    assert [o.skipped for o in again.outcomes] == [True, True, True]


def test_cli_run_with_the_api_and_the_key_appears_nowhere(small_demo, tmp_path, server):
    db = tmp_path / "api.db"
    db.write_bytes(small_demo.read_bytes())
    out = tmp_path / "report.csv"
    env = {"IHC_API_KEY": KEY, "IHC_CONV_TYPE_ID": "local"}
    r = cli_run(db, server, "--max-journeys", "50", "--max-sessions", "120", "--csv", out, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "attribute:" in r.stdout and "ihc-api" in r.stdout
    for text in (r.stdout, r.stderr, out.read_text()):
        assert KEY not in text
    assert KEY.encode() not in db.read_bytes()
    status = cli("status", db, "--json")
    assert KEY not in status.stdout


def test_missing_key_fails_before_any_work(small_demo, tmp_path, server):
    db = tmp_path / "api.db"
    db.write_bytes(small_demo.read_bytes())
    before = db.read_bytes()
    r = cli_run(db, server, env={"IHC_API_KEY": "", "IHC_CONV_TYPE_ID": ""}, cwd=tmp_path)  # cwd has no .env
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error:") and "IHC" in r.stderr
    assert db.read_bytes() == before
    assert posts(server) == []
