"""Schemathesis against the real app's OpenAPI: every endpoint group (map, fleet, intake, partner,
carts, console, metrics) gets a few hundred generated requests, valid and invalid, sent with real
credentials (console admin bearer token, the station's token, a cart's token, partner requests signed
with HMAC-SHA256 over the exact bytes sent). No answer may be a 5xx; every answer must have a declared
status and media type and match its declared schema.

The app runs as deployed, its fleet master on a real Mosquitto, served by uvicorn on a loopback port,
on SQLite, with a virtual clock (partner timestamps are signed on it) and cheap argon2 parameters.
Generation is derandomized: CI sees the same cases every run.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
import yaml
from console_testkit import FAST_HASHING, T0, add_users, console_settings, start_app
from fake_robot import SAMPLE_FLEET
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from interfaces.clock import VirtualClock
from orchestrator.api.operators import ConsoleSessions
from orchestrator.security.signing import (
    NONCE_HEADER,
    PARTNER_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from orchestrator.security.tokens import new_token
from orchestrator.settings import FleetSettings, MqttSettings
from orchestrator.store.domain_records import UserRole
from orchestrator.store.domain_repositories import UserRepository
from sim.mosquitto import MosquittoBroker

pytestmark = pytest.mark.integration

PARTNER, PARTNER_SECRET = "mp", "partner-secret-for-schemathesis"
STATION_TOKEN = "station-token-for-schemathesis"
CART, CART_TOKEN = "cart-01", "cart-token-for-schemathesis"

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

GROUPS = {
    "map": (("health", "map"), 100),
    "fleet": (("fleet",), 50),
    "intake": (("intake",), 250),
    "partner": (("partner",), 300),
    "carts": (("carts",), 250),
    "console": (("console",), 400),
    "metrics": (("metrics",), 50),
}
"""Endpoint group → (OpenAPI tags, generated cases). A group whose inputs run out stops earlier."""


class PartnerSigning(requests.auth.AuthBase):
    """Signs each request as the partner would, over the method, path, query and body bytes sent."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)  # type: ignore[arg-type]
        timestamp, nonce = str(int(self._clock.now())), secrets.token_hex(16)
        method, path = request.method or "GET", request.path_url
        request.headers[PARTNER_HEADER] = PARTNER
        request.headers[TIMESTAMP_HEADER] = timestamp
        request.headers[NONCE_HEADER] = nonce
        request.headers[SIGNATURE_HEADER] = sign(PARTNER_SECRET, method, path, timestamp, nonce, data)
        return request


@dataclass
class Target:
    """The app under test, its schema and how to authenticate each group."""

    app: Any
    schema: Any
    clock: VirtualClock
    admin_id: int
    session: requests.Session

    def admin_token(self) -> str:
        """A fresh session of the admin (generated calls may log out, demote or disable users)."""
        services = self.app.state.services
        token = new_token()
        with services.sessions.begin() as session:
            UserRepository(session, self.clock).update(self.admin_id, role=UserRole.ADMIN, enabled=True)
            ConsoleSessions(session, self.clock).open(self.admin_id, token, 3600)
        return token

    def credentials(self, group: str, case: Case) -> tuple[dict[str, str], requests.auth.AuthBase | None]:
        """Headers (and a request signer) that authenticate ``case`` of ``group``."""
        if group == "console":
            return {"Authorization": f"Bearer {self.admin_token()}"}, None
        if group == "intake":
            return {"Authorization": f"Bearer {STATION_TOKEN}"}, None
        if group == "carts":
            case.path_parameters = {**(case.path_parameters or {}), "cart": CART}
            return {"Authorization": f"Bearer {CART_TOKEN}"}, None
        if group == "partner":
            return {}, PartnerSigning(self.clock)
        return {}, None


@contextmanager
def _serving(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; yields the base URL.

    The socket listens before the server starts: the first request waits in the backlog until the
    app's lifespan is up (no polling).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="on", ws="websockets-sansio"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The app as deployed (fleet master on a real Mosquitto) on a fresh SQLite store, served by
    uvicorn, and its schema."""
    folder: Path = tmp_path_factory.mktemp("schemathesis")
    clock = VirtualClock(start=T0)
    fleet_file = folder / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(SAMPLE_FLEET), encoding="utf-8")
    broker = MosquittoBroker()
    broker.start()
    config = console_settings(
        f"sqlite:///{folder / 'robopost.db'}",
        folder,
        partners={PARTNER: PARTNER_SECRET, "station": STATION_TOKEN},
        carts={CART: CART_TOKEN},
    ).model_copy(
        update={
            "mqtt": MqttSettings(port=broker.port, embedded=False),
            "fleet": FleetSettings(enabled=True, config=fleet_file),
        }
    )
    add_users(config, clock, [UserRole.ADMIN])
    app = start_app(config, clock)
    with contextlib.closing(broker), _serving(app) as base_url, requests.Session() as session:
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")  # the lifespan is up now
        app.state.services.passwords = FAST_HASHING
        with app.state.services.sessions.begin() as db:
            admin_id = UserRepository(db, clock).get_by_username("admin").id
        yield Target(app, schema, clock, admin_id, session)


def test_every_group_is_covered(target: Target) -> None:
    """Every operation of the OpenAPI belongs to one of the groups tested below."""
    tags = {tag for group_tags, _ in GROUPS.values() for tag in group_tags}
    untested = [
        op.label
        for result in target.schema.get_all_operations()
        if not set((op := result.ok()).tags or ()) & tags
    ]
    assert untested == []


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_generated_requests_get_documented_answers(target: Target, group: str) -> None:
    """Valid and invalid generated requests of the group: no 5xx, declared status, media type and
    schema for every answer."""
    tags, examples = GROUPS[group]
    subset = target.schema.include(tag=list(tags))
    strategy = st.one_of(
        subset.as_strategy(GenerationMode.POSITIVE), subset.as_strategy(GenerationMode.NEGATIVE)
    )
    sent: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        headers, auth = target.credentials(group, case)
        extra = {"auth": auth} if auth is not None else {}
        response = case.call(session=target.session, headers=headers, **extra)
        case.validate_response(response, checks=CHECKS, headers=headers)
        sent.append(case.operation.label)

    run()
    assert sent, f"no request of group {group} was sent"
