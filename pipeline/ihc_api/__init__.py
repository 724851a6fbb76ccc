"""Attribution through the IHC web API: chunked, checked, retried, resumable, and never leaking the key.

The one entry point for the pipeline is ``attribute_via_api(conn, journeys, config)``; configuration
comes from ``load_config``. ``ihc-api`` is deliberately not registered as a ``Model``: it needs a
database connection (its resumable ledger) and an account configuration, which the model interface
``fn(index, params, context)`` does not carry.

Modules, one concern each: ``config`` (environment/.env/CLI), ``records`` (journeys → records,
truncation, fingerprints), ``chunking`` (whole journeys within both limits), ``client`` (HTTP with
retries), ``checking`` (is every answer complete and sane), ``ledger`` (the ``ihc_api_*`` tables),
``run`` (the orchestration), ``check`` (``ihc-api-check``), ``local_server`` (a stand-in API for tests
and analysts), ``synthetic`` (generated journeys), ``redact`` (keeping the key out of every message).
"""

from .check import CheckReport, check_api
from .config import ApiConfig, load_config, with_overrides
from .errors import IhcApiError
from .ledger import TABLES, recent_runs
from .run import ApiRunResult, ApiRunSummary, attribute_via_api

__all__ = [
    "ApiConfig",
    "ApiRunResult",
    "ApiRunSummary",
    "CheckReport",
    "IhcApiError",
    "TABLES",
    "attribute_via_api",
    "check_api",
    "recent_runs",
    "load_config",
    "with_overrides",
]
