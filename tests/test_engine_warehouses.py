"""The BigQuery, Snowflake and Databricks engines (pipeline.engines.bigquery / snowflake / databricks on
pipeline.engines.warehouse), without a warehouse: none can be reached from here, and nothing here fakes a
successful query.

What is checked, with their real drivers installed (requirements-warehouses.txt):
- the URL and the environment become the driver's options (account, database, schema, warehouse, project,
  dataset, http_path, token), and bad URLs are one-line errors;
- a wrong password / a refused key / a closed port is one line naming the source, exit 2, quickly, the
  secret in neither stdout, stderr nor any file, nothing written: Snowflake's driver is pointed at a
  loopback HTTP server that refuses the login (as Snowflake answers a wrong password), BigQuery's at a
  key file whose token endpoint is a loopback server that refuses the key, Databricks' at a closed port;
- a missing driver package is one line naming the package;
- the statements each module sends of its own (table listing, fingerprints, staging DDL, the output swap,
  the run record, the credits upload, Databricks' INSERTs) are recorded on a fake connection and parsed
  back by sqlglot in the warehouse's dialect; the swap's order (record dropped first, written last,
  staging dropped) and a failure in the middle of it are checked on that recording.
The shared set-work queries are compiled for each dialect in tests/test_engine_dialects.py.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import sqlglot

from pipeline.engines import bigquery as BQ
from pipeline.engines import databricks as DBX
from pipeline.engines import snowflake as SF
from pipeline.engines import warehouse as W
from pipeline.errors import InputError
from pipeline.schema import REQUIRED_COLUMNS
from pipeline.sources import parse_source

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "pw-S3cr3t'\"x"
TOKEN = "dapi0123456789abcdef"
MODULES = {"bigquery": BQ, "snowflake": SF, "databricks": DBX}


# ---- URL and environment → the driver's options ------------------------------------------------------


def test_snowflake_options_from_the_url_and_the_environment():
    source = parse_source("snowflake://ana@xy12345.eu-west-1/ANALYTICS/web?warehouse=WH&role=reader")
    kwargs = SF.db_kwargs(source, "pw", environ={})
    assert kwargs["username"] == "ana"
    assert kwargs["password"] == "pw"
    assert kwargs["adbc.snowflake.sql.account"] == "xy12345.eu-west-1"
    assert kwargs["adbc.snowflake.sql.db"] == "ANALYTICS"
    assert kwargs["adbc.snowflake.sql.schema"] == "web"
    assert kwargs["adbc.snowflake.sql.warehouse"] == "WH"
    assert kwargs["adbc.snowflake.sql.role"] == "reader"
    assert "adbc.snowflake.sql.uri.host" not in kwargs  # the account's own endpoint
    no_user = parse_source("snowflake://xy12345/ANALYTICS/web")
    assert SF.db_kwargs(no_user, None, environ={"SNOWFLAKE_USER": "bob"})["username"] == "bob"
    assert "password" not in SF.db_kwargs(no_user, None, environ={"SNOWFLAKE_USER": "bob"})
    with pytest.raises(InputError, match="no user"):
        SF.db_kwargs(no_user, None, environ={})
    assert W.settings({"SNOWFLAKE_USER": "env"}, env_file=None)["SNOWFLAKE_USER"] == "env"
    with pytest.raises(InputError, match=r"unknown option\(s\) colour"):
        SF.db_kwargs(parse_source("snowflake://a@b/c/d?colour=red"), None, environ={})


def test_snowflake_password_from_url_environment_or_dotenv(tmp_path):
    source = parse_source("snowflake://ana@acct/db/s")
    assert source.secret({"SNOWFLAKE_PASSWORD": "from-env"}) == "from-env"
    (tmp_path / ".env").write_text("SNOWFLAKE_PASSWORD=from-dotenv\n")
    assert source.secret({}, tmp_path / ".env") == "from-dotenv"
    in_url = parse_source("snowflake://ana:from-url@acct/db/s")
    assert in_url.secret({"SNOWFLAKE_PASSWORD": "from-env"}) == "from-url"
    assert "from-url" not in in_url.display() and "from-url" not in repr(in_url)


def test_bigquery_options(tmp_path):
    key = tmp_path / "key.json"
    key.write_text("{}")
    source = parse_source("bigquery://my-project/web_data?location=EU")
    kwargs = BQ.db_kwargs(source, str(key))
    assert kwargs["adbc.bigquery.sql.project_id"] == "my-project"
    assert kwargs["adbc.bigquery.sql.dataset_id"] == "web_data"
    assert kwargs["adbc.bigquery.sql.location"] == "EU"
    assert kwargs["adbc.bigquery.sql.auth_type"].endswith("json_credential_file")
    assert kwargs["adbc.bigquery.sql.auth_credentials"] == str(key)
    adc = BQ.db_kwargs(parse_source("bigquery://my-project/web_data"), None)
    assert adc["adbc.bigquery.sql.auth_type"].endswith("auth_bigquery")  # application default credentials
    assert "adbc.bigquery.sql.auth_credentials" not in adc
    with pytest.raises(InputError, match="neither an existing key file nor a service-account key") as missing:
        BQ.db_kwargs(source, str(tmp_path / "missing.json"))
    assert "missing.json" not in str(missing.value)  # the value is never echoed: it may be a pasted key
    key_text = '{"type": "service_account", "project_id": "my-project"}'
    for given in (key_text, base64.b64encode(key_text.encode()).decode()):  # the key itself, or base64 of it
        inline = BQ.db_kwargs(source, given)
        assert inline["adbc.bigquery.sql.auth_type"].endswith("json_credential_string")
        assert inline["adbc.bigquery.sql.auth_credentials"] == key_text
    encoded = base64.b64encode(key_text.encode()).decode()
    assert parse_source(f"bigquery://p/d?credentials_base64={encoded}").secret({}) == encoded
    with pytest.raises(InputError) as garbage:
        BQ.db_kwargs(source, "bm90LWEta2V5")  # base64 of "not-a-key"
    assert "bm90LWEta2V5" not in str(garbage.value) and "not-a-key" not in str(garbage.value)
    with pytest.raises(InputError, match="name one dataset"):
        BQ.db_kwargs(parse_source("bigquery://my-project"), None)
    assert parse_source("bigquery://p/d").secret({"GOOGLE_APPLICATION_CREDENTIALS": str(key)}) == str(key)


def test_databricks_options():
    source = parse_source("databricks://dbc-1.cloud.databricks.com/main/web?http_path=/sql/1.0/warehouses/ab")
    kwargs = DBX.connect_kwargs(source, TOKEN, environ={})
    assert kwargs["server_hostname"] == "dbc-1.cloud.databricks.com"
    assert kwargs["http_path"] == "/sql/1.0/warehouses/ab"
    assert kwargs["access_token"] == TOKEN
    assert (kwargs["catalog"], kwargs["schema"]) == ("main", "web")
    assert kwargs["_retry_stop_after_attempts_count"] == 1  # not the connector's 15 minutes of retries
    assert "_port" not in kwargs
    bare = parse_source("databricks://h:8443")
    assert DBX.connect_kwargs(bare, TOKEN, environ={"DATABRICKS_HTTP_PATH": "/p"})["_port"] == 8443
    with pytest.raises(InputError, match="http_path"):
        DBX.connect_kwargs(bare, TOKEN, environ={})
    with pytest.raises(InputError, match="DATABRICKS_TOKEN"):
        DBX.connect_kwargs(source, None, environ={})
    in_url = parse_source(f"databricks://h/c/s?http_path=/p&access_token={TOKEN}")
    assert in_url.secret({"DATABRICKS_TOKEN": "other"}) == TOKEN
    assert TOKEN not in in_url.display()


def test_databricks_literals_read_back_exactly():
    assert DBX.literal("it's a \\ path") == "'it\\'s a \\\\ path'"
    for x in (0.1, 1 / 3, 1e-300, 2.5e16, -0.0):
        text = DBX.literal(x)
        assert text.endswith("D") and float(text[:-1]) == x
    table = pa.table({"conv_id": ["a'b", "c"], "ihc": [0.1, 1 / 3]})
    (statement,) = DBX.insert_statements("_staging_x", table, 10)
    assert statement == "INSERT INTO `_staging_x` (`conv_id`, `ihc`) VALUES ('a\\'b', 0.1D), ('c', 0.3333333333333333D)"
    tree = sqlglot.parse_one(statement, read="databricks", error_level=sqlglot.ErrorLevel.RAISE)
    values = [lit.this for lit in tree.find_all(sqlglot.exp.Literal) if lit.is_string]
    assert values == ["a'b", "c"]
    assert len(DBX.insert_statements("t", pa.table({"a": list(range(5))}), 2)) == 3


# ---- failures through the command line: one line, exit 2, no secret, nothing written -------------------


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Answers every request as the service answers wrong credentials; keeps the bodies it saw."""

    seen: list = []
    status = 200
    body: dict = {}

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append(self.rfile.read(length))
        out = json.dumps(self.body).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST

    def log_message(self, *args):
        pass


def _serve(status: int, body: dict):
    handler = type("Handler", (_Refusing,), {"seen": [], "status": status, "body": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.fixture
def snowflake_login():
    """A loopback server answering Snowflake's login request as Snowflake does for a wrong password."""
    body = {
        "data": {"nextAction": None, "authnMethod": "USERNAME_PASSWORD"},
        "code": "390100",
        "message": "Incorrect username or password was specified.",
        "success": False,
    }
    server, handler = _serve(200, body)
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def google_token():
    """A loopback OAuth token endpoint refusing the service-account key (as Google does for a revoked key)."""
    server, handler = _serve(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


def _cli(args, cwd: Path, env: dict, timeout: float = 60):
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    for name in ("SNOWFLAKE_PASSWORD", "DATABRICKS_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS"):
        if name not in env:
            full.pop(name, None)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout
    )
    return proc, time.monotonic() - t0


def _one_line_error(proc, shown: str, *secrets: str) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {shown}:"), proc.stderr
    for secret in secrets:
        assert secret not in proc.stdout + proc.stderr
    return lines[0]


def _no_file_holds(folder: Path, *secrets: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), path


@pytest.mark.parametrize("where", ["environment", "url", "dotenv"])
def test_snowflake_wrong_password(tmp_path, snowflake_login, where):
    port, handler = snowflake_login
    url = f"snowflake://ana@acct/DB/WEB?host=127.0.0.1&port={port}&protocol=http"
    env = {}
    if where == "url":
        url = url.replace("ana@", "ana:pw-S3cr3t%27%22x@")
    elif where == "environment":
        env["SNOWFLAKE_PASSWORD"] = PASSWORD
    else:
        (tmp_path / ".env").write_text("SNOWFLAKE_PASSWORD=" + json.dumps(PASSWORD) + "\n")
    shown = parse_source(url).display()
    out = tmp_path / "out.csv"
    for args in (
        ["validate", url],
        ["run", url, "--csv", str(out)],
        ["status", url],
        ["export", url, "--csv", str(out)],
    ):
        proc, seconds = _cli(args, tmp_path, env)
        line = _one_line_error(proc, shown, PASSWORD, "S3cr3t")
        assert "Incorrect username or password" in line
        assert seconds < 30
    assert not out.exists()
    assert handler.seen and all(b'"PASSWORD":"pw-S3cr3t' in body for body in handler.seen)  # it was sent
    if where != "dotenv":  # (the .env file holds it, as it should)
        _no_file_holds(tmp_path, "S3cr3t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ([".env"] if where == "dotenv" else [])


def test_snowflake_closed_port(tmp_path):
    url = "snowflake://ana@acct/DB/WEB?host=127.0.0.1&port=9&protocol=http"
    proc, seconds = _cli(["validate", url], tmp_path, {"SNOWFLAKE_PASSWORD": PASSWORD})
    line = _one_line_error(proc, parse_source(url).display(), PASSWORD, "S3cr3t")
    assert "connection refused" in line and seconds < 30


def test_bigquery_refused_key(tmp_path, google_token):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    port, handler = google_token
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    key = {
        "type": "service_account",
        "project_id": "my-project",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "pipeline@my-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"http://127.0.0.1:{port}/token",
    }
    key_file = tmp_path / "keys" / "sa.json"
    key_file.parent.mkdir()
    key_file.write_text(json.dumps(key))
    secret_line = pem.splitlines()[1]
    url = "bigquery://my-project/web_data"
    out = tmp_path / "out.csv"
    for args in (["validate", url], ["run", url, "--csv", str(out)], ["status", url]):
        proc, seconds = _cli(args, tmp_path, {"GOOGLE_APPLICATION_CREDENTIALS": str(key_file)})
        line = _one_line_error(proc, url, secret_line)
        assert "invalid_grant" in line and seconds < 30
    assert handler.seen and all(b"assertion=" in body for body in handler.seen)  # a signed JWT was presented
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["keys", "sa.json"]


def test_databricks_closed_port(tmp_path):
    url = "databricks://127.0.0.1:9/main/web?http_path=/sql/1.0/warehouses/ab"
    out = tmp_path / "out.csv"
    for env in ({"DATABRICKS_TOKEN": TOKEN}, {}):
        target = url if env else f"{url}&access_token={TOKEN}"
        for args in (["validate", target], ["run", target, "--csv", str(out)]):
            proc, seconds = _cli(args, tmp_path, env)
            line = _one_line_error(proc, parse_source(target).display(), TOKEN)
            assert "Connection refused" in line and seconds < 30
    assert not out.exists() and not list(tmp_path.iterdir())


class _RefusingToken(_Refusing):
    """Answers as a Databricks workspace answers a revoked or wrong token: 403 and its reason header."""

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(403)
        self.send_header("x-databricks-reason-phrase", "Invalid access token.")
        self.send_header("Content-Length", "0")
        self.end_headers()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made for this test (the driver checks TLS against it)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_databricks_wrong_token(tmp_path, monkeypatch, capsys):
    import ssl

    tls = tmp_path / "tls"
    tls.mkdir()
    cert_file, key_file = _self_signed(tls)
    handler = type("Handler", (_RefusingToken,), {"seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real = DBX.connect_kwargs
    monkeypatch.setattr(DBX, "connect_kwargs", lambda *a: {**real(*a), "_tls_trusted_ca_file": str(cert_file)})
    monkeypatch.chdir(tmp_path)
    url = f"databricks://127.0.0.1:{server.server_address[1]}/main/web?http_path=/sql/1.0/warehouses/ab"
    try:
        for environ, target in (({"DATABRICKS_TOKEN": TOKEN}, url), ({}, f"{url}&access_token={TOKEN}")):
            t0 = time.monotonic()
            with pytest.raises(InputError) as err:
                DBX.open_engine(target, write=True, environ=environ)
            message = str(err.value)
            assert message == f"{parse_source(target).display()}: could not connect: HTTP 403: Invalid access token."
            assert TOKEN not in message and time.monotonic() - t0 < 30
    finally:
        server.shutdown()
        server.server_close()
    assert handler.seen == [f"Bearer {TOKEN}"] * 2  # the token was presented, and refused
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err and "403" not in out.out + out.err  # the connector's own log is quiet
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cert.pem", "key.pem", "tls"]


def test_unknown_scheme_is_one_line(tmp_path):
    proc, _ = _cli(["validate", "redshift://u:pw@h/db"], tmp_path, {})
    assert proc.returncode == 2 and "unknown source scheme" in proc.stderr and "pw" not in proc.stderr


@pytest.mark.parametrize("kind", sorted(MODULES))
def test_missing_driver_names_the_package(kind, monkeypatch):
    mod = MODULES[kind]
    warehouse = {"bigquery": BQ.BIGQUERY, "snowflake": SF.SNOWFLAKE, "databricks": DBX.DATABRICKS}[kind]
    hidden = {"bigquery": "adbc_driver_bigquery", "snowflake": "adbc_driver_snowflake", "databricks": "databricks"}
    monkeypatch.setitem(sys.modules, hidden[kind], None)  # import of it raises ImportError
    monkeypatch.setattr(warehouse, "errors", ())
    url = {
        "bigquery": "bigquery://p/d",
        "snowflake": "snowflake://u@a/d/s",
        "databricks": "databricks://h/c/s?http_path=/p",
    }[kind]
    with pytest.raises(InputError, match=f"needs the driver package {warehouse.package}: pip install") as err:
        mod.open_engine(url)
    assert str(err.value).startswith(parse_source(url).display())


# ---- the statements each module sends, recorded on a fake connection ------------------------------------

INPUTS = {t: {c: "VARCHAR" for c in cols} for t, cols in REQUIRED_COLUMNS.items()}


class FakeCursor:
    def __init__(self, raw):
        self.raw = raw
        self.adbc_statement = self

    def set_options(self, **options):
        self.raw.options.update(options)

    def execute(self, text):
        self.raw.statements.append(text)
        if self.raw.fail_on and self.raw.fail_on in text:
            raise self.raw.error(f"boom in {text[:40]}")

    def fetchall(self):
        text = self.raw.statements[-1]
        if "information_schema" in text.lower():
            return [
                (t.upper() if self.raw.upper else t, c, "VARCHAR") for t, cols in self.raw.tables.items() for c in cols
            ]
        if text.startswith("SELECT (SELECT"):
            return [tuple(f"{i}:{i}" for i in range(text.count("(SELECT")))]
        return []

    def adbc_ingest(self, name, table, mode, **kwargs):
        self.raw.ingested.append((name, table.num_rows, mode, kwargs))

    def close(self):
        pass


class FakeRaw:
    def __init__(self, error, tables, upper=False, fail_on=None):
        self.error, self.tables, self.upper, self.fail_on = error, tables, upper, fail_on
        self.statements: list[str] = []
        self.ingested: list = []
        self.options: dict = {}

    def cursor(self):
        return FakeCursor(self)

    def close(self):
        pass


class FakeError(Exception):
    pass


def _fake_engine(kind, monkeypatch, tables, fail_on=None):
    mod = MODULES[kind]
    warehouse = {"bigquery": BQ.BIGQUERY, "snowflake": SF.SNOWFLAKE, "databricks": DBX.DATABRICKS}[kind]
    raw = FakeRaw(FakeError, tables, upper=kind == "snowflake", fail_on=fail_on)
    monkeypatch.setattr(warehouse, "load_driver", lambda: monkeypatch.setattr(warehouse, "errors", (FakeError,)))
    monkeypatch.setattr(warehouse, "connect", lambda source, secret, write, env: raw)
    url = {
        "bigquery": "bigquery://p/d",
        "snowflake": "snowflake://u:pw@a/d/s",
        "databricks": f"databricks://h/c/s?http_path=/p&access_token={TOKEN}",
    }[kind]
    return mod, mod.open_engine(url, write=True), raw


CREDITS = {"conv_id": np.array(["c1", "c1"], dtype=object), "session_id": np.array(["s'1", "s2"], dtype=object)}
CREDITS["ihc"] = np.array([0.25, 0.75])
REPORT = [("Paid \\ Search", "2023-09-01", 1.5, 0.25, 2.0)]
RECORD = {"run_id": "r1", "note": 'it\'s "quoted" \\ and ünïcode'}


def _parses(kind: str, statements: list[str]) -> None:
    for text in statements:
        tree = sqlglot.parse_one(text, read=kind, error_level=sqlglot.ErrorLevel.RAISE)
        assert not isinstance(tree, sqlglot.exp.Command) or text.startswith(("SET TIME ZONE", "ALTER SESSION")), text
        assert "$" not in text and "HUGEINT" not in text.upper(), text


@pytest.mark.parametrize("kind", sorted(MODULES))
@pytest.mark.parametrize("outputs_exist", [False, True])
def test_output_swap_statements(kind, outputs_exist, monkeypatch):
    tables = dict(INPUTS)
    if outputs_exist:
        tables.update({name: {"x": "STRING"} for name in (*W.OUTPUT_TABLES, W.RECORD_TABLE)})
    mod, engine, raw = _fake_engine(kind, monkeypatch, tables)
    opened = list(raw.statements)
    raw.statements.clear()
    assert mod.write_outputs(engine, CREDITS, REPORT, record=RECORD) == {
        "attribution_customer_journey": 2,
        "channel_reporting": 1,
    }
    sent = [s for s in raw.statements if "information_schema" not in s.lower()]  # (the tables listed again)
    _parses(kind, opened + raw.statements)
    wh = engine.warehouse
    acj, rep = W.OUTPUT_TABLES
    staged = [f"_staging_{acj}", f"_staging_{rep}"]
    # staging filled first, then the record dropped, each output replaced, the record written, staging dropped
    creates = [i for i, s in enumerate(sent) if s.startswith("CREATE TABLE _staging_")]
    drop_record = sent.index(wh.drop_sql(W.RECORD_TABLE))
    write_record = next(i for i, s in enumerate(sent) if s.startswith("CREATE OR REPLACE TABLE pipeline_run_record"))
    replaced = [
        i
        for i, s in enumerate(sent)
        if any(s == r for n in (acj, rep) for r in wh.replace_sql(f"_staging_{n}", n, outputs_exist))
    ]
    assert len(creates) == 2 and len(replaced) == 2
    assert max(creates) < drop_record < min(replaced) and max(replaced) < write_record
    assert sent[-2:] == [wh.drop_sql(s) for s in staged]
    if kind == "bigquery":
        assert all("PRIMARY KEY" in sent[i] and sent[i].endswith("NOT ENFORCED)") for i in creates)
        assert sent[replaced[0]] == f"CREATE OR REPLACE TABLE `{acj}` COPY `_staging_{acj}`"
    if kind == "snowflake":
        verb = "SWAP WITH" if outputs_exist else "RENAME TO"
        assert sent[replaced[0]] == f"ALTER TABLE _staging_{acj} {verb} {acj}"
        assert [name for name, *_ in raw.ingested] == [s.upper() for s in staged]  # as created, unquoted
    if kind == "databricks":
        verb = f"INSERT OVERWRITE `{acj}` SELECT * FROM" if outputs_exist else "ALTER TABLE"
        assert sent[replaced[0]].startswith(verb)
        inserts = [s for s in sent if s.startswith("INSERT INTO")]
        assert len(inserts) == 2 and "'s\\'1'" in inserts[0] and "'Paid \\\\ Search'" in inserts[1]
    else:
        assert [(n, rows, mode) for n, rows, mode, _ in raw.ingested] == [
            (wh.ingest_name(s), rows, "append") for s, rows in zip(staged, (2, 1))
        ]
    # the record's JSON survives the dialect's string quoting
    tree = sqlglot.parse_one(sent[write_record], read=kind)
    (literal,) = [lit for lit in tree.find_all(sqlglot.exp.Literal) if lit.is_string]
    assert json.loads(literal.this) == RECORD


@pytest.mark.parametrize("kind", sorted(MODULES))
def test_a_failed_swap_leaves_no_record_and_no_staging(kind, monkeypatch):
    tables = {**INPUTS, **{name: {"x": "STRING"} for name in (*W.OUTPUT_TABLES, W.RECORD_TABLE)}}
    mod, engine, raw = _fake_engine(kind, monkeypatch, tables)
    wh = engine.warehouse
    raw.fail_on = wh.replace_sql("_staging_channel_reporting", "channel_reporting", True)[0]
    raw.statements.clear()
    with pytest.raises(InputError, match="boom") as err:
        mod.write_outputs(engine, CREDITS, REPORT, record=RECORD)
    assert "\n" not in str(err.value)
    sent = raw.statements
    assert wh.drop_sql(W.RECORD_TABLE) in sent  # the old record is gone: the next run is not "up to date"
    assert not any(s.startswith("CREATE OR REPLACE TABLE pipeline_run_record") for s in sent)
    assert sent[-2:] == [wh.drop_sql(f"_staging_{n}") for n in W.OUTPUT_TABLES]


@pytest.mark.parametrize("kind", sorted(MODULES))
def test_listing_fingerprint_credits_and_record_statements(kind, monkeypatch):
    mod, engine, raw = _fake_engine(kind, monkeypatch, dict(INPUTS))
    assert set(engine.present) == set(REQUIRED_COLUMNS)  # names in lower case whatever the warehouse says
    raw.statements.clear()
    versions = mod.table_versions(engine)
    assert set(versions) == set(REQUIRED_COLUMNS) and all(v for v in versions.values())
    assert len(mod.fingerprint(engine)) == 64
    mod.channel_report(engine, CREDITS)  # the credits uploaded as a table, joined, dropped
    mod.write_run_record(engine, RECORD)
    _parses(kind, raw.statements)
    sent = "\n".join(raw.statements)
    assert "_credits" in sent and engine.warehouse.drop_sql("_credits") in raw.statements
    if kind == "bigquery":  # every statement runs with the URL's dataset as the default
        assert raw.options["adbc.bigquery.sql.query.default_dataset_id"] == "d"
        assert raw.options["adbc.bigquery.sql.query.default_project_id"] == "p"


@pytest.mark.parametrize("kind", sorted(MODULES))
def test_read_only_engine_refuses_to_write(kind, monkeypatch):
    mod, engine, raw = _fake_engine(kind, monkeypatch, dict(INPUTS))
    engine.writable = False
    engine.con.read_only = True
    raw.statements.clear()
    with pytest.raises(InputError, match="read-only"):
        mod.write_outputs(engine, CREDITS, REPORT)
    with pytest.raises(InputError, match="read-only"):
        mod.channel_report(engine, CREDITS)
    assert not any(s.split()[0] in ("CREATE", "DROP", "INSERT", "ALTER") for s in raw.statements)


def test_settings_from_the_environment_over_dotenv(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SNOWFLAKE_USER=from-dotenv\nDATABRICKS_HTTP_PATH=/sql/1.0/warehouses/x\n")
    both = W.settings({"SNOWFLAKE_USER": "from-env"}, env_file)
    assert both["SNOWFLAKE_USER"] == "from-env" and both["DATABRICKS_HTTP_PATH"] == "/sql/1.0/warehouses/x"
    source = parse_source("snowflake://acct/DB/WEB")
    assert SF.db_kwargs(source, None, W.settings({}, env_file))["username"] == "from-dotenv"
    assert W.settings({}, tmp_path / "none") == {}


@pytest.mark.parametrize("kind", sorted(MODULES))
def test_the_seam_routes_each_scheme_to_its_module_with_the_whole_contract(kind):
    from pipeline.engines import engine_module

    url = {"bigquery": "bigquery://p/d", "snowflake": "snowflake://u@a/d/s", "databricks": "databricks://h/c/s"}[kind]
    mod = engine_module(parse_source(url))
    assert mod is MODULES[kind]
    contract = ("open_engine", "validate", "journey_batches", "journeys", "channel_report", "write_outputs")
    contract += ("conversion_count", "path_summary", "fingerprint", "run_record", "write_run_record", "stored_report")
    assert all(callable(getattr(mod, name, None)) for name in contract)
    with pytest.raises(InputError, match="does not run"):
        engine_module(parse_source(url), "spark")
