"""Keeping the API key out of every message: one place that scrubs text and log records.

The key only ever travels in the ``x-api-key`` header. Anything that may echo request data back (a
server's error message, an exception from the HTTP library, a URL, a header) goes through ``redact``
before it reaches a log line, an exception, progress output, a table or a file.

Contract (tested in tests/test_api_redaction.py):

- the key is masked in every encoding the text may carry it in: as sent, JSON-escaped (once or twice,
  ASCII or not), URL-encoded (``%22``, ``+``), Python ``repr`` / ``unicode_escape``, HTML-escaped;
- redaction happens BEFORE a message is cut to length (``one_line`` takes the secrets): a cut can then
  never leave part of the key behind;
- a text that ends in the start of the key (at least ``PARTIAL_MIN`` characters of it, a server that cut
  its own message, or a cut done elsewhere) has that partial key masked too.
"""

from __future__ import annotations

import html
import json
import logging
import re
import urllib.parse
from typing import Iterable, Optional

MASK = "***"
LOGGER_NAME = "pipeline.ihc_api"
PARTIAL_MIN = 6  # a key prefix this long at the end of a text is masked as well
_ELLIPSIS = re.compile(r"(…|\.\.\.)?[\s\"')\]}]*\Z")
_SCAN_LIMIT = 65_536  # one_line never scans more of a (possibly huge) server body than this


def encodings(secret: str) -> list[str]:
    """``secret`` as it may appear in text that passed through JSON, URL, repr or HTML encoding."""
    once = json.dumps(secret)[1:-1]
    variants = {
        secret,
        once,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(once)[1:-1],
        json.dumps(json.dumps(secret, ensure_ascii=False)[1:-1], ensure_ascii=False)[1:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
        repr(secret)[1:-1],
        secret.encode("unicode_escape").decode("ascii"),
        html.escape(secret),
        html.escape(secret, quote=False),
    }
    return sorted((v for v in variants if v), key=len, reverse=True)  # longest first: no half-masked variant


def redact(text: object, secrets: Iterable[Optional[str]]) -> str:
    """``text`` as a string with each non-empty secret, in every encoding, replaced by ``***``.

    A partial secret at the very end of the text (its first ``PARTIAL_MIN``+ characters, before an
    optional ``…``/``...``) is masked too.
    """
    out = str(text)
    for secret in secrets:
        if not secret:
            continue
        variants = encodings(secret)
        for variant in variants:
            if variant in out:
                out = out.replace(variant, MASK)
        out = _mask_partial_tail(out, variants)
    return out


def _mask_partial_tail(text: str, variants: list[str]) -> str:
    tail = _ELLIPSIS.search(text)
    end = tail.start() if tail else len(text)
    for variant in variants:
        for length in range(min(len(variant) - 1, end), PARTIAL_MIN - 1, -1):
            if text.endswith(variant[:length], 0, end):
                return text[: end - length] + MASK + text[end:]
    return text


def one_line(text: object, limit: int = 300, secrets: Iterable[Optional[str]] = ()) -> str:
    """Redact ``secrets``, collapse whitespace, then cut to ``limit`` characters (``…`` marks a cut).

    The order matters: redacting first means a cut can never keep part of a key; the cut string is
    redacted once more for a partial key at its new end.
    """
    secrets = tuple(secrets)
    flat = " ".join(redact(str(text)[:_SCAN_LIMIT], secrets).split())
    flat = redact(flat, secrets)  # a key with runs of whitespace matches only once collapsed
    if len(flat) <= limit:
        return flat
    return redact(flat[: limit - 1], secrets) + "…"


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs a secret from a record's formatted message and arguments."""

    def __init__(self, secret: str):
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret:
            message = record.getMessage()
            scrubbed = redact(message, [self.secret])
            if scrubbed != message:
                record.msg = scrubbed
                record.args = None
        return True


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)
