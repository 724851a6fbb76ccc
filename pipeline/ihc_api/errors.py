"""The IHC API client's fatal error: one line, the server's message included, the key redacted."""

from __future__ import annotations

from typing import Optional

from ..errors import PipelineError


class IhcApiError(PipelineError):
    """The API refused the work (400/403/406/other 4xx) or stayed unreachable after the retries.

    ``status`` is the HTTP status of the last answer (None when there was none: connection errors,
    timeouts). Raised only after every chunk already answered was committed, so running again resumes.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        status: Optional[int] = None,
        retryable: bool = False,
        cause: Optional[str] = None,
        attempts: int = 1,
        wait: Optional[float] = None,
        seconds: Optional[float] = None,
    ):
        super().__init__(message)
        self.status = status
        self.retryable = retryable  # True when waiting and running again may succeed (429, 5xx, network)
        # what went wrong when there was no answer (``failure.CAUSES``: "name", "network", "refused",
        # "connect-timeout", "timeout", "dropped"), None when the server answered
        self.cause = cause
        self.attempts = attempts  # requests made, the first one included
        self.wait = wait  # seconds the server asked to wait (Retry-After) when that stopped the run
        self.seconds = seconds  # time spent on the request, its retries included
        self.detail = message  # the technical one-line message (the key redacted), kept for logs
