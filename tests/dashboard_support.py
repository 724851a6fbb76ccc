"""Running the dashboard with Streamlit's AppTest on a small demo database (20k sessions).

``dashboard_env`` points the demo cache and the working folders at a temporary folder and makes the
built-in demo small; ``open_page(name)`` runs ``app.py`` and switches to a page; ``downloads`` captures
the bytes every ``st.download_button`` hands to Streamlit, by file name.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGES = {
    "data": "pages/data.py",
    "pipeline": "pages/pipeline.py",
    "report": "pages/report.py",
    "journeys": "pages/journeys.py",
    "compare": "pages/compare.py",
}
DEMO_ENV = {"ATTRIBUTION_DEMO_SESSIONS": "20000", "ATTRIBUTION_DEMO_CONVERSIONS": "400",
            "ATTRIBUTION_DEMO_DAYS": "10", "ATTRIBUTION_DEMO_SEED": "7"}
TIMEOUT = 120


@pytest.fixture(scope="session")
def dashboard_env(tmp_path_factory):
    """Environment of the dashboard under test (set for the whole session, restored after)."""
    base = tmp_path_factory.mktemp("dashboard")
    env = {**DEMO_ENV, "ATTRIBUTION_CACHE_DIR": str(base / "cache"),
           "ATTRIBUTION_WORKSPACE_DIR": str(base / "workspaces")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def open_page(name: str, at=None):
    """Run the app (a new browser session unless ``at`` is given) and show page ``name``."""
    from streamlit.testing.v1 import AppTest

    if at is None:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.run()
        assert not at.exception, at.exception
    at.switch_page(PAGES[name]).run()
    return at


def workspace_of(at):
    return at.session_state["_workspace"]


def texts(at) -> str:
    """Every text the page shows (markdown, captions, alerts, metrics, titles), for searching."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(parts)


def no_errors(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.fixture
def downloads(monkeypatch):
    """{file_name: bytes} of what download buttons were given in the runs of this test."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    captured: dict[str, bytes] = {}
    real = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        if filename is not None and isinstance(path_or_data, (bytes, bytearray)):
            captured[filename] = bytes(path_or_data)
        return real(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    return captured
