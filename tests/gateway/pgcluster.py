"""A throwaway PostgreSQL cluster for the gateway tests, from Debian's `postgresql` package.

`initdb` and `postgres` refuse to run as root, so as root both run as the `postgres` user the package
creates. The cluster lives in a temporary folder, listens on 127.0.0.1 at a free port and on a socket in
that folder, and is removed when stopped. `fsync` and `synchronous_commit` are off: these tests never kill
PostgreSQL itself. `Cluster.start(durable=True)` keeps both on, as a production ledger would (the benchmark's
`--durable`: a commit then waits for its WAL to reach the disk).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg


class PostgresMissing(RuntimeError):
    pass


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin folder (the major version is not hard-coded)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise PostgresMissing("PostgreSQL is not installed: apt-get install -y postgresql (./dev test does)")
    return Path(found[-1]).parent


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass  # alive, another user's (not root here, and not the postgres user)
        time.sleep(0.05)


def _processes_naming(directory: Path) -> list[int]:
    """The running processes whose command line names `directory` (a postmaster names its data folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            named = str(directory).encode() in cmdline.read_bytes()
        except OSError:
            continue
        if named and int(cmdline.parent.name) != os.getpid():
            found.append(int(cmdline.parent.name))
    return found


def _remove(directory: Path, timeout: float = 5) -> None:
    """Remove the cluster's folder, again if a process on its way out wrote into it meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        shutil.rmtree(directory, ignore_errors=True)
        if not directory.exists() or time.monotonic() > deadline:
            return
        time.sleep(0.05)


_STOPS = {signal.SIGINT, signal.SIGTERM}


@dataclass
class Cluster:
    directory: Path
    port: int
    bin: Path
    durable: bool = False

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "migrations") -> str:
        """The URL of a new, empty database of its own (for a test that migrates one from scratch)."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    @classmethod
    def start(cls, *, durable: bool = False) -> Cluster:
        # A Ctrl-C (`./dev gateway`) between making the folder and the `try` below would leave it behind: held
        # back until the folder is one the clean-up knows.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            directory = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
                return cls._start_in(directory, durable)
            except BaseException:
                _remove(directory)  # (`_start_in` stopped whatever it started)
                raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    @classmethod
    def _start_in(cls, directory: Path, durable: bool) -> Cluster:
        # mkdtemp makes a 0700 folder: the postgres user must be able to enter it.
        directory.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres")
        cluster = cls(directory, _free_port(), postgres_bin(), durable)
        try:
            initdb = ["initdb", "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "--no-sync"]
            cluster._run([*initdb, "-E", "UTF8"])
            cluster._first_up()
        except BaseException:
            # Ctrl-C (or a failure) while starting: pg_ctl detaches the server, so nobody else would stop it.
            cluster.stop()
            raise
        return cluster

    def _first_up(self, attempts: int = 5) -> None:
        """Start on the chosen port, or on another if it was taken between choosing and binding (another
        pytest-xdist worker, or another run on the machine, can choose the same free port meanwhile)."""
        log = self.directory / "server.log"
        for attempt in range(attempts):
            offset = log.stat().st_size if log.exists() else 0
            try:
                self.up()
                return
            except subprocess.CalledProcessError:
                said = log.read_text(errors="replace")[offset:] if log.exists() else ""
                if "already in use" not in said or attempt == attempts - 1:
                    raise
                self.port = _free_port()

    def _options(self) -> str:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} -c max_connections=300"
        if self.durable:
            return options
        return f"{options} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"

    def restart(self) -> None:
        """Stop (dropping every connection) and start again with the same options."""
        self._run(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "restart"])

    def down(self, *, crash: bool = False) -> None:
        """Stop the server (dropping every connection) but keep the cluster, for `up` to start again.
        `crash`: every process quits at once (`immediate`), so no statement finishes on the way down (a fast
        stop ends the sessions one by one: a statement waiting for a lock that another's end releases may
        commit first)."""
        mode = "immediate" if crash else "fast"
        self._run(["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"])

    def up(self) -> None:
        """Start the server (again, after `down`)."""
        log = str(self.directory / "server.log")
        self._run(["pg_ctl", "-D", str(self.data), "-l", log, "-w", "-o", self._options(), "start"])

    def stop(self) -> None:
        postmaster = self._postmaster_pid()
        try:
            if postmaster is not None:
                self._run(["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        finally:
            # A Ctrl-C also reaches a postmaster that pg_ctl started in our process group: it may be shutting
            # itself down (pg_ctl then fails: "not running") and still writing files while we remove them.
            # Its pid file may not be whole yet (a Ctrl-C while it starts): the postmaster is also found by
            # its command line, which names the data folder.
            known = [postmaster] if postmaster is not None else []
            for pid in {*known, *_processes_naming(self.directory)}:
                _wait_gone(pid)
            _remove(self.directory)

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _run(self, argv: list[str]) -> None:
        command = _as_postgres([str(self.bin / argv[0]), *argv[1:]])
        subprocess.run(
            command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.directory
        )
