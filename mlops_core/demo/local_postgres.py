"""A throwaway PostgreSQL cluster on this machine: for the tests, the many-writers soak and ``make demo-cluster``.

``LocalCluster`` runs the server's own tools (``initdb``, ``pg_ctl``) from Debian's
``postgresql`` package (``/usr/lib/postgresql/<major>/bin``, else ``pg_config --bindir``, else
``$PATH``) on a data folder in a temporary folder, listening on 127.0.0.1 only, on a free port,
with a random password for TCP logins (scram-sha-256). ``initdb`` refuses to run as root, so as
root the cluster runs as the ``postgres`` system user (``runuser``). Durability is traded for
speed (``fsync=off``): the cluster lives only as long as its owner.

    with LocalCluster() as cluster:
        url = cluster.create_database("mlops")      # postgresql://mlops:<password>@127.0.0.1:<port>/mlops

Run as a script it starts a cluster, prints its URL and stops it on Ctrl-C (or SIGTERM).
"""
from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

USER = "mlops"  # the cluster's superuser: the role the URLs log in as


class ClusterUnavailable(RuntimeError):
    """Raised when PostgreSQL's server programs are not installed here (or cannot run)."""


def find_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: Debian's newest ``/usr/lib/postgresql/*/bin``, else ``pg_config
    --bindir``, else the folder of ``initdb`` on ``$PATH``; None when there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
                   if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    if shutil.which("pg_config"):
        out = subprocess.run([shutil.which("pg_config"), "--bindir"], capture_output=True, text=True, check=False).stdout.strip()  # noqa: S603
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """A PostgreSQL cluster in a temporary folder (``folder`` to choose it), started by ``start()`` (or ``with``)."""

    def __init__(self, folder: str | os.PathLike | None = None, *, port: int | None = None):
        bindir = find_bindir()
        if bindir is None:
            raise ClusterUnavailable("PostgreSQL's server programs (initdb, pg_ctl) are not installed: "
                                     "apt-get install postgresql")
        self.bindir = bindir
        self._own_folder = folder is None
        self.folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="mlops-pg-"))
        self.data = self.folder / "data"
        self.port = port or free_port()
        self.password = secrets.token_urlsafe(18)
        self.running = False
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres and shutil.which("runuser") is None:
            raise ClusterUnavailable("running as root needs runuser to start PostgreSQL as the postgres user")

    # --- running the server's programs --------------------------------------------------------

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/")  # noqa: S603  (our own bindir)
        if check and proc.returncode != 0:
            raise ClusterUnavailable(f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def start(self) -> LocalCluster:
        """Create the cluster (once) and start the server; return self."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
            os.chmod(self.folder, 0o700)
        if not (self.data / "PG_VERSION").exists():
            pwfile = self.folder / "pw"
            pwfile.write_text(self.password + "\n")
            if self._as_postgres:
                shutil.chown(pwfile, "postgres", "postgres")
            try:
                self._run("initdb", "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile), "-E", "UTF8",
                          "--locale=C", "--auth-local=peer", "--auth-host=scram-sha-256", "--no-sync")
            finally:
                pwfile.unlink(missing_ok=True)
            (self.folder / "password").write_text(self.password)
            os.chmod(self.folder / "password", 0o600)
        else:
            self.password = (self.folder / "password").read_text().strip()
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='{self.folder}' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                   "-c shared_buffers=64MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w",
                  "-t", "60", "start")
        self.running = True
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete the folder when this object made it."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop", check=False)
            self.running = False
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- databases ------------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def has_database(self, name: str) -> bool:
        """Whether the cluster holds a database ``name``."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as con:
            return con.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database ``name`` (a copy of ``template`` when given); return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as con:
            sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
            con.execute(sql)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str]) -> int:
    """``local_postgres.py [FOLDER]``: start a cluster (in FOLDER, kept), print its URL, stop it on Ctrl-C."""
    cluster = LocalCluster(argv[0] if argv else None).start()
    print(cluster.create_database("mlops"), flush=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        while not stop["now"]:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
