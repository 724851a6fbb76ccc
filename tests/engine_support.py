"""What the engine tests share: the small demo copied and converted to each engine's format, credit
computed batch by batch on an engine's journeys, and the checks that an engine's journeys, findings and
path summaries are SQLite's."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType
from typing import Optional

import numpy as np

from pipeline.convert import convert
from pipeline.db import open_database
from pipeline.journey_index import JourneyIndex
from pipeline.journeys import build_journeys
from pipeline.models import get_model
from pipeline.path_summary import non_converting_summary, path_summary
from pipeline.validate import validate
from pipeline.window import Window
from tests.helpers import run_db

KINDS = ("duckdb", "parquet")


def engine_url(base: Path, kind: str) -> str:
    """The source of a DuckDB file (``x.duckdb``) or a Parquet folder (``lake``) in ``base``."""
    return f"duckdb:///{base / 'x.duckdb'}" if kind == "duckdb" else f"parquet:///{base / 'lake'}"


def demo_sources(small_demo: Path, base: Path, model: Optional[str] = None, outputs: bool = False) -> dict[str, str]:
    """{kind: source}: a SQLite copy of the small demo in ``base`` (run by the SQLite engine first when
    ``model`` is given) and its conversions to each of ``KINDS`` (with the output tables if ``outputs``)."""
    db = base / "demo.db"
    shutil.copy(small_demo, db)
    if model is not None:
        run_db(db, model=model)
    sources = {"sqlite": str(db)}
    for kind in KINDS:
        sources[kind] = engine_url(base, kind)
        convert(db, sources[kind], outputs=outputs)
    return sources


def batch_credits(engine_module: ModuleType, engine, model="linear", window=Window(), batch_rows=None) -> dict:
    """Credit from a numpy model run batch by batch on the engine's journeys (``batch_rows``: the
    engine's ``BATCH_ROWS`` unless given)."""
    m = get_model(model)
    parts = []
    rows = engine_module.BATCH_ROWS if batch_rows is None else batch_rows
    for batch in engine_module.journey_batches(engine, window, batch_rows=rows):
        index = JourneyIndex.from_columns(batch)
        parts.append((index.column("conversion_id"), index.column("session_id"), np.asarray(m.credits(index).ihc)))
    return {name: np.concatenate([p[i] for p in parts]) for i, name in enumerate(("conv_id", "session_id", "ihc"))}


def assert_same_journeys(got, db: Path, window: Window) -> None:
    """``got`` (an engine's ``journeys.Journeys`` of ``window``) holds the SQLite engine's journeys of the
    database file ``db``: every column with its dtype, the conversions and their sessions, and at least
    one session."""
    con = open_database(db)
    expected = build_journeys(con, window)
    con.close()
    assert len(got.columns["ts"]) == len(expected.columns["ts"]) > 0
    for name, values in expected.columns.items():
        assert got.columns[name].dtype == values.dtype, name
        assert (got.columns[name] == values).all(), name
    assert (got.conversion_ids == expected.conversion_ids).all()
    assert (got.sessions == expected.sessions).all()


def assert_whole_batches(batches: list[dict], columns: dict) -> None:
    """``batches`` (more than three) hold whole journeys, a conversion never continuing in a later
    batch, and joined they are ``columns``."""
    assert len(batches) > 3
    seen: set = set()
    for batch in batches:
        ids = set(batch["conversion_id"].tolist())
        assert not ids & seen  # a conversion never continues in a later batch
        seen |= ids
    for name, values in columns.items():
        assert (np.concatenate([b[name] for b in batches]) == values).all(), name


def assert_same_findings(got, db: Path) -> None:
    """``got`` (an engine's ``ValidationReport``) has the SQLite engine's findings on the database file
    ``db`` (codes, severities, counts, messages, examples), rows and coverage; 15 findings at least (a
    database made to exercise most checks)."""
    con = open_database(db)
    expected = validate(con)
    con.close()
    codes = [(f.code, f.severity, f.count) for f in expected.findings]
    assert len(codes) >= 15  # the fixture exercises most checks
    assert [(f.code, f.severity, f.count) for f in got.findings] == codes
    assert [f.message for f in got.findings] == [f.message for f in expected.findings]
    assert got.rows == expected.rows and got.coverage == expected.coverage
    assert [sorted(map(repr, f.examples)) for f in got.findings] == [
        sorted(map(repr, f.examples)) for f in expected.findings
    ]


def sqlite_summaries(db: Path | str, window: Window) -> tuple:
    """The SQLite engine's path summaries of the database file ``db`` in ``window``: (every path's,
    the non-converting paths')."""
    con = open_database(db)
    try:
        return path_summary(con, window), non_converting_summary(con, window)
    finally:
        con.close()
