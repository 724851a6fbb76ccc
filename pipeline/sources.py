"""Where the input tables live: a source argument parsed into a typed ``Source``.

Accepted forms (the command line's DB argument; parsing never connects or reads anything):

| form | kind | what it names |
|---|---|---|
| ``path/to/file.db`` or ``sqlite:///path.db`` | ``sqlite`` | today's engine: one SQLite file |
| ``duckdb:///path.duckdb`` | ``duckdb`` | a DuckDB database file |
| ``parquet:///folder`` | ``parquet`` | a folder with ``NAME.parquet`` or ``NAME/*.parquet`` per input table |
| ``postgres://user@host:5432/db`` (``postgresql://``) | ``postgres`` | a PostgreSQL database |
| ``bigquery://project/dataset`` | ``bigquery`` | a BigQuery dataset |
| ``snowflake://user@account/database/schema?warehouse=W`` | ``snowflake`` | a Snowflake schema |
| ``databricks://host/catalog/schema?http_path=P`` | ``databricks`` | a Databricks (Unity Catalog) schema |
| ``spark:///database`` | ``spark`` | a Spark catalog database |

File paths follow SQLAlchemy's convention: three slashes then a relative path (``duckdb:///x.duckdb``),
four for an absolute one (``duckdb:////data/x.duckdb``).

Secrets (a password or token in the URL, or a query parameter whose name holds ``password``, ``token``,
``secret`` or ``key``) are kept apart from everything else: ``repr``, ``str`` and ``display()`` show
``***`` in their place, and every ``InputError`` raised here names the source by ``display()``. A
secret not in the URL comes from the environment, then from a ``.env`` file in the working directory
(read lazily with python-dotenv, without touching ``os.environ``, as ``ihc_api.config`` does), under
the variable of ``SECRET_ENV`` for the source's kind; it is looked up only when asked for
(``Source.secret()``), never stored beyond the object, never printed.

``check_local`` makes sure a file-based source is usable before any work: the file or folder exists,
each input table is there (for Parquet: as ``NAME.parquet`` or a folder ``NAME/`` of Parquet files,
all of one schema), with the required columns.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from .errors import InputError
from .schema import REQUIRED_COLUMNS

MASK = "***"

FILE_KINDS = ("sqlite", "duckdb", "parquet")
WAREHOUSE_KINDS = ("postgres", "bigquery", "snowflake", "databricks", "spark")
SCHEMES = {
    "sqlite": "sqlite",
    "duckdb": "duckdb",
    "parquet": "parquet",
    "postgres": "postgres",
    "postgresql": "postgres",
    "bigquery": "bigquery",
    "snowflake": "snowflake",
    "databricks": "databricks",
    "spark": "spark",
}
# Where a secret not given in the URL comes from (environment first, then .env).
SECRET_ENV = {
    "postgres": "PGPASSWORD",
    "snowflake": "SNOWFLAKE_PASSWORD",
    "databricks": "DATABRICKS_TOKEN",
    "bigquery": "GOOGLE_APPLICATION_CREDENTIALS",
}
SECRET_WORDS = ("password", "passwd", "pwd", "token", "secret", "key", "credential")


def _is_secret_param(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


@dataclass(frozen=True)
class Source:
    """One parsed source. Secrets live only in ``_secrets`` (hidden from repr and comparison)."""

    kind: str  # one of FILE_KINDS + WAREHOUSE_KINDS
    path: Optional[Path] = None  # file-based kinds
    user: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = None
    location: tuple[str, ...] = ()  # database / dataset / catalog, schema ... (the URL's path parts)
    options: tuple[tuple[str, str], ...] = ()  # non-secret query parameters
    _secrets: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    # ---- presentation ---------------------------------------------------------------------------
    def display(self) -> str:
        """The source as a URL with every secret replaced by ``***``: what messages may show."""
        if self.kind in FILE_KINDS:
            return str(self.path) if self.kind == "sqlite" else f"{self.kind}:///{self.path}"
        netloc = ""
        if self.user is not None or "password" in self._secrets:
            netloc = quote(self.user or "", safe="")
            if "password" in self._secrets:
                netloc += f":{MASK}"
            netloc += "@"
        netloc += self.host or ""
        if self.port is not None:
            netloc += f":{self.port}"
        params = list(self.options) + [(name, MASK) for name in self._secrets if name != "password"]
        query = f"?{urlencode(params, safe='*')}" if params else ""
        path = "/".join(quote(part, safe="") for part in self.location)
        return f"{self.kind}://{netloc}/{path}{query}"

    def __str__(self) -> str:
        return self.display()

    def __repr__(self) -> str:
        return f"Source({self.display()!r})"

    @property
    def file(self) -> Path:
        """The file or folder of a file-based source."""
        if self.path is None:
            raise self.error("is not a file or folder source")
        return self.path

    @property
    def is_file(self) -> bool:
        return self.kind in FILE_KINDS

    def option(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return dict(self.options).get(name, default)

    def error(self, message: str) -> InputError:
        """An InputError naming this source, with any secret scrubbed from ``message``."""
        text = f"{self.display()}: {message}"
        for secret in self._secrets.values():
            if secret:
                text = text.replace(secret, MASK)
        return InputError(" ".join(text.split()))

    # ---- credentials ------------------------------------------------------------------------------
    def secret(self, environ: Optional[Mapping[str, str]] = None, env_file: Optional[str | os.PathLike] = None):
        """The password/token: from the URL, else the environment, else ``.env`` (None when none)."""
        if "password" in self._secrets:
            return self._secrets["password"]
        if self._secrets:  # a token or key given as a query parameter
            return next(iter(self._secrets.values()))
        var = SECRET_ENV.get(self.kind)
        if var is None:
            return None
        environ = os.environ if environ is None else environ
        if environ.get(var):
            return environ[var]
        return _env_file_values(env_file).get(var) or None

    def with_secret(self, value: str) -> "Source":
        """A copy carrying ``value`` as its password (e.g. read from the environment by the caller)."""
        return Source(
            self.kind,
            self.path,
            self.user,
            self.host,
            self.port,
            self.location,
            self.options,
            {**self._secrets, "password": value},
        )


def _env_file_values(env_file) -> dict:
    from dotenv import dotenv_values  # only sources that need a secret read it

    candidate = Path(env_file) if env_file is not None else Path.cwd() / ".env"
    if env_file is not None and not candidate.is_file():
        raise InputError(f"env file {str(candidate)!r} does not exist")
    return dict(dotenv_values(candidate)) if candidate.is_file() else {}


def parse_source(text: str | os.PathLike) -> Source:
    """``text`` → Source; InputError (one line, no secret) for an unknown scheme or a malformed URL."""
    raw = os.fspath(text)
    if "://" not in raw:
        if not raw.strip():
            raise InputError("empty source: give a path or a URL such as duckdb:///file.duckdb")
        return Source("sqlite", Path(raw))
    scheme_text, rest = raw.split("://", 1)
    scheme = SCHEMES.get(scheme_text.lower())
    if scheme is None:
        shown = scheme_text if scheme_text.replace("+", "").replace("-", "").isalnum() else "?"
        raise InputError(
            f"unknown source scheme {shown!r} in {shown}://…: use a path, or one of "
            f"{', '.join(s + '://' for s in SCHEMES if s != 'postgresql')}"
        )
    if scheme in FILE_KINDS:
        return _parse_file(scheme, rest)
    return _parse_warehouse(scheme, rest)


def _parse_file(kind: str, rest: str) -> Source:
    path_text, _, query = rest.partition("?")
    if not path_text.startswith("/") or path_text == "/":
        raise InputError(
            f"{kind}://{path_text.split('@')[-1]}: write {kind}:///relative/path or {kind}:////absolute/path"
        )
    if query:
        raise InputError(f"{kind}:///{path_text[1:]}: a file source takes no ?options")
    return Source(kind, Path(unquote(path_text[1:])))


def _parse_warehouse(kind: str, rest: str) -> Source:
    secrets: dict[str, str] = {}
    try:
        parts = urlsplit(f"{kind}://{rest}")
    except ValueError:  # Python's words may quote the netloc, password and all: not shown
        raise InputError(
            f"{kind}://…: the URL is not valid (an unclosed [ of an IPv6 address, or a character that is not "
            f"allowed in the host part); write {kind}://user@host:port/…"
        ) from None
    try:
        password, user = parts.password, parts.username
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number; the netloc may hold a password, so not shown
        raise InputError(f"{kind}://…: the host:port part is not valid (the port must be a number)") from None
    if password is not None:
        secrets["password"] = unquote(password)
    options = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if _is_secret_param(name):
            secrets[name] = value
        else:
            options.append((name, value))
    location = tuple(unquote(p) for p in parts.path.split("/") if p)
    source = Source(
        kind,
        None,
        unquote(user) if user is not None else None,
        host,
        port,
        location,
        tuple(options),
        secrets,
    )
    needs: dict[str, tuple[object, str]] = {
        "postgres": (host, "a host (postgres://user@host:5432/database)"),
        "snowflake": (host, "an account (snowflake://user@account/database/schema)"),
        "databricks": (host, "a workspace host (databricks://host/catalog/schema?http_path=…)"),
        "bigquery": (host, "a project (bigquery://project/dataset)"),
        "spark": (location, "a database (spark:///database)"),
    }
    needed, what = needs[kind]
    if not needed:
        raise source.error(f"the URL lacks {what}")
    return source


# ---- checks of file-based sources ---------------------------------------------------------------------


def check_local(source: Source, tables: Mapping[str, list[str]] = REQUIRED_COLUMNS) -> dict[str, list[Path]]:
    """Make sure a file-based source holds ``tables`` with their columns; InputError otherwise.
    Returns, for a Parquet source, each table's files (sorted); for the others an empty dict."""
    if source.kind == "sqlite":
        from .db import check_sqlite_file

        try:
            check_sqlite_file(source.file)
        except InputError as exc:
            raise InputError(str(exc)) from None
        return {}
    if source.kind == "duckdb":
        _check_duckdb(source, tables)
        return {}
    if source.kind == "parquet":
        return _check_parquet(source, tables)
    raise source.error("is not a file-based source")


def _check_duckdb(source: Source, tables: Mapping[str, list[str]]) -> None:
    from .db import not_a_regular_file

    path = source.file
    not_a_file = not_a_regular_file(path)
    if not_a_file:
        raise source.error(f"{not_a_file.strip()}, not a DuckDB database file")
    if not path.exists():
        raise source.error("no such file")
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        held = duckdb_lock_holder(exc)
        if held is not None:
            raise source.error(held) from None
        raise source.error(f"is not a readable DuckDB database ({str(exc).splitlines()[0]})") from None
    try:
        present: dict[str, set[str]] = {}
        for table, column in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"
        ).fetchall():
            present.setdefault(table, set()).add(column)
    finally:
        con.close()
    for table, required in tables.items():
        if table not in present:
            raise source.error(f"table {table} is missing (it needs columns {', '.join(required)})")
        missing = [c for c in required if c not in present[table]]
        if missing:
            raise source.error(f"table {table} lacks column(s) {', '.join(missing)}")


_DUCKDB_LOCK = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


def duckdb_lock_holder(exc: BaseException) -> Optional[str]:
    """For DuckDB's refusal to open a file another process has open for writing ("Could not set lock on
    file … Conflicting lock is held in PROGRAM (PID N)"), the one line's words; None for any other error.
    DuckDB lets one process write a file, and nobody else read it meanwhile."""
    text = str(exc)
    if "Could not set lock" not in text:
        return None
    m = _DUCKDB_LOCK.search(text)
    who = f"process {m[2]} ({Path(m[1]).name})" if m else "another process"
    return f"{who} has the file open for writing, and DuckDB lets nobody else open it meanwhile; try again when it has finished"


def parquet_files(source: Source, table: str) -> list[Path]:
    """The Parquet files of ``table`` in a parquet source: ``NAME.parquet`` or ``NAME/**/*.parquet``."""
    single = source.file / f"{table}.parquet"
    folder = source.file / table
    if single.is_file() and folder.is_dir():
        raise source.error(f"table {table} is both {table}.parquet and a folder {table}/; keep one")
    if single.is_file():
        return [single]
    if folder.is_dir():
        files = sorted(p for p in folder.rglob("*.parquet") if p.is_file())
        if not files:
            raise source.error(f"folder {table}/ holds no .parquet file")
        return files
    return []


def _check_parquet(source: Source, tables: Mapping[str, list[str]]) -> dict[str, list[Path]]:
    if not source.file.exists():
        raise source.error("no such folder")
    if not source.file.is_dir():
        raise source.error("is not a folder (a parquet source is a folder of tables)")
    import pyarrow as pa
    import pyarrow.parquet as pq

    found: dict[str, list[Path]] = {}
    for table, required in tables.items():
        files = parquet_files(source, table)
        if not files:
            raise source.error(f"table {table} is missing: no {table}.parquet and no folder {table}/")
        schemas = []
        for path in files:
            try:
                schemas.append(pq.read_schema(path).remove_metadata())
            except (pa.ArrowInvalid, OSError) as exc:
                rel = path.relative_to(source.file)
                raise source.error(f"{rel} is not a readable Parquet file ({str(exc).splitlines()[0]})") from None
        first = schemas[0]
        for path, schema in zip(files[1:], schemas[1:]):
            if not schema.equals(first):
                a, b = files[0].relative_to(source.file), path.relative_to(source.file)
                raise source.error(
                    f"table {table} mixes schemas: {a} has ({_schema_text(first)}), {b} has ({_schema_text(schema)})"
                )
        missing = [c for c in required if c not in first.names]
        if missing:
            raise source.error(f"table {table} lacks column(s) {', '.join(missing)}")
        found[table] = files
    return found


def damaged_parquet_file(source: Source) -> Optional[str]:
    """The first of a Parquet source's input files that pyarrow cannot read through (its path relative to
    the folder), or None: after the engine failed with words that name no file. Reads one row group at a
    time (the memory of one batch); only ever on that failure's path."""
    import pyarrow.parquet as pq

    for table in REQUIRED_COLUMNS:
        try:
            files = parquet_files(source, table)
        except InputError:
            continue
        for path in files:
            try:
                for _ in pq.ParquetFile(path).iter_batches():
                    pass
            except Exception:  # noqa: BLE001 - whatever pyarrow raises, the file is not readable
                return str(path.relative_to(source.file))
    return None


def _schema_text(schema) -> str:
    return ", ".join(f"{f.name} {f.type}" for f in schema)
