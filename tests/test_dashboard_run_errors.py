"""AppTest: what the Pipeline page shows when a run cannot go ahead or fails (issue 12, "Dashboard" and
"Secrets"): a second Run during a run, a trigger that aborts a write, a bug (no server paths), and an IHC
API error that quotes the key (not in the error box, not in "Download database")."""

from __future__ import annotations

import json

import pytest

from pipeline import workspace as wsm
from tests.dashboard_support import open_page, texts, workspace_of
from tests.test_api_redaction import KEYS, leaked
from tests.test_dashboard_workspace import trigger_db


def test_a_second_run_during_a_run_says_a_run_is_in_progress(dashboard_env):
    at = open_page("pipeline")
    ws = workspace_of(at)
    before = ws.fingerprint()
    assert ws._run_lock.acquire(blocking=False)  # the first click's run, still going
    try:
        at.button(key="run_button").click().run()
    finally:
        ws._run_lock.release()
    assert not at.exception and not at.error
    assert any("a run is already in progress" in i.value for i in at.info)
    assert ws.fingerprint() == before


def test_a_trigger_that_aborts_a_write_gets_one_line_not_a_traceback(dashboard_env, tmp_path):
    db = trigger_db(tmp_path, "pipeline_journeys")
    at = open_page("data")
    at.file_uploader[0].set_value(("frozen.db", db.read_bytes(), "x")).run()
    open_page("pipeline", at)
    at.selectbox(key="run_model").set_value("linear").run()
    at.button(key="run_button").click().run()
    assert not at.exception and not at.code  # no bug-report view (its expander, below)
    assert not [e for e in at.expander if e.label == "Details for a bug report"]
    errors = [e.value for e in at.error]
    assert any("The run stopped" in e and "writes are frozen" in e for e in errors), errors


def test_the_bug_report_view_shows_no_server_paths(dashboard_env, monkeypatch):
    import pipeline.runner as runner

    at = open_page("pipeline")
    ws = workspace_of(at)

    def crash(*args, **kwargs):
        raise FileNotFoundError(f"[Errno 2] No such file or directory: '{ws.root}/next.db'")

    monkeypatch.setattr(runner, "run_pipeline", crash)
    at.selectbox(key="run_model").set_value("linear").run()
    at.button(key="run_button").click().run()
    shown = texts(at) + "\n".join(c.value for c in at.code)
    assert "Something went wrong (FileNotFoundError" in shown and at.code  # the bug view is there
    assert "<session folder>/next.db" in shown and "<app>/pipeline" in shown
    for path in (str(ws.root), str(wsm.REPO_DIR), str(wsm.workspace_base())):
        assert path not in shown


@pytest.mark.parametrize("pad_offset", [-7, 0, 3])
def test_an_api_error_quoting_the_key_leaks_nothing_to_the_error_box_or_the_download(
    dashboard_env, monkeypatch, pad_offset
):
    local = pytest.importorskip("pipeline.ihc_api.local_server")
    key = KEYS["both"]
    with local.LocalIhcServer(key) as server:
        for name, value in {"IHC_API_URL": server.url, "IHC_API_MAX_ATTEMPTS": "1"}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("IHC_API_KEY", raising=False)
        pad = 300 - len("IHC API answered 400 invalid input: ") + pad_offset
        server.inject(local.Fault.http(400, message="q" * pad + json.dumps(key) + key))
        at = open_page("pipeline")
        at.selectbox(key="run_model").set_value("ihc-api").run()
        at.text_input(key="api_key").input(key).run()
        at.text_input(key="api_conv_type").input("local").run()
        at.button(key="run_button").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("The run stopped" in e and "400" in e for e in errors), errors
    assert leaked(texts(at), key) == []
    enriched = workspace_of(at).database_bytes().decode("utf-8", "replace")  # what "Download database" hands
    assert "ihc_api_runs" in enriched and leaked(enriched, key) == []
    for path in workspace_of(at).root.rglob("*"):
        if path.is_file():
            assert leaked(path.read_bytes().decode("utf-8", "replace"), key) == [], path.name
