"""The engine contract (``pipeline.engines``: ``validate``, ``journey_batches``, ``channel_report`` …) as
``warehouse`` implements it once for every SQL warehouse. Each warehouse module (``postgres``,
``bigquery``, ``snowflake``, ``databricks``) offers these names with one star import of this module and
adds its own ``open_engine``; ``__all__`` is the list, kept here only.
"""

from __future__ import annotations

from .warehouse import (
    BATCH_ROWS,
    OUTPUT_TABLES,
    RECORD_TABLE,
    Connection,
    WarehouseEngine,
    channel_report,
    conversion_count,
    fingerprint,
    journey_batches,
    journeys,
    non_converting_summary,
    path_summary,
    require_inputs,
    run_record,
    stored_report,
    table_versions,
    validate,
    write_outputs,
    write_run_record,
)

__all__ = [
    "BATCH_ROWS",
    "OUTPUT_TABLES",
    "RECORD_TABLE",
    "Connection",
    "WarehouseEngine",
    "channel_report",
    "conversion_count",
    "fingerprint",
    "journey_batches",
    "journeys",
    "non_converting_summary",
    "path_summary",
    "require_inputs",
    "run_record",
    "stored_report",
    "table_versions",
    "validate",
    "write_outputs",
    "write_run_record",
]
