"""Parsing source arguments (pipeline.sources): kinds, secrets kept out of every message, local checks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import InputError
from pipeline.schema import REQUIRED_COLUMNS
from pipeline.sources import MASK, check_local, parse_source

PASSWORD = "Hunter2-s3cr3t"


@pytest.mark.parametrize(
    "text, kind",
    [
        ("demo.db", "sqlite"),
        ("sqlite:///demo.db", "sqlite"),
        ("duckdb:///x.duckdb", "duckdb"),
        ("parquet:///lake", "parquet"),
        ("postgres://ana@db.example.com:5432/shop", "postgres"),
        ("postgresql://ana@db.example.com/shop", "postgres"),
        ("bigquery://my-project/analytics", "bigquery"),
        ("snowflake://ana@acme-xy12/SHOP/PUBLIC?warehouse=WH", "snowflake"),
        ("databricks://dbc-1.cloud.databricks.com/main/shop?http_path=/sql/1.0/warehouses/abc", "databricks"),
        ("spark:///shop", "spark"),
    ],
)
def test_kinds(text, kind):
    assert parse_source(text).kind == kind


def test_file_paths_follow_sqlalchemy_slashes():
    assert parse_source("duckdb:///rel/x.duckdb").path == Path("rel/x.duckdb")
    assert parse_source("duckdb:////abs/x.duckdb").path == Path("/abs/x.duckdb")
    assert parse_source("plain/file.db").path == Path("plain/file.db")
    with pytest.raises(InputError, match="duckdb:///relative/path"):
        parse_source("duckdb://x.duckdb")


def test_warehouse_parts():
    s = parse_source("postgres://ana@db.example.com:6543/shop?sslmode=require")
    assert (s.user, s.host, s.port, s.location, s.option("sslmode")) == (
        "ana",
        "db.example.com",
        6543,
        ("shop",),
        "require",
    )
    assert parse_source("spark:///shop").location == ("shop",)
    assert parse_source("snowflake://ana@acct/DB/SCH").location == ("DB", "SCH")


@pytest.mark.parametrize(
    "text",
    [
        f"postgres://ana:{PASSWORD}@db.example.com:5432/shop",
        f"postgresql://ana:{PASSWORD}@db.example.com/shop?sslmode=require",
        f"snowflake://ana:{PASSWORD}@acct/DB/SCH?warehouse=WH",
        f"databricks://dbc-1.example.com/main/shop?http_path=/sql/x&access_token={PASSWORD}",
        f"databricks://token:{PASSWORD}@dbc-1.example.com/main/shop",
        f"bigquery://proj/ds?credentials_base64={PASSWORD}",
    ],
)
def test_password_never_shown(text):
    s = parse_source(text)
    assert s.secret(environ={}) == PASSWORD
    for shown in (s.display(), str(s), repr(s), f"{s!r} {s}", str(s.error(f"failed with {PASSWORD}"))):
        assert PASSWORD not in shown
    assert MASK in s.display()
    assert PASSWORD not in repr(s.__dict__.get("options"))


def test_bad_port_and_unknown_scheme_do_not_echo_the_password():
    for text in (f"postgres://ana:{PASSWORD}@host:notaport/db", f"mysql://ana:{PASSWORD}@host/db"):
        with pytest.raises(InputError) as err:
            parse_source(text)
        assert PASSWORD not in str(err.value)
        assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="unknown source scheme 'mysql'"):
        parse_source("mysql://host/db")


@pytest.mark.parametrize(
    "text",
    [
        f"postgres://ana:{PASSWORD}@[::1/shop",  # an IPv6 address without its ]
        f"postgres://ana:{PASSWORD}@db\u2100example.com/shop",  # ℀ becomes a/c: a / in the host
        f"snowflake://ana:{PASSWORD}@[acct/DB/SCH",
    ],
)
def test_a_url_python_cannot_split_is_one_line_without_the_password(text):
    """Were: a traceback (urlsplit's ValueError), whose last line quoted the netloc — the password in it —
    for the NFKC case: "netloc 'ana:PASSWORD@db℀example.com' contains invalid characters"."""
    from tests.helpers import cli
    from tests.test_cli import assert_clean_failure

    with pytest.raises(InputError, match="the URL is not valid") as err:
        parse_source(text)
    assert PASSWORD not in str(err.value)
    r = cli("validate", text)
    assert_clean_failure(r, "the URL is not valid")
    assert PASSWORD not in r.stdout + r.stderr


def test_missing_parts():
    with pytest.raises(InputError, match="lacks a host"):
        parse_source("postgres:///shop")
    with pytest.raises(InputError, match="lacks a database"):
        parse_source("spark:///")


def test_secret_from_environment_then_env_file(tmp_path, monkeypatch):
    s = parse_source("postgres://ana@localhost/shop")
    with pytest.raises(InputError, match="does not exist"):
        s.secret(environ={}, env_file=tmp_path / "none")
    env_file = tmp_path / ".env"
    env_file.write_text("PGPASSWORD=from-file\n")
    assert s.secret(environ={"PGPASSWORD": "from-env"}, env_file=env_file) == "from-env"
    assert s.secret(environ={}, env_file=env_file) == "from-file"
    monkeypatch.chdir(tmp_path)
    assert s.secret(environ={}) == "from-file"  # .env in the working directory, read lazily
    import os

    assert "PGPASSWORD" not in os.environ or os.environ["PGPASSWORD"] != "from-file"
    secret_source = s.with_secret(PASSWORD)
    assert PASSWORD not in repr(secret_source) and PASSWORD not in secret_source.display()
    assert secret_source.secret(environ={}) == PASSWORD


# ---- local checks ------------------------------------------------------------------------------------


def _table(columns, n=2, **overrides):
    data = {c: pa.array([f"{c}{i}" for i in range(n)]) for c in columns}
    data.update(overrides)
    return pa.table(data)


def _lake(root: Path, split_sessions=False) -> Path:
    root.mkdir()
    for name, cols in REQUIRED_COLUMNS.items():
        table = _table(cols)
        if name == "session_sources" and split_sessions:
            (root / name).mkdir()
            pq.write_table(table, root / name / "part-0.parquet")
            pq.write_table(table, root / name / "part-1.parquet")
        else:
            pq.write_table(table, root / f"{name}.parquet")
    return root


def test_parquet_folder_ok(tmp_path):
    files = check_local(parse_source(f"parquet:///{_lake(tmp_path / 'lake', split_sessions=True)}"))
    assert [p.name for p in files["session_sources"]] == ["part-0.parquet", "part-1.parquet"]
    assert [p.name for p in files["conversions"]] == ["conversions.parquet"]


def test_parquet_errors(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        check_local(parse_source(f"parquet:///{tmp_path / 'nowhere'}"))
    lake = _lake(tmp_path / "lake", split_sessions=True)
    src = parse_source(f"parquet:///{lake}")
    # mixed schemas: one part has the flags as integers
    cols = REQUIRED_COLUMNS["session_sources"]
    pq.write_table(_table(cols, holder_engagement=pa.array([0, 1])), lake / "session_sources" / "part-2.parquet")
    with pytest.raises(InputError, match=r"table session_sources mixes schemas: .*part-2.parquet") as err:
        check_local(src)
    assert "\n" not in str(err.value) and str(lake) in str(err.value)
    (lake / "session_sources" / "part-2.parquet").unlink()
    (lake / "session_costs.parquet").unlink()
    with pytest.raises(InputError, match="table session_costs is missing"):
        check_local(src)
    pq.write_table(_table(["session_id"]), lake / "session_costs.parquet")
    with pytest.raises(InputError, match="session_costs lacks column"):
        check_local(src)


def test_duckdb_checks(tmp_path):
    import duckdb

    with pytest.raises(InputError, match="no such file"):
        check_local(parse_source(f"duckdb:///{tmp_path / 'x.duckdb'}"))
    path = tmp_path / "x.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE session_sources (session_id VARCHAR)")
    con.close()
    with pytest.raises(InputError, match="session_sources lacks column"):
        check_local(parse_source(f"duckdb:///{path}"))
    with pytest.raises(InputError, match="not a readable DuckDB"):
        (tmp_path / "junk.duckdb").write_text("not duckdb")
        check_local(parse_source(f"duckdb:///{tmp_path / 'junk.duckdb'}"))


def test_sqlite_check(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        check_local(parse_source(str(tmp_path / "x.db")))
