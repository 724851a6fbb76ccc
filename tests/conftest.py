import os
import sqlite3

import pytest

from tests.dashboard_support import DEMO_ENV
from tests.helpers import tiny_db


@pytest.fixture
def tiny(tmp_path):
    return tiny_db(tmp_path / "tiny.db")


@pytest.fixture
def conn():
    """An in-memory SQLite connection, closed after the test."""
    connection = sqlite3.connect(":memory:")
    yield connection
    connection.close()


@pytest.fixture
def no_ihc_environment(monkeypatch, tmp_path):
    """No ``IHC_*`` variable set and the working folder ``tmp_path`` (no stray .env): what a module of
    IHC API tests names in its ``pytestmark`` (``pytest.mark.usefixtures``)."""
    for name in list(os.environ):
        if name.startswith("IHC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """A 20k-session demo database built once per test session (copy it before writing)."""
    from pipeline.demo import write_demo_db
    from pipeline.demo_size import DemoSize

    path = tmp_path_factory.mktemp("demo") / "small_demo.db"
    write_demo_db(path, DemoSize(sessions=20_000, conversions=400, days=10, seed=7))
    return path


@pytest.fixture(scope="session")
def dashboard_env(tmp_path_factory):
    """Environment of the dashboard under test (set for the whole session, restored after)."""
    base = tmp_path_factory.mktemp("dashboard")
    env = {
        **DEMO_ENV,
        "ATTRIBUTION_CACHE_DIR": str(base / "cache"),
        "ATTRIBUTION_WORKSPACE_DIR": str(base / "workspaces"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def downloads(monkeypatch):
    """{file_name: bytes} of what download buttons were given in the runs of this test. A button whose
    file is built when clicked (a callable) is built here when its name is looked up, as a click would."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    captured = _Downloads()
    real = MemoryMediaFileStorage.load_and_get_id
    real_deferred = MediaFileManager.add_deferred

    def spy(self, path_or_data, mimetype, kind, filename=None):
        if filename is not None and isinstance(path_or_data, (bytes, bytearray)):
            captured[filename] = bytes(path_or_data)
        return real(self, path_or_data, mimetype, kind, filename)

    def spy_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        if file_name is not None:
            captured[file_name] = data_callable
        return real_deferred(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    monkeypatch.setattr(MediaFileManager, "add_deferred", spy_deferred)
    return captured


class _Downloads(dict):
    def __getitem__(self, name):
        value = super().__getitem__(name)
        if callable(value):  # what the click would download
            value = value()
            value = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            self[name] = value
        return value

    def items(self):
        return [(name, self[name]) for name in self.keys()]

    def values(self):
        return [self[name] for name in self.keys()]


def pytest_collection_modifyitems(config, items):
    """``WIDTHS_ONLY=1``: only the browser test of what the Report cuts (tests/test_e2e_widths.py), e.g. to
    look at its screenshots after a layout change without the whole suite."""
    if os.environ.get("WIDTHS_ONLY", "").strip() not in ("", "0"):
        keep = [item for item in items if item.path.name == "test_e2e_widths.py"]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
