"""Where the CLI writes: never over an input, never through a symlink or into a device, never over an
existing database without --overwrite; `--csv -` streams to stdout (issue 12, "Data loss")."""

import os
import sqlite3

import pytest

from tests.helpers import cli
from tests.test_cli import assert_clean_failure, digest

HEADER = "channel_name,date,cost,ihc,ihc_revenue,CPO,ROAS"


@pytest.fixture
def ran(tiny):
    assert cli("run", tiny, "--model", "linear", "-q").returncode == 0
    return tiny


def _aliases(db, tmp_path):
    link = tmp_path / "link.db"
    link.symlink_to(db)
    hard = tmp_path / "hard.db"
    os.link(db, hard)
    return [db, link, hard, tmp_path / "sub" / ".." / db.name]


def test_csv_over_the_input_database_is_refused(ran, tmp_path):
    (tmp_path / "sub").mkdir()
    before = digest(ran)
    for alias in _aliases(ran, tmp_path):
        assert_clean_failure(cli("run", ran, "--model", "linear", "--csv", alias, "-q"), "is the input database")
        assert_clean_failure(cli("export", ran, "--csv", alias), "is the input database")
        assert digest(ran) == before
    for suffix in ("-journal", "-wal"):
        assert_clean_failure(cli("export", ran, "--csv", f"{ran}{suffix}"), "belongs to the input database")


def test_csv_over_the_output_db_or_output_db_over_the_input_is_refused(ran, tmp_path):
    copy = tmp_path / "copy.db"
    r = cli("run", ran, "--model", "linear", "--output-db", copy, "--csv", copy, "-q")
    assert_clean_failure(r, "is the output database")
    assert not copy.exists() and not (tmp_path / "copy.db.partial").exists()
    hard = tmp_path / "hard.db"
    os.link(ran, hard)
    before = digest(ran)
    assert_clean_failure(cli("run", ran, "--output-db", hard, "--overwrite", "-q"), "is the input database")
    assert digest(ran) == before


def test_existing_output_db_needs_overwrite(ran, tmp_path):
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE precious (x)")
    con.commit()
    con.close()
    before = digest(other)
    assert_clean_failure(cli("run", ran, "--model", "linear", "--output-db", other, "-q"), "--overwrite")
    assert digest(other) == before
    r = cli("run", ran, "--model", "linear", "--output-db", other, "--overwrite", "-q")
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(other)
    assert con.execute("SELECT count(*) FROM attribution_customer_journey").fetchone()[0] == 6
    assert not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'precious'").fetchall()


def test_output_db_naming_a_directory_or_a_missing_folder(ran, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    assert_clean_failure(cli("run", ran, "--output-db", folder, "--overwrite", "-q"), str(folder), "is a directory")
    assert os.listdir(folder) == [] and not list(tmp_path.glob("*.partial"))
    missing = tmp_path / "nope" / "copy.db"
    r = cli("run", ran, "--output-db", missing, "-q")
    assert_clean_failure(r, str(missing))
    assert str(ran) + ":" not in r.stderr
    assert not list(tmp_path.glob("*.partial"))


def test_csv_is_written_to_regular_files_only(ran, tmp_path):
    target = tmp_path / "kept.txt"
    target.write_text("precious\n")
    link = tmp_path / "report.csv"
    link.symlink_to(target)
    assert_clean_failure(cli("export", ran, "--csv", link), "symbolic link")
    assert link.is_symlink() and target.read_text() == "precious\n"
    assert_clean_failure(cli("export", ran, "--csv", tmp_path), "is a directory")
    if os.path.exists("/dev/full"):
        assert_clean_failure(cli("export", ran, "--csv", "/dev/full"), "not a regular file")
        assert os.path.exists("/dev/full") and not os.path.isfile("/dev/full")
    plain = tmp_path / "plain.csv"
    plain.write_text("old\n")
    assert cli("export", ran, "--csv", plain).returncode == 0  # a regular file is replaced (as before)
    assert plain.read_text().startswith(HEADER)


def test_csv_dash_streams_to_stdout(ran, tmp_path):
    r = cli("export", ran, "--csv", "-")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == HEADER and len(r.stdout.splitlines()) == 6
    assert "export:" in r.stderr
    assert not (tmp_path / "-").exists()
    r = cli("run", ran, "--model", "linear", "--csv", "-", "-q")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == HEADER and len(r.stdout.splitlines()) == 6, r.stdout
