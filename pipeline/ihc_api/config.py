"""Configuration of the IHC API client: environment, a ``.env`` file, then command-line overrides.

Precedence, highest first: explicit overrides (CLI options) > the process environment > the ``.env``
file > defaults. The ``.env`` file is read with python-dotenv without touching ``os.environ``.

| variable | meaning | default |
|---|---|---|
| ``IHC_API_KEY`` | the account's key (required; never printed or stored) | — |
| ``IHC_CONV_TYPE_ID`` | the trained conversion type (required) | — |
| ``IHC_API_URL`` | endpoint | ``https://api.ihc-attribution.com/v1/compute_ihc`` |
| ``IHC_MAX_JOURNEYS_PER_REQUEST`` | journeys per request | 100 |
| ``IHC_MAX_SESSIONS_PER_REQUEST`` | sessions per request (200 on free accounts) | 3000 |
| ``IHC_REDISTRIBUTION_PARAMETER`` | path of a JSON file sent as ``redistribution_parameter`` | none |
| ``IHC_API_CONNECT_TIMEOUT`` / ``IHC_API_READ_TIMEOUT`` | seconds | 10 / 120 |
| ``IHC_API_MAX_ATTEMPTS`` | attempts per request, first one included | 6 |
| ``IHC_API_BACKOFF_BASE`` / ``IHC_API_BACKOFF_MAX`` | backoff before retry n: base·2^(n-1), capped, jittered | 1 / 30 |
| ``IHC_API_MAX_RETRY_SECONDS`` | total time budget for one request with its retries | 300 |
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit, urlunsplit

from ..errors import InputError
from ..journey_index import PHASES
from .env_names import ENV_VARS  # noqa: F401 - part of this module's interface
from .redact import MASK

DEFAULT_API_URL = "https://api.ihc-attribution.com/v1/compute_ihc"
DOCUMENTED_MAX_JOURNEYS = 100
DOCUMENTED_MAX_SESSIONS = 3000
FREE_ACCOUNT_MAX_SESSIONS = 200


@dataclass(frozen=True)
class ApiConfig:
    """Everything the client needs. ``repr`` and ``describe`` never show the key."""

    api_key: Optional[str] = field(default=None, repr=False)
    conv_type_id: Optional[str] = None
    api_url: str = DEFAULT_API_URL
    max_journeys: int = DOCUMENTED_MAX_JOURNEYS
    max_sessions: int = DOCUMENTED_MAX_SESSIONS
    redistribution_parameter: Optional[dict] = None
    redistribution_file: Optional[str] = None
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    max_attempts: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    max_retry_seconds: float = 300.0

    def require(self) -> "ApiConfig":
        """Raise ``InputError`` unless the key and conversion type are set: checked before any work."""
        if not self.api_key:
            raise InputError("no IHC API key: set IHC_API_KEY in the environment or in a .env file (or pass --api-key)")
        if not self.conv_type_id:
            raise InputError(
                "no IHC conversion type: set IHC_CONV_TYPE_ID in the environment or in a .env file "
                "(or pass --conv-type-id)"
            )
        return self

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.api_key,) if self.api_key else ()

    def describe(self) -> dict[str, Any]:
        """The settings as plain values for messages, logs and tables: the key shows as set or not."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "api_key":
                value = MASK if value else None
            out[f.name] = value
        return out


def load_config(
    overrides: Optional[Mapping[str, Any]] = None,
    *,
    env_file: Optional[str | os.PathLike | bool] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> ApiConfig:
    """Build and check an ``ApiConfig``.

    ``overrides`` maps field names to values (``None`` means "not given"); besides the fields named in
    ``ENV_VARS`` it may carry ``redistribution_parameter`` (a dict). ``env_file`` defaults to ``.env``
    in the working directory when it exists; ``False`` reads no file; naming a missing file is an error.
    ``environ`` defaults to ``os.environ``. Bad values raise ``InputError``. The key and conversion type
    may still be missing here (``ihc-local-server`` needs neither); ``ApiConfig.require`` checks them.
    """
    environ = os.environ if environ is None else environ
    file_values = _read_env_file(env_file)
    raw: dict[str, Any] = {}
    for name, var in ENV_VARS.items():
        value = file_values.get(var)
        if environ.get(var) not in (None, ""):
            value = environ[var]
        if value not in (None, ""):
            raw[name] = value
    for name, value in (overrides or {}).items():
        if name not in ENV_VARS and name != "redistribution_parameter":
            raise ValueError(f"unknown IHC API setting {name!r}")
        if value is not None:
            raw[name] = value
    return _build(raw)


def with_overrides(config: ApiConfig, **changes: Any) -> ApiConfig:
    """A copy of ``config`` with some fields changed and re-checked (tests shorten delays this way)."""
    return _build(
        {**{k: v for k, v in config.describe().items() if v is not None}, "api_key": config.api_key, **changes}
    )


def _read_env_file(env_file) -> dict[str, Optional[str]]:
    from dotenv import dotenv_values  # only API commands read it: `run` with a local model starts faster

    if env_file is False:
        return {}
    if env_file is None:
        candidate = Path.cwd() / ".env"
        return dict(dotenv_values(candidate)) if candidate.is_file() else {}
    path = Path(env_file)
    if not path.is_file():
        raise InputError(f"env file {str(path)!r} does not exist")
    return dict(dotenv_values(path))


def _build(raw: Mapping[str, Any]) -> ApiConfig:
    values: dict[str, Any] = {}
    for key in ("api_key", "conv_type_id"):
        if raw.get(key) not in (None, ""):
            values[key] = str(raw[key]).strip()
    api_key = values.get("api_key")
    if api_key is not None and any(ch.isspace() for ch in api_key):
        raise InputError("IHC_API_KEY contains whitespace; check the .env file quoting")
    if api_key is not None and not (api_key.isascii() and api_key.isprintable()):
        raise InputError("IHC_API_KEY must be printable ASCII; check the .env file encoding")
    values["api_url"] = _check_url(str(raw.get("api_url", DEFAULT_API_URL)))
    values["max_journeys"] = _positive_int(raw, "max_journeys", DOCUMENTED_MAX_JOURNEYS)
    values["max_sessions"] = _positive_int(raw, "max_sessions", DOCUMENTED_MAX_SESSIONS)
    values["connect_timeout"] = _positive_float(raw, "connect_timeout", 10.0)
    values["read_timeout"] = _positive_float(raw, "read_timeout", 120.0)
    values["max_attempts"] = _positive_int(raw, "max_attempts", 6)
    values["backoff_base"] = _positive_float(raw, "backoff_base", 1.0, allow_zero=True)
    values["backoff_max"] = _positive_float(raw, "backoff_max", 30.0, allow_zero=True)
    values["max_retry_seconds"] = _positive_float(raw, "max_retry_seconds", 300.0)
    if raw.get("redistribution_parameter") is not None:
        values["redistribution_parameter"] = check_redistribution(raw["redistribution_parameter"])
    if raw.get("redistribution_file"):
        path = str(raw["redistribution_file"])
        values["redistribution_file"] = path
        values["redistribution_parameter"] = read_redistribution_file(path)
    return ApiConfig(**values)


def read_redistribution_file(path: str) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"redistribution parameter file {path!r} cannot be read: {exc.strerror}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"redistribution parameter file {path!r} is not JSON (line {exc.lineno}: {exc.msg})") from None
    return check_redistribution(value, source=path)


def check_redistribution(value: Any, source: str = "redistribution_parameter") -> dict:
    """The spec (§1.7) documents the shape, not the semantics: per phase an object with ``direction``,
    ``receive_threshold`` and ``redistribution_channel_labels``. Check the shape, pass it on as is."""
    if not isinstance(value, dict) or not value:
        raise InputError(f"{source}: expected a JSON object with keys among {', '.join(PHASES)}")
    unknown = sorted(set(value) - set(PHASES))
    if unknown:
        raise InputError(f"{source}: unknown phase(s) {', '.join(unknown)}; expected {', '.join(PHASES)}")
    for phase, rule in value.items():
        if not isinstance(rule, dict):
            raise InputError(f"{source}: {phase} must be an object")
        labels = rule.get("redistribution_channel_labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise InputError(f"{source}: {phase}.redistribution_channel_labels must be a list of strings")
        threshold = rule.get("receive_threshold", 0)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise InputError(f"{source}: {phase}.receive_threshold must be a number in [0, 1]")
        direction = rule.get("direction", "any_session")
        if direction not in ("earlier_sessions_only", "later_sessions_only", "any_session"):
            raise InputError(
                f"{source}: {phase}.direction must be earlier_sessions_only, later_sessions_only or any_session"
            )
    return value


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"IHC_API_URL must be an http(s) URL, got {url_for_display(url)!r}")
    if parts.query or parts.username or parts.password:
        raise InputError(
            "IHC_API_URL must not carry a query string or credentials: the conversion type goes in "
            "IHC_CONV_TYPE_ID and the key in IHC_API_KEY"
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))


def url_for_display(url: str) -> str:
    """The URL without query string or user info: what may appear in messages and tables."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _positive_int(raw: Mapping[str, Any], name: str, default: int) -> int:
    value = raw.get(name, default)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InputError(f"{ENV_VARS[name]} must be a whole number, got {value!r}") from None
    if number < 1:
        raise InputError(f"{ENV_VARS[name]} must be at least 1, got {number}")
    return number


def _positive_float(raw: Mapping[str, Any], name: str, default: float, allow_zero: bool = False) -> float:
    value = raw.get(name, default)
    try:
        number = float(str(value).strip())
    except ValueError:
        raise InputError(f"{ENV_VARS[name]} must be a number of seconds, got {value!r}") from None
    if not (number >= 0 if allow_zero else number > 0) or number != number or number == float("inf"):
        raise InputError(
            f"{ENV_VARS[name]} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}"
        )
    return number
