"""Engines that run the set work where the data lives (issue 14), and the seam that picks one.

Every engine is a module offering the same plain functions, with the SQLite engine's semantics (checked
by parity tests against it):

| function | returns |
|---|---|
| ``open_engine(source, *, write=False)`` | an open engine (a context manager with ``.source`` and ``.close()``) |
| ``validate(engine)`` | a ``validate.ValidationReport`` with the SQLite engine's findings |
| ``journey_batches(engine, window, batch_rows)`` | an iterator of dicts of ``journeys.journey_columns``, each holding whole journeys |
| ``journeys(engine, window)`` | all journeys gathered in one ``journeys.Journeys`` |
| ``channel_report(engine, credits=None, start=None, end=None)`` | rows (channel_name, date, cost, ihc, ihc_revenue) |
| ``write_outputs(engine, credits, report)`` | the two output tables replaced, staged then swapped; optional keyword ``record``: the run record stored in the swap's transaction (else ``engines.run`` calls ``write_run_record`` after) |
| ``conversion_count(engine, window)`` | the number of conversions (with an id) in the window |
| ``path_summary(engine, window)`` | ``models.weighted_paths.PathSummary`` of the window, computed by the engine (Markov, Shapley) |
| ``fingerprint(engine)`` | a text that changes whenever an input table does (sizes+mtimes, content hashes, table versions) |
| ``run_record(engine)`` / ``write_run_record(engine, record)`` | the last run's record (a JSON-able dict) stored beside the outputs |
| ``stored_report(engine, start=None, end=None)`` | the stored ``channel_reporting`` rows in range, or None |
| optional: ``attribute(engine, window, credit)`` | the credit of every journey, computed where the data is: ``credit`` (a picklable ``engines.run.BatchCredit``) maps a dict of whole journeys' ``journey_columns`` to {conv_id, session_id, ihc, ts (epoch seconds)}; returns those four columns (Arrow table or mapping). Without it ``engines.run`` calls ``credit`` on each of ``journey_batches`` |

``open_engine`` also takes the engine's own keyword options when given on the command line (``master``
from ``--spark-master``). ``engines.run.run_on_engine`` runs the whole pipeline on any engine offering
these; ``cli.on_engines.route`` is the one place a command's DB argument picks SQLite or an engine.

``ENGINES`` maps a (source kind, engine name) to the module that runs it; ``engine_module`` resolves a
source (and an optional ``--engine`` choice) to that module, importing it only then, so a missing
optional package (pyspark, a warehouse driver) is a one-line ``InputError`` for that source alone.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Optional

from ..errors import InputError
from ..sources import Source

# (source kind, engine) → module. The default engine of a kind is listed first.
ENGINES: dict[tuple[str, str], str] = {
    ("duckdb", "duckdb"): "pipeline.engines.duckdb",
    ("parquet", "duckdb"): "pipeline.engines.duckdb",
    ("parquet", "spark"): "pipeline.engines.spark",
    ("spark", "spark"): "pipeline.engines.spark",
    ("postgres", "postgres"): "pipeline.engines.postgres",
    ("bigquery", "bigquery"): "pipeline.engines.bigquery",
    ("snowflake", "snowflake"): "pipeline.engines.snowflake",
    ("databricks", "databricks"): "pipeline.engines.databricks",
}


def default_engine(kind: str) -> Optional[str]:
    """The engine that runs a source kind when none is chosen (None: no engine module; SQLite is the
    library's own stages)."""
    return next((engine for k, engine in ENGINES if k == kind), None)


def engine_module(source: Source, engine: Optional[str] = None) -> ModuleType:
    """The module of the engine that runs ``source`` (``engine``: an explicit choice such as "spark")."""
    name = engine or default_engine(source.kind)
    module = ENGINES.get((source.kind, name or ""))
    if module is None:
        choices = sorted(e for k, e in ENGINES if k == source.kind)
        hint = f" (engines for {source.kind}: {', '.join(choices)})" if choices else ""
        what = f"the {name} engine does not run" if name else "no engine runs"
        raise InputError(f"{source.display()}: {what} {source.kind} sources here{hint}")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InputError(
            f"{source.display()}: the {name} engine needs a package that is not installed ({exc.name})"
        ) from None
