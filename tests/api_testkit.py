"""Test kit of the HTTP API tests: settings, the running app, signed partner requests, a server process.

- ``make_settings(tmp_path, database_url)``: settings with a temporary keys file, the partners
  ``mp`` and ``mp2`` and the station token (never ``var/keys.yaml``).
- ``running_app(settings, clock)``: the real app with its lifespan, and an ``httpx.AsyncClient`` on it
  (in-memory ASGI transport): ``async with running_app(s) as api: await api.http.get(...)``.
- ``sign_request`` / ``signed`` / ``signed_sync``: partner requests with the four ``X-Robopost-*``
  headers of ``orchestrator.security.signing`` (fresh nonce, timestamp given or ``T0``).
- ``station_headers()``: the station's bearer token for ``POST /v1/parcels:import``.
- ``robots_snapshot()``: a sample-campus snapshot with indoor robots, so orders get accepted.
- ``ServerProcess``: the app in a real uvicorn child process listening on a socket the test owns (so
  requests queue while the child restarts, and no readiness polling is needed); ``PauseSignal``: the
  FIFO through which a child paused by ``TEST_ROBOPOST_PAUSE`` says it got there.

``serve_from_env()`` is that child (``CHILD``): settings from ``ROBOPOST_*``, robots if
``TEST_ROBOPOST_ROBOTS=1``, served on the socket ``TEST_ROBOPOST_LISTEN_FD``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from interfaces.clock import Clock
from orchestrator.app import create_app
from orchestrator.dispatch.campus import Snapshot
from orchestrator.security.signing import (
    NONCE_HEADER,
    PARTNER_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from orchestrator.settings import DatabaseSettings, SecuritySettings, Settings

T0 = 1_800_000_000.0
"""Where virtual clocks of API tests start (2027-01-15 08:00:00 UTC, 16:00 in China)."""

PARTNER = "mp"
PARTNER_SECRET = "partner-test-secret-0123456789abcdef"
OTHER_PARTNER = "mp2"
OTHER_SECRET = "other-partner-secret-0123456789abcd"
STATION_TOKEN = "station-test-token-0123456789abcdef"
PHONE = "13812341234"

KIT = Path(__file__).resolve()
REPO = KIT.parents[1]
CHILD = "import sys; sys.path.append('tests'); import api_testkit; api_testkit.serve_from_env()"
"""The child's program (run in the repository: ``orchestrator`` first on the path, then ``tests``)."""


def make_settings(tmp_path: Path, database_url: str, **sections: Any) -> Settings:
    """Settings for a test: ``database_url``, keys in ``tmp_path``, partners ``mp``/``mp2``, the station.

    ``sections`` replace whole settings sections (e.g. ``notify=NotifySettings(...)``); a
    ``security`` given as a dict is merged into the test's security settings.
    """
    security: dict[str, Any] = {
        "keys_file": tmp_path / "keys.yaml",
        "partners": {PARTNER: PARTNER_SECRET, OTHER_PARTNER: OTHER_SECRET, "station": STATION_TOKEN},
    }
    extra = sections.pop("security", None)
    if isinstance(extra, dict):
        security.update(extra)
    return Settings(
        database=DatabaseSettings(url=database_url), security=SecuritySettings(**security), **sections
    )


@dataclass(frozen=True)
class RunningApp:
    """The app (its ``state`` holds the services) and a client talking to it in memory."""

    app: FastAPI
    http: httpx.AsyncClient


@asynccontextmanager
async def running_app(
    settings: Settings, clock: Clock | None = None, *, before_start: Callable[[FastAPI], None] | None = None
) -> AsyncIterator[RunningApp]:
    """The real app with its lifespan running; ``before_start(app)`` runs first (e.g. install robots)."""
    app = create_app(settings, clock)
    if before_start is not None:
        before_start(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # like a real server
        async with httpx.AsyncClient(transport=transport, base_url="http://robopost.test") as http:
            yield RunningApp(app, http)


# --- Signed partner requests ------------------------------------------------------------------------


def sign_request(
    request: httpx.Request,
    *,
    partner: str = PARTNER,
    secret: str = PARTNER_SECRET,
    timestamp: float | int | str = T0,
    nonce: str | None = None,
) -> httpx.Request:
    """Add the four signature headers to ``request`` (path and query as httpx sends them)."""
    stamp = str(int(float(timestamp)))
    nonce = nonce or secrets.token_hex(12)
    target = request.url.raw_path.decode("ascii")
    request.headers[PARTNER_HEADER] = partner
    request.headers[TIMESTAMP_HEADER] = stamp
    request.headers[NONCE_HEADER] = nonce
    request.headers[SIGNATURE_HEADER] = sign(secret, request.method, target, stamp, nonce, request.content)
    return request


async def signed(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    json: Any = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    **signing: Any,
) -> httpx.Response:
    """Send a signed partner request (``signing``: ``partner``, ``secret``, ``timestamp``, ``nonce``)."""
    request = http.build_request(method, path, json=json, content=content, headers=dict(headers or {}))
    return await http.send(sign_request(request, **signing))


def signed_sync(
    http: httpx.Client,
    method: str,
    path: str,
    *,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    **signing: Any,
) -> httpx.Response:
    """``signed`` for a blocking ``httpx.Client``."""
    request = http.build_request(method, path, json=json, headers=dict(headers or {}))
    return http.send(sign_request(request, **signing))


def station_headers(token: str = STATION_TOKEN) -> dict[str, str]:
    """The station's ``Authorization`` header."""
    return {"Authorization": f"Bearer {token}"}


def robots_snapshot() -> Snapshot:
    """The sample campus with two indoor robots per building with a hand-off (ADM, TEA), free now."""
    from campus_builders import indoor, snapshot

    robots = [indoor("adm1", "ADM"), indoor("adm2", "ADM"), indoor("tea1", "TEA"), indoor("tea2", "TEA")]
    return snapshot(robots, [])


# --- A real server process ---------------------------------------------------------------------------


class ServerProcess:
    """The app under uvicorn in a child process, on a listening socket this object owns.

    The socket outlives the children: requests sent while no child runs wait in its backlog and are
    served by the next ``start()``. ``env`` holds the ``ROBOPOST_*`` settings of every child.
    """

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.sock.set_inheritable(True)
        self.port = int(self.sock.getsockname()[1])
        self.env = dict(env)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, extra_env: Mapping[str, str] | None = None) -> None:
        """Start a child serving the app (the previous one must be gone)."""
        assert self.proc is None or self.proc.poll() is not None, "a child is still running"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ROBOPOST_", "TEST_ROBOPOST_"))}
        env.update(self.env)
        env.update(extra_env or {})
        env["TEST_ROBOPOST_LISTEN_FD"] = str(self.sock.fileno())
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", CHILD],
                env=env,
                cwd=REPO,
                pass_fds=[self.sock.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    def alive(self) -> bool:
        """Whether a child is running."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the child and reap it."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop the child gracefully (SIGTERM), or kill it if it does not go."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def close(self) -> None:
        """Stop the child and close the socket."""
        self.stop()
        self.sock.close()

    def log(self) -> str:
        """What the children wrote (for failure messages)."""
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


class PauseSignal:
    """A FIFO the paused child writes one line to; ``wait`` returns it (or fails after ``timeout_s``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)

    def wait(self, alive: Callable[[], bool] = lambda: True, timeout_s: float = 120.0) -> str:
        """The line the child wrote when it paused; fails after ``timeout_s`` or once ``alive()`` is false."""
        for _ in range(max(1, round(timeout_s))):
            ready, _, _ = select.select([self._fd], [], [], 1.0)
            if ready:
                return os.read(self._fd, 4096).decode()
            assert alive(), "the server process ended before it reached the pause point"
        raise AssertionError(f"the server did not reach the pause point within {timeout_s} s")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def serve_from_env() -> None:
    """The child of ``ServerProcess``: build the app from ``ROBOPOST_*`` and serve it on the given fd."""
    import uvicorn

    from orchestrator.api.partner import install_snapshot

    settings = Settings.load(env=os.environ)
    app = create_app(settings)
    if os.environ.get("TEST_ROBOPOST_ROBOTS") == "1":
        install_snapshot(app, robots_snapshot())
    sock = socket.socket(fileno=int(os.environ["TEST_ROBOPOST_LISTEN_FD"]))
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
