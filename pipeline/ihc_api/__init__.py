"""Attribution through the IHC web API: chunked, checked, retried, resumable, and never leaking the key.

The one entry point for the pipeline is ``attribute_via_api(conn, journeys, config)``; configuration
comes from ``load_config``. ``ihc-api`` (``MODEL_NAME``) is deliberately not registered as a ``Model``: it needs a
database connection (its resumable ledger) and an account configuration, which the model interface
``fn(index, params, context)`` does not carry.

Modules, one concern each: ``config`` (environment/.env/CLI), ``request_records`` (journeys → request
records, truncation, fingerprints), ``chunking`` (whole journeys within both limits), ``client`` (HTTP
with retries), ``answers`` (is every answer complete and sane), ``ledger`` (the ``ihc_api_*`` tables),
``run`` (the orchestration), ``probe`` (``ihc-api-check``), the two stand-ins for the API, which share
one check of a request's records (``request_records.record_problem``): ``standin`` (``ihc-local``, a
request body on stdin → the response body) and ``local_server`` (``ihc-local-server``, HTTP on
127.0.0.1, for tests and analysts), ``synthetic`` (generated journeys), ``redact`` (keeping the key out
of every message).
"""

from __future__ import annotations

import importlib
from typing import Any

MODEL_NAME = "ihc-api"  # the --model name of attribution through the API (defined here only)
DESCRIPTION = "IHC through Haensel AMS's web API (needs IHC_API_KEY and IHC_CONV_TYPE_ID)."

# public name -> submodule; imported on first use so that building the CLI stays light
_EXPORTS = {
    "ApiConfig": "config",
    "load_config": "config",
    "with_overrides": "config",
    "IhcApiError": "errors",
    "TABLES": "ledger",
    "recent_runs": "ledger",
    "ApiRunResult": "run",
    "ApiRunSummary": "run",
    "attribute_via_api": "run",
    "CheckReport": "probe",
    "check_api": "probe",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
