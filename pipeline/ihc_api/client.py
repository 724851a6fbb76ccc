"""One HTTP request to the IHC API, with retries: ``ApiClient.post(body) -> ApiReply``.

Retried (bounded by ``max_attempts`` and by ``max_retry_seconds`` of total time per request):
connection errors, dropped connections, timeouts, 429, 500, 502, 503, 504, and a 200/206 whose body is
not a JSON object (a truncated transfer). The wait before retry n is ``min(backoff_max,
backoff_base·2^(n-1))`` with equal jitter (half fixed, half random), except that a ``Retry-After``
header (seconds or an HTTP date) on 429/503 is honoured as given; when it asks for more than the time
budget left, the client stops at once instead of sleeping (a quota that resets tomorrow).

Not retried: 400 (invalid input), 403 (missing or wrong key), 406 (a journey could not be parsed), any
other status — the server's message is put in a one-line ``IhcApiError``. Redirects are not followed,
so the key header is never sent to another host. A 200 whose body says ``"statusCode": 500`` (an API
gateway wrapping a failed function) is treated as that status.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, cast
from urllib.parse import urlsplit

import requests

from .. import __version__
from .config import ApiConfig
from .errors import IhcApiError
from .failure import connection_cause, short_problem
from .header_deadline import HeaderDeadlineAdapter
from .redact import get_logger, one_line, redact

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SUCCESS_STATUSES = frozenset({200, 206})
STATUS_MEANING = {
    400: "invalid input",
    403: "missing or wrong API key",
    406: "a customer journey could not be parsed",
    429: "too many requests",
    500: "server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

# (attempt that failed, its problem in a few words — failure.short_problem —, seconds before the next)
RetryHook = Callable[[int, str, float], None]


@dataclass
class ApiReply:
    """A usable answer: status 200 or 206 and the decoded JSON object."""

    status: int
    payload: dict
    attempts: int
    seconds: float
    headers: dict = field(default_factory=dict)


class _Retry(Exception):
    def __init__(
        self,
        problem: str,
        status: Optional[int] = None,
        retry_after: Optional[float] = None,
        cause: Optional[str] = None,
    ):
        super().__init__(problem)
        self.problem = problem
        self.status = status
        self.retry_after = retry_after
        self.cause = cause  # failure.connection_cause of a request without an answer


def _stopped(message: str, retry: _Retry, attempts: int, seconds: float, wait: Optional[float] = None) -> IhcApiError:
    """The error of a request that stops retrying (attempts or retry budget spent): retryable by a later
    run, with the last attempt's status and cause."""
    return IhcApiError(
        message, status=retry.status, retryable=True, cause=retry.cause, attempts=attempts, seconds=seconds, wait=wait
    )


class ApiClient:
    """Posts request bodies to the configured endpoint; one ``requests.Session`` reused throughout."""

    def __init__(
        self,
        config: ApiConfig,
        *,
        session: Optional[requests.Session] = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Optional[random.Random] = None,
        on_retry: Optional[RetryHook] = None,
    ):
        self.config = config.require()
        self.session = session or requests.Session()
        for prefix in ("http://", "https://"):  # the answer's headers within the read timeout, as a whole
            self.session.mount(prefix, HeaderDeadlineAdapter())
        if urlsplit(config.api_url).hostname in LOOPBACK_HOSTS:
            self.session.trust_env = False  # never route a local server through a proxy
        self.session.headers.update(
            {
                "x-api-key": cast(str, config.api_key),  # required above
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"attribution-pipeline/{__version__}",
            }
        )
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.on_retry = on_retry
        self.log = get_logger()
        self.requests_sent = 0
        self.retries = 0

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "ApiClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def redact(self, text: object) -> str:
        return redact(text, self.config.secrets)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, equal jitter."""
        cfg = self.config
        ceiling = min(cfg.backoff_max, cfg.backoff_base * (2 ** (attempt - 1)))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def post(self, body: bytes) -> ApiReply:
        """Send one request body; retry what can be retried; return a 200/206 reply or raise."""
        cfg = self.config
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self.requests_sent += 1
            try:
                return self._attempt(body, attempt, started)
            except _Retry as retry:
                elapsed = time.monotonic() - started
                problem = self.redact(retry.problem)
                if attempt >= cfg.max_attempts:
                    raise _stopped(
                        f"IHC API gave up after {attempt} attempts in {elapsed:.1f} s; last: {problem}",
                        retry,
                        attempt,
                        elapsed,
                    ) from None
                if retry.retry_after is not None:
                    delay = retry.retry_after
                    if elapsed + delay > cfg.max_retry_seconds:
                        raise _stopped(
                            f"IHC API asks to wait {delay:.0f} s before the next request ({problem}), "
                            f"more than the {cfg.max_retry_seconds:.0f} s retry budget "
                            "(IHC_API_MAX_RETRY_SECONDS); a quota may be exhausted",
                            retry,
                            attempt,
                            elapsed,
                            wait=delay,
                        ) from None
                else:
                    delay = min(self.backoff(attempt), max(0.0, cfg.max_retry_seconds - elapsed))
                    if elapsed >= cfg.max_retry_seconds:
                        raise _stopped(
                            f"IHC API gave up after {attempt} attempts: the {cfg.max_retry_seconds:.0f} s "
                            f"retry budget is spent; last: {problem}",
                            retry,
                            attempt,
                            elapsed,
                        ) from None
                self.retries += 1
                self.log.warning("IHC API attempt %d failed (%s); retrying in %.2f s", attempt, problem, delay)
                if self.on_retry is not None:
                    self.on_retry(attempt, short_problem(retry.cause, problem), delay)
                if delay > 0:
                    self.sleep(delay)

    def _attempt(self, body: bytes, attempt: int, started: float) -> ApiReply:
        cfg = self.config
        try:
            response = self.session.post(
                cfg.api_url,
                params={"conv_type_id": cfg.conv_type_id},
                data=body,
                timeout=(cfg.connect_timeout, cfg.read_timeout),
                allow_redirects=False,
                stream=True,  # the body is read by _read_body, within one bound for all of it
            )
            content = _read_body(response, cfg.read_timeout, cfg.secrets)
        except _Retry:
            raise
        except requests.ConnectTimeout:  # (also a ConnectionError: caught first)
            raise _Retry(f"no connection within {cfg.connect_timeout:g} s (timeout)", cause="connect-timeout") from None
        except requests.Timeout:
            raise _Retry(f"no answer within {cfg.read_timeout:g} s (timeout)", cause="timeout") from None
        except requests.ConnectionError as exc:
            raise _Retry(
                f"connection failed: {_exception_text(exc, cfg.secrets)}", cause=connection_cause(exc)
            ) from None
        except requests.RequestException as exc:  # broken chunked transfer, content decoding, ...
            raise _Retry(f"transfer failed: {_exception_text(exc, cfg.secrets)}", cause="dropped") from None

        status = response.status_code
        payload = None
        if status in SUCCESS_STATUSES:
            payload = _json_object(content)
            if payload is None:
                raise _Retry(f"{status} answer is not a JSON object (malformed or truncated)", status)
            body_status = payload.get("statusCode")
            if (
                isinstance(body_status, int)
                and not isinstance(body_status, bool)
                and (body_status not in SUCCESS_STATUSES)
            ):
                status = body_status
            else:
                return ApiReply(
                    status=status,
                    payload=payload,
                    attempts=attempt,
                    seconds=time.monotonic() - started,
                    headers=dict(response.headers),
                )
        message = _server_message(response, content, payload, cfg.secrets)
        described = f"{status} {STATUS_MEANING.get(status, response.reason or 'unexpected status')}"
        if message:
            described += f": {message}"
        if status in RETRY_STATUSES:
            retry_after = _retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
            raise _Retry(described, status, retry_after)
        if 300 <= status < 400:
            location = one_line(response.headers.get("Location", "?"), 100, cfg.secrets)
            described += f" (redirect to {location} not followed)"
        raise IhcApiError(f"IHC API answered {self.redact(described)}", status=status, attempts=attempt)


BODY_CHUNK = 1 << 16


def _read_body(response: requests.Response, seconds: float, secrets: tuple) -> bytes:
    """Read the whole body of ``response`` within ``seconds`` from its headers (each read is bounded by
    the read timeout too), then close the response: a server that trickles a byte now and then never
    lets a single read time out, and held a run for ever. Past the bound, a retryable timeout.

    ``read1`` returns what has arrived (up to ``BODY_CHUNK``), so the bound is checked between bytes that
    trickle; a plain ``read(n)`` waits for all ``n``."""
    import urllib3

    deadline = time.monotonic() + seconds
    raw = response.raw
    chunks = []
    try:
        while True:
            chunk = raw.read1(BODY_CHUNK, decode_content=True)
            if not chunk:
                break
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise _Retry(
                    f"the answer was not complete within {seconds:g} s (the server sends it too slowly)",
                    cause="timeout",
                )
    except urllib3.exceptions.ReadTimeoutError:
        raise _Retry(f"no answer within {seconds:g} s (timeout)", cause="timeout") from None
    except urllib3.exceptions.HTTPError as exc:  # a connection dropped mid-body, a broken chunk, ...
        raise _Retry(f"transfer failed: {_exception_text(exc, secrets)}", cause="dropped") from None
    finally:
        response.close()
    return b"".join(chunks)


def _exception_text(exc: Exception, secrets: tuple) -> str:
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    return one_line(text, 200, secrets)


def _json_object(content: bytes) -> Optional[dict]:
    try:
        payload = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _server_message(response: requests.Response, content: bytes, payload: Optional[dict], secrets: tuple) -> str:
    """The server's own words, the key redacted BEFORE the cut to 300 characters."""
    if payload is None:
        payload = _json_object(content)
    if isinstance(payload, dict):
        for key in ("message", "error", "errorMessage", "detail", "errors", "value"):
            if payload.get(key):
                value = payload[key]
                return one_line(value if isinstance(value, str) else json.dumps(value), 300, secrets)
    try:
        return one_line(_text(response, content), 300, secrets)
    except Exception:  # noqa: BLE001 - undecodable body: the status line says enough
        return ""


def _text(response: requests.Response, content: bytes) -> str:
    """``content`` decoded as ``response.text`` would: the headers' charset, else a guess from the bytes."""
    encoding = response.encoding
    if encoding is None and content and requests.compat.chardet is not None:
        encoding = requests.compat.chardet.detect(content)["encoding"]
    try:
        return str(content, encoding or "utf-8", errors="replace")
    except (LookupError, TypeError):
        return str(content, errors="replace")


def _retry_after(value: Optional[str]) -> Optional[float]:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
