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


# What the operating system, SQLite, DuckDB and Arrow say when a write finds no room: the disk (or the
# user's quota) is full, or the process may not grow a file further (a file-size limit, RLIMIT_FSIZE).
_NO_ROOM_ERRNOS = {28: "No space left on device", 27: "File too large", 122: "Disk quota exceeded"}
_NO_ROOM_WORDS = ("No space left on device", "File too large", "Disk quota exceeded", "database or disk is full")


_SQLITE_IOERR_WRITE = 778  # SQLITE_IOERR | (3 << 8)


def _file_size_limited() -> bool:
    try:
        import resource
    except ImportError:  # not on Windows
        return False
    return resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY


def no_room(exc: BaseException) -> str:
    """The words of ``exc`` saying a write found no room ("No space left on device", …), or "". Our own
    one-line errors are never taken for it (their words may quote the data: a channel named "File too
    large")."""
    if isinstance(exc, PipelineError):
        return ""
    if isinstance(exc, OSError) and exc.errno in _NO_ROOM_ERRNOS:
        return _NO_ROOM_ERRNOS[exc.errno]
    if getattr(exc, "sqlite_errorcode", None) == _SQLITE_IOERR_WRITE and _file_size_limited():
        return "File too large"  # SQLite reports a write past the file-size limit as a write I/O error
    text = str(exc)
    return next((words for words in _NO_ROOM_WORDS if words in text), "")


def no_room_text(words: str) -> str:
    """The one line's words for a write that found no room (after the name of what was written)."""
    return f"no room left to write ({words}); free some disk space (or raise the file-size limit) and run again"
