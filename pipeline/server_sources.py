"""Sources configured on the server for the dashboard: an analyst picks one by name, runs it, reads the
report and downloads the CSV, without ever seeing its URL or credentials.

Where they come from (both may be used; a name in the secrets wins):

- ``.streamlit/secrets.toml``, a ``[sources]`` table of ``name = "URL"`` (Streamlit's secrets file,
  never served to the browser);
- the environment variable ``ATTRIBUTION_SOURCES``: ``name=URL`` entries, one per line or separated
  by ``;``.

A URL is any source ``pipeline.sources`` parses: a SQLite path, ``duckdb:///``, ``parquet:///`` or an
engine-run warehouse; passwords stay in the URL, the environment or ``.env`` as for the command line.
``run_source`` runs one the way ``python -m pipeline run SOURCE --model M`` does (the SQLite runner or
``engines.run.run_on_engine``) and returns what the page shows; given ``extract_to`` it also writes the
run's journey-sized extract there (``engine_extract``), which the Report and Journeys pages read with
the SQLite engine's code (a SQLite source is read as it is: ``SourceRun.database``). Every message
names the source by its name only: the URL (host, user, path) is replaced by the name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from .errors import InputError
from .progress import Progress
from .run_summary import RunSummary, summarise

ENV_VAR = "ATTRIBUTION_SOURCES"


def configured_sources(secrets: Optional[Mapping] = None, environ: Optional[Mapping[str, str]] = None) -> dict:
    """{name: URL} of the server's sources (``secrets``: Streamlit's secrets mapping, or None)."""
    environ = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for entry in (environ.get(ENV_VAR) or "").replace(";", "\n").splitlines():
        name, sep, url = entry.partition("=")
        if sep and name.strip() and url.strip():
            out[name.strip()] = url.strip()
    table = (secrets or {}).get("sources") if secrets is not None else None
    for name, url in dict(table or {}).items():
        if isinstance(url, str) and url.strip():
            out[str(name)] = url.strip()
    return out


@dataclass
class SourceRun:
    """What a run on a configured source gives the page."""

    name: str
    summary: RunSummary  # what the run did, in the words the Pipeline page uses (run_summary.summarise)
    report: object  # pandas DataFrame: channel_name, date, cost, ihc, ihc_revenue, CPO, ROAS
    csv: bytes = field(repr=False, default=b"")  # export's CSV, byte-identical to the CLI's
    database: Optional[Path] = field(repr=False, default=None)  # a SQLite file of the run the pages read
    model: str = ""  # the model the run used


def run_source(
    name: str,
    url: str,
    model: Optional[str] = None,
    progress: Optional[Progress] = None,
    extract_to: Optional[Path] = None,
) -> SourceRun:
    """Run ``url`` (configured under ``name``) with ``model``; InputError messages name only ``name``.
    ``extract_to``: where to write the run's extract for the pages (an engine source only)."""
    from .sources import parse_source

    try:
        source = parse_source(url)
    except InputError:
        raise InputError(f"{name}: the server's URL for this source is not valid; ask the administrator") from None
    try:
        return _run(name, source, model, progress, extract_to)
    except InputError as exc:
        message = str(exc).replace(source.display(), name)
        if source.path is not None:
            message = message.replace(str(source.path), name)
        if not message.startswith(name):
            message = f"{name}: {message}"
        raise InputError(message) from None


def _run(name: str, source, model: Optional[str], progress: Optional[Progress], extract_to) -> SourceRun:
    import pandas as pd

    from .export import EXPORT_COLUMNS, add_ratios, read_report, to_csv_bytes
    from .runner import RunOptions

    options = RunOptions(model=model)
    database = None
    if source.kind == "sqlite":
        from .db import open_database
        from .runner import run_pipeline

        con = open_database(source.file, write=True)
        try:
            result = run_pipeline(con, options, progress)
            report = read_report(con)
        finally:
            con.close()
        database = source.file
    else:
        from .engines.run import running_on_engine

        with running_on_engine(source, options, progress=progress) as (result, mod, eng):
            rows = mod.stored_report(eng) or []
        report = add_ratios(pd.DataFrame.from_records(rows, columns=EXPORT_COLUMNS[:5]))
        if extract_to is not None:
            from .engine_extract import extract_run

            database = extract_run(source, extract_to)
    return SourceRun(
        name, summarise(result), report, csv=to_csv_bytes(report), database=database, model=options.resolve().name
    )
