"""A throwaway PostgreSQL server for the tests and benchmarks.

``initdb`` in a temporary folder, ``pg_ctl start`` on a free loopback port
(and a Unix socket in the same folder), trust authentication for the one
role ``feedbot`` (with ``passwords=True``, connections over TCP need a
password, as a real server's do; the set-up goes through the socket).
PostgreSQL refuses to run as root: as root, the server runs as the
``postgres`` system user that Debian's package creates.  ``bootstrap.sh
test`` installs the package where it is missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

ROLE = "feedbot"


def _bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if versions:
        return Path(versions[-1]).parent
    raise RuntimeError("PostgreSQL's server programs (initdb, pg_ctl) are not installed: run `bash bootstrap.sh test`")


def free_port() -> int:
    """A loopback port free now (for servers that cannot be given port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgServer:
    """``folder``: made here (the server's user must reach it, so not under
    a root-only temporary folder); removed by ``stop``."""

    def __init__(self, durable: bool = False, passwords: bool = False) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="feedbot-pg-"))
        self.data = self.folder / "data"
        self.durable = durable  # fsync on (benchmarks); off for tests
        self.port = free_port()
        self.bin = _bindir()
        self.user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self._count = 0
        self.passwords = passwords

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        done: subprocess.CompletedProcess[str] = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            cwd=self.folder,
            **kwargs,  # type: ignore[call-overload]
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done

    def start(self) -> PgServer:
        if self.user is not None:
            os.chown(self.folder, self.user.pw_uid, self.user.pw_gid)
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256"] if self.passwords else ["-A", "trust"]
        self._run("initdb", "-D", str(self.data), *auth, "-U", ROLE, "-E", "UTF8", "--no-sync", "--locale=C")
        self._start()
        return self

    def _start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=300" + (
            "" if self.durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w", "start")

    def restart(self, down: Callable[[], object] = lambda: None, mode: str = "fast") -> None:
        """Stop the server (every connection dropped), call ``down`` while it
        is stopped, and start it again on the same port and data.  ``mode``:
        pg_ctl's shutdown mode, "fast" (clean) or "immediate" (a crash: the
        server recovers from its log at start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        try:
            down()
        finally:
            self._start()

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{database}"

    def admin_url(self, database: str = "postgres") -> str:
        """Through the Unix socket (trusted even with ``passwords``)."""
        return f"postgresql://{ROLE}@/{database}?host={self.folder}&port={self.port}"

    def new_database(self, owner: tuple[str, str] | None = None) -> str:
        """A fresh, empty database; its URL.  With ``owner`` (name,
        password): a role of its own owns it, and the URL carries the password."""
        import psycopg

        self._count += 1
        name = f"t{os.getpid()}_{self._count}"
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            if owner is None:
                conn.execute(f'CREATE DATABASE "{name}"')
                return self.url(name)
            role, password = owner
            conn.execute(
                psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    psycopg.sql.Identifier(role), psycopg.sql.Literal(password)
                )
            )
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
        return f"postgresql://{quote(role)}:{quote(password, safe='')}@127.0.0.1:{self.port}/{name}"

    def sql(self, database_url: str, statement: str) -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as conn:
            cur = conn.execute(statement)
            return list(cur.fetchall()) if cur.description else []
