"""Keeping the API key out of every message: one place that scrubs text and log records.

The key only ever travels in the ``x-api-key`` header. Anything that may echo request data back (a
server's error message, an exception from the HTTP library, a URL) goes through ``redact`` before it
reaches a log line, an exception, a progress message or a table.
"""

from __future__ import annotations

import logging
from typing import Iterable, Optional

MASK = "***"
LOGGER_NAME = "pipeline.ihc_api"


def redact(text: object, secrets: Iterable[Optional[str]]) -> str:
    """``text`` as a string with every occurrence of each non-empty secret replaced by ``***``."""
    out = str(text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, MASK)
    return out


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace and cut to ``limit`` characters: server messages go into one-line errors."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs a secret from a record's formatted message and arguments."""

    def __init__(self, secret: str):
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret:
            message = record.getMessage()
            if self.secret in message:
                record.msg = redact(message, [self.secret])
                record.args = None
        return True


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)
