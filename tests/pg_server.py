"""A real PostgreSQL server for tests: Debian's ``postgresql`` binaries, a fresh cluster in a temporary folder,
listening on a free loopback port with password (scram-sha-256) authentication, stopped on exit.

``initdb`` and ``postgres`` refuse to run as root, so as root the cluster is created and run by the
``postgres`` system user (Debian's package creates it), else by ``nobody``; as any other user, by that user.
``pg_binaries()`` is None when no binaries exist (the tests then skip, naming what to install).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

USER = "analyst"
PASSWORD = "s3cret-Pw-7"  # a distinctive value, so a test can look for it in messages
DATABASE = "attribution"


def pg_binaries() -> Optional[Path]:
    """The folder of initdb/pg_ctl/postgres (newest Debian version first, then PATH), or None."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if os.access(os.path.join(folder, "initdb"), os.X_OK):
            return Path(folder)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    bin: Path
    base: Path
    port: int
    runas: Optional[str]  # the system user running the server (None: this process's user)

    @property
    def data(self) -> Path:
        return self.base / "data"

    def url(self, password: bool = True, database: str = DATABASE) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgres://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.runas:
            cmd = ["runuser", "-u", self.runas, "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120, **kw)

    def start(self) -> "PgServer":
        pwfile = self.base / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.runas:
            entry = pwd.getpwnam(self.runas)
            for p in (self.base, pwfile):
                os.chown(p, entry.pw_uid, entry.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--locale=C.UTF-8",
            "--encoding=UTF8",
        )
        pwfile.unlink()
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off -c full_page_writes=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"), "-o", options, "-w", "start"
        )
        deadline = time.monotonic() + 30
        while True:  # pg_ctl -w waits for the socket; make sure the port answers too
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, DATABASE, env=env)
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)

    def log(self) -> str:
        path = self.base / "log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_server() -> PgServer:
    """A started server on a free loopback port (stop it with ``.stop()``)."""
    binaries = pg_binaries()
    if binaries is None:
        raise RuntimeError("no PostgreSQL binaries (install Debian's postgresql)")
    runas = None
    if os.geteuid() == 0:
        runas = "postgres" if _user_exists("postgres") else "nobody"
    base = Path(tempfile.mkdtemp(prefix="pgtest-"))
    server = PgServer(binaries, base, _free_port(), runas)
    try:
        return server.start()
    except BaseException as exc:
        log = server.log()
        server.stop()
        if isinstance(exc, subprocess.CalledProcessError):
            raise RuntimeError(f"postgres did not start: {exc.stderr.strip()} {log[-2000:]}") from None
        raise


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
