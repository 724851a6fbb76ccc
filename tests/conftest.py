import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.helpers import tiny_db  # noqa: E402


@pytest.fixture
def tiny(tmp_path):
    return tiny_db(tmp_path / "tiny.db")


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """A 20k-session demo database built once per test session (copy it before writing)."""
    from pipeline.demo import DemoSize, write_demo_db

    path = tmp_path_factory.mktemp("demo") / "small_demo.db"
    write_demo_db(path, DemoSize(sessions=20_000, conversions=400, days=10, seed=7))
    return path
