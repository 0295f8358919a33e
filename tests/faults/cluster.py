"""A PostgreSQL cluster of a test's own (initdb into a scratch directory, started on a free loopback port), for
faults that restart or stop the server: the shared server the other tests run against in parallel stays up.

As scripts/lib.sh's ``start_throwaway_postgres`` does: the binaries of the newest installed PostgreSQL, run as the
``postgres`` user when this process is root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from providers.sandbox_kit.serve import free_port

USER = "vrtx"
PASSWORD = "vrtx"  # dlt needs a password in the URL even under trust authentication
TIMEOUT_S = 60


def bin_dir() -> Path | None:
    """Where pg_ctl and initdb are: on PATH, else Debian's /usr/lib/postgresql/<version>/bin (the newest)."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name.split(".")[0]))
    return Path(found[-1]) if found else None


@dataclass(frozen=True)
class Cluster:
    bin: Path
    directory: Path
    port: int
    run_as: tuple[str, ...]

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "log"

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str) -> None:
        # The log file on every start: pg_ctl would otherwise hand the server its own stdout, held open by the
        # server long after pg_ctl returned.
        subprocess.run(
            [*self.run_as, str(self.bin / program), *args],
            cwd=self.directory,
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT_S + 30,
        )

    def pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(TIMEOUT_S), *args)

    def restart(self) -> None:
        """A fast shutdown (every session ended, open transactions rolled back) and a start on the same port."""
        self.pg_ctl("restart", "-m", "fast")

    def create_database(self, name: str) -> None:
        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()


@contextmanager
def private_cluster(pg_bin: Path) -> Iterator[Cluster]:
    """A started cluster, stopped (immediate) and deleted afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="vrtx-pg-"))
    run_as: tuple[str, ...] = ()
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
        run_as = ("runuser", "-u", "postgres", "--")
    cluster = Cluster(pg_bin, directory, free_port(), run_as)
    try:
        cluster._run("initdb", "-D", str(cluster.data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-instructions")
        options = f"-h 127.0.0.1 -p {cluster.port} -k {directory} -c fsync=off -c max_connections=100"
        cluster.pg_ctl("-o", options, "start")
        yield cluster
    finally:
        if cluster.data.exists():
            subprocess.run(
                [*run_as, str(pg_bin / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "-w", "stop"],
                cwd=directory,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=TIMEOUT_S,
            )
        shutil.rmtree(directory, ignore_errors=True)
