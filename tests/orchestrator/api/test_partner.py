"""The partner API (orders, signatures, idempotency, webhooks) through httpx against the real app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_testkit import (
    OTHER_PARTNER,
    OTHER_SECRET,
    PARTNER,
    PARTNER_SECRET,
    PHONE,
    T0,
    RunningApp,
    make_settings,
    robots_snapshot,
    running_app,
    sign_request,
    signed,
)
from fastapi import FastAPI
from notify_testkit import GatewayStub, Reply
from sqlalchemy import select

from benchmarks.api.orders import run_bench
from interfaces.clock import VirtualClock
from orchestrator.api.partner import OrderWebhooks, empty_snapshot, install_snapshot, plan_holder
from orchestrator.domain import OrderEvent
from orchestrator.security.signing import SignatureVerifier
from orchestrator.store.domain_repositories import OrderRepository
from orchestrator.store.domain_tables import OrderEventRow, OrderRow

CHINA = timezone(timedelta(hours=8))


def iso(seconds_after_t0: float) -> str:
    """T0 + ``seconds_after_t0`` as RFC 3339 in China time."""
    return datetime.fromtimestamp(T0 + seconds_after_t0, tz=CHINA).isoformat()


def pickup(ref: str = "mp-1", **changes: Any) -> dict[str, Any]:
    """A pickup at adm_201 promised 10 to 40 minutes from T0."""
    body: dict[str, Any] = {
        "kind": "pickup",
        "ref": ref,
        "place": "adm_201",
        "earliest": iso(600),
        "latest": iso(2400),
        "size": "S",
        "contact": {"name": "张三", "phone": PHONE},
    }
    body.update(changes)
    return body


def with_robots(app: FastAPI) -> None:
    install_snapshot(app, robots_snapshot())


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[RunningApp]:
    """The app on SQLite or PostgreSQL with indoor robots, at T0 on a virtual clock."""
    async with running_app(
        make_settings(tmp_path, database_url), VirtualClock(T0), before_start=with_robots
    ) as a:
        yield a


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[RunningApp]:
    """The app on SQLite with no robots (the default, empty dispatch snapshot), at T0."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    async with running_app(make_settings(tmp_path, url), VirtualClock(T0)) as a:
        yield a


def _orders(app: FastAPI) -> list[tuple[str, list[str]]]:
    """(ref, event kinds) of every stored order, by ref."""
    with app.state.services.sessions() as session:
        rows = session.scalars(select(OrderRow).order_by(OrderRow.partner_ref)).all()
        out = []
        for row in rows:
            kinds = session.scalars(
                select(OrderEventRow.kind)
                .where(OrderEventRow.order_id == row.id)
                .order_by(OrderEventRow.sequence)
            ).all()
            out.append((row.partner_ref, list(kinds)))
        return out


def _problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    return body


# --- Creating orders --------------------------------------------------------------------------------


async def test_order_without_robots_is_refused_with_the_reason(bare: RunningApp) -> None:
    """With no robot online the answer is 201 refused with the dispatcher's reason; the contact is masked."""
    resp = await signed(bare.http, "POST", "/v1/orders", json=pickup())
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert order["state"] == "refused"
    assert order["reason"].startswith("no capable robot online")
    assert order["eta"] is None
    assert order["contact"] == {"name": "张*", "phone": "138****1234"}
    assert order["id"].startswith("ord_") and order["ref"] == "mp-1"
    assert _orders(bare.app) == [("mp-1", ["create", "refuse"])]


async def test_order_with_robots_is_accepted_with_an_eta(api: RunningApp) -> None:
    """With indoor robots the order is accepted, the ETA inside the promise, and the plan holds it."""
    resp = await signed(api.http, "POST", "/v1/orders", json=pickup())
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert order["state"] == "accepted"
    eta = datetime.fromisoformat(order["eta"]).timestamp()
    assert T0 + 600 <= eta <= T0 + 2400
    assert order["earliest"] == "2027-01-15T08:10:00Z"
    assert order["latest"] == "2027-01-15T08:40:00Z"
    assert _orders(api.app) == [("mp-1", ["create", "accept"])]
    legs = [leg for leg in plan_holder(api.app).plan.all_legs() if order["id"] in leg.requests]
    assert [leg.kind.value for leg in legs] == ["collect", "drop"]
    assert legs[0].place == "adm_201"


async def test_coffee_order_is_accepted_by_its_deadline(api: RunningApp) -> None:
    """A coffee from a shop (origin) to a door is accepted with an ETA at the door by the deadline."""
    coffee = {
        "kind": "coffee",
        "ref": "mp-coffee",
        "origin": "adm_reception",
        "place": "adm_305",
        "deadline": iso(1800),
        "contact": {"name": "Li", "phone": "+86 139 1234 5678"},
    }
    resp = await signed(api.http, "POST", "/v1/orders", json=coffee)
    order = resp.json()
    assert resp.status_code == 201 and order["state"] == "accepted", resp.text
    assert order["origin"] == "adm_reception" and order["kind"] == "coffee"
    assert datetime.fromisoformat(order["eta"]).timestamp() <= T0 + 1800
    assert order["contact"] == {"name": "L*", "phone": "139****5678"}


async def test_same_idempotency_key_gets_the_original_answer(api: RunningApp) -> None:
    """A retry with the same key and body replays the first answer byte for byte, even after the
    dispatcher would now answer otherwise; one order exists. The key with another body is a 422."""
    key = {"Idempotency-Key": "retry-me-1"}
    first = await signed(api.http, "POST", "/v1/orders", json=pickup(), headers=key)
    install_snapshot(api.app, empty_snapshot(api.app.state.site))  # no robots any more
    again = await signed(api.http, "POST", "/v1/orders", json=pickup(), headers=key)
    other = await signed(api.http, "POST", "/v1/orders", json=pickup(size="M"), headers=key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert "already used with a different request" in _problem(other, 422)["detail"]
    assert _orders(api.app) == [("mp-1", ["create", "accept"])]


async def test_keys_are_per_partner_and_refs_unique(api: RunningApp) -> None:
    """A ref already used by the partner is a 409 (without a key); another partner may use it too."""
    first = await signed(api.http, "POST", "/v1/orders", json=pickup("same"))
    again = await signed(api.http, "POST", "/v1/orders", json=pickup("same"))
    other = await signed(
        api.http, "POST", "/v1/orders", json=pickup("same"), partner=OTHER_PARTNER, secret=OTHER_SECRET
    )
    assert first.status_code == 201 and other.status_code == 201
    assert "already has an order with ref 'same'" in _problem(again, 409)["detail"]
    assert first.json()["id"] != other.json()["id"]


# --- Signatures -------------------------------------------------------------------------------------


async def test_forged_stale_and_replayed_requests_are_refused(bare: RunningApp) -> None:
    """Bad signature, tampered body, unknown partner, missing header and a stale or future timestamp
    are 401; a replayed nonce is 409; none of them stores an order."""
    http = bare.http
    cases = {
        "bad secret": await signed(http, "POST", "/v1/orders", json=pickup(), secret="wrong"),
        "unknown": await signed(http, "POST", "/v1/orders", json=pickup(), partner="nobody"),
        "stale": await signed(http, "POST", "/v1/orders", json=pickup(), timestamp=T0 - 301),
        "future": await signed(http, "POST", "/v1/orders", json=pickup(), timestamp=T0 + 301),
    }
    request = http.build_request("POST", "/v1/orders", json=pickup())
    sign_request(request)
    tampered = http.build_request("POST", "/v1/orders", json=pickup(size="L"), headers=dict(request.headers))
    tampered.headers["content-length"] = str(len(tampered.content))
    cases["tampered"] = await http.send(tampered)
    unsigned = http.build_request("POST", "/v1/orders", json=pickup())
    cases["unsigned"] = await http.send(unsigned)
    for name, resp in cases.items():
        assert _problem(resp, 401)["type"].startswith("urn:robopost:"), name
    assert "does not match" in cases["bad secret"].json()["detail"]
    assert "away from server time" in cases["stale"].json()["detail"]
    assert "is missing" in cases["unsigned"].json()["detail"]
    ok = await signed(http, "POST", "/v1/orders", json=pickup("r1"), nonce="nonce-0001")
    replay = await signed(http, "POST", "/v1/orders", json=pickup("r2"), nonce="nonce-0001")
    assert ok.status_code == 201
    assert "nonce already used" in _problem(replay, 409)["detail"]
    assert [ref for ref, _ in _orders(bare.app)] == ["r1"]


async def test_signature_covers_the_query_string(bare: RunningApp) -> None:
    """GET with a query: signed as sent it passes; the same signature on another query fails."""
    created = (await signed(bare.http, "POST", "/v1/orders", json=pickup())).json()
    path = f"/v1/orders/{created['id']}?view=full"
    assert (await signed(bare.http, "GET", path)).status_code == 200
    request = bare.http.build_request("GET", path)
    sign_request(request)
    moved = bare.http.build_request(
        "GET", f"/v1/orders/{created['id']}?view=other", headers=dict(request.headers)
    )
    _problem(await bare.http.send(moved), 401)


# --- Reading and cancelling ------------------------------------------------------------------------


async def test_get_shows_only_the_partners_own_orders(api: RunningApp) -> None:
    """GET returns the partner's order as created (contact masked); another partner gets a 404."""
    created = await signed(api.http, "POST", "/v1/orders", json=pickup())
    order_id = created.json()["id"]
    mine = await signed(api.http, "GET", f"/v1/orders/{order_id}")
    theirs = await signed(
        api.http, "GET", f"/v1/orders/{order_id}", partner=OTHER_PARTNER, secret=OTHER_SECRET
    )
    missing = await signed(api.http, "GET", "/v1/orders/ord_0000")
    assert mine.status_code == 200 and mine.json() == created.json()
    assert PHONE not in mine.text
    _problem(theirs, 404)
    _problem(missing, 404)


async def test_cancel_before_loading_and_not_after(api: RunningApp) -> None:
    """An accepted order cancels (with its reason), cancelling again changes nothing, a loaded order
    cannot be cancelled (409), nor another partner's (404)."""
    a = (await signed(api.http, "POST", "/v1/orders", json=pickup("a"))).json()
    b = (await signed(api.http, "POST", "/v1/orders", json=pickup("b", place="adm_202"))).json()
    first = await signed(api.http, "POST", f"/v1/orders/{a['id']}:cancel", json={"reason": "changed my mind"})
    again = await signed(api.http, "POST", f"/v1/orders/{a['id']}:cancel")
    assert first.status_code == 200 and first.json()["state"] == "cancelled"
    assert first.json()["reason"] == "changed my mind"
    assert again.status_code == 200 and again.json() == first.json()
    services = api.app.state.services
    with services.sessions.begin() as session:
        orders = OrderRepository(session, services.clock, services.personal)
        orders.transition(b["id"], OrderEvent.ASSIGN, robot="adm1")
        orders.transition(b["id"], OrderEvent.ARRIVE)
        orders.transition(b["id"], OrderEvent.LOAD)
    loaded = await signed(api.http, "POST", f"/v1/orders/{b['id']}:cancel")
    theirs = await signed(
        api.http, "POST", f"/v1/orders/{b['id']}:cancel", partner=OTHER_PARTNER, secret=OTHER_SECRET
    )
    assert "cancel" in _problem(loaded, 409)["detail"]
    _problem(theirs, 404)
    assert dict(_orders(api.app)) == {
        "a": ["create", "accept", "cancel"],
        "b": ["create", "accept", "assign", "arrive", "load"],
    }


async def test_refused_order_cannot_be_cancelled(bare: RunningApp) -> None:
    """A refused order is final: cancelling it is a 409 problem."""
    order = (await signed(bare.http, "POST", "/v1/orders", json=pickup())).json()
    _problem(await signed(bare.http, "POST", f"/v1/orders/{order['id']}:cancel"), 409)


# --- Invalid orders ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"place": "nowhere"}, "is not a place of the campus map"),
        ({"place": "stop_dorm_1"}, "is not a door"),
        ({"earliest": T0 + 600}, "RFC 3339"),
        ({"earliest": "2027-01-15T16:10:00"}, "timezone"),
        ({"earliest": iso(-7200), "latest": iso(-3600)}, "already ended"),
        ({"earliest": iso(600), "latest": iso(30 * 86400)}, "days ahead"),
        ({"latest": iso(0)}, "before its earliest"),
        ({"contact": {"name": "张三", "phone": "12345"}}, "Chinese mobile number"),
        ({"kind": "teleport"}, "kind"),
        ({"colour": "red"}, "colour"),
        ({"ref": "a\x00b"}, "control characters"),
        ({"size": "XL"}, "size"),
        ({"contact": {"name": "", "phone": PHONE}}, "name"),
    ],
)
async def test_malformed_orders_are_422(bare: RunningApp, changes: dict[str, Any], fragment: str) -> None:
    """Unknown places, non-doors, epoch numbers or naive times, windows in the past or too far ahead,
    bad phones, unknown members: 422 problems, nothing stored."""
    resp = await signed(bare.http, "POST", "/v1/orders", json=pickup(**changes))
    assert fragment in _problem(resp, 422)["detail"]
    assert _orders(bare.app) == []


async def test_coffee_needs_its_origin(bare: RunningApp) -> None:
    """A coffee order without a shop is a 422 naming the missing member."""
    coffee = {
        "kind": "coffee",
        "ref": "c",
        "place": "adm_305",
        "deadline": iso(1800),
        "contact": {"name": "A", "phone": PHONE},
    }
    assert "origin" in _problem(await signed(bare.http, "POST", "/v1/orders", json=coffee), 422)["detail"]


async def test_openapi_documents_the_partner_routes(bare: RunningApp) -> None:
    """The OpenAPI has the three routes, their signature headers, examples and problem responses."""
    spec = (await bare.http.get("/openapi.json")).json()
    create = spec["paths"]["/v1/orders"]["post"]
    assert {"201", "401", "409", "422"} <= set(create["responses"])
    assert {p["name"] for p in create["parameters"]} >= {"X-Robopost-Signature", "Idempotency-Key"}
    assert "/v1/orders/{order_id}:cancel" in spec["paths"]
    assert "/v1/parcels:import" in spec["paths"]
    schemas = spec["components"]["schemas"]
    assert schemas["PickupOrderIn"]["examples"] and schemas["OrderOut"]["examples"]


# --- Webhooks ---------------------------------------------------------------------------------------


@pytest.fixture
async def gateway() -> AsyncIterator[GatewayStub]:
    """A real HTTP receiver on loopback playing the partner's callback endpoint."""
    stub = GatewayStub()
    await stub.start()
    yield stub
    await stub.close()


async def test_webhooks_tell_the_partner_every_change_once(api: RunningApp, gateway: GatewayStub) -> None:
    """State changes after creation are POSTed signed like partner requests, in order, retried after a
    5xx with backoff, and never sent again once delivered."""
    services = api.app.state.services
    clock: VirtualClock = services.clock
    order = (await signed(api.http, "POST", "/v1/orders", json=pickup())).json()
    await signed(api.http, "POST", f"/v1/orders/{order['id']}:cancel")
    gateway.fail(1)  # the first delivery meets a 503
    async with httpx.AsyncClient() as client:
        hooks = OrderWebhooks(
            services.sessions, clock, {PARTNER: PARTNER_SECRET}, {PARTNER: gateway.url}, client, backoff_s=5.0
        )
        first = await hooks.deliver_due()
        early = await hooks.deliver_due()
        clock.advance(5.0)
        second = await hooks.deliver_due()
        done = await hooks.deliver_due()
    assert (first.due, first.delivered, first.retrying) == (2, 1, 1)
    assert early.due == 0  # the retry waits for its backoff
    assert (second.due, second.delivered) == (1, 1)
    assert done.due == 0
    bodies = [json.loads(r.body) for r in gateway.requests]
    assert [(b["event"], b["state"]) for b in bodies] == [
        ("accept", "accepted"),
        ("cancel", "cancelled"),
        ("accept", "accepted"),
    ]
    assert bodies[0]["id"] == f"{order['id']}/2" and bodies[0]["ref"] == "mp-1"
    assert bodies[0]["eta"] == order["eta"]
    verifier = SignatureVerifier({PARTNER: PARTNER_SECRET}, clock)
    for received in gateway.requests:
        assert received.headers["idempotency-key"] == json.loads(received.body)["id"]
        assert (
            verifier.verify_headers("POST", received.path, httpx.Headers(received.headers), received.body)
            == PARTNER
        )
    assert sorted(gateway.delivered) == sorted([f"{order['id']}/2", f"{order['id']}/3"])


async def test_the_app_runs_the_webhooks_of_partners_with_a_callback(
    tmp_path: Path, gateway: GatewayStub
) -> None:
    """With ``security.partner_callbacks`` set, the app's own webhook task tells the partner."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    settings = make_settings(tmp_path, url, security={"partner_callbacks": {PARTNER: gateway.url}})
    async with running_app(settings, VirtualClock(T0), before_start=with_robots) as api:
        order = (await signed(api.http, "POST", "/v1/orders", json=pickup())).json()
        await asyncio.wait_for(gateway.wait_for_requests(1), timeout=30)
    body = json.loads(gateway.requests[0].body)
    assert (body["id"], body["state"]) == (f"{order['id']}/2", "accepted")
    verifier = SignatureVerifier({PARTNER: PARTNER_SECRET}, VirtualClock(T0))
    received = gateway.requests[0]
    assert (
        verifier.verify_headers("POST", received.path, httpx.Headers(received.headers), received.body)
        == PARTNER
    )


async def test_webhook_refused_by_the_partner_is_given_up(api: RunningApp, gateway: GatewayStub) -> None:
    """A 4xx (other than 408/429) is not retried: recorded as given up, never sent again."""
    services = api.app.state.services
    await signed(api.http, "POST", "/v1/orders", json=pickup())
    gateway.then(Reply(status=400, body="bad"))
    async with httpx.AsyncClient() as client:
        hooks = OrderWebhooks(
            services.sessions, services.clock, {PARTNER: PARTNER_SECRET}, {PARTNER: gateway.url}, client
        )
        report = await hooks.deliver_due()
        after = await hooks.deliver_due()
    assert (report.due, report.given_up) == (1, 1)
    assert after.due == 0
    assert len(gateway.requests) == 1


def test_webhooks_refuse_a_callback_without_a_secret() -> None:
    """A callback URL for a partner without a signing secret, or a non-HTTP URL, is a ValueError."""
    with pytest.raises(ValueError, match="no secret"):
        OrderWebhooks(None, VirtualClock(T0), {}, {"x": "http://127.0.0.1/cb"}, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http"):
        OrderWebhooks(None, VirtualClock(T0), {"x": "s"}, {"x": "ftp://host/cb"}, None)  # type: ignore[arg-type]


# --- Benchmark smoke test ---------------------------------------------------------------------------


def test_order_benchmark_runs_a_few_requests() -> None:
    """benchmarks/api/orders.py serves the app, sends signed orders at a rate and reports figures."""
    result = run_bench(requests=4, rate=40.0)
    assert result["requests"] == 4
    assert result["statuses"] == {"201": 4}
    assert result["accepted"] + result["refused"] == 4
    assert 0 < result["latency_p50_ms"] <= result["latency_p99_ms"] <= result["latency_max_ms"]
    assert result["achieved_rate"] > 0
