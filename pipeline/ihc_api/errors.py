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

    def __init__(self, message: str, status: Optional[int] = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable  # True when waiting and running again may succeed (429, 5xx, network)
