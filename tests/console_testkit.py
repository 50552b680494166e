"""Test kit of the console API tests: settings on a test database, the real app with its lifespan,
users made through the bootstrap, logins, a real uvicorn in the test's event loop, and parcels/orders
with personal data to search and unmask."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI

from interfaces.clock import Clock, VirtualClock
from orchestrator.api.metrics import install_metrics
from orchestrator.api.operators import create_user
from orchestrator.app import create_app
from orchestrator.security.passwords import PasswordHashing
from orchestrator.settings import DatabaseSettings, SecuritySettings, Settings
from orchestrator.store.domain_records import OrderDraft, ParcelIntake, UserRole
from orchestrator.store.domain_repositories import UserRepository

T0 = 1_800_000_000.0
"""Where the virtual clock starts (2027-01-15 08:00:00 UTC)."""

FAST_HASHING = PasswordHashing(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
"""Real argon2id with tiny parameters: the console's logic without a quarter second per login."""

PASSWORD = "correct horse battery"
PHONES = ("13812341234", "13987654321", "15011112222")
"""Recipients' phones: no response to a viewer may contain one of them."""


def console_settings(database_url: str, folder: Path, **security: Any) -> Settings:
    """Settings of the sample campus on ``database_url`` with keys in ``folder`` (never var/keys.yaml)."""
    return Settings(
        database=DatabaseSettings(url=database_url),
        security=SecuritySettings(keys_file=folder / "keys.yaml", **security),
    )


def add_users(settings: Settings, clock: Clock, roles: Sequence[UserRole | str] = tuple(UserRole)) -> None:
    """One user per role, named after it (``viewer``, ``operator``, ``admin``), all with ``PASSWORD``,
    through the admin bootstrap (which migrates the database first: use before the app starts)."""
    for role in roles:
        create_user(settings, str(role), PASSWORD, role, clock=clock, hashing=FAST_HASHING)


def add_users_to(app: FastAPI, roles: Sequence[UserRole | str] = tuple(UserRole)) -> None:
    """Like ``add_users``, in a running app's store (one transaction, no migration)."""
    services = app.state.services
    with services.sessions.begin() as session:
        users = UserRepository(session, services.clock)
        for role in roles:
            users.add(str(role), FAST_HASHING.hash(PASSWORD), role)


@dataclass
class Console:
    """The started app, an httpx client on it (in-memory ASGI) and the clock."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: VirtualClock

    async def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        """POST /v1/console/login."""
        return await self.client.post("/v1/console/login", json={"username": username, "password": password})

    async def token(self, username: str) -> str:
        """A bearer token of ``username`` (who must be able to log in)."""
        response = await self.login(username)
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    async def bearer(self, username: str) -> dict[str, str]:
        """The Authorization header of a fresh session of ``username``."""
        return {"Authorization": f"Bearer {await self.token(username)}"}


def start_app(settings: Settings, clock: Clock) -> FastAPI:
    """The real app as the composition root makes it, with its metrics installed."""
    app = create_app(settings, clock)
    install_metrics(app)  # idempotent: a no-op once create_app installs them itself
    return app


@asynccontextmanager
async def running_console(
    settings: Settings, clock: VirtualClock, users: Sequence[UserRole | str] = tuple(UserRole)
) -> AsyncIterator[Console]:
    """The app with its lifespan running, cheap password hashing and ``users`` (see ``add_users``),
    and a client on it."""
    app = start_app(settings, clock)
    async with app.router.lifespan_context(app):
        app.state.services.passwords = FAST_HASHING
        await asyncio.to_thread(add_users_to, app, users)
        # typed errors answered by the app's catch-all handler are re-raised by Starlette after the
        # answer is sent; the client should see the answer, as over a real server
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://robopost.test") as client:
            yield Console(app, client, clock)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in this event loop on a free loopback port; yields ``host:port``.

    The socket listens before the server starts, so a first connection waits in the backlog until the
    app's lifespan is up: no polling for readiness.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="websockets-sansio")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def parcel_rows() -> list[ParcelIntake]:
    """Three parcels for window w1, with the recipients of ``PHONES``."""
    return [
        ParcelIntake("SF1001", "S", "张三", PHONES[0], dorm="D1"),
        ParcelIntake("SF1002", "M", "李四", PHONES[1], dorm="D2"),
        ParcelIntake("SF1003", "L", "Jane Doe", PHONES[2], building="TEA", room="301"),
    ]


def order_draft(ref: str = "mp-1", phone: str = PHONES[0]) -> OrderDraft:
    """A pickup order of partner ``mp`` with a contact."""
    return OrderDraft(
        partner="mp",
        partner_ref=ref,
        kind="pickup",
        place="D1",
        earliest_at=T0 + 600,
        latest_at=T0 + 3600,
        contact_name="王五",
        contact_phone=phone,
    )
