"""Errors that carry a one-line message meant for the analyst.

The CLI prints ``error: <message>`` and exits 2 for ``InputError``; the dashboard shows the message.
Anything else that escapes is a bug in the product, not in the user's data.
"""


class PipelineError(Exception):
    """A failure with a message the user can act on (no traceback needed)."""

    exit_code = 1


class InputError(PipelineError):
    """Bad input or usage: a file that is not SQLite, a missing table, an unknown model, ..."""

    exit_code = 2
