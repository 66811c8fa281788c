"""The tests' own ports: a replica binds port 0 and the test reads the port from its log; a replica that must
know its port in advance, or PostgreSQL, chooses again when another process took the port first (parallel
pytest-xdist workers choose from the same free ports)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import psycopg
import pytest

from gateway import pgcluster
from gateway.gateway_support import HTTP, PortTaken, Replica, ReplicaForker, start_on_a_chosen_port


@pytest.fixture
def squatted() -> Iterator[int]:
    """A loopback port another process already listens on."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        yield squatter.getsockname()[1]


def test_each_replica_gets_a_port_of_its_own_read_from_its_own_lines_of_the_log(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    first = Replica.start(gateway_env, tmp_path / "shared.log", "/healthz")
    second = Replica.start(gateway_env, tmp_path / "shared.log", "/healthz")  # the first's line is above
    try:
        assert first.url != second.url
        first.stop()
        with pytest.raises(httpx2.TransportError):
            HTTP.get(first.url + "/healthz")
        assert HTTP.get(second.url + "/healthz").status_code == 200
    finally:
        first.stop()
        second.stop()


def test_each_forked_replica_has_a_log_of_its_own_even_beside_another_forkers(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    forkers = [ReplicaForker(gateway_env, tmp_path) for _ in range(2)]  # one folder for both
    try:
        first, second = (forker.start() for forker in forkers)
        assert first.log_path != second.log_path
        for replica, other in ((first, second), (second, first)):
            assert f"{replica.url} " in replica.log() and f"{other.url} " not in replica.log()
    finally:
        for forker in forkers:
            forker.close()


def test_a_replica_whose_chosen_port_was_taken_starts_on_another_and_never_takes_the_squatter_for_itself(
    gateway_env: dict[str, str], tmp_path: Path, squatted: int
) -> None:
    log_path = tmp_path / "chosen.log"
    tried: list[int] = []

    def serve(port: int) -> subprocess.Popen[bytes]:
        port = squatted if not tried else port  # the first choice loses the race
        tried.append(port)
        with log_path.open("ab") as log:
            argv = [sys.executable, "-m", "switchboard", "gateway", "serve", "--port", str(port)]
            return subprocess.Popen(argv, env=gateway_env, stdout=log, stderr=subprocess.STDOUT)

    process, port = start_on_a_chosen_port(serve, log_path)
    try:
        assert tried[0] == squatted and port == tried[1] != squatted
        assert process.poll() is None
        assert HTTP.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        process.terminate()
        process.wait(10)


def test_a_start_that_finds_its_port_taken_but_does_not_exit_is_killed_not_left_running(
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "stuck.log"
    started: list[subprocess.Popen[bytes]] = []
    stuck = "import time; print('[Errno 98] address already in use', flush=True); time.sleep(60)"

    def serve(port: int) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            started.append(subprocess.Popen([sys.executable, "-c", stuck], stdout=log))
        return started[-1]

    try:
        with pytest.raises(PortTaken):
            start_on_a_chosen_port(serve, log_path, attempts=2)
        assert len(started) == 2 and [process.poll() for process in started] == [-signal.SIGKILL] * 2
    finally:
        for process in started:
            process.kill()
            process.wait(10)


def test_postgresql_whose_chosen_port_was_taken_starts_on_another(
    monkeypatch: pytest.MonkeyPatch, squatted: int
) -> None:
    # A cluster of its own, so one initdb (about 1.5 s of this test's 2): the session cluster's data
    # directory cannot serve a second postmaster, a copy of it while it runs is inconsistent, moving it to
    # another port would cut every replica connected to it, and keeping a template data directory to copy
    # (0.5 s) would make the first cluster of every test worker pay initdb and the copy.
    choices = [squatted]  # the first choice loses the race, later ones are free
    monkeypatch.setattr(pgcluster, "_free_port", lambda: choices.pop() if choices else _any_port())
    cluster = pgcluster.Cluster.start()
    try:
        assert cluster.port != squatted
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        cluster.stop()


def _any_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_on_a_taken_port_says_so_in_one_line_and_never_ready(
    gateway_env: dict[str, str], squatted: int
) -> None:
    """Not "gateway replica … ready" and then uvicorn's "[Errno 98]" with exit status 3: the port is bound
    before anything starts, and a taken one is a failure (1) in one line naming it."""
    argv = [sys.executable, "-m", "switchboard", "gateway", "serve", "--port", str(squatted)]
    done = subprocess.run(argv, env=gateway_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done
    assert done.stderr.strip().splitlines() == [
        f"switchboard gateway: cannot listen on 127.0.0.1:{squatted}: address already in use: another process"
        " listens there; stop it or choose another --port"
    ]
    assert done.stdout == ""
