"""The kiosk app's API through httpx (in-memory ASGI) and its WebSocket through a real uvicorn, over a
real ``CartService`` (virtual clock, a code sheet made with the real keyed hashes, an in-memory locker
board): right, wrong and malformed codes, the step-up and the lockout, staff mode, the live screen."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from console_testkit import serving
from fastapi import FastAPI
from websockets.asyncio.client import connect

from interfaces.clock import VirtualClock
from interfaces.fanout import Fanout, Stream
from interfaces.pickup_codes import hash_code
from robots.cart.codes import CodeEntry, CodeSheet
from robots.cart.events import EventQueue
from robots.cart.hmi import create_kiosk_app
from robots.cart.locker.model import BoardHealth, BoardSnapshot, CompartmentInputs, OpenResult
from robots.cart.service import CartService, CartSettings, Text

T0 = 1_800_000_000.0
CART, WINDOW, STOP = "cart_1", "w-1600", "stop_dorm_1"
KEY = bytes(range(32))
PIN = "2468"
PHONE = "400-820-1234"
# (parcel, compartment, code, phone tail)
PARCELS = [("SF1001", 3, "042917", "1234"), ("SF1002", 5, "771203", "5678")]
ELSEWHERE = ("SF1003", 7, "300300", "9999")  # a real code, but for another stop
WRONG = "111111"
PROBLEM = "application/problem+json"


class MemoryBoard:
    """A locker board in memory (``LockerPort``): doors spring open on ``open``; people take and close."""

    def __init__(self, clock: VirtualClock, compartments: int = 12) -> None:
        self._clock = clock
        self.inputs = {
            n: CompartmentInputs(door_closed=True, occupied=False) for n in range(1, compartments + 1)
        }
        self.health = BoardHealth.OK
        self.opened: list[int] = []
        self._fanout: Fanout[BoardSnapshot] = Fanout(self.snapshot())

    async def start(self) -> None:
        self._publish()

    async def stop(self) -> None:
        pass

    async def open(self, compartment: int) -> OpenResult:
        if self.health is not BoardHealth.OK:
            return OpenResult.BOARD_DOWN
        if compartment not in self.inputs:
            return OpenResult.UNKNOWN_COMPARTMENT
        self.opened.append(compartment)
        self.inputs[compartment] = CompartmentInputs(False, self.inputs[compartment].occupied)
        self._publish()
        return OpenResult.SENT

    def snapshot(self) -> BoardSnapshot:
        inputs = self.inputs if self.health is BoardHealth.OK else {}
        detail = "" if self.health is BoardHealth.OK else "The locker board does not answer."
        return BoardSnapshot(self._clock.now(), self.health, dict(inputs), detail)

    def snapshots(self) -> Stream[BoardSnapshot]:
        return self._fanout.stream()

    def load(self, compartment: int) -> None:
        """A parcel is in ``compartment`` (door shut)."""
        self.inputs[compartment] = CompartmentInputs(True, True)

    def go_down(self) -> None:
        """The board stops answering."""
        self.health = BoardHealth.NO_REPLY
        self._publish()

    def _publish(self) -> None:
        self._fanout.publish(self.snapshot())


def _entry(parcel: str, compartment: int, code: str, tail: str, stop: str) -> CodeEntry:
    return CodeEntry(
        parcel=parcel,
        compartment=str(compartment),
        window=WINDOW,
        stop=stop,
        code_hash=hash_code(KEY, CART, WINDOW, code),
        tail_hash=hash_code(KEY, CART, WINDOW, code, tail),
        expires_at=T0 + 3600,
    )


def code_sheet() -> CodeSheet:
    """The cart's synced codes: two parcels at this stop, one at another."""
    entries = [_entry(p, c, code, tail, STOP) for p, c, code, tail in PARCELS]
    entries.append(_entry(*ELSEWHERE, stop="stop_teaching"))
    return CodeSheet(CART, KEY, T0, tuple(entries))


def cheap_pin_hash(pin: str = PIN) -> str:
    """A real argon2id hash with tiny parameters (verification reads them from the hash)."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(pin)


@dataclass
class Kiosk:
    """The kiosk app over a started cart service, and an httpx client on it."""

    app: FastAPI
    client: httpx.AsyncClient
    service: CartService
    board: MemoryBoard
    clock: VirtualClock

    async def code(self, code: str, tail: str | None = None) -> dict[str, Any]:
        body = {"code": code} if tail is None else {"code": code, "tail": tail}
        response = await self.client.post("/api/code", json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def login(self, pin: str = PIN) -> httpx.Response:
        return await self.client.post("/api/staff/login", json={"pin": pin})

    async def token(self) -> str:
        response = await self.login()
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token


async def started_kiosk(tmp_path: Path, *, pin_hash: str | None) -> AsyncIterator[Kiosk]:
    clock = VirtualClock(start=T0)
    board = MemoryBoard(clock)
    for _, compartment, _, _ in PARCELS:
        board.load(compartment)
    settings = CartSettings(
        cart=CART,
        support_phone=PHONE,
        staff_pin_hash=pin_hash,
        stop_labels={STOP: Text("1号学生公寓停靠点", "Dorm 1 stop")},
    )
    queue = EventQueue(tmp_path / "events.db", CART)
    service = CartService(settings, board, queue, clock)
    await service.start()
    service.load_codes(code_sheet())
    service.arrive(STOP, WINDOW)
    app = create_kiosk_app(service)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kiosk.test") as client:
            yield Kiosk(app, client, service, board, clock)
    finally:
        await service.stop()
        queue.close()


@pytest.fixture
async def kiosk(tmp_path: Path) -> AsyncIterator[Kiosk]:
    """The kiosk of a cart at its stop with two parcels and a staff PIN."""
    async for started in started_kiosk(tmp_path, pin_hash=cheap_pin_hash()):
        yield started


# --- the page -----------------------------------------------------------------------------------------


async def test_page_and_its_files_come_from_the_cart(kiosk: Kiosk) -> None:
    """GET / is the page (no caching, a CSP allowing only the cart's own files); its CSS and JS are
    served from /static, and the page names no other host."""
    page = await kiosk.client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "/static/kiosk.css" in page.text and "/static/kiosk.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    for asset, kind in (("kiosk.css", "text/css"), ("kiosk.js", "javascript")):
        response = await kiosk.client.get(f"/static/{asset}")
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
    assert (await kiosk.client.get("/docs")).status_code == 404  # the docs would load a CDN


# --- the screen ---------------------------------------------------------------------------------------


async def test_screen_is_the_service_view_with_times_as_epoch_and_iso(kiosk: Kiosk) -> None:
    """GET /api/screen gives the stop's bilingual label, the window's end as epoch seconds and ISO
    (UTC), the challenge, the board's health, the link and the support phone."""
    response = await kiosk.client.get("/api/screen")
    assert response.status_code == 200
    screen = response.json()
    assert screen["stop"] == STOP
    assert screen["stop_label"] == {"zh": "1号学生公寓停靠点", "en": "Dorm 1 stop"}
    assert screen["window"] == WINDOW
    assert screen["window_end"] == T0 + 3600
    assert screen["window_end_iso"] == "2027-01-15T09:00:00Z"
    assert screen["now"] == T0
    assert screen["now_iso"] == "2027-01-15T08:00:00Z"
    assert screen["challenge"] == "code"
    assert screen["locked_until"] is None and screen["locked_until_iso"] is None
    assert screen["board"] == "ok"
    assert screen["online"] is False  # no uplink: the page says "offline — pickup still works"
    assert screen["support_phone"] == PHONE
    assert screen["version"] == kiosk.service.screen().version


# --- codes --------------------------------------------------------------------------------------------


async def test_right_code_opens_its_compartment(kiosk: Kiosk) -> None:
    """The right code answers ``open`` with the compartment and the bilingual message, and pulses
    that compartment's lock; the screen then watches it."""
    answer = await kiosk.code("042917")
    assert answer["result"] == "open"
    assert answer["compartment"] == 3
    assert answer["message"] == {
        "zh": "3号格口已打开，取件后请关好柜门。",
        "en": "Compartment 3 is open — please close the door.",
    }
    assert kiosk.board.opened == [3]
    screen = (await kiosk.client.get("/api/screen")).json()
    assert [c["number"] for c in screen["compartments"]] == [3]
    assert {k: screen["notice"][k] for k in ("zh", "en")} == answer["message"]
    assert screen["notice"]["kind"] == "opened" and screen["notice"]["compartment"] == answer["compartment"]


async def test_wrong_codes_get_one_neutral_answer(kiosk: Kiosk) -> None:
    """An unknown code, and then a real code of another stop with its right phone tail, get the same
    answer (nothing tells which codes exist) and open nothing; the screen asks for the phone tail."""
    unknown = await kiosk.code(WRONG)
    _, _, code, tail = ELSEWHERE
    elsewhere = await kiosk.code(code, tail)
    assert unknown == elsewhere
    assert unknown["result"] == "wrong"
    assert unknown["compartment"] is None
    assert unknown["message"]["zh"] == "取件码不正确，请核对后重试。"
    assert unknown["challenge"] == "code+phone_tail"
    assert kiosk.board.opened == []


async def test_after_a_wrong_code_the_right_code_needs_the_phone_tail(kiosk: Kiosk) -> None:
    """Step-up: after a wrong code the right code alone answers ``need_tail``; with the right tail it
    opens; with a wrong tail it is a wrong answer like any other."""
    await kiosk.code(WRONG)
    need = await kiosk.code("771203")
    assert need["result"] == "need_tail"
    assert need["challenge"] == "code+phone_tail"
    assert "后四位" in need["message"]["zh"]
    assert (await kiosk.code("771203", "0000"))["result"] == "wrong"
    opened = await kiosk.code("771203", "5678")
    assert (opened["result"], opened["compartment"]) == ("open", 5)


async def test_not_six_digits_is_a_typo_not_a_wrong_code(kiosk: Kiosk) -> None:
    """Text that is not 6 digits answers ``invalid`` and does not count towards the step-up."""
    answer = await kiosk.code("12")
    assert answer["result"] == "invalid"
    assert answer["message"]["en"] == "A pickup code is 6 digits."
    assert (await kiosk.client.get("/api/screen")).json()["challenge"] == "code"


async def test_five_wrong_codes_lock_code_entry(kiosk: Kiosk) -> None:
    """The fifth wrong code answers ``locked`` with ``locked_until`` (epoch and ISO); the screen shows
    the lock and even the right code is refused until then."""
    answers = [await kiosk.code(WRONG, "0000") for _ in range(5)]
    assert [a["result"] for a in answers] == ["wrong"] * 4 + ["locked"]
    locked = answers[-1]
    assert locked["locked_until"] == T0 + 600
    assert locked["locked_until_iso"] == "2027-01-15T08:10:00Z"
    assert "输错次数过多" in locked["message"]["zh"]
    screen = (await kiosk.client.get("/api/screen")).json()
    assert screen["locked_until"] == T0 + 600
    assert screen["lock_reason"] == "window"
    assert (await kiosk.code("042917", "1234"))["result"] == "locked"
    assert kiosk.board.opened == []


async def test_board_down_answers_with_the_support_phone(kiosk: Kiosk) -> None:
    """While the board does not answer, a code answers ``board_down`` (not counted) with the phone."""
    kiosk.board.go_down()
    answer = await kiosk.code("042917")
    assert answer["result"] == "board_down"
    assert PHONE in answer["message"]["zh"] and PHONE in answer["message"]["en"]
    assert (await kiosk.client.get("/api/screen")).json()["challenge"] == "code"


BAD_BODIES: list[tuple[str | bytes, str]] = [
    (b'{"code": "04', "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('"042917"', "JSON object"),
    ('{"code": 42917}', "code"),
    ('{"code": null}', "code"),
    ('{"code": "042917", "tail": 1234}', "tail"),
    ("{}", "lacks code"),
    ('{"code": "042917", "admin": true}', "unknown field admin"),
    ('{"code": "' + "9" * 33 + '"}', "code"),
    ("", "empty"),
    ("code=042917", "not valid JSON"),
]


@pytest.mark.parametrize(("body", "said"), BAD_BODIES)
async def test_malformed_code_requests_are_422_problems(kiosk: Kiosk, body: str | bytes, said: str) -> None:
    """A body that is not JSON, not an object, or has wrong types is a 422 problem+json whose detail is
    one sentence saying what was wrong and showing a right body; never a 500, never counted."""
    response = await kiosk.client.post(
        "/api/code", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 422
    assert problem["type"] == "urn:robopost:kiosk:invalid-request"
    assert said in problem["detail"]
    assert '{"code": "042917", "tail": "1234"}' in problem["detail"]
    assert kiosk.service.guard.status(CART).challenge.value == "code"


async def test_form_posts_and_other_content_types_are_422_problems(kiosk: Kiosk) -> None:
    """A form post (what a plain HTML form would send) is not JSON: a 422 problem, not a 500."""
    response = await kiosk.client.post("/api/code", data={"code": "042917"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert "JSON object" in response.json()["detail"]
    assert kiosk.board.opened == []


async def test_unknown_api_path_is_a_problem(kiosk: Kiosk) -> None:
    """A path the kiosk does not serve is a 404 problem+json."""
    response = await kiosk.client.get("/api/nothing")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


# --- staff mode ---------------------------------------------------------------------------------------


async def test_staff_login_open_and_logout(kiosk: Kiosk) -> None:
    """The right PIN gives a token; with it staff see every compartment, open chosen ones or all of
    them (one result each) and log out, after which the token opens nothing."""
    token = await kiosk.token()
    auth = {"Authorization": f"Bearer {token}"}
    board = (await kiosk.client.get("/api/staff/board", headers=auth)).json()
    assert board["board"] == "ok"
    assert len(board["compartments"]) == 12
    assert board["compartments"][2] == {"number": 3, "door": "closed", "occupied": True, "phase": None}
    opened = await kiosk.client.post("/api/staff/open", json={"compartments": [5, 2]}, headers=auth)
    assert opened.status_code == 200
    assert opened.json() == {
        "results": [{"compartment": 2, "result": "sent"}, {"compartment": 5, "result": "sent"}],
        "opened": 2,
    }
    everything = (
        await kiosk.client.post("/api/staff/open", json={"compartments": None}, headers=auth)
    ).json()
    assert [r["compartment"] for r in everything["results"]] == list(range(1, 13))
    assert kiosk.board.opened[:2] == [2, 5]
    board = (await kiosk.client.get("/api/staff/board", headers=auth)).json()
    assert board["compartments"][1]["door"] == "open"
    assert board["compartments"][1]["phase"] in ("opening", "open")  # watched since the staff opening
    assert (await kiosk.client.post("/api/staff/logout", headers=auth)).status_code == 204
    after = await kiosk.client.post("/api/staff/open", json={"compartments": [1]}, headers=auth)
    assert after.status_code == 401
    assert after.headers["content-type"] == PROBLEM
    assert "session has ended" in after.json()["detail"]


async def test_wrong_pins_are_refused_then_locked(kiosk: Kiosk) -> None:
    """A wrong PIN is a 401 with the service's sentence; after three, even the right PIN gets 423."""
    for _ in range(3):
        wrong = await kiosk.login("0000")
        assert wrong.status_code == 401
        assert wrong.headers["content-type"] == PROBLEM
        assert wrong.json()["detail"] == "wrong staff PIN"
    locked = await kiosk.login(PIN)
    assert locked.status_code == 423
    assert locked.json()["detail"] == "staff mode is locked after wrong PINs; try again later"
    kiosk.clock.advance(kiosk.service.settings.staff_lock_s)
    assert (await kiosk.login(PIN)).status_code == 200


@pytest.mark.parametrize(("body", "said"), [('{"pin": 2468}', "pin"), ('{"pin": "24', "not valid JSON")])
async def test_malformed_staff_logins_are_422(kiosk: Kiosk, body: str, said: str) -> None:
    """A PIN that is not text, or a body that is not JSON, is a 422 problem and no wrong PIN."""
    response = await kiosk.client.post(
        "/api/staff/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert said in response.json()["detail"] and '{"pin": "2468"}' in response.json()["detail"]
    assert (await kiosk.login()).status_code == 200


async def test_staff_routes_need_a_token(kiosk: Kiosk) -> None:
    """Without a token, or with a made-up one, staff routes answer 401 and open nothing."""
    missing = await kiosk.client.post("/api/staff/open", json={"compartments": [1]})
    assert missing.status_code == 401
    assert "token" in missing.json()["detail"]
    forged = {"Authorization": "Bearer not-a-session"}
    assert (
        await kiosk.client.post("/api/staff/open", json={"compartments": [1]}, headers=forged)
    ).status_code == 401
    assert (await kiosk.client.get("/api/staff/board", headers=forged)).status_code == 401
    assert kiosk.board.opened == []


@pytest.mark.parametrize(
    "body",
    [{}, {"compartments": "all"}, {"compartments": [0]}, {"compartments": [65]}, {"compartments": [True]}],
)
async def test_malformed_staff_openings_are_422(kiosk: Kiosk, body: dict[str, Any]) -> None:
    """``compartments`` is required (null means all, never an empty body) and must list 1..64."""
    auth = {"Authorization": f"Bearer {await kiosk.token()}"}
    response = await kiosk.client.post("/api/staff/open", json=body, headers=auth)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert kiosk.board.opened == []


async def test_without_a_pin_staff_mode_is_forbidden(tmp_path: Path) -> None:
    """A cart with no staff PIN configured answers 403 with the reason."""
    async for kiosk in started_kiosk(tmp_path, pin_hash=None):
        response = await kiosk.login("1234")
        assert response.status_code == 403
        assert response.json()["detail"] == "no staff PIN is configured on this cart"


# --- live screen --------------------------------------------------------------------------------------


async def test_websocket_sends_the_screen_first_then_every_change(kiosk: Kiosk) -> None:
    """/api/live (real uvicorn, real WebSocket client) sends the current screen at once, then a new
    one after each change: a right code opens a compartment, the cart departs."""
    async with serving(kiosk.app) as host, connect(f"ws://{host}/api/live", open_timeout=10) as socket:
        first = json.loads(await socket.recv())
        assert first["stop"] == STOP
        assert first["version"] == kiosk.service.screen().version
        await kiosk.code("042917")
        opened = await _until(socket, lambda s: [c["number"] for c in s["compartments"]] == [3])
        assert opened["version"] > first["version"]
        assert opened["notice"]["en"] == "Compartment 3 is open — please close the door."
        kiosk.service.depart()
        departed = await _until(socket, lambda s: s["stop"] is None)
        assert departed["version"] > opened["version"]
        assert departed["window_end"] is None


async def test_websocket_survives_clients_that_leave(kiosk: Kiosk) -> None:
    """A page that closes its socket ends its stream; the next page gets the screen as usual."""
    async with serving(kiosk.app) as host:
        async with connect(f"ws://{host}/api/live", open_timeout=10) as socket:
            await socket.recv()
        kiosk.service.depart()
        async with connect(f"ws://{host}/api/live", open_timeout=10) as socket:
            assert json.loads(await socket.recv())["stop"] is None


async def _until(socket: Any, predicate: Any, limit: int = 50) -> dict[str, Any]:
    """The first screen from ``socket`` for which ``predicate`` holds (within ``limit`` messages)."""
    for _ in range(limit):
        screen: dict[str, Any] = json.loads(await socket.recv())
        if predicate(screen):
            return screen
    raise AssertionError(f"no matching screen in {limit} messages")
