"""An IHC API failure in words an analyst reads: what went wrong, and what was and was not sent.

``explain(error, sent)`` is the one place that turns an ``IhcApiError`` into that sentence; the run
(``run.attribute_via_api``, hence ``python -m pipeline run`` and the dashboard's Run) and
``ihc-api-check`` (the CLI and the dashboard's **Check**) both use it. ``connection_cause`` names why
a request got no answer at all (the HTTP client records it on the error as ``cause``):

| cause | meaning |
|---|---|
| ``name`` | the API's host name could not be resolved (no name server, or a wrong address) |
| ``network`` | no network: the name server or the host is unreachable |
| ``refused`` | nothing listens at that address and port |
| ``connect-timeout`` | no connection within the connect timeout |
| ``timeout`` | connected and sent, but no answer within the read timeout |
| ``dropped`` | the connection broke before the answer was complete |

Nothing reached the API for the first four; for the last two the request was sent and the API may
have counted it against the account's quota. The sentence never quotes the key: every text it
quotes was redacted by the client before.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from .errors import IhcApiError

CAUSES = ("name", "network", "refused", "connect-timeout", "timeout", "dropped")
NOT_SENT = frozenset({"name", "network", "refused", "connect-timeout"})  # no byte of the request left
_NETWORK_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}
_NO_NAME_SERVER = {getattr(socket, "EAI_AGAIN", -3), getattr(socket, "EAI_FAIL", -4)}


@dataclass(frozen=True)
class Sent:
    """How far a run got when the error came: requests (chunks) answered and saved out of all."""

    requests_answered: int
    requests_total: int
    conversions_answered: int
    conversions_total: int  # conversions this run had to send
    conversions_in_failed_request: int = 0


def connection_cause(exc: BaseException) -> str:
    """``name``/``network``/``refused``/``dropped`` for a connection error of the HTTP library
    (``requests`` → urllib3 → socket), read from the exception chain, not from its text."""
    chain: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is seen for seen in chain):
            continue
        chain.append(item)
        todo += [a for a in item.args if isinstance(a, BaseException)]
        todo += [getattr(item, "reason", None), item.__cause__, item.__context__]
    for item in chain:
        if isinstance(item, socket.gaierror):
            return "network" if item.errno in _NO_NAME_SERVER else "name"
    for item in chain:
        if type(item).__name__ == "NameResolutionError":  # urllib3 ≥ 2, its gaierror not chained
            return "network" if "Temporary failure" in str(item) else "name"
        if isinstance(item, ConnectionRefusedError) or (isinstance(item, OSError) and item.errno == errno.ECONNREFUSED):
            return "refused"
        if isinstance(item, OSError) and item.errno in _NETWORK_ERRNOS:
            return "network"
    text = str(exc)
    if "Connection refused" in text:
        return "refused"
    if "Failed to resolve" in text or "Name or service not known" in text:
        return "name"
    return "dropped"  # a connection made and then lost (reset, closed without an answer)


SHORT = {
    "name": "name not resolved (no network?)",
    "network": "no network",
    "refused": "connection refused",
    "connect-timeout": "no connection in time",
    "timeout": "no answer in time",
    "dropped": "the connection broke",
}


def short_problem(cause: Optional[str], problem: str) -> str:
    """A failed attempt in a few words, for the progress line while the client waits to try again:
    the cause in words when there was no answer, else the server's answer ("503 service unavailable")."""
    return SHORT.get(cause or "", problem)


def explain(error: IhcApiError, sent: Optional[Sent] = None, api_url: Optional[str] = None) -> str:
    """One paragraph: what went wrong in words, and (with ``sent``) what was and was not sent and
    what running again does. Without ``sent`` (a single check request) it says only whether the
    request left this computer."""
    what = _what_happened(error, _host(api_url))
    if sent is None:
        if error.cause in NOT_SENT:
            return f"{what}. Nothing was sent."
        return f"{what}."
    return f"{what}. {_what_was_sent(error, sent)}"


def _host(api_url: Optional[str]) -> str:
    if not api_url:
        return "the API's address"
    parts = urlsplit(api_url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _tries(error: IhcApiError) -> str:
    if error.attempts <= 1:
        return ""
    seconds = f" over {error.seconds:.0f} s" if error.seconds and error.seconds >= 1 else ""
    return f" (tried {error.attempts} times{seconds})"


def _answer(error: IhcApiError) -> str:
    """The server's answer as the client wrote it: "403 missing or wrong API key: <its message>"."""
    return error.detail.removeprefix("IHC API answered ")


def _what_happened(error: IhcApiError, host: str) -> str:
    cause, status = error.cause, error.status
    if cause == "name":
        return f"the IHC API could not be reached: name not resolved ({host}) — no network, or a wrong address{_tries(error)}"
    if cause == "network":
        return f"the IHC API could not be reached: no network ({host}){_tries(error)}"
    if cause == "refused":
        return f"the IHC API could not be reached: connection refused by {host} — nothing answers there{_tries(error)}"
    if cause == "connect-timeout":
        return f"the IHC API could not be reached: no connection to {host} in time (timeout){_tries(error)}"
    if cause == "timeout":
        return f"the IHC API did not answer in time (timeout){_tries(error)}"
    if cause == "dropped":
        return f"the connection to the IHC API broke before its answer came{_tries(error)}"
    if error.wait is not None:
        return (
            f"the IHC API asks to wait {error.wait:,.0f} s before the next request — the account's quota may "
            f"be used up; try again later (it answered {_last(error)})"
        )
    if status == 403:
        return f"the key was refused — check that it was copied whole (the IHC API answered {_answer(error)})"
    if status == 400:
        return (
            "the IHC API refused the request — check the conversion type id (and the redistribution "
            f"parameter, if any); it answered {_answer(error)}"
        )
    if status == 406:
        return f"the IHC API could not read a customer journey (it answered {_answer(error)})"
    if error.retryable and status is not None:
        return f"the IHC API kept failing{_tries(error)}: {_last(error)}"
    return f"the IHC API stopped the run: {error.detail}"


def _last(error: IhcApiError) -> str:
    """The last answer of a retried request (the client's text after "last: "), else the detail."""
    detail = error.detail
    if "; last: " in detail:
        return detail.split("; last: ", 1)[1]
    if "asks to wait" in detail and "(" in detail:
        return detail.split("(", 1)[1].split(")", 1)[0]
    return detail


def _what_was_sent(error: IhcApiError, sent: Sent) -> str:
    total = sent.conversions_total
    if sent.requests_answered == 0:
        if error.cause in NOT_SENT:
            head = "Nothing was sent: no conversion reached the IHC API and no quota was used"
        elif error.cause in ("timeout", "dropped"):
            head = (
                f"The first request ({_n(sent.conversions_in_failed_request)}) was sent but not answered — "
                "the API may have counted it against the quota; nothing was attributed"
            )
        else:
            head = f"The first request ({_n(sent.conversions_in_failed_request)}) was refused; nothing was attributed"
        return f"{head}. Running again sends the {_n(total)} not answered yet."
    rest = total - sent.conversions_answered
    return (
        f"Answered and saved: {sent.requests_answered:,} of {sent.requests_total:,} requests "
        f"({sent.conversions_answered:,} of {_n(total)}); the other {_n(rest)} were not attributed. "
        "Running again sends only those."
    )


def _n(conversions: int) -> str:
    return f"{conversions:,} conversion" + ("" if conversions == 1 else "s")
