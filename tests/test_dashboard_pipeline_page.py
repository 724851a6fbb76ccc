"""AppTest: the Pipeline page — stage cards, running with the offline model (cards and report follow),
errors that keep the previous results, the progress adapter, and the IHC API option."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sqlite3
import sys
import threading
import types
from datetime import date

import pytest

from pipeline.db import open_database
from pipeline.errors import InputError, PipelineError
from pipeline.export import read_report
from pipeline.runner import RunOptions
from tests.dashboard_support import api_pipeline_page, no_errors, open_page, texts, workspace_of

SECRET = "sk-test-DO-NOT-SHOW-9f8e7d"


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_stage_cards_on_the_demo(dashboard_env):
    at = open_page("pipeline")
    no_errors(at)
    text = texts(at)
    for title in ("1 · Journeys", "2 · Attribution", "3 · Channel report"):
        assert title in text
    assert (
        "Model **IHC — offline model** (IHC profile: default — IHC as documented; "
        "Round credit to 4 decimals, as the web API does: no)" in text
    )
    # one fact a line: the card (a third of the page) wrapped "… · 51 ⏎ not" mid-phrase at 1280 px
    assert "400 conversions  \n" in text and "Window: all conversions  \nno lookback limit" in text
    assert "conversions attributed  \n" in text and "not attributed  \n" in text
    assert "Missing" not in text
    assert at.selectbox(key="run_model").value == "ihc"
    assert at.selectbox(key="run:ihc:profile").value == "default"


def test_run_with_the_offline_model_updates_cards_and_report(dashboard_env):
    at = open_page("pipeline")
    ws = workspace_of(at)
    assert "Kept in this tab only" not in texts(at)  # the shared demo: a reload loses nothing
    before = read_report(open_database(ws.db_path))
    at.selectbox(key="run:ihc:profile").set_value("challenge").run()
    at.button(key="run_button").click().run()
    no_errors(at)
    text = texts(at)
    assert "Attributed 3" in text and "of 400 conversions with IHC — offline model" in text
    assert "Not attributed, and why:" in text and "no session before the conversion" in text
    assert (
        "(IHC profile: challenge — IHC as Haensel AMS trained it on their sample shop data; Round" in text
    )  # the new settings
    # the stages in words, the model by its label (not "attribute: … attributed with ihc")
    assert "Attribution: 3" in text and "conversions with IHC — offline model in " in text
    assert "with ihc" not in text and "attribute:" not in text
    # the run made the session's own copy: the Last run box says a reload loses it, and how to keep it
    # (the sidebar says it on every page, from the same function: tests/test_e2e_browser.py sees it)
    from pages._look import unsaved_work

    lost = "Kept in this tab only: reloading or closing it loses your runs on the demo."
    assert unsaved_work(ws).startswith(lost) and "**Download database**" in unsaved_work(ws)
    assert [w.value for w in at.warning] == [unsaved_work(ws)]
    con = sqlite3.connect(ws.db_path)
    params = con.execute("SELECT params FROM pipeline_stages WHERE stage = 'attribute'").fetchone()[0]
    assert '"profile": "challenge"' in params
    after = read_report(open_database(ws.db_path))
    assert after["ihc"].round(6).tolist() != before["ihc"].round(6).tolist()  # the report was rebuilt

    open_page("report", at)
    no_errors(at)
    assert at.dataframe[0].value["ihc"].round(9).tolist() == after["ihc"].round(9).tolist()

    # Nothing changed since: a second run reuses everything.
    open_page("pipeline", at)
    at.button(key="run_button").click().run()
    assert "Everything was up to date" in texts(at)


def test_a_standard_model_and_a_window(dashboard_env):
    from datetime import date

    at = open_page("pipeline")
    at.selectbox(key="run_model").set_value("linear").run()
    at.date_input(key="run_dates").set_value((date(2023, 9, 4), date(2023, 9, 6))).run()
    at.number_input(key="run_lookback").set_value(3).run()
    at.button(key="run_button").click().run()
    no_errors(at)
    text = texts(at)
    assert "with Linear" in text
    # the card's window on its own lines, its dates kept whole (spans that do not wrap; plain hyphens)
    window = "Window: conversions of {} – {}  \nlookback 3 days".format(
        *(f'<span style="white-space:nowrap">{d}</span>' for d in ("2023-09-04", "2023-09-06"))
    )
    assert window in text and "\u2011" not in text
    assert all(m.allow_html for m in at.markdown if "white-space:nowrap" in m.value)
    con = sqlite3.connect(workspace_of(at).db_path)
    # Only the window's conversions were attributed again (the core's store semantics).
    by_model = dict(
        con.execute(
            "SELECT a.model, count(DISTINCT a.conv_id) FROM pipeline_attribution a"
            " JOIN conversions c ON c.conv_id = a.conv_id"
            " WHERE c.conv_date BETWEEN '2023-09-04' AND '2023-09-06' GROUP BY 1"
        ).fetchall()
    )
    assert set(by_model) == {"linear"}
    assert (
        con.execute(
            "SELECT count(*) FROM pipeline_attribution a JOIN conversions c ON c.conv_id = a.conv_id"
            " WHERE c.conv_date < '2023-09-04' AND a.model = 'ihc'"
        ).fetchone()[0]
        > 0
    )
    # the cards describe the last run (the window) and say what the database holds: both models, counted
    held = dict(con.execute("SELECT model, count(DISTINCT conv_id) FROM pipeline_attribution GROUP BY 1").fetchall())
    assert set(held) == {"ihc", "linear"}
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Last run: ") for c in captions)
    total = held["ihc"] + held["linear"]
    line = next(c for c in captions if c.startswith("In the database: "))
    line = re.sub(r'<span style="white-space:nowrap">([^<]*)</span>', r"\1", line)  # whole dates
    assert line.startswith(f"In the database: {total:,} conversions attributed — ")
    assert f"Linear: {held['linear']:,} conversions (2023-09-04 … 2023-09-06)" in line
    assert f"IHC — offline model: {held['ihc']:,} conversions (" in line


def test_a_failed_run_keeps_the_previous_results(dashboard_env, monkeypatch):
    import pipeline.runner as runner

    at = open_page("pipeline")
    ws = workspace_of(at)
    before = digest(ws.db_path)

    def broken(*args, **kwargs):
        raise PipelineError("the report stage failed (test)")

    monkeypatch.setattr(runner, "report_stage", broken)
    at.selectbox(key="run_model").set_value("last-click").run()
    at.button(key="run_button").click().run()
    assert not at.exception
    assert any("The run stopped" in e.value and "failed (test)" in e.value for e in at.error)
    assert digest(ws.db_path) == before
    assert "Model **IHC — offline model**" in texts(at)  # the cards still show the previous run


def test_model_descriptions_and_the_half_life_in_an_analysts_words(dashboard_env):
    """Issue 16 F4: no parameter names or textbook terms in the registry's descriptions (the CLI's `models`
    and the Pipeline page read the same text); the half-life is typed as whole hours, not '168.000'."""
    from pipeline.models import available_models, get_model

    for name in available_models():
        words = get_model(name).description
        for jargon in ("half_life_hours", "closed form", "absorbing", "worth =", "re-implementation", "challenge data"):
            assert jargon not in words, (name, words)
    at = open_page("pipeline")
    at.selectbox(key="run_model").set_value("time-decay").run()
    no_errors(at)
    half_life = at.number_input(key="run:time-decay:half_life_hours")
    assert half_life.value == 168 and isinstance(half_life.value, int) and half_life.label == "Half-life (hours)"
    assert "168 hours = 1 week" in texts(at)
    half_life.set_value(24).run()
    at.button(key="run_button").click().run()
    no_errors(at)
    assert "(Half-life (hours): 24)" in texts(at)  # the run's settings in whole hours, not "24.0"


def test_bad_parameter_is_shown_before_running(dashboard_env):
    at = open_page("pipeline")
    at.text_area(key="run:ihc:redistribution").input("{not json").run()
    assert any("not valid JSON" in e.value for e in at.error)
    assert at.button(key="run_button").disabled


# ---- the progress adapter ---------------------------------------------------------------------


class FakeBar:
    def __init__(self):
        self.calls = []

    def progress(self, value, text=None):
        self.calls.append((value, text))


def test_progress_adapter_moves_the_bar_and_ignores_other_threads():
    from pages._look import StreamlitProgress

    bar = FakeBar()
    progress = StreamlitProgress(bar, interval=10.0)
    progress(0, 100, "validate")
    progress(5, 100, "validate")  # same message within the interval: skipped
    progress(25, 100, "journeys")
    t = threading.Thread(target=progress, args=(50, 100, "from a scan thread"))
    t.start()
    t.join()
    progress(100, 100, "done")
    assert bar.calls == [(0.0, "validate — 0%"), (0.25, "journeys — 25%"), (1.0, "done — 100%")]
    progress(3, 0, "no total")
    assert bar.calls[-1] == (0.0, "no total — 0%")


# ---- the IHC API option -------------------------------------------------------------------------


def test_api_option_not_available_in_this_build(dashboard_env, monkeypatch):
    monkeypatch.setitem(sys.modules, "pipeline.ihc_api", None)  # import fails
    at = open_page("pipeline")
    at.selectbox(key="run_model").set_value("ihc-api").run()
    no_errors(at)
    assert any("not available in this build" in e.value for e in at.info)
    assert at.button(key="run_button").disabled


def fake_api(monkeypatch):
    """A stand-in ``pipeline.ihc_api`` whose config reads the key like the real client."""
    module = types.ModuleType("pipeline.ihc_api")

    @dataclasses.dataclass(frozen=True)
    class Config:
        api_key: str | None = dataclasses.field(default=None, repr=False)
        conv_type_id: str | None = None

    def load_config(overrides=None, *, env_file=None, environ=None):
        import os

        environ = os.environ if environ is None else environ
        overrides = overrides or {}
        key = overrides.get("api_key") or environ.get("IHC_API_KEY")
        if key and " " in key:
            raise InputError("IHC_API_KEY contains whitespace")
        return Config(key, overrides.get("conv_type_id") or environ.get("IHC_CONV_TYPE_ID"))

    module.load_config = load_config
    monkeypatch.setitem(sys.modules, "pipeline.ihc_api", module)
    return module


def test_api_options_function(monkeypatch):
    from pages._models import api_options

    monkeypatch.setitem(sys.modules, "pipeline.ihc_api", None)
    assert not api_options(SECRET).available
    fake_api(monkeypatch)
    none = api_options(None, None, environ={})
    assert none.available and not none.ready and none.message == "Paste your IHC API key above."  # admin: in help
    no_type = api_options(SECRET, None, environ={})
    assert not no_type.ready and no_type.key_source == "typed" and "conversion type" in no_type.message
    env = api_options("", "conv-1", environ={"IHC_API_KEY": SECRET})
    assert env.key_source == "environment"
    typed = api_options(SECRET, "conv-1", environ={})
    accepts = "api_config" in {f.name for f in dataclasses.fields(RunOptions)}
    assert typed.ready == accepts
    if accepts:
        assert typed.run_options["model"] == "ihc-api" and typed.run_options["api_config"].api_key == SECRET
    for option in (none, no_type, env, typed):
        assert SECRET not in option.message and SECRET not in repr(option)
    bad = api_options("has space " + SECRET, "conv-1", environ={})
    assert not bad.ready and SECRET not in bad.message


def test_api_key_is_never_shown_or_stored(dashboard_env, monkeypatch):
    fake_api(monkeypatch)
    at = open_page("pipeline")
    at.selectbox(key="run_model").set_value("ihc-api").run()
    key_box = at.text_input(key="api_key")
    assert key_box.proto.type == key_box.proto.PASSWORD
    key_box.input(SECRET).run()
    at.text_input(key="api_conv_type").input("conv-1").run()
    no_errors(at)
    assert SECRET not in texts(at)
    assert "The key you typed has not been checked yet" in texts(at)
    for path in workspace_of(at).root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_run_through_the_ihc_api_with_a_typed_key(dashboard_env, monkeypatch):
    """Against the API client's local stand-in server on 127.0.0.1 (when the client is in this build)."""
    local = pytest.importorskip("pipeline.ihc_api.local_server", reason="the IHC API client is not in this build")
    if "api_config" not in {f.name for f in dataclasses.fields(RunOptions)}:
        pytest.skip("this build's pipeline run does not accept an API configuration")
    with local.LocalIhcServer(SECRET) as server:
        at = api_pipeline_page(monkeypatch, server.url, READ_TIMEOUT="20")
        at.text_input(key="api_key").input(SECRET).run()
        at.text_input(key="api_conv_type").input("local").run()
        assert not at.button(key="run_button").disabled
        at.button(key="run_button").click().run()
        no_errors(at)
        assert "with IHC — web API" in texts(at) and SECRET not in texts(at)
        assert any(r.method == "POST" for r in server.received)
    ws = workspace_of(at)
    con = sqlite3.connect(ws.db_path)
    assert con.execute("SELECT DISTINCT model FROM pipeline_attribution").fetchall() == [("ihc-api",)]
    for path in ws.root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_the_page_warns_before_a_run_that_would_mix_models(dashboard_env):
    at = open_page("pipeline")
    no_errors(at)
    assert any("Data checks:" in e.label for e in at.expander)  # validation's warnings, before Run
    assert not any("mix models" in str(w.value) for w in at.warning)
    at.selectbox(key="run_model").set_value("linear").run()
    at.date_input(key="run_dates").set_value((date(2023, 9, 3), date(2023, 9, 4))).run()
    no_errors(at)
    warning = next(str(w.value) for w in at.warning if "mix models" in str(w.value))
    assert "from 2023-09-03 … 2023-09-04 only" in warning and "keep their IHC — offline model credit" in warning
    # not also "the Report … then show it instead of IHC", which a mixed report does not
    assert not [i for i in at.info if "instead of" in str(i.value)]
    at.date_input(key="run_dates").set_value(()).run()  # every conversion: no mix, the plain replacing note
    no_errors(at)
    assert not any("mix models" in str(w.value) for w in at.warning)
    assert any("then show it instead of IHC — offline model" in str(i.value) for i in at.info)


# ---- the IHC API option in words: Check, quota, errors; Stop; old errors cleared; settings in words --


def _api_page(monkeypatch, url, key, conv_type="local", attempts="1"):
    at = api_pipeline_page(monkeypatch, url, MAX_ATTEMPTS=attempts)
    at.text_input(key="api_key").input(key).run()
    at.text_input(key="api_conv_type").input(conv_type).run()
    return at


def _no_key_anywhere(at, key):
    assert key not in texts(at)
    for name in at.session_state:
        if name != "api_key":
            assert key not in repr(at.session_state[name]), name
    for path in workspace_of(at).root.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path


def test_check_says_in_words_whether_the_key_works(dashboard_env, monkeypatch, caplog):
    import logging

    caplog.set_level(logging.DEBUG)  # every logger, everything: the key must not be in any record
    local = pytest.importorskip("pipeline.ihc_api.local_server")
    with local.LocalIhcServer(SECRET) as server:
        at = _api_page(monkeypatch, server.url, SECRET)
        assert "has not been checked yet" in texts(at)  # no "Ready" for a key never tried
        assert "conversion type id" in texts(at).lower() and "ihc-attribution.com" in texts(at)
        at.button(key="api_check_button").click().run()
        assert [r.method for r in server.received] == ["POST"]  # one tiny request
        assert server.received[0].n_sessions == 1
        good = [str(s.value) for s in at.success]
        assert any(t.startswith("The key and the conversion type id work: the IHC API answered") for t in good)
        _no_key_anywhere(at, SECRET)

        at.text_input(key="api_key").input("wrong-" + SECRET[::-1]).run()
        assert not any("work:" in str(s.value) for s in at.success)  # a changed key forgets the check
        at.button(key="api_check_button").click().run()
        bad = [str(e.value) for e in at.error]
        assert any(t.startswith("The key was refused — check that it was copied whole") for t in bad), bad
        url = server.url
    at.text_input(key="api_key").input(SECRET).run()
    at.button(key="api_check_button").click().run()  # the server is gone: nothing listens on the port
    bad = [str(e.value) for e in at.error]
    assert any("could not be reached: connection refused" in t and t.endswith("Nothing was sent.") for t in bad), bad
    _no_key_anywhere(at, SECRET)
    assert url and caplog.records and SECRET not in caplog.text


def test_the_quota_a_run_will_use_is_shown_before_running(dashboard_env, monkeypatch):
    local = pytest.importorskip("pipeline.ihc_api.local_server")
    with local.LocalIhcServer(SECRET) as server:
        at = _api_page(monkeypatch, server.url, SECRET)
        con = sqlite3.connect(workspace_of(at).db_path)
        n = con.execute("SELECT count(*) FROM pipeline_journey_conversions WHERE sessions > 0").fetchone()[0]
        sessions = con.execute("SELECT count(*) FROM pipeline_journeys").fetchone()[0]
        con.close()
        text = texts(at)
        assert f"**Quota.** A run sends {n:,} conversions ({sessions:,} sessions) in " in text
        assert f"{n:,} conversions of your quota" in text
        assert server.received == []  # estimated, nothing sent
        at.button(key="run_button").click().run()
        no_errors(at)
        assert sum(r.n_journeys for r in server.received) == n
        assert "a run sends nothing and uses no quota" in texts(at)


def test_an_api_error_in_words_then_a_good_run_clears_it(dashboard_env, monkeypatch):
    local = pytest.importorskip("pipeline.ihc_api.local_server")
    with local.LocalIhcServer(SECRET) as server:
        url = server.url
    at = _api_page(monkeypatch, url, SECRET, attempts="2")  # nothing listens there any more
    at.button(key="run_button").click().run()
    assert not at.exception
    errors = [str(e.value) for e in at.error]
    assert len(errors) == 1, errors
    error = errors[0]
    assert error.startswith("**The run stopped:** the IHC API could not be reached: connection refused by 127.0.0.1:")
    assert "Nothing was sent: no conversion reached the IHC API and no quota was used" in error
    assert "the rest" not in error and "HTTPConnectionPool" not in error and "Traceback" not in error
    _no_key_anywhere(at, SECRET)

    at.selectbox(key="run_model").set_value("last-click").run()
    assert any("The run stopped" in str(e.value) for e in at.error)  # still there until the next run
    at.button(key="run_button").click().run()
    no_errors(at)  # the old error is gone once a later run succeeded
    assert "with Last click" in texts(at)


def test_stop_leaves_a_clear_stopped_message_and_the_previous_results(dashboard_env, monkeypatch):
    """Streamlit's Stop (or a click that restarts the page) raises inside the run at its next progress
    step; the run is abandoned, the database unchanged, and the page then says so."""
    from streamlit.runtime.scriptrunner import StopException

    import pipeline.runner as runner

    at = open_page("pipeline")
    ws = workspace_of(at)
    before = digest(ws.db_path)
    real = runner.report_stage

    def stopped(*args, **kwargs):
        raise StopException()

    monkeypatch.setattr(runner, "report_stage", stopped)
    at.selectbox(key="run_model").set_value("linear").run()
    at.button(key="run_button").click().run()
    monkeypatch.setattr(runner, "report_stage", real)
    at.run()
    assert not at.exception
    warning = [str(w.value) for w in at.warning if "Stopped" in str(w.value)]
    assert warning == [
        "**Stopped** — the previous results are unchanged: nothing of the stopped run was saved. "
        "Press **Run pipeline** to start again."
    ]
    assert digest(ws.db_path) == before
    at.button(key="run_button").click().run()
    no_errors(at)
    assert not any("Stopped" in str(w.value) for w in at.warning)
    assert "with Linear" in texts(at)


def test_the_outcome_is_under_the_run_button():
    source = open("pages/pipeline.py", encoding="utf-8").read()
    main = source[source.index("with shown_errors():") :]
    assert main.index('"Run pipeline"') < main.index("last_run(ws)")
    assert main.index("last_run(ws)") < main.index("calibration_section")


def test_model_settings_in_words(dashboard_env):
    at = open_page("pipeline")
    profile = at.selectbox(key="run:ihc:profile")
    assert profile.options[:2] == [
        "challenge — IHC as Haensel AMS trained it on their sample shop data",
        "default — IHC as documented",
    ]
    text = texts(at)
    assert "initializer (opened it), holder (kept it going), closer (closed the sale)" in text
    assert "'default' is the model as documented, the three roles counting equally" in text
    assert at.checkbox(key="run:ihc:round").label == "Round credit to 4 decimals, as the web API does"
    assert '"redistribution_channel_labels"' in at.code[0].value  # an example to start from
    json.loads(at.code[0].value)
    at.text_area(key="run:ihc:redistribution").input(at.code[0].value).run()
    no_errors(at)  # the example is valid
    at.text_area(key="run:ihc:redistribution").input('{"closer": {"direction": "sideways"}}').run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "closer.direction must be one of" in errors[0], errors
    at.text_area(key="run:ihc:redistribution").input('{"closer": ').run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "not valid JSON at line 1, column 12" in errors[0] and "\n" not in errors[0]
    assert at.button(key="run_button").disabled

    at.selectbox(key="run_model").set_value("shapley").run()
    worth = at.selectbox(key="run:shapley:worth")
    assert worth.value == "rate" and len(worth.options) == 2
    # short enough for the picker at 1280 px (the long option was cut: "… the share of paths with those chann…")
    assert worth.options == ["conversion rate of the channel set", "number of conversions of the set"]
    worth.set_value("conversions").run()
    no_errors(at)
    at.button(key="run_button").click().run()
    no_errors(at)
    assert "What a set of channels is worth: number of conversions of the set" in texts(at)


def test_the_summary_replaces_the_progress_bar_and_stop(dashboard_env, monkeypatch):
    """A fast run's summary never shows beside "done — 100%" and "Stop the run": the bar and Stop are
    emptied before the rerun that draws the outcome (they stayed, stale, until that rerun ended), and
    that rerun draws the outcome in their slot. Seen in the page's messages at the moment of the rerun."""
    import streamlit as st
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    from streamlit.testing.v1.element_tree import parse_tree_from_messages

    at = open_page("pipeline")
    at.checkbox(key="run_force").check().run()
    at_rerun: list = []
    real = st.rerun

    def watched_rerun(*args, **kwargs):
        runner = get_script_run_ctx()._enqueue.__self__  # AppTest's LocalScriptRunner: the messages so far
        at_rerun.append(parse_tree_from_messages(runner.forward_msgs()))
        return real(*args, **kwargs)

    monkeypatch.setattr(st, "rerun", watched_rerun)
    at.button(key="run_button").click().run()
    no_errors(at)
    assert len(at_rerun) == 1  # the run's own rerun
    (sent,) = at_rerun
    assert sent.get("progress") == []  # the bar is gone already
    assert [b for b in sent.get("button") if b.key == "stop_run"] == []
    # and the rerun drew the summary with no bar or Stop
    assert "Open the report" in [link.label for link in at.get("page_link")]
    assert at.get("progress") == [] and [b for b in at.button if b.key == "stop_run"] == []


def test_picking_another_model_says_what_run_will_replace(dashboard_env):
    """With Linear picked over the stored IHC attribution, the page showed three "Done" cards and a Run
    button whose help read "Run the stages that are not up to date": nothing said that a run replaces the
    IHC credit everywhere (the walk). It says so, with the conversions' dates, and points to Compare."""
    at = open_page("pipeline")
    no_errors(at)
    assert not any("instead of" in str(i.value) for i in at.info)  # the stored model: nothing replaced
    at.selectbox(key="run_model").set_value("linear").run()
    no_errors(at)
    note = next(str(i.value) for i in at.info if "instead of" in str(i.value))
    assert note == (
        "**Run pipeline** attributes the conversions of 2023-09-01 – 2023-09-10 with **Linear**: the Report, "
        "Journeys and the downloads then show it instead of IHC — offline model. To see both side by side "
        "without replacing anything: Compare models."
    )
    at.date_input(key="run_dates").set_value((date(2023, 9, 3), date(2023, 9, 4))).run()
    # a run of some dates that will mix the models: the warning says so, and no note says "instead of"
    assert any("will mix models" in str(w.value) for w in at.warning)
    assert not any("instead of" in str(i.value) for i in at.info)
    at.button(key="run_button").click().run()
    no_errors(at)
    # Linear is stored now: picking it again replaces nothing; IHC would replace Linear
    assert not any("instead of" in str(i.value) for i in at.info)
    at.selectbox(key="run_model").set_value("ihc").run()
    assert any("with **IHC — offline model**" in str(i.value) and "instead of Linear" in str(i.value) for i in at.info)
