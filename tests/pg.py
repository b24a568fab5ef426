"""A throwaway PostgreSQL server on loopback for the storage tests (no mocks, no system config).

``start_postgres()`` runs ``initdb`` into a fresh temporary folder, starts the server with
``pg_ctl`` on a free port of 127.0.0.1 (Unix socket in the same folder, trust authentication),
and returns a :class:`PostgresServer`; ``stop()`` shuts it down and removes the folder.
``initdb`` refuses to run as root, so as root the binaries run as the ``postgres`` system user.

Not a test module: the tests put this folder on ``sys.path`` and import it.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PostgresServer", "PostgresUnavailable", "find_pg_bin", "start_postgres"]

HOST = "127.0.0.1"
START_TIMEOUT_S = 60
SETUP_HINT = "run scripts/ensure-postgres (CI installs PostgreSQL via .ci/run)"


class PostgresUnavailable(RuntimeError):
    """The server binaries (or a user to run them as) are missing: the tests skip."""


def find_pg_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, else the newest
    ``/usr/lib/postgresql/<version>/bin``."""
    initdb = shutil.which("initdb")
    if initdb is not None:
        folder = Path(os.path.realpath(initdb)).parent
        if (folder / "pg_ctl").exists():
            return folder

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", Path(path).parent.name)) or (0,)

    for folder_s in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        folder = Path(folder_s)
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server; ``url(db)`` is the SQLAlchemy URL of one of its databases."""

    bin_dir: Path
    root: Path
    port: int
    as_user: str | None
    databases: list[str] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@{HOST}:{self.port}/{database}"

    def _run(
        self, *args: str, timeout: float = START_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        return _run(self.bin_dir, list(args), as_user=self.as_user, cwd=self.root, timeout=timeout)

    def create_database(self, name: str | None = None) -> str:
        """Create a new empty database and return its URL."""
        import psycopg2

        name = name or f"regsweep_{uuid.uuid4().hex[:10]}"
        con = psycopg2.connect(host=HOST, port=self.port, user="postgres", dbname="postgres")
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            con.close()
        self.databases.append(name)
        return self.url(name)

    def password_database(self, user: str, password: str) -> str:
        """A new database owned by ``user``, who must log in with ``password`` over TCP (every
        other role keeps trust); returns its URL without the password."""
        import psycopg2

        hba = self.data_dir / "pg_hba.conf"
        line = f"host all {user} {HOST}/32 scram-sha-256\n"
        if line not in hba.read_text():
            hba.write_text(line + hba.read_text())  # the first matching line wins
        name = f"regsweep_{uuid.uuid4().hex[:10]}"
        con = psycopg2.connect(host=HOST, port=self.port, user="postgres", dbname="postgres")
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute("SET password_encryption = 'scram-sha-256'")
                cur.execute(f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'")
                if cur.fetchone() is None:
                    cur.execute(f"CREATE ROLE {user} LOGIN PASSWORD %s", (password,))
                cur.execute(f'CREATE DATABASE "{name}" OWNER {user}')
                cur.execute("SELECT pg_reload_conf()")
        finally:
            con.close()
        self.databases.append(name)
        return f"postgresql+psycopg2://{user}@{HOST}:{self.port}/{name}"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """Fast shutdown (rolls back open transactions), then remove the folder."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                stop = ["pg_ctl", "stop", "-D", str(self.data_dir), "-w", "-t", "30", "-m"]
                if self._run(*stop, "fast").returncode != 0:
                    self._run(*stop, "immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _command(bin_dir: Path, args: list[str], as_user: str | None) -> list[str]:
    cmd = [str(bin_dir / args[0]), *args[1:]]
    if as_user is None:
        return cmd
    if shutil.which("runuser"):
        return ["runuser", "-u", as_user, "--", *cmd]
    return ["su", as_user, "-s", "/bin/sh", "-c", shlex.join(cmd)]


def _run(
    bin_dir: Path, args: list[str], *, as_user: str | None, cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = env["LANG"] = "C"
    return subprocess.run(
        _command(bin_dir, args, as_user),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _system_user() -> str | None:
    """None when not root; else the ``postgres`` user the binaries run as."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root and there is no 'postgres' system user for initdb; " + SETUP_HINT
        ) from None
    if not shutil.which("runuser") and not shutil.which("su"):
        raise PostgresUnavailable(
            "running as root and neither runuser nor su exists to drop privileges"
        )
    return "postgres"


def start_postgres(attempts: int = 3) -> PostgresServer:
    """initdb + pg_ctl start on a free loopback port; raises PostgresUnavailable when the
    binaries are missing and RuntimeError when the server does not come up."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise PostgresUnavailable(
            f"PostgreSQL server binaries (initdb, pg_ctl) not found; {SETUP_HINT}"
        )
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        raise PostgresUnavailable(
            "psycopg2 is not installed (pip install -e '.[postgres]')"
        ) from None
    as_user = _system_user()

    root = Path(tempfile.mkdtemp(prefix="regsweep-pg-"))
    if as_user is not None:
        shutil.chown(root, user=as_user)
    server = PostgresServer(bin_dir=bin_dir, root=root, port=0, as_user=as_user)
    try:
        init = server._run(
            "initdb",
            "-D",
            str(server.data_dir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
        last = ""
        for _ in range(attempts):  # another process may take the free port before the server
            server.port = _free_port()
            options = " ".join(
                [
                    f"-c listen_addresses={HOST}",
                    f"-c port={server.port}",
                    f"-c unix_socket_directories={root}",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                ]
            )
            start = server._run(
                "pg_ctl",
                "start",
                "-D",
                str(server.data_dir),
                "-l",
                str(server.log_file),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-o",
                options,
            )
            if start.returncode == 0:
                return server
            last = f"{start.stdout}\n{start.stderr}\n{server.log_tail()}"
        raise RuntimeError(f"pg_ctl start failed {attempts} times:\n{last}")
    except BaseException:
        server.stop()
        raise
