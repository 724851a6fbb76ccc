"""``convert``: SQLite → Parquet folder / DuckDB file; exact types, staging + rename, refusal to overwrite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.convert import convert
from pipeline.errors import InputError
from pipeline.schema import INPUT_TABLES
from tests.helpers import TINY_CONVERSIONS, TINY_COSTS, TINY_SESSIONS, cli, make_db, run_db


def _sqlite_rows(db: Path, table: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    finally:
        con.close()


def _typed(rows):
    """Values with their Python types, so 1 vs 1.0 vs '1' differ."""
    return [tuple((type(v).__name__, v) for v in row) for row in rows]


@pytest.fixture
def ran(tmp_path):
    """The tiny database after a full run (so the output tables exist)."""
    db = make_db(tmp_path / "t.db", TINY_SESSIONS, TINY_CONVERSIONS, TINY_COSTS)
    run_db(db, model="linear")
    return db


def test_parquet_round_trips_types_exactly(ran, tmp_path):
    before = ran.read_bytes()
    result = convert(ran, f"parquet:///{tmp_path / 'lake'}", outputs=True)
    assert ran.read_bytes() == before  # the SQLite file is only read
    assert result.rows["session_sources"] == len(TINY_SESSIONS)
    for table in [*INPUT_TABLES, "attribution_customer_journey", "channel_reporting"]:
        got = pq.read_table(tmp_path / "lake" / f"{table}.parquet").to_pylist()
        assert _typed(sorted((tuple(r.values()) for r in got), key=repr)) == _typed(_sqlite_rows(ran, table)), table
    schema = pq.read_schema(tmp_path / "lake" / "session_sources.parquet")
    assert [str(t) for t in schema.types] == ["string"] * 5 + ["int64"] * 3
    assert str(pq.read_schema(tmp_path / "lake" / "conversions.parquet").field("revenue").type) == "double"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_duckdb_round_trips_types_exactly(ran, tmp_path):
    target = tmp_path / "t.duckdb"
    convert(ran, f"duckdb:///{target}", outputs=True)
    con = duckdb.connect(str(target), read_only=True)
    try:
        for table in [*INPUT_TABLES, "attribution_customer_journey", "channel_reporting"]:
            got = sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            assert _typed(got) == _typed(_sqlite_rows(ran, table)), table
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'conversions'"
            ).fetchall()
        )
    finally:
        con.close()
    assert types == {
        "conv_id": "VARCHAR",
        "user_id": "VARCHAR",
        "conv_date": "VARCHAR",
        "conv_time": "VARCHAR",
        "revenue": "DOUBLE",
    }


def test_without_outputs_only_the_input_tables(ran, tmp_path):
    convert(ran, f"parquet:///{tmp_path / 'lake'}")
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == [f"{t}.parquet" for t in sorted(INPUT_TABLES)]


def test_leading_nulls_keep_the_declared_type(tmp_path):
    """ADBC types a column by its first batch: a column starting with >1 batch of NULLs stays typed."""
    sessions = [(f"s{i}", None, "2023-09-01", "10:00:00", None, 0, 0, 0) for i in range(140_000)]
    sessions.append(("last", "u1", "2023-09-02", "11:00:00", "Display", 1, 0, 1))
    conversions = [("c1", "u1", "2023-09-03", "10:00:00", None)] * 1 + [("c2", "u1", "2023-09-03", "11:00:00", 2.5)]
    db = make_db(tmp_path / "n.db", sessions, conversions, [("last", None)])
    convert(db, f"parquet:///{tmp_path / 'lake'}")
    s = pq.read_table(tmp_path / "lake" / "session_sources.parquet")
    assert str(s.schema.field("user_id").type) == "string" and s.column("user_id")[-1].as_py() == "u1"
    assert str(s.schema.field("channel_name").type) == "string"
    c = pq.read_table(tmp_path / "lake" / "conversions.parquet")
    assert c.column("revenue").to_pylist() == [None, 2.5]
    assert str(pq.read_schema(tmp_path / "lake" / "session_costs.parquet").field("cost").type) == "double"


def test_refuses_to_overwrite_then_replaces_with_flag(ran, tmp_path):
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "keep.txt").write_text("old")
    with pytest.raises(InputError, match="already exists; pass --overwrite"):
        convert(ran, f"parquet:///{lake}")
    assert (lake / "keep.txt").read_text() == "old"
    convert(ran, f"parquet:///{lake}", overwrite=True)
    assert not (lake / "keep.txt").exists() and (lake / "conversions.parquet").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_value_of_the_wrong_type_stops_before_anything_is_written(tmp_path):
    bad = list(TINY_SESSIONS) + [("s9", "u9", "2023-09-01", "10:00:00", "Display", "yes", 0, 0)]
    db = make_db(tmp_path / "bad.db", bad, TINY_CONVERSIONS, TINY_COSTS)
    for target in (f"parquet:///{tmp_path / 'lake'}", f"duckdb:///{tmp_path / 'x.duckdb'}"):
        with pytest.raises(InputError, match="session_sources has a value that does not fit"):
            convert(db, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.db"]


def test_cli(ran, tmp_path):
    target = tmp_path / "t.duckdb"
    done = cli("convert", ran, f"duckdb:///{target}", "-q")
    assert done.returncode == 0, done.stderr
    assert "session_sources: 6 rows" in done.stdout
    again = cli("convert", ran, f"duckdb:///{target}")
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "already exists" in again.stderr
    missing = cli("convert", tmp_path / "nope.db", f"parquet:///{tmp_path / 'l'}")
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    wrong = cli("convert", ran, "postgres://ana:pw-123@localhost/db")
    assert wrong.returncode == 2 and "pw-123" not in wrong.stderr


def test_prefetched_keeps_order_raises_the_readers_error_and_stops_the_reader_early():
    from pipeline.convert import prefetched

    assert list(prefetched(iter(range(10)), depth=2)) == list(range(10))

    def failing():
        yield 1
        raise InputError("bad value")

    got = []
    with pytest.raises(InputError, match="bad value"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1]

    closed = []

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.append(True)

    stream = prefetched(endless(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()  # the consumer stops: the reading thread is stopped and its generator closed
    assert closed == [True]
