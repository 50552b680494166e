"""The console API through httpx against the real app (SQLite and PostgreSQL): login, sessions and
CSRF, brute-force lock, roles, users, search with masking, audited unmasking, alarms, outbox, audit,
the fleet snapshot and the WebSocket stream (real uvicorn), and the admin bootstrap."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from console_testkit import (
    FAST_HASHING,
    PASSWORD,
    PHONES,
    T0,
    Console,
    add_users_to,
    console_settings,
    order_draft,
    parcel_rows,
    running_console,
    serving,
    start_app,
)
from fake_robot import SAMPLE_FLEET, FakeRobot
from vda5050_samples import OfficialSchemas
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from interfaces.clock import VirtualClock
from interfaces.vda5050 import AgvError, ErrorLevel
from maps.io import save_site
from maps.model import Site
from orchestrator.api.operators import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    EventHub,
    console_hub,
    create_user,
    list_users,
    set_password,
)
from orchestrator.notify import Message, Outbox, ProviderResult, RetryPolicy
from orchestrator.settings import CampusSettings, FleetSettings, MqttSettings, Settings
from orchestrator.store import ConflictError, NotFoundError, RobotKind, RobotRepository
from orchestrator.store.domain_records import UserRole
from orchestrator.store.domain_repositories import OrderRepository, ParcelRepository, UserRepository
from sim.mosquitto import MosquittoBroker

TIMEOUT = 5.0

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For tests of logic that does not depend on the database (the rest run on SQLite and PostgreSQL)."""


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock at ``T0``."""
    return VirtualClock(start=T0)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings on the test database."""
    return console_settings(database_url, tmp_path)


@pytest.fixture
async def console(settings: Settings, clock: VirtualClock) -> AsyncIterator[Console]:
    """The app running on the test database with a viewer, an operator and an admin; a client on it."""
    async with running_console(settings, clock) as console:
        yield console


def _seed(console: Console) -> dict[str, Any]:
    """Parcels (one returned, one failed), an order and a dead notification; what was made."""
    services = console.app.state.services
    with services.sessions.begin() as session:
        parcels = ParcelRepository(session, services.clock, services.personal)
        parcels.import_rows(parcel_rows())
        parcels.transition("SF1001", "sort", window="w1", stop="s1")
        parcels.transition("SF1001", "load", cart="cart-02", compartment="7")
        for tn, office in (("SF1002", False), ("SF1003", True)):
            parcels.transition(tn, "sort", window="w1", stop="s2", office=office)
            parcels.transition(tn, "load", cart="cart-01", compartment="3")
        parcels.transition("SF1002", "arrive")
        parcels.transition("SF1002", "return", reason="not picked up")
        parcels.transition("SF1003", "hand_off")
        parcels.transition("SF1003", "fail", reason="office closed")
        order = OrderRepository(session, services.clock, services.personal).create(order_draft()).record
        outbox = Outbox(session, services.cipher, services.clock)
        outbox.enqueue(Message("sms", PHONES[2], "您的快递已到 / your parcel is here", "test:dead:1"))
        (claim,) = outbox.claim_due(limit=1, lease_s=60, max_attempts=1)
        outbox.record(claim, ProviderResult.failed("number unknown"), RetryPolicy(max_attempts=1))
    return {"order": order.id, "dead": claim.id}


async def _seeded(console: Console) -> dict[str, Any]:
    return await asyncio.to_thread(_seed, console)


def _no_phone(*responses: httpx.Response) -> None:
    for response in responses:
        for phone in PHONES:
            assert phone not in response.text, f"{response.request.url} shows a phone in clear"


# --- Login, sessions, CSRF ---------------------------------------------------------------------------


async def test_login_gives_a_token_and_strict_httponly_cookie(console: Console) -> None:
    """A good login answers a bearer token and CSRF token and sets the session cookie HttpOnly and
    SameSite=Strict (the CSRF cookie readable by the page); both authenticate GET /me."""
    response = await console.login("operator")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["user"]["username"] == "operator" and body["user"]["role"] == "operator"
    assert body["token_type"] == "bearer" and len(body["token"]) >= 43
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    session_cookie, csrf_cookie = cookies[SESSION_COOKIE].lower(), cookies[CSRF_COOKIE].lower()
    assert "httponly" in session_cookie and "samesite=strict" in session_cookie
    assert "httponly" not in csrf_cookie and "samesite=strict" in csrf_cookie
    assert f"max-age={8 * 3600}" in session_cookie
    by_bearer = await console.client.get(
        "/v1/console/me", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert by_bearer.status_code == 200 and by_bearer.json()["auth"] == "bearer"
    by_cookie = await console.client.get("/v1/console/me")  # the client kept the cookies
    assert by_cookie.status_code == 200 and by_cookie.json()["auth"] == "cookie"
    assert by_cookie.json()["csrf_token"] == body["csrf_token"]
    assert by_cookie.json()["expires_at"] == body["expires_at"]


@sqlite_only
async def test_every_failed_login_looks_the_same(console: Console, settings: Settings) -> None:
    """Unknown user, wrong password and a disabled user all get the same 401 problem."""
    services = console.app.state.services
    with services.sessions.begin() as session:
        users = UserRepository(session, services.clock)
        users.update(users.get_by_username("viewer").id, enabled=False)
    answers = [
        await console.login("nobody"),
        await console.login("operator", "wrong password"),
        await console.login("viewer"),
    ]
    assert {r.status_code for r in answers} == {401}
    assert len({r.json()["detail"] for r in answers}) == 1
    assert all(r.headers["content-type"].startswith("application/problem+json") for r in answers)
    assert all(SESSION_COOKIE not in r.headers.get("set-cookie", "") for r in answers)


@sqlite_only
async def test_ten_failures_lock_the_account_for_fifteen_minutes(
    console: Console, clock: VirtualClock
) -> None:
    """After 10 wrong passwords even the right one is refused, with the same answer, for 15 minutes;
    other accounts are not affected."""
    for _ in range(10):
        assert (await console.login("admin", "guess")).status_code == 401
    locked = await console.login("admin")
    assert locked.status_code == 401 and locked.json()["detail"] == "unknown user name or wrong password"
    assert (await console.login("operator")).status_code == 200
    clock.advance(15 * 60 - 1)
    assert (await console.login("admin")).status_code == 401
    clock.advance(2)
    assert (await console.login("admin")).status_code == 200


@sqlite_only
async def test_failures_spread_over_more_than_fifteen_minutes_do_not_lock(
    console: Console, clock: VirtualClock
) -> None:
    """Only failures within the 15-minute window count towards the lock."""
    for _ in range(9):
        assert (await console.login("admin", "guess")).status_code == 401
    clock.advance(15 * 60 + 1)
    assert (await console.login("admin", "guess")).status_code == 401
    assert (await console.login("admin")).status_code == 200


@sqlite_only
async def test_login_with_the_default_argon2_parameters(settings: Settings, clock: VirtualClock) -> None:
    """With the service's own argon2id hashing (RFC 9106 profile) a user made by the bootstrap logs in."""
    create_user(settings, "root", "a long root passphrase", "admin", clock=clock)
    app = start_app(settings, clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        good = await client.post(
            "/v1/console/login", json={"username": "root", "password": "a long root passphrase"}
        )
        bad = await client.post("/v1/console/login", json={"username": "root", "password": "nope"})
    assert good.status_code == 200 and good.json()["user"]["role"] == "admin"
    assert bad.status_code == 401


@sqlite_only
async def test_cookie_requests_that_change_things_need_the_csrf_header(console: Console) -> None:
    """With the session cookie, a POST without X-CSRF-Token (or with a wrong one) is 403; with the
    token from the login it passes. A bearer-token POST needs no CSRF header."""
    login = (await console.login("operator")).json()
    await asyncio.to_thread(_seed, console)
    path = "/v1/console/parcels/SF1001:reveal"
    reason = {"reason": "recipient at the desk"}
    missing = await console.client.post(path, json=reason)
    wrong = await console.client.post(path, json=reason, headers={CSRF_HEADER: "x" * 43})
    good = await console.client.post(path, json=reason, headers={CSRF_HEADER: login["csrf_token"]})
    assert missing.status_code == 403 and CSRF_HEADER in missing.json()["detail"]
    assert wrong.status_code == 403 and good.status_code == 200
    bearer = await console.client.post(
        path, json=reason, headers={"Authorization": f"Bearer {login['token']}"}
    )
    assert bearer.status_code == 200


async def test_no_session_is_401_and_logout_ends_the_session(console: Console) -> None:
    """Without credentials, or with an unknown token, routes answer 401 with WWW-Authenticate; after
    logout the token no longer works and the cookies are cleared."""
    console.client.cookies.clear()
    assert (await console.client.get("/v1/console/me")).status_code == 401
    unknown = await console.client.get("/v1/console/me", headers={"Authorization": "Bearer " + "A" * 43})
    assert unknown.status_code == 401 and unknown.headers["www-authenticate"] == "Bearer"
    headers = await console.bearer("viewer")
    console.client.cookies.clear()
    assert (await console.client.get("/v1/console/me", headers=headers)).status_code == 200
    logout = await console.client.post("/v1/console/logout", headers=headers)
    assert logout.status_code == 204
    assert any('robopost_session=""' in c for c in logout.headers.get_list("set-cookie"))
    assert (await console.client.get("/v1/console/me", headers=headers)).status_code == 401


async def test_sessions_expire_after_the_configured_ttl(console: Console, clock: VirtualClock) -> None:
    """A session ends ``security.session_ttl_s`` after login."""
    headers = await console.bearer("viewer")
    clock.advance(8 * 3600 - 1)
    assert (await console.client.get("/v1/console/me", headers=headers)).status_code == 200
    clock.advance(2)
    assert (await console.client.get("/v1/console/me", headers=headers)).status_code == 401


# --- Roles and users ---------------------------------------------------------------------------------


@sqlite_only
async def test_roles_rank_viewer_operator_admin(console: Console) -> None:
    """A viewer reads but may not unmask; an operator unmasks but may not manage users or read the
    audit log; an admin may do everything."""
    await _seeded(console)
    reveal = {"reason": "recipient asked at the desk"}
    status: dict[str, tuple[int, ...]] = {}
    for role in ("viewer", "operator", "admin"):
        headers = await console.bearer(role)
        status[role] = (
            (await console.client.get("/v1/console/parcels", headers=headers)).status_code,
            (
                await console.client.post("/v1/console/parcels/SF1001:reveal", json=reveal, headers=headers)
            ).status_code,
            (await console.client.get("/v1/console/users", headers=headers)).status_code,
            (await console.client.get("/v1/console/audit", headers=headers)).status_code,
        )
    assert status == {
        "viewer": (200, 403, 403, 403),
        "operator": (200, 200, 403, 403),
        "admin": (200, 200, 200, 200),
    }


async def test_admin_manages_users(console: Console) -> None:
    """An admin adds a user (409 for a taken name), changes a role, resets a password and disables a
    user; role, password and enabled changes end the user's sessions; every change is audited."""
    admin = await console.bearer("admin")
    added = await console.client.post(
        "/v1/console/users",
        json={"username": "carol", "password": "carol's passphrase", "role": "viewer"},
        headers=admin,
    )
    assert added.status_code == 201 and added.json()["role"] == "viewer"
    carol_id = added.json()["id"]
    taken = await console.client.post(
        "/v1/console/users", json={"username": "carol", "password": "another passphrase"}, headers=admin
    )
    assert taken.status_code == 409
    login = await console.login("carol", "carol's passphrase")
    carol = {"Authorization": f"Bearer {login.json()['token']}"}
    promoted = await console.client.patch(
        f"/v1/console/users/{carol_id}", json={"role": "operator"}, headers=admin
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "operator"
    assert (await console.client.get("/v1/console/me", headers=carol)).status_code == 401  # session ended
    reset = await console.client.patch(
        f"/v1/console/users/{carol_id}", json={"password": "a brand new passphrase"}, headers=admin
    )
    assert reset.status_code == 200
    assert (await console.login("carol", "carol's passphrase")).status_code == 401
    assert (await console.login("carol", "a brand new passphrase")).status_code == 200
    disabled = await console.client.patch(
        f"/v1/console/users/{carol_id}", json={"enabled": False}, headers=admin
    )
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert (await console.login("carol", "a brand new passphrase")).status_code == 401
    listed = (await console.client.get("/v1/console/users", headers=admin)).json()["users"]
    assert [u["username"] for u in listed] == ["viewer", "operator", "admin", "carol"]
    assert all("password" not in json.dumps(u) for u in listed)
    audit = (
        await console.client.get("/v1/console/audit", params={"entity_id": str(carol_id)}, headers=admin)
    ).json()
    assert [e["action"] for e in audit["entries"] if e["action"] != "login"] == [
        "user.change",
        "user.change",
        "user.change",
        "user.create",
    ]
    missing = await console.client.patch("/v1/console/users/9999", json={"enabled": False}, headers=admin)
    assert missing.status_code == 404


@sqlite_only
async def test_the_last_admin_cannot_be_demoted_or_disabled(console: Console) -> None:
    """Demoting or disabling the only enabled admin is a 409; with a second admin it is allowed."""
    admin = await console.bearer("admin")
    me = (await console.client.get("/v1/console/me", headers=admin)).json()["user"]["id"]
    for change in ({"role": "operator"}, {"enabled": False}):
        refused = await console.client.patch(f"/v1/console/users/{me}", json=change, headers=admin)
        assert refused.status_code == 409 and "last enabled admin" in refused.json()["detail"]
    await console.client.post(
        "/v1/console/users",
        json={"username": "root2", "password": "second admin pass", "role": "admin"},
        headers=admin,
    )
    assert (
        await console.client.patch(f"/v1/console/users/{me}", json={"role": "operator"}, headers=admin)
    ).status_code == 200


@sqlite_only
async def test_bad_user_input_is_a_422_problem(console: Console) -> None:
    """A short password, a malformed name or an unknown role is refused with problem+json 422."""
    admin = await console.bearer("admin")
    for body in (
        {"username": "dave", "password": "short"},
        {"username": "no spaces", "password": "long enough pass"},
        {"username": "dave", "password": "long enough pass", "role": "root"},
    ):
        response = await console.client.post("/v1/console/users", json=body, headers=admin)
        assert response.status_code == 422 and response.headers["content-type"].startswith(
            "application/problem+json"
        )


# --- Search, masking, unmasking ------------------------------------------------------------------------


async def test_search_parcels_by_filters_and_phone_shows_masked_recipients(console: Console) -> None:
    """Parcels are found by state, window, stop, cart, tracking number and phone (through its lookup
    hash, any spelling of the number); recipients are masked."""
    await _seeded(console)
    viewer = await console.bearer("viewer")

    async def tns(**params: Any) -> list[str]:
        response = await console.client.get("/v1/console/parcels", params=params, headers=viewer)
        assert response.status_code == 200, response.text
        _no_phone(response)
        return [p["tracking_number"] for p in response.json()["parcels"]]

    assert await tns() == ["SF1001", "SF1002", "SF1003"]
    assert await tns(state="loaded") == ["SF1001"]
    assert await tns(state=["returned", "failed"]) == ["SF1002", "SF1003"]
    assert await tns(window="w1", stop="s2") == ["SF1002", "SF1003"]
    assert await tns(cart="cart-02") == ["SF1001"]
    assert await tns(tracking="SF1002") == ["SF1002"]
    assert await tns(phone="+86 139-8765-4321") == ["SF1002"]
    assert await tns(phone="13000000000") == []
    page = (await console.client.get("/v1/console/parcels", params={"limit": 2}, headers=viewer)).json()
    assert len(page["parcels"]) == 2 and page["next_after_id"] is not None
    rest = await tns(after_id=page["next_after_id"])
    assert rest == ["SF1003"]
    first = page["parcels"][0]
    assert first["recipient"] == {"name": "张*", "phone": "138****1234"}
    assert first["destination"]["dorm"] == "D1" and first["window"] == "w1"
    bad = await console.client.get("/v1/console/parcels", params={"phone": "12345"}, headers=viewer)
    assert bad.status_code == 422 and "phone" in bad.json()["detail"]
    assert (
        await console.client.get("/v1/console/parcels", params={"state": "lost"}, headers=viewer)
    ).status_code == 422


async def test_parcel_and_order_detail_carry_their_history(console: Console) -> None:
    """GET one parcel or order: the masked record and every event, oldest first; unknown ones 404."""
    made = await _seeded(console)
    viewer = await console.bearer("viewer")
    parcel = (await console.client.get("/v1/console/parcels/SF1002", headers=viewer)).json()
    assert parcel["parcel"]["state"] == "returned" and parcel["parcel"]["reason"] == "not picked up"
    assert [e["kind"] for e in parcel["events"]] == ["receive", "sort", "load", "arrive", "return"]
    assert [e["sequence"] for e in parcel["events"]] == [1, 2, 3, 4, 5]
    order = await console.client.get(f"/v1/console/orders/{made['order']}", headers=viewer)
    assert order.status_code == 200 and order.json()["order"]["contact"] == {
        "name": "王*",
        "phone": "138****1234",
    }
    assert [e["kind"] for e in order.json()["events"]] == ["create"]
    assert (await console.client.get("/v1/console/parcels/SF9999", headers=viewer)).status_code == 404
    assert (await console.client.get("/v1/console/orders/ord_missing", headers=viewer)).status_code == 404


async def test_search_orders_by_state_kind_partner_and_phone(console: Console) -> None:
    """Orders are found by state, kind, partner and contact phone; contacts are masked."""
    made = await _seeded(console)
    viewer = await console.bearer("viewer")

    async def ids(**params: Any) -> list[str]:
        response = await console.client.get("/v1/console/orders", params=params, headers=viewer)
        assert response.status_code == 200, response.text
        _no_phone(response)
        return [o["id"] for o in response.json()["orders"]]

    assert await ids() == [made["order"]]
    assert await ids(state="created", kind="pickup", partner="mp") == [made["order"]]
    assert await ids(phone=PHONES[0]) == [made["order"]]
    assert (
        await ids(phone=PHONES[1]) == [] and await ids(kind="coffee") == [] and await ids(partner="x") == []
    )


async def test_a_viewer_never_sees_a_full_phone_number(console: Console) -> None:
    """Every console route a viewer can call answers without a phone number in clear; unmasking is
    403 and leaves no audit entry."""
    made = await _seeded(console)
    viewer = await console.bearer("viewer")
    get = console.client.get
    responses = [
        await get("/v1/console/parcels", headers=viewer),
        await get("/v1/console/parcels", params={"phone": PHONES[0]}, headers=viewer),
        await get("/v1/console/parcels/SF1001", headers=viewer),
        await get("/v1/console/orders", headers=viewer),
        await get(f"/v1/console/orders/{made['order']}", headers=viewer),
        await get("/v1/console/alarms", headers=viewer),
        await get("/v1/console/outbox", headers=viewer),
        await get("/v1/console/fleet", headers=viewer),
        await get("/v1/console/me", headers=viewer),
        await console.client.post(
            "/v1/console/parcels/SF1001:reveal", json={"reason": "curious"}, headers=viewer
        ),
        await console.client.post(
            f"/v1/console/orders/{made['order']}:reveal", json={"reason": "curious"}, headers=viewer
        ),
    ]
    assert [r.status_code for r in responses] == [200] * 9 + [403, 403]
    _no_phone(*responses)
    admin = await console.bearer("admin")
    audit = (await get("/v1/console/audit", params={"action": "unmask"}, headers=admin)).json()
    assert audit["entries"] == []


async def test_an_operators_unmasking_is_in_the_audit_log(console: Console) -> None:
    """An operator who gives a reason sees the recipient in clear (not cached); the audit log names the
    operator, the parcel and the reason. Without a reason it is 422 and nothing is shown or logged."""
    made = await _seeded(console)
    operator = await console.bearer("operator")
    no_reason = await console.client.post(
        "/v1/console/parcels/SF1002:reveal", json={"reason": "  "}, headers=operator
    )
    assert no_reason.status_code == 422 and PHONES[1] not in no_reason.text
    shown = await console.client.post(
        "/v1/console/parcels/SF1002:reveal",
        json={"reason": "recipient  called the hotline"},
        headers=operator,
    )
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    assert shown.json() == {"entity": "parcel", "id": "SF1002", "name": "李四", "phone": PHONES[1]}
    order = await console.client.post(
        f"/v1/console/orders/{made['order']}:reveal",
        json={"reason": "courier needs to call"},
        headers=operator,
    )
    assert order.status_code == 200 and order.json()["phone"] == PHONES[0] and order.json()["name"] == "王五"
    admin = await console.bearer("admin")
    entries = (
        await console.client.get("/v1/console/audit", params={"action": "unmask"}, headers=admin)
    ).json()["entries"]
    assert [(e["actor"], e["role"], e["entity"], e["entity_id"], e["reason"]) for e in entries] == [
        ("operator", "operator", "order", made["order"], "courier needs to call"),
        ("operator", "operator", "parcel", "SF1002", "recipient called the hotline"),
    ]
    missing = await console.client.post(
        "/v1/console/parcels/SF0000:reveal", json={"reason": "lost"}, headers=operator
    )
    assert missing.status_code == 404


# --- Alarms, outbox, audit -------------------------------------------------------------------------------


async def test_alarms_list_dead_letters_and_failed_or_returned_parcels_and_acks_are_audited(
    console: Console,
) -> None:
    """Derived alarms: the dead notification, the failed parcel and the returned one (worst first);
    an operator acknowledges one (audited, idempotent), a viewer may not; unknown ids are 404."""
    made = await _seeded(console)
    viewer, operator = await console.bearer("viewer"), await console.bearer("operator")
    alarms = (await console.client.get("/v1/console/alarms", headers=viewer)).json()["alarms"]
    kinds = {a["kind"]: a for a in alarms}
    assert [a["kind"] for a in alarms] == ["notification_dead", "parcel_failed", "parcel_returned"]
    assert kinds["notification_dead"]["id"] == f"outbox:{made['dead']}"
    assert (
        "150****2222" in kinds["notification_dead"]["message"]
        and "number unknown" in kinds["notification_dead"]["message"]
    )
    assert (
        kinds["parcel_failed"]["subject"] == "SF1003" and "office closed" in kinds["parcel_failed"]["message"]
    )
    assert not any(a["acked"] for a in alarms)
    target = kinds["parcel_failed"]["id"]
    assert (
        await console.client.post(f"/v1/console/alarms/{target}:ack", json={}, headers=viewer)
    ).status_code == 403
    acked = await console.client.post(
        f"/v1/console/alarms/{target}:ack", json={"note": "calling the office"}, headers=operator
    )
    assert acked.status_code == 200 and acked.json()["acked"] and acked.json()["acked_by"] == "operator"
    assert acked.json()["acked_note"] == "calling the office"
    again = await console.client.post(f"/v1/console/alarms/{target}:ack", headers=operator)
    assert again.status_code == 200 and again.json()["acked_at"] == acked.json()["acked_at"]
    open_ones = (
        await console.client.get("/v1/console/alarms", params={"acked": "false"}, headers=viewer)
    ).json()
    assert [a["kind"] for a in open_ones["alarms"]] == ["notification_dead", "parcel_returned"]
    done = (await console.client.get("/v1/console/alarms", params={"acked": "true"}, headers=viewer)).json()
    assert [(a["id"], a["acked_note"]) for a in done["alarms"]] == [(target, "calling the office")]
    unknown = await console.client.post("/v1/console/alarms/parcel:SF1001:loaded:3:ack", headers=operator)
    assert unknown.status_code == 404
    admin = await console.bearer("admin")
    audit = (await console.client.get("/v1/console/audit", params={"action": "ack"}, headers=admin)).json()[
        "entries"
    ]
    assert [(e["actor"], e["entity_id"], e["reason"]) for e in audit] == [
        ("operator", target, "calling the office")
    ]


async def test_an_order_still_open_after_its_promised_window_is_a_late_order_alarm(console: Console) -> None:
    """An order not done by the end of its promised window (``latest_at``) is an ``order_late`` alarm,
    and not before."""
    made = await _seeded(console)
    viewer = await console.bearer("viewer")

    async def late() -> list[dict[str, Any]]:
        alarms = (await console.client.get("/v1/console/alarms", headers=viewer)).json()["alarms"]
        return [a for a in alarms if a["kind"] == "order_late"]

    assert await late() == []
    await console.clock.run_for(3600 + 600)  # latest_at is T0 + 3600
    [alarm] = await late()
    assert alarm["subject"] == made["order"] and alarm["severity"] == "warning"
    assert "10 min after its promised window" in alarm["message"]


async def test_outbox_dead_letters_are_listed_masked_and_retried_by_an_operator(console: Console) -> None:
    """GET /outbox?status=dead lists the dead notification (phone masked, no text in clear); an
    operator retries it (pending again, audited); retrying it again is a 409; unknown ids are 404."""
    made = await _seeded(console)
    viewer, operator = await console.bearer("viewer"), await console.bearer("operator")
    dead = await console.client.get("/v1/console/outbox", params={"status": "dead"}, headers=viewer)
    _no_phone(dead)
    (entry,) = dead.json()["entries"]
    assert entry["id"] == made["dead"] and entry["to_masked"] == "150****2222" and entry["attempts"] == 1
    path = f"/v1/console/outbox/{made['dead']}:retry"
    assert (await console.client.post(path, headers=viewer)).status_code == 403
    retried = await console.client.post(path, headers=operator)
    assert (
        retried.status_code == 200
        and retried.json()["status"] == "pending"
        and retried.json()["attempts"] == 0
    )
    assert (await console.client.post(path, headers=operator)).status_code == 409
    assert (await console.client.post("/v1/console/outbox/4242:retry", headers=operator)).status_code == 404
    admin = await console.bearer("admin")
    audit = (
        await console.client.get("/v1/console/audit", params={"entity": "outbox"}, headers=admin)
    ).json()["entries"]
    assert [(e["action"], e["entity_id"]) for e in audit] == [("retry", str(made["dead"]))]


async def test_audit_log_pages_newest_first(console: Console) -> None:
    """The audit log lists logins newest first and pages back with next_before_id."""
    for _ in range(3):
        await console.login("viewer")
    admin = await console.bearer("admin")
    first = (
        await console.client.get("/v1/console/audit", params={"action": "login", "limit": 2}, headers=admin)
    ).json()
    assert [e["actor"] for e in first["entries"]] == ["admin", "viewer"]
    rest = (
        await console.client.get(
            "/v1/console/audit",
            params={"action": "login", "before_id": first["next_before_id"]},
            headers=admin,
        )
    ).json()
    assert [e["actor"] for e in rest["entries"]] == ["viewer", "viewer"] and rest["next_before_id"] is None


# --- Fleet snapshot and stream ---------------------------------------------------------------------------


async def test_fleet_snapshot_without_a_master_lists_the_stored_robots(console: Console) -> None:
    """Without the fleet master the snapshot lists the robots the store knows at this site, offline."""
    services = console.app.state.services
    with services.sessions.begin() as session:
        RobotRepository(session, services.clock).add(
            "acme", "cart-07", RobotKind.CART, console.app.state.site_record.id, display_name="Cart 7"
        )
    snapshot = await console.client.get("/v1/console/fleet", headers=await console.bearer("viewer"))
    assert snapshot.status_code == 200
    body = snapshot.json()
    assert body["source"] == "store" and body["online"] == 0
    (robot,) = body["robots"]
    assert robot["serial"] == "cart-07" and robot["name"] == "Cart 7" and robot["kind"] == "cart"
    assert robot["online"] is False and robot["link"] == "UNKNOWN"


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return message


async def _closed_code(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


@sqlite_only
async def test_stream_sends_the_snapshot_then_changes_and_ends_with_the_session(
    settings: Settings, clock: VirtualClock
) -> None:
    """Over a real uvicorn: a logged-in client gets the snapshot first, then published events in
    order; a second client's stream closes (4403) when its session logs out, the first's when its
    session expires. No token, a bad token or a foreign Origin is refused at the handshake."""
    app = start_app(settings, clock)
    async with serving(app) as host:
        async with httpx.AsyncClient(base_url=f"http://{host}") as client:
            assert (await client.get("/healthz")).status_code == 200  # the lifespan is up
            await asyncio.to_thread(add_users_to, app, ["viewer"])
            tokens = []
            for _ in range(2):
                login = await client.post(
                    "/v1/console/login", json={"username": "viewer", "password": PASSWORD}
                )
                tokens.append(login.json()["token"])
        url = f"ws://{host}/v1/console/stream"
        for bad in (url, f"{url}?token=nonsense"):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(bad):
                    pass
            assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus):
            async with connect(f"{url}?token={tokens[0]}", origin="http://evil.example"):  # type: ignore[arg-type]
                pass
        async with (
            connect(f"{url}?token={tokens[0]}") as first,
            connect(f"{url}?token={tokens[1]}") as second,
        ):
            snapshot = await _recv(first)
            assert snapshot["type"] == "snapshot" and snapshot["fleet"]["source"] == "store"
            assert snapshot["alarms"] == [] and (await _recv(second))["type"] == "snapshot"
            hub = console_hub(app)
            hub.publish({"type": "parcel", "id": "SF1", "to_state": "loaded"})
            hub.publish({"type": "order", "id": "ord_1", "to_state": "accepted"})
            events = [await _recv(first), await _recv(first)]
            assert [(e["type"], e["id"]) for e in events] == [("parcel", "SF1"), ("order", "ord_1")]
            assert events[1]["seq"] == events[0]["seq"] + 1 > snapshot["seq"]
            async with httpx.AsyncClient(base_url=f"http://{host}") as client:
                out = await client.post(
                    "/v1/console/logout", headers={"Authorization": f"Bearer {tokens[1]}"}
                )
            assert out.status_code == 204
            assert await _closed_code(second) == 4403
            clock.advance(8 * 3600 + 1)
            assert await _closed_code(first) == 4403


@pytest.mark.integration
async def test_with_the_fleet_master_the_stream_and_alarms_follow_the_robots(
    tmp_path: Path,
    small_site: Site,
    mqtt_broker: MosquittoBroker,
    clock: VirtualClock,
    shared_data: Path,
) -> None:
    """With the fleet master running, the snapshot is live, a robot coming online is streamed as a
    fleet.link_changed event, a robot never heard from is an offline alarm and a FATAL error is a
    critical robot_error alarm."""
    campus, _ = save_site(small_site, tmp_path / "small.yaml")
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(SAMPLE_FLEET), encoding="utf-8")
    settings = console_settings(f"sqlite:///{tmp_path / 'robopost.db'}", tmp_path).model_copy(
        update={
            "campus": CampusSettings(map=campus),
            "mqtt": MqttSettings(port=mqtt_broker.port, embedded=False),
            "fleet": FleetSettings(enabled=True, config=fleet_file),
        }
    )
    app = start_app(settings, clock)
    robot = FakeRobot(mqtt_broker, "r1", clock, OfficialSchemas(shared_data))
    async with serving(app) as host:
        async with httpx.AsyncClient(base_url=f"http://{host}") as client:
            assert (await client.get("/healthz")).status_code == 200  # the lifespan is up
            await asyncio.to_thread(add_users_to, app, ["viewer"])
            login = await client.post("/v1/console/login", json={"username": "viewer", "password": PASSWORD})
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            async with connect(f"ws://{host}/v1/console/stream?token={login.json()['token']}") as ws:
                snapshot = await _recv(ws)
                assert snapshot["fleet"]["source"] == "fleet"
                assert sorted(r["serial"] for r in snapshot["fleet"]["robots"]) == ["r1", "r2"]
                await robot.start()
                event = await _recv(ws)
                while event["type"] != "fleet.link_changed":
                    event = await _recv(ws)
                assert (
                    event["robot"] == "r1" and event["link"] == "ONLINE" and event["view"]["online"] is True
                )
                robot.errors = [
                    AgvError(
                        error_type="laserBlocked", error_level=ErrorLevel.FATAL, error_description="front"
                    )
                ]
                await robot.publish_state()
                update = await _recv(ws)
                while update["type"] != "fleet.robot":
                    update = await _recv(ws)
                assert update["view"]["errors"][0]["type"] == "laserBlocked"
            fleet = (await client.get("/v1/console/fleet", headers=headers)).json()
            alarms = (await client.get("/v1/console/alarms", headers=headers)).json()["alarms"]
        await robot.close()
    assert fleet["source"] == "fleet" and fleet["online"] == 1
    assert [(a["kind"], a["severity"], a["subject"]) for a in alarms] == [
        ("robot_error", "critical", "r1"),
        ("robot_offline", "warning", "r2"),
    ]


# --- Admin bootstrap ---------------------------------------------------------------------------------------


def test_bootstrap_creates_lists_and_resets_users(
    database_url: str, tmp_path: Path, clock: VirtualClock
) -> None:
    """create_user migrates the database and adds a user (refusing a taken name, a short password or
    a bad name); set_password changes the hash and re-enables; list_users shows them in order."""
    settings = console_settings(database_url, tmp_path)
    root = create_user(settings, "root", "root passphrase", clock=clock, hashing=FAST_HASHING)
    assert root.role is UserRole.ADMIN and root.enabled
    create_user(settings, "eve", "eve passphrase", "viewer", clock=clock, hashing=FAST_HASHING)
    with pytest.raises(ConflictError):
        create_user(settings, "root", "another passphrase", clock=clock, hashing=FAST_HASHING)
    with pytest.raises(ValueError, match="8 to 256"):
        create_user(settings, "frank", "short", clock=clock, hashing=FAST_HASHING)
    with pytest.raises(ValueError, match="user name"):
        create_user(settings, "frank smith", "long enough", clock=clock, hashing=FAST_HASHING)
    with pytest.raises(ValueError):
        create_user(settings, "frank", "long enough", "superuser", clock=clock, hashing=FAST_HASHING)
    reset = set_password(settings, "eve", "eve's new passphrase", clock=clock, hashing=FAST_HASHING)
    assert FAST_HASHING.verify(reset.password_hash, "eve's new passphrase")
    with pytest.raises(NotFoundError):
        set_password(settings, "nobody", "whatever passphrase", clock=clock, hashing=FAST_HASHING)
    assert [(u.username, u.role.value) for u in list_users(settings, clock=clock)] == [
        ("root", "admin"),
        ("eve", "viewer"),
    ]


# --- The event hub ---------------------------------------------------------------------------------------


async def test_hub_numbers_events_and_ends_a_stream_that_falls_behind() -> None:
    """Events get consecutive ``seq`` numbers; a stream more than its queue behind ends with 1013
    after the events it still holds; other streams go on."""
    clock = VirtualClock(start=T0)
    hub = EventHub(clock, asyncio.get_running_loop(), maxsize=3)
    slow, fast = hub.subscribe(), hub.subscribe()
    for n in range(4):
        hub.publish({"type": "parcel", "n": n})
        assert (await fast.get()) == {
            "type": "parcel",
            "n": n,
            "seq": n + 1,
            "at": "2027-01-15T08:00:00.000Z",
        }
    received = [await slow.get() for _ in range(4)]
    assert [e["n"] for e in received if e] == [0, 1, 2] and received[3] is None and slow.close_code == 1013
    with pytest.raises(ValueError, match="type"):
        hub.publish({"n": 5})


async def test_hub_takes_events_from_other_threads() -> None:
    """publish from a worker thread is delivered on the hub's loop, in order."""
    hub = EventHub(VirtualClock(start=T0), asyncio.get_running_loop())
    sub = hub.subscribe()

    def from_thread() -> None:
        for n in range(3):
            hub.publish({"type": "order", "n": n})

    await asyncio.to_thread(from_thread)
    assert [(await sub.get() or {})["n"] for _ in range(3)] == [0, 1, 2]
    sub.close()
    assert hub.subscribers == 0
