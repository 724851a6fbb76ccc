"""Binary (BLOB) values where text belongs, and their kin, on every face besides the SQLite run: the IHC
API option, ``convert`` and the DuckDB engine (a DuckDB file, a Parquet folder). Each gets one line,
exit 2, nothing written and its input unchanged — where before the API was sent BLOB ids, ``convert``
turned a column of text with one BLOB into a column of bytes (and integer ids into text ones, which then
matched text ids SQLite never matches), and the DuckDB engine crashed on a BLOB channel column or
accepted BLOB ids and dates."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from pipeline.ihc_api.local_server import LocalIhcServer
from tests.api_support import posts
from tests.helpers import TINY_CONVERSIONS, TINY_COSTS, TINY_SESSIONS, cli, make_db, tiny_db
from tests.pg_server import PASSWORD
from tests.test_cli import assert_clean_failure
from tests.test_malformed import UNTYPED, _with

KEY = "malformed-faces-key-1f2e3d"
NUMBERS = {"u1": 7, "u2": 8, "u3": 9}  # the tiny data's users as integer ids


def digest(path: Path) -> str:
    """The bytes of a file, or of every file of a folder."""
    if path.is_dir():
        return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def blob_ids(rows, column: int):
    return [tuple(v.encode() if i == column else v for i, v in enumerate(r)) for r in rows]


# SQLite files (untyped columns, as an export without declared types is) with a BLOB where text belongs,
# or ids of two types in one column: (name, sessions, conversions, costs, the fragments of the one line
# of `run` — validation's — and of `convert`)
SQLITE_CASES = [
    (
        "blob_channel_names",
        [(*s[:4], s[4].encode(), *s[5:]) if i < 3 else s for i, s in enumerate(TINY_SESSIONS)],
        TINY_CONVERSIONS,
        TINY_COSTS,
        ["session_sources.channel_name holds 3 binary (BLOB) values"],
        ["session_sources.channel_name holds binary (BLOB) values where channel names belong"],
    ),
    (
        "one_blob_session_id",
        _with(TINY_SESSIONS, 0, session_id=b"s1"),
        TINY_CONVERSIONS,
        TINY_COSTS,
        ["session_sources.session_id", "mixed types (5 text, 1 binary (BLOB))"],
        ["session_sources.session_id holds binary (BLOB) values where ids belong"],
    ),
    (
        "blob_dates",
        _with(TINY_SESSIONS, 1, date=b"2023-09-02"),
        TINY_CONVERSIONS,
        TINY_COSTS,
        ["session_sources.event_date: 1 row has no valid date", "b'2023-09-02'"],
        ["session_sources.event_date holds binary (BLOB) values where dates (YYYY-MM-DD) belong"],
    ),
    # every id of a column a BLOB: one type, so no "mixed types" — yet no id at all
    (
        "all_user_ids_blob",
        blob_ids(TINY_SESSIONS, 1),
        blob_ids(TINY_CONVERSIONS, 1),
        TINY_COSTS,
        ["conversions.user_id holds 3 binary (BLOB) values where ids belong", "store them as text or integers"],
        ["session_sources.user_id holds binary (BLOB) values where ids belong"],  # the first table converted
    ),
    (
        "all_conv_ids_blob",
        TINY_SESSIONS,
        blob_ids(TINY_CONVERSIONS, 0),
        TINY_COSTS,
        ["conversions.conv_id holds 3 binary (BLOB) values where ids belong", "b'c1', b'c2', b'c3'"],
        ["conversions.conv_id holds binary (BLOB) values where ids belong"],
    ),
    (
        "all_session_ids_blob",
        blob_ids(TINY_SESSIONS, 0),
        TINY_CONVERSIONS,
        blob_ids(TINY_COSTS, 0),
        ["session_sources.session_id holds 6 binary (BLOB) values where ids belong"],
        ["session_sources.session_id holds binary (BLOB) values where ids belong"],
    ),
    (
        "integer_and_text_user_ids_in_one_column",
        _with(TINY_SESSIONS, 5, user_id=3),
        TINY_CONVERSIONS,
        TINY_COSTS,
        ["session_sources.user_id", "mixed types (5 text, 1 integer)"],
        ["session_sources.user_id holds values of mixed types (integer and text)"],
    ),
    # convert turned this column into one of reals (7 → 7.0), which the engines then ran against real
    # conversion ids, where SQLite refuses the mix
    (
        "integer_and_real_user_ids_in_one_column",
        [(s, 7.0 if s == "s1" else NUMBERS[u], *rest) for s, u, *rest in TINY_SESSIONS],
        [(c, float(NUMBERS[u]), *rest) for c, u, *rest in TINY_CONVERSIONS],
        TINY_COSTS,
        ["session_sources.user_id", "mixed types (5 integer, 1 real)"],
        ["session_sources.user_id holds ids of mixed types (integer and real)", "store them all as integers"],
    ),
]
IDS = [c[0] for c in SQLITE_CASES]


@pytest.fixture
def server():
    with LocalIhcServer(KEY, max_journeys=50, max_sessions=120) as srv:
        yield srv


@pytest.mark.parametrize("sessions, conversions, costs, fragments, _", [c[1:] for c in SQLITE_CASES], ids=IDS)
def test_the_ihc_api_option_sends_nothing_for_them(tmp_path, server, sessions, conversions, costs, fragments, _):
    db = make_db(tmp_path / "bad.db", sessions, conversions, costs, ddl=UNTYPED)
    before = digest(db)
    env = {"IHC_API_KEY": KEY, "IHC_CONV_TYPE_ID": "t"}
    r = cli("run", db, "--model", "ihc-api", "--api-url", server.url, env=env, cwd=tmp_path)
    assert_clean_failure(r, *fragments)
    assert posts(server) == []
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.db"]
    assert KEY not in r.stderr + r.stdout


@pytest.mark.parametrize("kind", ["duckdb", "parquet"])
@pytest.mark.parametrize("sessions, conversions, costs, _, fragments", [c[1:] for c in SQLITE_CASES], ids=IDS)
def test_convert_refuses_them_and_writes_nothing(tmp_path, kind, sessions, conversions, costs, _, fragments):
    db = make_db(tmp_path / "bad.db", sessions, conversions, costs, ddl=UNTYPED)
    before = digest(db)
    target = tmp_path / ("x.duckdb" if kind == "duckdb" else "lake")
    r = cli("convert", db, f"{kind}:///{target}")
    assert_clean_failure(r, *fragments, "validate")
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.db"]  # no target, no staging left


def test_convert_still_takes_integer_ids_and_numbers_of_two_kinds(tmp_path):
    """What one Arrow column keeps is converted: integer ids everywhere, a revenue of integers and reals."""
    import duckdb

    sessions = [(s, {"u1": 1, "u2": 2, "u3": 3}[u], *rest) for s, u, *rest in TINY_SESSIONS]
    conversions = [(c, {"u1": 1, "u2": 2}[u], d, t, int(v) if c == "c1" else v) for c, u, d, t, v in TINY_CONVERSIONS]
    db = make_db(tmp_path / "ints.db", sessions, conversions, TINY_COSTS, ddl=UNTYPED)
    r = cli("convert", db, f"duckdb:///{tmp_path / 'x.duckdb'}")
    assert r.returncode == 0, r.stderr
    con = duckdb.connect(str(tmp_path / "x.duckdb"), read_only=True)
    assert con.execute("SELECT user_id, revenue FROM conversions ORDER BY conv_id").fetchall() == [
        (1, 100.0),
        (1, 50.0),
        (2, 80.0),
    ]
    con.close()


def _non_utf8(path: Path) -> Path:
    tiny_db(path)
    con = sqlite3.connect(path)
    con.execute("UPDATE session_sources SET channel_name = CAST(X'446973706C6179FF' AS TEXT) WHERE session_id = 's5'")
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize("kind", ["duckdb", "parquet"])
def test_convert_refuses_text_that_is_not_utf8(tmp_path, kind):
    """SQLite keeps any bytes as TEXT: DuckDB raised a traceback on them, the Parquet file took them."""
    db = _non_utf8(tmp_path / "latin.db")
    before = digest(db)
    target = tmp_path / ("x.duckdb" if kind == "duckdb" else "lake")
    assert_clean_failure(cli("convert", db, f"{kind}:///{target}"), "session_sources.channel_name", "not UTF-8")
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latin.db"]


@pytest.mark.parametrize("command", ["validate", "run"])
def test_text_that_is_not_utf8_is_named_with_what_to_do(tmp_path, command):
    """Were: "the database could not be read: Could not decode to UTF-8 column 'channel_name' with text
    '…'" — sqlite3's words, with no way out. Now the column, the value and the fix, nothing written."""
    db = _non_utf8(tmp_path / "latin.db")
    before = digest(db)
    r = cli(command, db)
    assert_clean_failure(r, "column 'channel_name' holds text that is not UTF-8", "store the text as UTF-8")
    assert "Could not decode" not in r.stderr
    assert digest(db) == before


def test_convert_checks_every_batch_not_only_the_first(tmp_path, monkeypatch):
    """A BLOB in a declared TEXT column, in the third batch: refused, nothing written."""
    from pipeline import convert as convert_module
    from pipeline.errors import InputError

    rows = [(*s[:4], s[4].encode(), *s[5:]) if i == 5 else s for i, s in enumerate(TINY_SESSIONS)]
    db = make_db(tmp_path / "late.db", rows, TINY_CONVERSIONS, TINY_COSTS)
    monkeypatch.setattr(convert_module, "BATCH_ROWS", 2)
    with pytest.raises(InputError, match="session_sources.channel_name holds binary"):
        convert_module.convert(db, f"parquet:///{tmp_path / 'lake'}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.db"]


# ---- the DuckDB engine: a typed column holds one type ---------------------------------------------------

TYPED = {
    "session_sources": "session_id VARCHAR, user_id VARCHAR, event_date VARCHAR, event_time VARCHAR, "
    "channel_name VARCHAR, holder_engagement BIGINT, closer_engagement BIGINT, impression_interaction BIGINT",
    "conversions": "conv_id VARCHAR, user_id VARCHAR, conv_date VARCHAR, conv_time VARCHAR, revenue DOUBLE",
    "session_costs": "session_id VARCHAR, cost DOUBLE",
}
USER_NUMBERS = "CASE user_id WHEN 'u1' THEN 7 WHEN 'u2' THEN 8 ELSE 9 END"
REAL_AGAINST_INTEGER = "conversions.user_id holds integer ids and session_sources.user_id real ids"
REAL_AGAINST_TEXT = "conversions.user_id holds text ids and session_sources.user_id real ids"

# (name, ALTER statements turning the tiny data's columns into the case, fragments of the one line)
DUCK_CASES = [
    (
        "blob_channel_column",
        ["ALTER TABLE session_sources ALTER channel_name TYPE BLOB USING encode(channel_name)"],
        ["session_sources.channel_name holds 6 binary (BLOB) values where channel names belong", "b'Display'"],
    ),
    (
        "blob_session_ids_against_text_cost_ids",
        ["ALTER TABLE session_sources ALTER session_id TYPE BLOB USING encode(session_id)"],
        ["session_sources.session_id holds 6 binary (BLOB) values where ids belong"],
    ),
    (
        "blob_conversion_dates",
        ["ALTER TABLE conversions ALTER conv_date TYPE BLOB USING encode(conv_date)"],
        ["conversions.conv_date holds 3 binary (BLOB) values where dates (YYYY-MM-DD) belong"],
    ),
    (
        "integer_user_ids_against_text_ones",
        [f"ALTER TABLE session_sources ALTER user_id TYPE BIGINT USING {USER_NUMBERS}"],
        ["conversions.user_id holds text ids and session_sources.user_id integer ids", "never match"],
    ),
    # SQLite refuses real ids against integer or text ones; DuckDB matched 7.0 with 7 and with '7'
    (
        "real_user_ids_against_integer_ones",
        [
            f"ALTER TABLE session_sources ALTER user_id TYPE DOUBLE USING {USER_NUMBERS}",
            f"ALTER TABLE conversions ALTER user_id TYPE BIGINT USING {USER_NUMBERS}",
        ],
        [REAL_AGAINST_INTEGER, "store both as integers"],
    ),
    (
        "real_user_ids_against_text_ones",
        [
            f"ALTER TABLE session_sources ALTER user_id TYPE DOUBLE USING {USER_NUMBERS}",
            f"UPDATE conversions SET user_id = CAST({USER_NUMBERS} AS VARCHAR)",
        ],
        [REAL_AGAINST_TEXT, "never match"],
    ),
    (
        "float_conversion_ids_against_integer_ones",  # a 4-byte FLOAT is a real too
        [
            f"ALTER TABLE session_sources ALTER user_id TYPE BIGINT USING {USER_NUMBERS}",
            f"ALTER TABLE conversions ALTER user_id TYPE FLOAT USING {USER_NUMBERS}",
        ],
        ["conversions.user_id holds real ids and session_sources.user_id integer ids", "store both as integers"],
    ),
    (
        "empty_user_id_in_conversions_and_sessions",
        [
            "UPDATE conversions SET user_id = '' WHERE conv_id = 'c3'",
            "UPDATE session_sources SET user_id = '' WHERE session_id = 's6'",
        ],
        ["conversions.user_id: 1 conversion has an empty user id and 1 session has it too", "(e.g. '')"],
    ),
    (
        "text_007_against_integer_7",  # DuckDB cast '007' to 7 and attributed it; SQLite never matches them
        [
            f"ALTER TABLE session_sources ALTER user_id TYPE BIGINT USING {USER_NUMBERS}",
            "UPDATE conversions SET user_id = CASE user_id WHEN 'u1' THEN '007' ELSE '8' END",
        ],
        ["conversions.user_id holds text ids and session_sources.user_id integer ids", "never match"],
    ),
]


def duck_file(path: Path, alters: list[str]) -> Path:
    import duckdb

    con = duckdb.connect(str(path))
    for table, rows in (
        ("session_sources", TINY_SESSIONS),
        ("conversions", TINY_CONVERSIONS),
        ("session_costs", TINY_COSTS),
    ):
        con.execute(f"CREATE TABLE {table} ({TYPED[table]})")
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    for statement in alters:
        con.execute(statement)
    con.close()
    return path


def parquet_folder(path: Path, alters: list[str]) -> Path:
    import duckdb

    con = duckdb.connect(str(duck_file(path.with_suffix(".duckdb"), alters)))
    path.mkdir()
    for table in TYPED:
        con.execute(f"COPY {table} TO '{path / (table + '.parquet')}' (FORMAT parquet)")
    con.close()
    path.with_suffix(".duckdb").unlink()
    return path


@pytest.mark.parametrize("kind", ["duckdb", "parquet"])
@pytest.mark.parametrize("alters, fragments", [c[1:] for c in DUCK_CASES], ids=[c[0] for c in DUCK_CASES])
def test_the_duckdb_engine_refuses_them_in_one_line(tmp_path, kind, alters, fragments):
    source = duck_file(tmp_path / "x.duckdb", alters) if kind == "duckdb" else parquet_folder(tmp_path / "lake", alters)
    url = f"{kind}:///{source}"
    before = digest(source)
    r = cli("validate", url)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    fatal = [line for line in r.stdout.splitlines() if line.startswith("fatal:")]
    assert len(fatal) == 1, r.stdout
    for fragment in fragments:
        assert fragment in fatal[0], fatal[0]
    assert_clean_failure(cli("run", url, "--model", "linear"), *fragments)
    assert_clean_failure(cli("journeys", url), *fragments)
    assert digest(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]


@pytest.mark.parametrize("dtype", ["BIGINT", "DOUBLE"])
def test_the_duckdb_engine_still_runs_ids_of_one_type_in_every_table(tmp_path, dtype):
    """Integer (or real) user ids on both sides are one type: attributed as SQLite attributes them (2 of
    3: ``both_real`` below)."""
    alters = [
        f"ALTER TABLE {t} ALTER user_id TYPE {dtype} USING {USER_NUMBERS}" for t in ("session_sources", "conversions")
    ]
    r = cli("run", f"duckdb:///{duck_file(tmp_path / 'x.duckdb', alters)}", "--model", "linear", "-q")
    assert r.returncode == 0, r.stderr
    assert "2 conversions attributed" in r.stdout, r.stdout


# ---- real (floating-point) user ids against integer or text ones, on every face -------------------------
# SQLite files (untyped columns) with sessions' user ids stored as reals: (name, conversions' user ids,
# fragments of the one line). SQLite refused them; the DuckDB, Parquet and Postgres engines matched 7.0
# with 7 and with '7' and attributed, and `convert` carried the reals over.
REAL_CASES = [
    ("against_integer_ids", NUMBERS, [REAL_AGAINST_INTEGER, "store both as integers"]),
    ("against_text_ids", {u: str(n) for u, n in NUMBERS.items()}, [REAL_AGAINST_TEXT, "never match"]),
]


def real_ids_db(path: Path, conversion_ids: dict) -> Path:
    sessions = [(s, float(NUMBERS[u]), *rest) for s, u, *rest in TINY_SESSIONS]
    conversions = [(c, conversion_ids[u], *rest) for c, u, *rest in TINY_CONVERSIONS]
    return make_db(path, sessions, conversions, TINY_COSTS, ddl=UNTYPED)


def assert_refused(r, fragments) -> None:
    """``validate``'s one fatal line, or the one error line of another command."""
    if any(line.startswith("fatal:") for line in r.stdout.splitlines()):
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        fatal = [line for line in r.stdout.splitlines() if line.startswith("fatal:")]
        assert len(fatal) == 1 and all(f in fatal[0] for f in fragments), fatal
    else:
        assert_clean_failure(r, *fragments)


@pytest.mark.parametrize("conversion_ids, fragments", [c[1:] for c in REAL_CASES], ids=[c[0] for c in REAL_CASES])
def test_real_user_ids_are_refused_on_every_local_face(tmp_path, conversion_ids, fragments):
    """The SQLite file (`validate`, `run`), then `convert`ed as it is to a DuckDB file and a Parquet folder
    (types unchanged) and given to the DuckDB engine: the same one line, nothing written."""
    db = real_ids_db(tmp_path / "real.db", conversion_ids)
    for command in (["validate"], ["run", "--model", "linear"]):
        assert_refused(cli(command[0], db, *command[1:]), fragments)
    for kind, name in (("duckdb", "x.duckdb"), ("parquet", "lake")):
        target = tmp_path / name
        assert cli("convert", db, f"{kind}:///{target}").returncode == 0
        before = digest(target)
        for command in (["validate"], ["run", "--model", "linear"], ["journeys"]):
            assert_refused(cli(command[0], f"{kind}:///{target}", *command[1:]), fragments)
        assert digest(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake", "real.db", "x.duckdb"]


def test_real_user_ids_on_both_sides_run_on_every_local_face(tmp_path):
    """One type in both tables (reals): SQLite matches 7.0 with 7.0, as the engines do — the same report."""
    db = real_ids_db(tmp_path / "real.db", {u: float(n) for u, n in NUMBERS.items()})
    assert cli("convert", db, f"parquet:///{tmp_path / 'lake'}").returncode == 0
    csvs = []
    for source, csv in ((db, "sqlite.csv"), (f"parquet:///{tmp_path / 'lake'}", "parquet.csv")):
        r = cli("run", source, "--model", "linear", "-q", "--csv", tmp_path / csv)
        assert r.returncode == 0 and "2 conversions attributed" in r.stdout, (r.stdout, r.stderr)
        csvs.append((tmp_path / csv).read_bytes())
    assert csvs[0] == csvs[1]


@pytest.fixture(scope="module")
def pg():
    from tests.pg_server import pg_binaries, start_server

    if pg_binaries() is None:
        pytest.skip("no PostgreSQL binaries: install Debian's postgresql (.ci/run does)")
    srv = start_server()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize("conversion_ids, fragments", [c[1:] for c in REAL_CASES], ids=[c[0] for c in REAL_CASES])
def test_real_user_ids_are_refused_on_postgres(tmp_path, pg, conversion_ids, fragments):
    """`convert` to Postgres keeps the types (double precision against bigint or text); the Postgres
    engine refuses them in SQLite's one line and writes nothing."""
    from tests.test_engine_postgres import _database, _table

    url = _database(pg, "real_" + ("int" if conversion_ids == NUMBERS else "text"))
    assert cli("convert", real_ids_db(tmp_path / "real.db", conversion_ids), url).returncode == 0
    tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
    before = _table(url, tables)
    for command in (["validate"], ["run", "--model", "linear"]):
        r = cli(command[0], url, *command[1:])
        assert_refused(r, fragments)
        assert PASSWORD not in r.stdout + r.stderr
    assert _table(url, tables) == before == [("conversions",), ("session_costs",), ("session_sources",)]


# ---- files the DuckDB engine cannot read ----------------------------------------------------------------


def _truncated_duck(base: Path) -> Path:
    path = duck_file(base / "x.duckdb", [])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # the header is whole: DuckDB opens it, a query fails
    return path


def _sqlite_named_duckdb(base: Path) -> Path:
    return tiny_db(base / "x.duckdb")


def _parquet_not_utf8(base: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    lake = parquet_folder(base / "lake", [])
    table = pq.read_table(lake / "session_sources.parquet")
    bad = pa.array([b"Display\xff"] * table.num_rows, type=pa.binary()).view(pa.string())  # not UTF-8
    pq.write_table(
        table.set_column(table.schema.get_field_index("channel_name"), "channel_name", bad),
        lake / "session_sources.parquet",
    )
    return lake


@pytest.mark.parametrize(
    "make, kind, fragments",
    [
        (_truncated_duck, "duckdb", ["the engine could not read the data", "Could not read enough bytes"]),
        (_sqlite_named_duckdb, "duckdb", ["is a SQLite database, not a DuckDB one", "sqlite:///"]),
        (_parquet_not_utf8, "parquet", ["the engine could not read the data", "not valid UTF8"]),
    ],
    ids=["truncated_duckdb_file", "sqlite_file_as_duckdb", "parquet_text_not_utf8"],
)
def test_an_unreadable_engine_source_is_one_line(tmp_path, make, kind, fragments):
    """Were: a traceback (truncated file, bad UTF-8 at query time), and "Failed to download extension
    sqlite_scanner" for a SQLite file given as duckdb:/// (DuckDB reaches for the network)."""
    source = make(tmp_path)
    before = digest(source)
    url = f"{kind}:///{source}"
    assert_clean_failure(cli("validate", url), *fragments)
    assert_clean_failure(cli("run", url, "--model", "linear"), *fragments)
    assert digest(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]


@pytest.mark.parametrize("alters, fragments", [c[1:] for c in DUCK_CASES], ids=[c[0] for c in DUCK_CASES])
def test_the_ihc_api_option_on_a_duckdb_file_sends_nothing_for_them(tmp_path, server, alters, fragments):
    source = duck_file(tmp_path / "x.duckdb", alters)
    before = digest(source)
    env = {"IHC_API_KEY": KEY, "IHC_CONV_TYPE_ID": "t"}
    r = cli("run", f"duckdb:///{source}", "--model", "ihc-api", "--api-url", server.url, env=env, cwd=tmp_path)
    assert_clean_failure(r, *fragments)
    assert posts(server) == []
    assert digest(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.duckdb"]  # no ledger work file either
