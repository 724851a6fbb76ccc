"""`run SOURCE --model ihc-api` on DuckDB and Parquet sources (pipeline.engines.api_run), against the
real loopback fake IHC server: the same credit (1e-9), report and byte-identical --csv as the SQLite
engine's run on the same data; a second run is up to date and sends nothing; an interrupted run
(the server failing a chunk) resumes without re-sending the answered chunks; the key is stored nowhere."""

from __future__ import annotations

import json
import sqlite3

import pytest

from pipeline.cli import main
from pipeline.convert import convert
from pipeline.engines.api_run import ledger_path
from pipeline.engines.run import open_run
from pipeline.ihc_api.local_server import Fault, LocalIhcServer
from pipeline.sources import parse_source
from tests.api_support import posts as _posts
from tests.engine_support import KINDS, demo_sources
from tests.pg_server import pg_binaries, start_server
from tests.test_engine_run import _credits, _report

KEY = "engine-api-key-7f6e5d4c3b"


@pytest.fixture
def server():
    with LocalIhcServer(KEY, max_journeys=50, max_sessions=120) as srv:
        yield srv


@pytest.fixture
def api_env(monkeypatch, tmp_path):
    monkeypatch.setenv("IHC_API_KEY", KEY)
    monkeypatch.setenv("IHC_CONV_TYPE_ID", "local")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no .env here


@pytest.fixture
def sources(small_demo, tmp_path):
    return demo_sources(small_demo, tmp_path)


def _run(source, server, *extra) -> int:
    argv = ["run", source, "--model", "ihc-api", "--api-url", server.url, "--max-journeys", "50"]
    return main([str(a) for a in [*argv, "--max-sessions", "120", "-q", *extra]])


def _sent_ids(posts) -> list:
    return [c for p in posts if p.journeys is not None for c in set(p.journeys["conversion_id"])]


def test_same_numbers_as_sqlite_and_a_second_run_is_up_to_date(sources, server, api_env, tmp_path, capsys):
    csv = {}
    for kind, source in sources.items():
        csv[kind] = tmp_path / f"{kind}.csv"
        before = len(_posts(server))
        assert _run(source, server, "--csv", csv[kind]) == 0, kind
        assert len(_posts(server)) > before, kind  # every face asked the API (its own ledger)
    ref_credit, ref_report = _credits("sqlite", sources["sqlite"]), _report("sqlite", sources["sqlite"])
    assert ref_credit and ref_report
    for kind in KINDS:
        credit = _credits(kind, sources[kind])
        assert credit.keys() == ref_credit.keys(), kind
        assert max(abs(credit[k] - ref_credit[k]) for k in ref_credit) <= 1e-9, kind
        report = _report(kind, sources[kind])
        assert report.keys() == ref_report.keys(), kind
        assert max(abs(a - b) for k in ref_report for a, b in zip(report[k], ref_report[k])) <= 1e-6, kind
        assert csv[kind].read_bytes() == csv["sqlite"].read_bytes(), kind
        work = ledger_path(parse_source(sources[kind]))
        assert work.name.startswith(".") and work.name.endswith(".ihc-api.db") and work.exists()
        assert KEY.encode() not in work.read_bytes()
    # a second run: up to date, nothing sent
    before = len(_posts(server))
    for kind in KINDS:
        capsys.readouterr()
        assert _run(sources[kind], server) == 0
        out = capsys.readouterr().out
        assert "attribute: up to date (ihc-api" in out, out
    assert len(_posts(server)) == before


@pytest.mark.parametrize("kind", KINDS)
def test_interrupted_run_resumes_without_resending(sources, server, api_env, kind, tmp_path, capsys):
    reference = tmp_path / "ref.csv"
    assert _run(sources["sqlite"], server, "--csv", reference) == 0
    start = len(_posts(server))
    server.inject(Fault.ok(), Fault.ok(), Fault.http(400, "injected: bad request"))
    assert _run(sources[kind], server) != 0
    assert "Traceback" not in capsys.readouterr().err
    first = _posts(server)[start:]
    answered = [p for p in first if p.status == 200]
    assert len(answered) == 2 and len(first) == 3
    # nothing written to the source: no report yet
    assert not _report_exists(kind, sources[kind])
    resumed_at = len(_posts(server))
    out = tmp_path / f"{kind}.csv"
    assert _run(sources[kind], server, "--csv", out) == 0
    second = _posts(server)[resumed_at:]
    assert second and not set(_sent_ids(second)) & set(_sent_ids(answered))  # answered chunks not re-sent
    assert out.read_bytes() == reference.read_bytes()


def _report_exists(kind: str, source: str) -> bool:
    try:
        return bool(_report(kind, source))
    except Exception:  # noqa: BLE001 - no table / folder yet
        return False


def test_server_sources_keep_their_ledger_in_the_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    source = parse_source("postgres://me:secret@127.0.0.1:5432/shop")
    path = ledger_path(source)
    assert path.parent == tmp_path / "attribution-pipeline" / "ihc-api"
    assert "secret" not in str(path) and path.name.endswith(".ihc-api.db")
    assert ledger_path(parse_source("postgres://me:other@127.0.0.1:5432/shop")) == path  # secrets do not count
    assert ledger_path(parse_source("duckdb:///" + str(tmp_path / "x.duckdb"))) == tmp_path / ".x.duckdb.ihc-api.db"


def test_partial_failures_counted_as_on_sqlite(sources, server, api_env, tmp_path):
    """Conversions the API rejects get no credit and are counted in not_attributed, as on SQLite."""
    csv = {}
    for kind in ("sqlite", "duckdb"):
        server.inject(Fault.partial(count=2, message="journey rejected"))
        csv[kind] = tmp_path / f"{kind}.csv"
        assert _run(sources[kind], server, "--csv", csv[kind]) == 0
    assert csv["duckdb"].read_bytes() == csv["sqlite"].read_bytes()
    ref = _credits("sqlite", sources["sqlite"])
    assert _credits("duckdb", sources["duckdb"]).keys() == ref.keys()
    con = sqlite3.connect(sources["sqlite"])
    (summary,) = con.execute("SELECT summary FROM pipeline_stages WHERE stage = 'attribute'").fetchone()
    con.close()
    mod, eng = open_run(sources["duckdb"], write=False)
    with eng:
        record = mod.run_record(eng)
    ours = record["stages"]["attribute"]["summary"]["not_attributed"]
    assert ours == json.loads(summary)["not_attributed"]
    assert sum(n for reason, n in ours.items() if "journey rejected" in reason) == 2


@pytest.mark.skipif(pg_binaries() is None, reason="no PostgreSQL binaries (.ci/run installs them)")
def test_postgres_same_csv_and_ledger_in_the_cache(sources, server, api_env, tmp_path):
    pg = start_server()
    try:
        url = pg.url()
        convert(sources["sqlite"], url)
        assert _run(sources["sqlite"], server, "--csv", tmp_path / "sqlite.csv") == 0
        assert _run(url, server, "--csv", tmp_path / "pg.csv") == 0
        assert (tmp_path / "pg.csv").read_bytes() == (tmp_path / "sqlite.csv").read_bytes()
        work = ledger_path(parse_source(url))
        assert work.parent == tmp_path / "cache" / "attribution-pipeline" / "ihc-api" and work.exists()
        assert KEY.encode() not in work.read_bytes() and pg.url().encode() not in work.read_bytes()
        before = len(_posts(server))
        assert _run(url, server) == 0  # up to date: nothing sent
        assert len(_posts(server)) == before
    finally:
        pg.stop()
