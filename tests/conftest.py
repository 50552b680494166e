"""Shared test fixtures: where the real data lives."""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from campus_fixtures import small_site  # noqa: F401  (fixture)
from ros_fixtures import ros_domain_id, ros_env  # noqa: F401  (fixtures)

from sim.mosquitto import MosquittoBroker

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data beside the repository (../shared/data)."""
    assert SHARED_DATA.is_dir(), f"{SHARED_DATA} is missing: the repo must sit beside shared/"
    return SHARED_DATA


# --- Databases: SQLite files and a throw-away PostgreSQL server started by the test run ---------------


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bindir() -> Path:
    """The folder with initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    for bindir in candidates + versions:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package postgresql"
    )


class PostgresServer:
    """A throw-away PostgreSQL cluster on a free loopback port; runs as user ``postgres`` when we are root.

    ``initdb`` refuses to run as root, so as root every server command goes through ``runuser -u postgres``
    and the data folder (under /tmp, not pytest's private tmp) belongs to ``postgres``.
    """

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="robopost-pg-"))
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        self._names = itertools.count(1)

    def start(self) -> None:
        """initdb a fresh cluster and start it (fsync off: the data is thrown away)."""
        data, log = self.root / "data", self.root / "log"
        self._run(
            "initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start")

    def stop(self) -> None:
        """Stop the server and delete its data folder."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL (psycopg 3) of one database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """Create a new empty database and return its name (about 0.2 s: prefer ``empty_schema_url``)."""
        name = self._new_name()
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, closing any connection a test left open."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def empty_schema_url(self) -> tuple[str, str]:
        """A new empty schema in database ``postgres`` and a URL whose connections use only it.

        To the code under test this is an empty database (tables go to the schema through
        ``search_path``); making one takes milliseconds. Returns ``(url, schema)``.
        """
        schema = self._new_name()
        self._admin(f'CREATE SCHEMA "{schema}"')
        return f"{self.url()}?options=-csearch_path%3D{schema}", schema

    def drop_schema(self, schema: str) -> None:
        """Drop a schema made by ``empty_schema_url`` with everything in it."""
        self._admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def _new_name(self) -> str:
        return f"test_{os.getpid()}_{next(self._names)}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(sql.encode())

    def _run(self, tool: str, *args: str) -> None:
        command = [*self._as_postgres, str(self.bindir / tool), *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.root)
        if result.returncode != 0:
            log = self.root / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise subprocess.CalledProcessError(
                result.returncode, command, result.stdout, result.stderr + tail
            )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test session (one per xdist worker), stopped at the end."""
    server = PostgresServer()
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        server.stop()
        pytest.fail(f"cannot start PostgreSQL: {exc}\n{exc.stderr}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a new, empty database: a SQLite file, then a schema of its own on the test PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'robopost.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url, schema = server.empty_schema_url()
    yield url
    server.drop_schema(schema)


# --- MQTT: a real Mosquitto per test (sim/mosquitto.py) ------------------------------------------------


@pytest.fixture
def mqtt_broker() -> Iterator[MosquittoBroker]:
    """A Mosquitto broker of this test on a free loopback port, anonymous clients allowed."""
    broker = MosquittoBroker()
    broker.start()
    yield broker
    broker.close()


@pytest.fixture
def make_broker() -> Iterator[Callable[..., MosquittoBroker]]:
    """Start brokers with users and an ACL: ``make_broker(users={...}, acl="...")``; all closed at the end."""
    brokers: list[MosquittoBroker] = []

    def make(users: dict[str, str] | None = None, acl: str | None = None) -> MosquittoBroker:
        broker = MosquittoBroker(users=users, acl=acl)
        brokers.append(broker)
        broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.close()
