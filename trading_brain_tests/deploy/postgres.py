"""A throwaway PostgreSQL server for tests (Debian's ``postgresql`` package, 127.0.0.1 only).

``make test`` installs the package on CI (``.ci/run``). The server runs as the ``postgres`` user
when this process is root (postgres refuses to run as root), from a fresh data directory with
password authentication on TCP; ``PgServer.stop()`` removes everything. ``find_bin()`` is None
when PostgreSQL is not installed: tests skip then, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest


def find_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` (or the PATH's) holding initdb and pg_ctl."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0)
    for d in reversed(dirs):
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def require_bin() -> Path:
    """``find_bin()`` or skip (fail under CI, where ``make test`` installs PostgreSQL)."""
    found = find_bin()
    if found is None:
        msg = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " but CI=true: .ci/run must install it")
        pytest.skip(msg)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    bindir: Path
    root: Path
    port: int
    user: str = "dagster"
    password: str = "s3cret-for-tests"
    db: str = "dagster"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def start(self) -> PgServer:
        self.root.mkdir(parents=True, exist_ok=True)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chmod(self.root, 0o700)
            for p in (self.root, pwfile):
                os.chown(p, pg.pw_uid, pg.pw_gid)
        out = self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user,
                        "--pwfile", str(pwfile), "--auth-host=scram-sha-256",
                        "--auth-local=trust", "-E", "UTF8", "--no-sync")
        assert out.returncode == 0, out.stderr
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={self.root} -c fsync=off")
        out = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts,
                        "-l", str(self.root / "log"), "-w", "-t", "60", "start")
        assert out.returncode == 0, out.stderr + (self.root / "log").read_text()
        out = self._run(str(self.bindir / "createdb"), "-h", str(self.root), "-p",
                        str(self.port), "-U", self.user, self.db)
        assert out.returncode == 0, out.stderr
        return self

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def env(self) -> dict[str, str]:
        return {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(self.port),
                "DAGSTER_PG_USER": self.user, "DAGSTER_PG_PASSWORD": self.password,
                "DAGSTER_PG_DB": self.db}


def start_server() -> PgServer:
    # not under pytest's tmp dirs: those are private to root and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="tb-pg-"))
    return PgServer(require_bin(), root, free_port()).start()
