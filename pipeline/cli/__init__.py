"""Command line: ``python -m pipeline COMMAND ...``; each command is a thin wrapper over one library call.

Commands live in modules listed in ``COMMAND_MODULES``; each module has ``register(subparsers)`` that
adds its sub-commands with ``set_defaults(handler=fn)``, where ``fn(args) -> int`` is the exit code.
Errors: a ``PipelineError`` becomes ``error: <message>`` on stderr with its exit code (2 for bad input or
usage); argparse usage errors exit 2 as well; Ctrl-C exits 130. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib
import sqlite3
import sys
from typing import Optional, Sequence

from ..db import sqlite_error_message
from ..errors import InputError, PipelineError

COMMAND_MODULES = ["core", "ihc", "api", "calibrate", "engines"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line (plus the usage) and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m pipeline",
        description="Attribution pipeline: journeys → attribution → channel report → CPO/ROAS CSV.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        handler = args.handler
        db = getattr(args, "db", None)
        if (isinstance(db, str) and "://" in db) or getattr(args, "engine", None):
            from .on_engines import route  # the one place a source URL picks its engine

            handler = route(args)
        return int(handler(args) or 0)
    except PipelineError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    except sqlite3.DatabaseError as exc:
        path = getattr(args, "output_db", None) or getattr(args, "db", None)
        sys.stderr.write(f"error: {sqlite_error_message(exc, path=path)}\n")
        return InputError.exit_code
    except MemoryError:
        sys.stderr.write(
            "error: this machine has too little memory for this database (MemoryError); use a machine with "
            "more memory, a narrower --start/--end window or smaller batches (ATTRIBUTION_JOURNEY_BATCH_ROWS)\n"
        )
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: work committed so far is kept; run again to continue\n")
        return 130
    except BrokenPipeError:
        return 0
