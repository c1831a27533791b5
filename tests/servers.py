"""Real servers for tests, on loopback: PostgreSQL from Debian's binaries and ``mlflow server``.

PostgreSQL: ``initdb`` + ``pg_ctl`` in a temporary folder on a free port (as the ``postgres``
user when the tests run as root: ``initdb`` refuses root), listening on 127.0.0.1 only; trust
authentication, or ``scram-sha-256`` passwords over TCP when given one. Without the binaries
the tests that use the server skip (fail under ``CI=true``); ``.ci/run`` installs the
``postgresql`` package when they are missing.

MLflow: ``mlflow server`` on a free loopback port, optionally with its basic-auth app
(:class:`MlflowServer` can be stopped and started again on the same port).

Module-scoped fixtures ``cluster`` (the PostgreSQL server) and ``tracking`` (an ``mlflow
server`` URI backed by it): import ``cluster_fixture, tracking_fixture`` into a test module.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from conftest import require_program

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]


POSTGRES_NEEDED = "PostgreSQL's server binaries (initdb, pg_ctl)"
POSTGRES_INSTALL = "apt-get install -y postgresql"


def served(answer: Callable[[], T], process: subprocess.Popen[str], seconds: float, what: str) -> T:
    """``answer()`` once the server ``process`` answers it (a refused connection: not yet);
    fails when the process ends first or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return answer()
        except (urllib.error.URLError, ConnectionError):
            pass
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, f"{what} did not start in {seconds:.0f} s"
        time.sleep(0.3)


def free_port() -> int:
    """A TCP port nobody listens on right now (127.0.0.1)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listeners(port: int) -> set[str]:
    """The local addresses listening on ``port`` (from the kernel's socket tables)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = open(table).read().splitlines()[1:]  # noqa: SIM115
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                assert len(address) == width
                found.add(address)
    return found


def postgres_bin() -> Path | None:
    """The folder of Debian's ``initdb``/``pg_ctl`` (the newest installed), None without."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    which = shutil.which("pg_ctl")
    return Path(which).parent if which else None


@dataclass
class Postgres:
    """A running cluster: ``url(db)`` gives a SQLAlchemy URL of one of its databases."""

    folder: Path
    port: int
    bin: Path
    password: str | None = None  # scram-sha-256 over TCP when set

    def url(self, database: str, driver: str = "postgresql") -> str:
        """The database's URL, without the password (libpq takes it from PGPASSWORD)."""
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            self.url("postgres"), autocommit=True, password=self.password
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _as_owner(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *command]
        return list(command)

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), *args),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        # Tests poll the study from many short-lived storages: room for their pools.
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=300"
        )
        self.pg_ctl("-o", options, "-l", str(self.folder / "log"), "-w", "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "stop")


@contextlib.contextmanager
def postgres(folder: Path, password: str | None = None) -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster in ``folder`` for the block's duration; with ``password``,
    TCP connections must give it (``scram-sha-256``; the local socket stays trusted)."""
    bin_dir = postgres_bin()
    require_program(bin_dir is not None, POSTGRES_NEEDED, POSTGRES_INSTALL)
    assert bin_dir is not None
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    server = Postgres(folder, free_port(), bin_dir, password)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    auth = ["-A", "trust"]
    if password is not None:
        pwfile = folder / "pwfile"
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
    subprocess.run(
        server._as_owner(str(bin_dir / "initdb"), "-D", str(folder / "data"), *auth,
                         "-U", "postgres", "--no-sync"),
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    if password is not None:
        (folder / "pwfile").unlink()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            server.stop()


class MlflowServer:
    """``mlflow server`` (1 worker) on a loopback port, stopped and started again on the same
    port; with ``admin`` (user, password), its basic-auth app with that administrator."""

    def __init__(
        self,
        backend_uri: str,
        artifacts: Path,
        admin: tuple[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.artifacts = artifacts
        self.log_path = artifacts.parent / f"mlflow-server-{self.port}.log"
        self.command = [
            str(Path(sys.executable).with_name("mlflow")), "server",
            "--backend-store-uri", backend_uri, "--artifacts-destination", str(artifacts),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        self.env = {**os.environ, **(env or {})}
        if admin is not None:
            config = artifacts.parent / f"basic-auth-{self.port}.ini"
            config.write_text(
                "[mlflow]\ndefault_permission = READ\n"
                f"database_uri = sqlite:///{artifacts.parent}/basic-auth-{self.port}.db\n"
                f"admin_username = {admin[0]}\nadmin_password = {admin[1]}\n"
            )
            self.command += ["--app-name", "basic-auth"]
            self.env |= {
                "MLFLOW_AUTH_CONFIG_PATH": str(config),
                "MLFLOW_FLASK_SERVER_SECRET_KEY": os.urandom(16).hex(),
            }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until ``/health`` answers (at most 2 minutes)."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                text = self.log_path.read_text()[-2000:]
                raise RuntimeError(f"mlflow server did not start: {text}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the server (SIGTERM to its process group, SIGKILL after 20 s)."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


@contextlib.contextmanager
def served_mlflow(
    backend_uri: str,
    artifacts: Path,
    admin: tuple[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[MlflowServer]:
    """A started :class:`MlflowServer` for the block's duration."""
    server = MlflowServer(backend_uri, artifacts, admin, env)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def mlflow_server(backend_uri: str, artifacts: Path) -> Iterator[str]:
    """``mlflow server`` (1 worker) on a free loopback port; yields its ``http://`` URI."""
    with served_mlflow(backend_uri, artifacts) as server:
        yield server.uri


@pytest.fixture(scope="module", name="cluster")
def cluster_fixture() -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster (its folder under /tmp: the postgres user must reach it)."""
    folder = Path(tempfile.mkdtemp(prefix="cropsearch-pg-"))
    try:
        with postgres(folder) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module", name="tracking")
def tracking_fixture(cluster: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` with its runs in the cluster's ``mlflow`` database."""
    cluster.create_database("mlflow")
    artifacts = tmp_path_factory.mktemp("artifacts")
    with mlflow_server(cluster.url("mlflow", "postgresql+psycopg"), artifacts) as uri:
        yield uri
