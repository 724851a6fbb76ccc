"""AppTest: the Data page — the demo's validation, uploads accepted or refused with a readable
explanation (never a traceback), and going back to the demo."""

from __future__ import annotations

import json
import re

import pytest

from pipeline.db import open_database
from pipeline.validate import current_validation
from tests.dashboard_support import no_errors, open_page, texts, workspace_of
from tests.helpers import make_db, tiny_db


def upload(at, name: str, data: bytes):
    at.file_uploader[0].set_value((name, data, "application/octet-stream")).run()
    return at


def test_the_size_shown_is_the_working_copys_now(dashboard_env):
    """A run adds the pipeline's tables to the working copy (an upload of 133 MB was 173 MB after one):
    the Data page's tile and the sidebar gave the size the database came with."""
    import sqlite3

    at = open_page("pipeline")
    at.button(key="run_button").click().run()  # the session's own copy
    ws = workspace_of(at)
    con = sqlite3.connect(ws.db_path)
    con.execute("CREATE TABLE analyst_notes(body)")
    con.execute("INSERT INTO analyst_notes VALUES (zeroblob(3000000))")  # 3 MB more
    con.commit()
    con.close()
    at = open_page("data", at)
    no_errors(at)
    now = f"{ws.db_path.stat().st_size / 1e6:,.1f} MB"
    assert now != f"{ws.source.size_bytes / 1e6:,.1f} MB"
    assert {m.label: m.value for m in at.metric}["File size"] == now
    from pages._look import database_size  # the sidebar's size too (it is not in AppTest's tree)

    assert database_size(ws, 1) == now


def test_data_page_on_the_demo(dashboard_env):
    at = open_page("data")
    no_errors(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Sessions"] == "20,000" and metrics["Conversions"] == "400"
    text = texts(at)
    assert "Demo database" in text and "20,000 sessions, 400 conversions, 10 days, seed 7" in text
    # one line for each: a narrow column wraps between words, never inside a date (a span that does not
    # wrap, and plain hyphens that copy as typed)
    day = '<span style="white-space:nowrap">2023-09-01</span>'
    assert f"Sessions **{day}** – **" in text
    assert f"  \nConversions **{day}** – **" in text and "(UTC)" in text
    assert "\u2011" not in text
    coverage = next(m for m in at.markdown if m.value.startswith("Sessions **"))
    assert coverage.allow_html  # the span is drawn, not shown as characters
    assert "have no session of their user before them" in text  # the demo's warning
    assert "channels have sessions but no cost at all" in text  # the unpaid channels, named
    # one plain sentence a check (count, share, meaning), the example ids only behind "Examples"
    badge = next(m.value for m in at.markdown if "have no session of their user before them" in m.value)
    assert badge.startswith(":orange-badge[warning] ") and "conversions: " not in badge and "e.g." not in badge
    assert re.search(r"\d+ conversions \(\d+\.\d%\) have no session", badge), badge
    ids = next(
        f.examples
        for f in current_validation(open_database(workspace_of(at).db_path)).findings
        if f.code == "conversion_without_sessions"
    )
    hidden = " ".join(m.value for e in at.expander if e.label == "Examples" for m in e.markdown)
    shown = " ".join(m.value for m in at.markdown if "-badge[" in m.value)
    assert ids and all(str(i) in hidden and str(i) not in shown for i in ids)
    from pages._look import unsaved_work

    assert unsaved_work(workspace_of(at)) is None  # the shared demo, untouched: a reload loses nothing
    # the stored report's warnings too (the demo is attributed at start): its incomplete last day(s)
    assert ":orange-badge[report] The last" in text and "incomplete" in text
    channels = at.dataframe[0].value
    assert channels["sessions"].sum() == 20_000 and len(channels) == 16
    # the share in % with one decimal on every row ('5.1%' beside '20.54%' before)
    assert channels["share"].sum() == pytest.approx(100.0)
    assert channels["share"].iloc[0] == pytest.approx(100 * channels["sessions"].iloc[0] / 20_000)
    share = json.loads(at.dataframe[0].proto.columns)["share"]
    assert share["type_config"]["format"] == "%.1f%%" and share["type_config"]["max_value"] == 100


def test_a_text_file_is_refused_with_a_message(dashboard_env):
    at = open_page("data")
    before = workspace_of(at).fingerprint()
    upload(at, "notes.db", b"this is not a database\n" * 20)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("notes.db was not loaded" in e and "not a SQLite database" in e for e in errors)
    assert "The previous database is still the current one." in texts(at)
    assert workspace_of(at).fingerprint() == before and workspace_of(at).source.kind == "demo"
    assert "Traceback" not in texts(at)


def test_a_database_without_the_tables_lists_what_to_fix(dashboard_env, tmp_path):
    db = make_db(tmp_path / "other.db", ddl="CREATE TABLE orders (id INTEGER);")
    at = open_page("data")
    upload(at, "other.db", db.read_bytes())
    assert not at.exception
    assert any("other.db was not loaded" in e.value and "cannot be attributed" in e.value for e in at.error)
    text = texts(at)
    for table in ("session_sources", "conversions", "session_costs"):
        assert text.lower().count(f"table {table} is missing") == 1  # each problem once: in the list
    assert any("3 fatal problems, listed below" in e.value for e in at.error)
    # the refused file is not left in the upload box as if it were loaded
    assert len(at.file_uploader) == 1 and at.file_uploader[0].value is None


def test_a_good_upload_becomes_the_current_database(dashboard_env, tmp_path):
    db = tiny_db(tmp_path / "tiny.db")
    at = open_page("data")
    upload(at, "tiny.db", db.read_bytes())
    no_errors(at)
    assert "tiny.db is loaded with 2 warnings (below)" in texts(at)  # not "2 warning(s)"
    ws = workspace_of(at)
    assert ws.source.name == "tiny.db" and ws.db_path.read_bytes() == db.read_bytes()
    assert {m.label: m.value for m in at.metric}["Sessions"] == "6"
    # the header and the sidebar name the new database at once, and say how to keep it
    assert "tiny.db" in [str(h.value) for h in at.subheader]
    # (the sidebar, drawn by app.py, is checked in the real browser: tests/test_e2e_browser.py)
    # said once, in the sidebar of every page (drawn by app.py: seen in the real browser), with the way to
    # keep the work; the Data page no longer says it a second time
    from pages._look import unsaved_work

    assert unsaved_work(ws).startswith("Kept in this tab only: reloading or closing it loses the upload and its runs.")
    assert "this browser tab only" not in texts(at)
    assert at.button(key="data_download_db").label.startswith("Download database (")
    # Download database in two visible steps (review 16 F1): the click prepares it, then Save hands it over
    at.button(key="data_download_db").click().run()
    no_errors(at)
    assert [b.proto.label for b in at.get("download_button") if b.proto.label.startswith("Save")] == [
        "Save tiny-attributed.db"
    ]
    assert any(t.startswith("Ready (") and "click Save" in t for t in texts(at).split("\n"))

    open_page("pipeline", at)
    no_errors(at)
    assert "Not run on this database yet." in texts(at)
    open_page("report", at)
    no_errors(at)
    assert "There is no channel report in this database yet" in texts(at)

    open_page("data", at)
    [back] = [b for b in at.button if b.label == "Back to the demo database"]
    back.click().run()
    no_errors(at)
    assert workspace_of(at).source.kind == "demo"


def test_the_same_warning_count_on_the_data_and_pipeline_pages(dashboard_env):
    # the demo: 2 data checks (conversions without an earlier session, unpaid channels) and 1 note on the
    # stored report (its incomplete last day) — named apart, the same words on both pages
    data = open_page("data")
    assert any("No fatal problem; 2 data warnings · 1 report note." in w.value for w in data.warning)
    pipeline = open_page("pipeline")
    labels = [e.label for e in pipeline.expander]
    assert "Data checks: 2 data warnings · 1 report note to read before running" in labels


def test_binary_channel_names_are_a_fatal_problem_in_words_on_the_data_and_pipeline_pages(dashboard_env, tmp_path):
    """A BLOB in session_sources.channel_name crashed validate (TypeError) under the upload box."""
    import sqlite3

    from tests.helpers import TINY_CONVERSIONS, TINY_COSTS, TINY_SESSIONS

    said = "session_sources.channel_name holds 3 binary (BLOB) values where a channel's name belongs"
    blob = [(*s[:4], s[4].encode(), *s[5:]) if s[0] in ("s1", "s2", "s6") else s for s in TINY_SESSIONS]
    db = make_db(tmp_path / "blob.db", blob, TINY_CONVERSIONS, TINY_COSTS)
    at = open_page("data")
    upload(at, "blob.db", db.read_bytes())
    assert not at.exception
    assert any("blob.db was not loaded" in e.value for e in at.error)
    assert f"- {said}; store the names as text." in [str(m.value) for m in at.markdown]
    assert workspace_of(at).source.kind == "demo" and "Traceback" not in texts(at)
    # a session's own database that comes to hold them (a file written to after loading): the Pipeline
    # page says why it cannot run, and the Data page lists it
    upload(at, "tiny.db", tiny_db(tmp_path / "tiny.db").read_bytes())
    con = sqlite3.connect(workspace_of(at).db_path)
    con.execute(
        "UPDATE session_sources SET channel_name = CAST(channel_name AS BLOB) WHERE session_id IN ('s1', 's2', 's6')"
    )
    con.commit()
    con.close()
    open_page("pipeline", at)
    assert not at.exception
    assert any(said in e.value for e in at.error), [e.value for e in at.error]
    open_page("data", at)
    assert not at.exception
    assert any("1 fatal problem: this database cannot be attributed." in e.value for e in at.error)
    assert any(said in str(m.value) for m in at.markdown)
