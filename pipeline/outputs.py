"""Where the product may write a file: checked before any work starts, so bad output paths lose nothing.

Policy (a careful tool refuses rather than guesses):
- An output is never an input. Two paths name the same file when ``os.stat`` gives the same
  ``(st_dev, st_ino)`` (which sees through symbolic links, hard links, ``..`` and bind mounts) or the
  same resolved path (for a file not created yet). The input database's ``-journal``, ``-wal`` and
  ``-shm`` files count as the input too: a CSV written there would be taken for a hot journal.
- A CSV is written only to a regular file, or a new one: never through a symbolic link (the link
  would be replaced by a plain file, or its target overwritten), never into a directory or a device
  (``/dev/full``, a FIFO). An existing regular file is replaced atomically (write aside, rename).
  ``-`` streams the CSV to stdout instead (the CLI's other output then goes to stderr).
- ``--output-db`` never replaces an existing file unless the caller says ``overwrite``
  (``--overwrite`` on the CLI, as ``demo-db --force``); it must name a file in an existing folder.
Every refusal is an ``InputError`` naming the output path, in one line.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Optional

from .errors import InputError

STDOUT = "-"
SIDE_FILES = ("-journal", "-wal", "-shm")


def _stat(path: str | Path) -> Optional[os.stat_result]:
    try:
        return os.stat(path)
    except OSError:
        return None


def same_file(a: str | Path, b: str | Path) -> bool:
    """Do ``a`` and ``b`` name one file (through links), or one path not created yet?"""
    sa, sb = _stat(a), _stat(b)
    if sa is not None and sb is not None:
        return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)
    return os.path.realpath(a) == os.path.realpath(b)


def _database_files(db: str | Path) -> list[str]:
    """The database file and its side files, by the real path SQLite derives them from."""
    real = os.path.realpath(db)
    return [real + suffix for suffix in SIDE_FILES] + [str(db) + suffix for suffix in SIDE_FILES]


def _refuse_inputs(path: str | Path, what: str, db: Optional[str | Path], output_db: Optional[str | Path]) -> None:
    if db is not None:
        if same_file(path, db):
            raise InputError(f"{what} {path} is the input database; name another file")
        if any(same_file(path, side) for side in _database_files(db)):
            raise InputError(f"{what} {path} belongs to the input database (its journal); name another file")
    if output_db is not None:
        if same_file(path, output_db):
            raise InputError(f"{what} {path} is the output database; name another file")
        if any(same_file(path, side) for side in _database_files(output_db)):
            raise InputError(f"{what} {path} belongs to the output database (its journal); name another file")


def _refuse_non_file(path: Path, what: str, name: str) -> Optional[os.stat_result]:
    """Refuse an existing ``path`` that is a directory, a device, a FIFO or a socket (``name``: what to
    give instead, 'a file'); returns its stat, None when there is nothing there yet."""
    st = _stat(path)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {path} is a directory; name {name}")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {path} is not a regular file (a device, FIFO or socket); name {name}")
    return st


def _folder_exists(path: Path, what: str) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"{what} {path}: folder {parent} does not exist")


def check_csv_target(path: str | Path, db: Optional[str | Path] = None, output_db: Optional[str | Path] = None) -> None:
    """Refuse a CSV path that is an input, a link, a directory or not a regular file (see module doc)."""
    if str(path) == STDOUT:
        return
    path = Path(path)
    what = "--csv"
    _refuse_inputs(path, what, db, output_db)
    if path.is_symlink():
        raise InputError(f"{what} {path} is a symbolic link; give the real path of the file to write")
    _refuse_non_file(path, what, "a file")
    _folder_exists(path, what)


def check_output_db(path: str | Path, db: str | Path, overwrite: bool) -> Path:
    """Refuse an ``--output-db`` that is the input, a directory, in a missing folder, or an existing
    file without ``overwrite``. Returns the path."""
    path = Path(path)
    what = "--output-db"
    _refuse_inputs(path, what, db, None)
    st = _refuse_non_file(path, what, "a database file")
    _folder_exists(path, what)
    if (st is not None or path.is_symlink()) and not overwrite:
        raise InputError(f"{what} {path} exists; add --overwrite to replace it")
    return path


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (or to stdout for ``-``); checks it is a regular file."""
    if str(path) == STDOUT:
        out = sys.stdout.buffer
        out.write(data)
        out.flush()
        return
    check_csv_target(path)
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        tmp.unlink(missing_ok=True)
        with open(tmp, "xb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {exc.strerror}") from None
