"""The cart API through httpx against the real app (SQLite and PostgreSQL, virtual clock): per-cart
tokens, code-hash sync, online verification with the brute-force lockout, idempotent pickup events,
compartments, heartbeat, arrival — and the SMS with the code reaching a real HTTP gateway (the webhook
provider, ``notify_testkit.GatewayStub``) when the cart arrives, not before."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from notify_testkit import GATEWAY_SECRET, GatewayStub

from interfaces.clock import VirtualClock
from orchestrator.api.delivery import Delivery, IssuedCode
from orchestrator.api.services import Services
from orchestrator.app import create_app
from orchestrator.domain import ParcelEvent, ParcelState
from orchestrator.notify import OutboxStatus
from orchestrator.notify.outbox import Outbox
from orchestrator.security.codes import hash_code
from orchestrator.settings import (
    CampusSettings,
    DatabaseSettings,
    NotifySettings,
    SecuritySettings,
    Settings,
)
from orchestrator.store.domain_records import ParcelIntake
from orchestrator.store.domain_repositories import ParcelRepository

REPO = Path(__file__).resolve().parents[3]
SAMPLE_CAMPUS = REPO / "maps" / "campuses" / "neijiang.yaml"
T0 = 1_800_000_000.0
CART, TOKEN = "cart_1", "cart-1-token-0123456789abcdef"
OTHER, OTHER_TOKEN = "cart_2", "cart-2-token-fedcba9876543210"
WINDOW, STOP, STOP_LABEL = "w-1600", "stop_dorm_1", "1号学生公寓停靠点"
WINDOW_END = T0 + 3600.0
PHONE, PHONE_2 = "13812341234", "13900001111"
WAIT_S = 10.0


@dataclass
class Env:
    """The running app, a client with the cart's token, its services and clock."""

    app: FastAPI
    client: httpx.AsyncClient
    services: Services
    clock: VirtualClock

    @property
    def delivery(self) -> Delivery:
        return Delivery.from_services(self.services)

    async def post(
        self, path: str, body: dict[str, Any], token: str = TOKEN, cart: str = CART
    ) -> httpx.Response:
        return await self.client.post(f"/v1/carts/{cart}{path}", json=body, headers=_auth(token))

    async def get(self, path: str, token: str = TOKEN, cart: str = CART) -> httpx.Response:
        return await self.client.get(f"/v1/carts/{cart}{path}", headers=_auth(token))

    def state(self, tracking_number: str) -> ParcelState:
        with self.services.sessions.begin() as session:
            return ParcelRepository(session, self.clock, self.services.personal).get(tracking_number).state

    def status(self, key: str) -> OutboxStatus:
        with self.services.sessions.begin() as session:
            return Outbox(session, self.services.cipher, self.clock).get_by_key(key).status


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def running(
    database_url: str, tmp_path: Path, notify: NotifySettings | None = None
) -> AsyncIterator[Env]:
    """The app on a fresh database at ``T0`` with two carts, served through an in-memory transport."""
    settings = Settings(
        campus=CampusSettings(map=SAMPLE_CAMPUS),
        database=DatabaseSettings(url=database_url),
        security=SecuritySettings(keys_file=tmp_path / "keys.yaml", carts={CART: TOKEN, OTHER: OTHER_TOKEN}),
        notify=notify or NotifySettings(),
    )
    clock = VirtualClock(start=T0)
    app = create_app(settings, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://robopost.test") as client:
            yield Env(app, client, app.state.services, clock)


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    """The app on SQLite, then PostgreSQL."""
    async with running(database_url, tmp_path) as started:
        yield started


@pytest.fixture
async def lite(tmp_path: Path) -> AsyncIterator[Env]:
    """The app on SQLite only (for behaviour that does not depend on the database)."""
    async with running(f"sqlite:///{tmp_path / 'robopost.db'}", tmp_path) as started:
        yield started


async def loaded(env: Env, *parcels: tuple[str, str, str], cart: str = CART) -> dict[str, IssuedCode]:
    """Import, sort and load parcels ``(tracking number, phone, compartment)`` on ``cart``."""
    with env.services.sessions.begin() as session:
        repo = ParcelRepository(session, env.clock, env.services.personal)
        repo.import_rows([ParcelIntake(tn, "S", "李四", phone, dorm="DORM1") for tn, phone, _ in parcels])
        for tn, _, _ in parcels:
            repo.transition(tn, ParcelEvent.SORT, window=WINDOW, stop=STOP)
    codes = {}
    for tn, _, compartment in parcels:
        result = await env.delivery.load(tn, cart, compartment, window_end=WINDOW_END)
        assert result.code is not None
        codes[tn] = result.code
    return codes


def wrong(code: str) -> str:
    """A 6-digit code that is not ``code``."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/codes", None),
    ("GET", "/screen", None),
    ("POST", "/codes:verify", {"code": "123456"}),
    ("POST", "/codes:resend", {"phone": PHONE}),
    ("POST", "/pickups", {"event_id": "e1", "parcel": "SF1", "compartment": "1", "code_hash": "0" * 64}),
    ("PUT", "/compartments", {"compartments": [{"id": "1", "door": "open", "occupied": False}]}),
    ("POST", "/heartbeat", {"battery_percent": 50, "state": "idle"}),
    ("POST", "/stops:arrive", {"stop": STOP, "window": WINDOW}),
]


async def test_every_route_needs_the_carts_own_token(lite: Env) -> None:
    """No token, a wrong token, another cart's token or an unconfigured cart: the same 401, on every
    route."""
    for method, path, body in ROUTES:
        url = f"/v1/carts/{CART}{path}"
        for headers, target in (
            ({}, url),
            (_auth("nope"), url),
            (_auth(OTHER_TOKEN), url),
            (_auth(TOKEN), f"/v1/carts/cart_9{path}"),
        ):
            response = await lite.client.request(method, target, json=body, headers=headers)
            assert response.status_code == 401, (method, headers, target)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["detail"] == "this request needs the cart's own API token"


async def test_code_sync_gives_hashes_the_cart_can_check_offline(lite: Env) -> None:
    """The sync lists this cart's live codes only, as hashes the cart recomputes from a typed code and
    its key; no code in clear is anywhere in the answer."""
    codes = await loaded(lite, ("SF1", PHONE, "1"), ("SF2", PHONE_2, "2"))
    other = await loaded(lite, ("SF3", PHONE, "1"), cart=OTHER)
    response = await lite.get("/codes")
    assert response.status_code == 200
    body = response.json()
    key = base64.urlsafe_b64decode(body["cart_key"] + "=")
    assert body["cart"] == CART and body["algorithm"] == "HMAC-SHA256" and len(key) == 32
    by_parcel = {c["parcel"]: c for c in body["codes"]}
    assert set(by_parcel) == {"SF1", "SF2"}
    sf1 = by_parcel["SF1"]
    assert sf1["compartment"] == "1" and sf1["state"] == "loaded" and sf1["stop"] == STOP
    assert sf1["code_hash"] == hash_code(key, CART, WINDOW, codes["SF1"].code)
    assert sf1["tail_hash"] == hash_code(key, CART, WINDOW, codes["SF1"].code, PHONE[-4:])
    assert sf1["code_hash"] != hash_code(key, CART, WINDOW, wrong(codes["SF1"].code))
    assert sf1["expires_at"] == "2027-01-15T09:00:00Z"
    text = response.text
    assert all(c.code not in text for c in (*codes.values(), *other.values()))
    assert (await lite.get("/codes?window=w-other")).json()["codes"] == []
    other_key = (await lite.get("/codes", OTHER_TOKEN, OTHER)).json()["cart_key"]
    assert other_key != body["cart_key"]  # each cart has its own key


async def test_verify_opens_the_compartment_once_after_arrival(env: Env) -> None:
    """Before the cart is at the stop, and after the code was used, the answer is the same neutral 403;
    at the stop the code opens its compartment and the parcel is picked up."""
    codes = await loaded(env, ("SF1", PHONE, "7"))
    code = codes["SF1"].code
    before = await env.post("/codes:verify", {"code": code})
    assert before.status_code == 403
    arrive = await env.post("/stops:arrive", {"stop": STOP, "window": WINDOW})
    assert arrive.status_code == 200
    assert arrive.json()["parcels"] == [{"parcel": "SF1", "compartment": "7"}]
    screen = (await env.get("/screen")).json()
    assert screen == {"challenge": "code+phone_tail", "locked_until": None, "lock_reason": None}
    opened = await env.post("/codes:verify", {"code": code, "phone_tail": PHONE[-4:]})
    assert opened.status_code == 200
    assert opened.json() == {"result": "open", "compartment": "7", "parcel": "SF1", "state": "picked_up"}
    assert env.state("SF1") is ParcelState.PICKED_UP
    again = await env.post("/codes:verify", {"code": code, "phone_tail": PHONE[-4:]})
    assert again.status_code == 403
    assert again.json() == before.json() | {"challenge": "code+phone_tail"}
    assert (await env.post("/stops:arrive", {"stop": STOP, "window": WINDOW})).json()["parcels"] == []


async def test_brute_force_locks_the_screen_after_five_wrong_codes(env: Env) -> None:
    """5 wrong codes within 10 minutes lock code entry (423, Retry-After), even for the right code;
    every wrong answer is the same; after the window the right code (and phone tail) opens."""
    codes = await loaded(env, ("SF1", PHONE, "7"))
    code = codes["SF1"].code
    await env.post("/stops:arrive", {"stop": STOP, "window": WINDOW})
    answers = [await env.post("/codes:verify", {"code": wrong(code)})]
    no_tail = await env.post("/codes:verify", {"code": wrong(code)})  # stepped up: asks for the tail
    assert no_tail.status_code == 403 and no_tail.json()["challenge"] == "code+phone_tail"
    for guess in range(4):
        env.clock.advance(60)
        answers.append(await env.post("/codes:verify", {"code": f"{guess:06d}", "phone_tail": "0000"}))
    assert [a.status_code for a in answers] == [403] * 5
    assert len({a.json()["detail"] for a in answers}) == 1
    locked = await env.post("/codes:verify", {"code": code, "phone_tail": PHONE[-4:]})
    assert locked.status_code == 423
    assert locked.headers["retry-after"] == str(600 - 4 * 60)
    assert locked.json()["reason"] == "window"
    assert (await env.get("/screen")).json()["lock_reason"] == "window"
    env.clock.advance(600 - 4 * 60 - 1)
    assert (await env.post("/codes:verify", {"code": code, "phone_tail": PHONE[-4:]})).status_code == 423
    env.clock.advance(1)
    opened = await env.post("/codes:verify", {"code": code, "phone_tail": PHONE[-4:]})
    assert opened.status_code == 200 and opened.json()["compartment"] == "7"


async def test_malformed_codes_are_refused_without_counting(lite: Env) -> None:
    """Text that is not 6 digits (or a tail that is not 4) is a 422 and is not a guess."""
    for body in ({"code": "12345"}, {"code": "abcdef"}, {"code": "123456", "phone_tail": "12"}, {}):
        response = await lite.post("/codes:verify", body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    assert (await lite.get("/screen")).json()["challenge"] == "code"


async def test_pickup_events_are_idempotent_on_the_event_id(env: Env) -> None:
    """A pickup checked offline is recorded once; the same event again gets the first answer; the same
    id with another body is refused; the reminder is cancelled."""
    codes = await loaded(env, ("SF1", PHONE, "7"), ("SF2", PHONE_2, "8"))
    await env.post("/stops:arrive", {"stop": STOP, "window": WINDOW})
    sync = {c["parcel"]: c for c in (await env.get("/codes")).json()["codes"]}
    env.clock.advance(900)
    event = {
        "event_id": "cart_1-000001",
        "parcel": "SF1",
        "compartment": "7",
        "code_hash": sync["SF1"]["tail_hash"],
        "at": "2027-01-15T08:10:00Z",
    }
    first = await env.post("/pickups", event)
    assert first.status_code == 200
    assert first.json() == {
        "event_id": "cart_1-000001",
        "parcel": "SF1",
        "state": "picked_up",
        "picked_up_at": "2027-01-15T08:10:00Z",
        "replayed": False,
    }
    again = await env.post("/pickups", event)
    assert again.status_code == 200 and again.json() == first.json() | {"replayed": True}
    assert env.state("SF1") is ParcelState.PICKED_UP
    assert env.status(f"window_ending/{codes['SF1'].ref}") is OutboxStatus.CANCELLED
    conflict = await env.post("/pickups", event | {"parcel": "SF2", "code_hash": sync["SF2"]["code_hash"]})
    assert conflict.status_code == 422
    foreign = await env.post("/pickups", event | {"event_id": "x2", "code_hash": sync["SF2"]["code_hash"]})
    assert foreign.status_code == 409  # SF2's hash is not SF1's code
    drawer = await env.post(
        "/pickups",
        event
        | {"event_id": "x3", "parcel": "SF2", "compartment": "1"}
        | {"code_hash": sync["SF2"]["code_hash"]},
    )
    assert drawer.status_code == 409  # SF2 is in compartment 8
    assert env.state("SF2") is ParcelState.AT_STOP
    other = await env.post("/pickups", event | {"event_id": "x4"}, OTHER_TOKEN, OTHER)
    assert other.status_code == 404  # another cart's parcel does not exist for this cart
    future = await env.post("/pickups", event | {"event_id": "x5", "at": "2027-01-15T09:00:00Z"})
    assert future.status_code == 422


async def test_compartments_and_heartbeat_are_kept_per_cart(lite: Env) -> None:
    """Compartment reports merge per compartment; the last heartbeat is kept; bad values are 422."""
    first = await lite.client.put(
        f"/v1/carts/{CART}/compartments",
        json={
            "compartments": [
                {"id": "1", "door": "open", "occupied": True},
                {"id": "2", "door": "closed", "occupied": False},
            ]
        },
        headers=_auth(TOKEN),
    )
    assert first.status_code == 200
    lite.clock.advance(5)
    second = await lite.client.put(
        f"/v1/carts/{CART}/compartments",
        json={"compartments": [{"id": "1", "door": "closed", "occupied": False}]},
        headers=_auth(TOKEN),
    )
    assert [(c["id"], c["door"], c["occupied"], c["updated_at"]) for c in second.json()["compartments"]] == [
        ("1", "closed", False, "2027-01-15T08:00:05Z"),
        ("2", "closed", False, "2027-01-15T08:00:00Z"),
    ]
    beat = {"battery_percent": 76.5, "state": "driving", "position": {"x": -512.3, "y": -401.8}}
    answer = await lite.post("/heartbeat", beat)
    assert answer.status_code == 200 and answer.json()["server_time"] == "2027-01-15T08:00:05Z"
    kept = lite.services.carts.heartbeat(CART)
    assert kept is not None and (kept.battery_percent, kept.state, kept.x) == (76.5, "driving", -512.3)
    assert lite.services.carts.heartbeat(OTHER) is None
    for bad in ({"battery_percent": 101, "state": "idle"}, {"battery_percent": 5, "state": "flying"}):
        assert (await lite.post("/heartbeat", bad)).status_code == 422


async def test_resend_by_phone_answers_the_same_whatever_the_number(lite: Env) -> None:
    """ "Resend my code" on the screen: a neutral 202; the recipient's parcel gets a new code by SMS and
    the old code stops working; another number changes nothing."""
    codes = await loaded(lite, ("SF1", PHONE, "7"))
    await lite.post("/stops:arrive", {"stop": STOP, "window": WINDOW})
    before = (await lite.get("/codes")).json()["codes"]
    stranger = await lite.post("/codes:resend", {"phone": "13000000000"})
    assert (await lite.get("/codes")).json()["codes"] == before
    mine = await lite.post("/codes:resend", {"phone": PHONE})
    assert stranger.status_code == mine.status_code == 202 and stranger.json() == mine.json()
    after = (await lite.get("/codes")).json()["codes"]
    assert after[0]["code_hash"] != before[0]["code_hash"]
    assert lite.status(f"window_ending/{codes['SF1'].ref}") is OutboxStatus.CANCELLED
    assert (await lite.post("/codes:resend", {"phone": "not a phone"})).status_code == 422


@dataclass
class SignallingGateway(GatewayStub):
    """The gateway stub, also signalling each delivered message."""

    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _deliver(self, message_id: str) -> None:
        super()._deliver(message_id)
        self.changed.set()

    async def wait_for(self, check: Callable[[], bool]) -> None:
        async def until() -> None:
            while not check():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), WAIT_S)


async def test_the_sms_reaches_the_gateway_when_the_cart_arrives_not_before(
    database_url: str, tmp_path: Path
) -> None:
    """With the webhook provider and the app's own outbox worker: nothing reaches the gateway at loading;
    at the stop the signed SMS with the code, the stop and the window end does."""
    gateway = SignallingGateway()
    await gateway.start()
    try:
        notify = NotifySettings(provider="webhook", webhook_url=gateway.url, webhook_secret=GATEWAY_SECRET)
        async with running(database_url, tmp_path, notify) as env:
            codes = await loaded(env, ("SF1", PHONE, "7"))
            assert (await env.services.outbox_worker.run_once()).claimed == 0
            assert gateway.requests == []
            arrive = await env.post("/stops:arrive", {"stop": STOP, "window": WINDOW})
            assert arrive.json()["released"] == 1
            await gateway.wait_for(lambda: len(gateway.delivered) == 1)
    finally:
        await gateway.close()
    (request,) = gateway.requests
    assert request.signed
    body = request.json()
    assert body["id"] == f"cart_at_stop/{codes['SF1'].ref}" and body["to"] == PHONE
    assert codes["SF1"].code in body["text"] and STOP_LABEL in body["text"] and "17:00" in body["text"]


async def test_openapi_documents_the_cart_routes(lite: Env) -> None:
    """Every cart route is in the OpenAPI document with the bearer scheme and problem+json errors."""
    spec = (await lite.client.get("/openapi.json")).json()
    paths = spec["paths"]
    for method, path, _ in ROUTES:
        operation = paths[f"/v1/carts/{{cart}}{path}"][method.lower()]
        assert operation["security"] == [{"HTTPBearer": []}]
        assert "application/problem+json" in operation["responses"]["401"]["content"]
    assert "examples" in spec["components"]["schemas"]["VerifyIn"]


def test_code_benchmark_smoke(tmp_path: Path) -> None:
    """The code-verification benchmark runs end to end against a real server (tiny load)."""
    from benchmarks.api.codes import run_bench

    result = run_bench(requests=20, rate=100.0, carts=2, folder=tmp_path)
    assert result["requests"] == 20 and result["opened"] == 20 and result["statuses"] == {"200": 20}
    assert 0 < result["latency_p50_ms"] <= result["latency_p99_ms"] and result["achieved_rate"] > 0
