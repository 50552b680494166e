"""Live carts and simulated people (``sim.live.carts``, ``sim.live.people``): the real cart stack on a
simulated locker board (real pty pair), station staff filling it from the code sheet, students reached
through the SMS gateway the orchestrator's webhook provider posts to.

Everything runs on a ``ScaledClock`` (×50 or ×100) so a delivery window of a few virtual minutes takes
a few real seconds; tests wait on the people, the board or the cart service, each bounded by a
time-out, never on a sleep.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from agent_samples import MANUFACTURER, MAP, act, line_order
from api_testkit import make_settings
from cart_testkit import CART, CART_TOKEN, SAMPLE_CAMPUS, STOP, STOP_LABEL, WINDOW, until

from interfaces.clock import ScaledClock
from interfaces.mqtt import MqttClient, MqttConfig
from interfaces.pickup_codes import hash_code
from interfaces.vda5050 import ActionStatus, BlockingType, HeaderFactory, to_bytes
from orchestrator.api.delivery import Delivery
from orchestrator.api.services import Services
from orchestrator.app import create_app
from orchestrator.domain import ParcelEvent, ParcelState
from orchestrator.notify.messages import cart_at_stop, pickup_code_resend, window_ending_reminder
from orchestrator.notify.providers import SIGNATURE_HEADER, sign_body, webhook_body
from orchestrator.settings import CampusSettings, NotifySettings
from orchestrator.store.domain_records import ParcelIntake
from orchestrator.store.domain_repositories import ParcelRepository
from robots.agent.config import parse_config
from robots.cart.codes import CodeEntry, CodeSheet
from sim.live.carts import LiveCart, LiveCartSpec, compartment_sizes
from sim.live.people import (
    GATEWAY_PATH,
    People,
    PeopleSettings,
    Student,
    StudentOutcome,
    parse_pickup_sms,
    window_end_from,
)
from sim.live.serving import AppServer
from sim.mosquitto import MosquittoBroker

SECRET = "gateway-shared-secret"
PHONE = "13812345678"
CODE = "482913"
SERIAL = "cart1"
COMPARTMENTS = 12
WAIT = 15.0
"""Real seconds a test waits for a condition (each normally holds within a few seconds)."""


def free_port() -> int:
    """A loopback port free now (the orchestrator's, known before the cart that calls it starts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def minute_after(now: float, seconds: float) -> float:
    """The first whole minute at least ``seconds`` after ``now`` (an SMS prints only HH:MM)."""
    return math.ceil((now + seconds) / 60.0) * 60.0


def spec(tmp_path: Path, **changes: object) -> LiveCartSpec:
    """The test cart: 12 compartments, the sample stop's label, data in ``tmp_path/cart``."""
    base: dict[str, object] = {
        "cart": CART,
        "data_dir": tmp_path / "cart",
        "compartments": COMPARTMENTS,
        "stop_labels": {STOP: STOP_LABEL},
    }
    base.update(changes)
    return LiveCartSpec(**base)  # type: ignore[arg-type]


@asynccontextmanager
async def running(cart: LiveCart, people: People | None = None) -> AsyncIterator[LiveCart]:
    """The cart started and its board polled, then the people; both stopped at the end."""
    await cart.start()
    try:
        await cart.board_ok()
        if people is not None:
            await people.start()
        try:
            yield cart
        finally:
            if people is not None:
                await people.stop()
    finally:
        await cart.stop()


def sheet(now: float, expires_at: float, parcels: dict[str, int], code: str = CODE) -> CodeSheet:
    """A code sheet for the test cart at the sample stop: each parcel's compartment, all with ``code``
    (and ``code`` + the phone's tail) valid until ``expires_at``."""
    key = secrets.token_bytes(32)
    entries = tuple(
        CodeEntry(
            parcel=parcel,
            compartment=str(number),
            window=WINDOW,
            stop=STOP,
            code_hash=hash_code(key, CART, WINDOW, code),
            tail_hash=hash_code(key, CART, WINDOW, code, PHONE[-4:]),
            expires_at=expires_at,
        )
        for parcel, number in parcels.items()
    )
    return CodeSheet(CART, key, now, entries)


def signed_sms(body: bytes, secret: str = SECRET, key: str = "cart_at_stop/p1/c1") -> dict[str, str]:
    """The headers ``WebhookProvider`` sends with ``body``."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign_body(secret.encode(), body),
        "Idempotency-Key": key,
    }


def code_sms(code: str, window_end: float, key: str = "cart_at_stop/p1/c1") -> bytes:
    """The webhook body of the arrival SMS, exactly as the orchestrator makes it."""
    end = datetime.fromtimestamp(window_end, UTC)
    return webhook_body(cart_at_stop(PHONE, code, STOP_LABEL.zh, end, ref=key.split("/", 1)[1]))


async def wait_board(cart: LiveCart, predicate: Callable[[], bool]) -> None:
    await cart.board.wait_for(predicate, timeout=WAIT)


# --- pure parts --------------------------------------------------------------------------------------------


def test_compartment_sizes_small_first() -> None:
    """50 compartments: 1-30 S, 31-45 M, 46-50 L; other counts keep the shares."""
    sizes = compartment_sizes(50)
    assert [sizes[k] for k in (1, 30, 31, 45, 46, 50)] == ["S", "S", "M", "M", "L", "L"]
    assert list(compartment_sizes(10).values()) == ["S"] * 6 + ["M"] * 3 + ["L"]
    with pytest.raises(ValueError, match="at least one"):
        compartment_sizes(0)


def test_pickup_sms_is_read_from_the_orchestrators_texts() -> None:
    """The arrival and resend SMS give code, stop label and HH:MM; the reminder is no pickup SMS."""
    end = datetime(2027, 1, 15, 9, 30, tzinfo=UTC)  # 17:30 in China
    arrival = parse_pickup_sms(cart_at_stop(PHONE, CODE, STOP_LABEL.zh, end, ref="p1/c1").text)
    resend = parse_pickup_sms(pickup_code_resend(PHONE, CODE, STOP_LABEL.zh, end, ref="p1/c2").text)
    assert arrival == resend
    assert arrival is not None and (arrival.code, arrival.stop_label, arrival.until) == (
        CODE,
        STOP_LABEL.zh,
        "17:30",
    )
    assert parse_pickup_sms(window_ending_reminder(PHONE, STOP_LABEL.zh, end, ref="p1/c1").text) is None


def test_window_end_is_the_next_such_minute() -> None:
    """HH:MM means the next such minute in China time; within that minute it is now."""
    now = datetime(2027, 1, 15, 9, 0, tzinfo=UTC).timestamp()  # 17:00 China
    assert window_end_from("17:30", now) == now + 1800
    assert window_end_from("16:59", now) == now + 86_400 - 60
    assert window_end_from("17:00", now + 20) == now + 20


# --- the gateway -------------------------------------------------------------------------------------------


async def test_gateway_refuses_a_bad_signature_and_drops_repeats(tmp_path: Path) -> None:
    """A wrong signature is answered 401 and makes no student; a signed SMS makes one student, its
    repeat (same Idempotency-Key) is answered 200 but makes no second; a reminder makes none."""
    clock = ScaledClock(100)
    people = People([], clock, PeopleSettings(no_show_share=1.0), secret=SECRET)
    await people.start()
    try:
        body = code_sms(CODE, minute_after(clock.now(), 600))
        async with httpx.AsyncClient() as http:
            bad = await http.post(
                people.gateway_url, content=body, headers=signed_sms(body, "not-the-secret")
            )
            unsigned = await http.post(people.gateway_url, content=body)
            assert (bad.status_code, unsigned.status_code) == (401, 401)
            assert people.students.students == {} and people.students.messages == []
            first = await http.post(people.gateway_url, content=body, headers=signed_sms(body))
            again = await http.post(people.gateway_url, content=body, headers=signed_sms(body))
            end = datetime.fromtimestamp(minute_after(clock.now(), 600), UTC)
            reminder = webhook_body(window_ending_reminder(PHONE, STOP_LABEL.zh, end, ref="p1/c1"))
            other = await http.post(
                people.gateway_url, content=reminder, headers=signed_sms(reminder, key="window_ending/p1/c1")
            )
        assert (first.status_code, again.status_code, other.status_code) == (200, 200, 200)
        assert first.json()["student"] is True and again.json()["student"] is False
        assert list(people.students.students) == ["cart_at_stop/p1/c1"]
        assert people.students.duplicates == 1 and len(people.students.ignored) == 1
    finally:
        await people.stop()


# --- staff and students on an offline cart -----------------------------------------------------------------


async def test_staff_fill_a_loaded_compartment_once_and_empty_it_when_returned(tmp_path: Path) -> None:
    """A parcel on the code sheet is put into its compartment through staff mode (one lock pulse);
    the same sheet again puts nothing twice; once it leaves the sheet with the cart at the station,
    staff take it out."""
    clock = ScaledClock(50)
    cart = LiveCart(spec(tmp_path), clock)
    people = People([cart], clock, PeopleSettings(), secret=SECRET)
    async with running(cart, people):
        service = cart.need_service()
        now = clock.now()
        codes = sheet(now, now + 3600, {"P-7": 7})
        service.load_codes(codes)
        await wait_board(
            cart, lambda: cart.board.compartment(7).parcel == "P-7" and not cart.board.door_open(7)
        )
        assert cart.board.pulses(7) == 1
        service.load_codes(codes)
        await until(service, lambda view: view.version > 0)
        (staff,) = people.staff
        await staff.reconcile()
        assert cart.board.pulses(7) == 1 and staff.placed == {"P-7": 7}
        service.load_codes(sheet(now, now + 3600, {}))
        await wait_board(cart, lambda: not cart.board.occupied(7) and not cart.board.door_open(7))
        assert staff.returned == {"P-7"} and staff.placed == {}


async def _student_at(
    tmp_path: Path,
    settings: PeopleSettings,
    check: Callable[[LiveCart, Student], None],
    *,
    cart_late: bool = False,
) -> None:
    """One parcel in compartment 5 of an offline cart standing at the stop (``cart_late``: arriving
    only once the student waits there); its arrival SMS posted to the gateway as the provider would;
    ``check`` once the student's visit ended."""
    clock = ScaledClock(100)
    cart = LiveCart(spec(tmp_path), clock)
    people = People([cart], clock, settings, secret=SECRET)
    async with running(cart, people):
        service = cart.need_service()
        window_end = minute_after(clock.now(), 120)
        service.load_codes(sheet(clock.now(), window_end, {"P-5": 5}))
        await wait_board(cart, lambda: cart.board.occupied(5) and not cart.board.door_open(5))
        if not cart_late:
            service.arrive(STOP, WINDOW)
        body = code_sms(CODE, window_end)
        async with httpx.AsyncClient() as http:
            answer = await http.post(people.gateway_url, content=body, headers=signed_sms(body))
        assert answer.status_code == 200
        students = people.students
        if cart_late:
            await students.wait_for(
                lambda: any(s.at_stop_since is not None for s in students.students.values()), WAIT
            )
            service.arrive(STOP, WINDOW)
        await students.wait_for(
            lambda: any(s.outcome is not StudentOutcome.WAITING for s in students.students.values()),
            WAIT,
        )
        (student,) = students.students.values()
        check(cart, student)


async def test_a_student_who_forgot_the_code_types_a_wrong_one_then_the_right_one(tmp_path: Path) -> None:
    """The wrong code is refused; the screen then asks for the phone's tail with the right code, and
    the compartment opens: the student takes the parcel and shuts the door; the cart queues a pickup."""

    def check(cart: LiveCart, student: Student) -> None:
        assert student.outcome is StudentOutcome.PICKED_UP and student.parcel == "P-5"
        wrong, *right = student.typed
        assert wrong != CODE and right == [CODE, CODE]
        assert not cart.board.occupied(5) and not cart.board.door_open(5)

    await _student_at(tmp_path, PeopleSettings(seed=3, forget_share=1.0, no_show_share=0.0), check)


async def test_a_student_early_at_the_stop_waits_for_the_cart(tmp_path: Path) -> None:
    """A student at the stop before the cart waits there and types the code once it has arrived."""

    def check(cart: LiveCart, student: Student) -> None:
        assert student.outcome is StudentOutcome.PICKED_UP and student.typed == [CODE]
        assert not cart.board.occupied(5)

    await _student_at(tmp_path, PeopleSettings(forget_share=0.0, no_show_share=0.0), check, cart_late=True)


async def test_a_no_show_student_never_types(tmp_path: Path) -> None:
    """A student drawn as a no-show types nothing; the parcel stays in its compartment."""

    def check(cart: LiveCart, student: Student) -> None:
        assert student.outcome is StudentOutcome.NO_SHOW and student.typed == []
        assert cart.board.compartment(5).parcel == "P-5" and cart.board.pulses(5) == 1  # staff's only
        assert cart.need_service().guard.status(CART).locked_until is None

    await _student_at(tmp_path, PeopleSettings(no_show_share=1.0), check)


# --- the whole flow with the real orchestrator and Mosquitto ------------------------------------------------


def _load(services: Services, tracking_number: str) -> None:
    with services.sessions.begin() as session:
        repo = ParcelRepository(session, services.clock, services.personal)
        repo.import_rows([ParcelIntake(tracking_number, "S", "李四", PHONE, dorm="DORM1")])
        repo.transition(tracking_number, ParcelEvent.SORT, window=WINDOW, stop=STOP)


def _state(services: Services, tracking_number: str) -> ParcelState:
    with services.sessions.begin() as session:
        return ParcelRepository(session, services.clock, services.personal).get(tracking_number).state


@pytest.mark.integration
async def test_a_parcel_loaded_in_the_orchestrator_is_picked_up_by_its_student(
    tmp_path: Path, mqtt_broker: MosquittoBroker
) -> None:
    """Loaded for cart_1 in the orchestrator → its code syncs to the live cart → staff put it in
    compartment 7 → master control's dwell order makes the cart arrive (VDA 5050 over Mosquitto) → the
    orchestrator's outbox posts the SMS through the webhook provider to the gateway → the student types
    the code → compartment 7 opens, the parcel is taken → the orchestrator records it picked up and
    the cart's ``waitForPickup`` finishes."""
    clock = ScaledClock(50)
    agent = parse_config(
        {
            "manufacturer": MANUFACTURER,
            "serial_number": SERIAL,
            "map_id": MAP,
            "mqtt": {"host": mqtt_broker.host, "port": mqtt_broker.port, "keepalive": 5},
        }
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cart = LiveCart(spec(tmp_path, agent=agent, orchestrator_url=url, token=CART_TOKEN, sync_s=5.0), clock)
    people = People([cart], clock, PeopleSettings(seed=7, no_show_share=0.0, forget_share=0.0), secret=SECRET)
    async with running(cart, people):
        settings = make_settings(
            tmp_path,
            f"sqlite:///{tmp_path / 'orchestrator.db'}",
            campus=CampusSettings(map=SAMPLE_CAMPUS),
            security={"carts": {CART: CART_TOKEN}},
            notify=NotifySettings(provider="webhook", webhook_url=people.gateway_url, webhook_secret=SECRET),
        )
        app = create_app(settings, clock)
        orchestrator = AppServer(app, port=port, name="orchestrator")
        await orchestrator.start()
        try:
            services: Services = app.state.services
            _load(services, "TN-1")
            window_end = minute_after(clock.now(), 180)
            issued = await Delivery.from_services(services).load("TN-1", CART, "7", window_end=window_end)
            assert issued.code is not None
            board, service = cart.board, cart.need_service()
            await wait_board(cart, lambda: board.compartment(7).parcel == "TN-1" and not board.door_open(7))

            master = MqttClient(MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port, keepalive=5))
            await master.connect()
            try:
                headers = HeaderFactory(MANUFACTURER, SERIAL, clock=clock)
                dwell = act(
                    "dwell-7", "waitForPickup", BlockingType.SOFT,
                    compartment=7, timeoutS=window_end - clock.now(), stop=STOP, window=WINDOW,
                )  # fmt: skip
                order = line_order(headers, last=1, node_actions={1: [dwell]})
                await master.publish(
                    f"robopost/v2/{MANUFACTURER}/{SERIAL}/order", to_bytes(order), qos=1, wait=True
                )
                students = people.students
                await students.wait_for(
                    lambda: any(s.outcome is StudentOutcome.PICKED_UP for s in students.students.values()),
                    WAIT,
                )
            finally:
                await master.disconnect()
            (student,) = students.students.values()
            assert student.sms.code == issued.code.code and student.parcel == "TN-1" and student.cart == CART
            assert not board.occupied(7) and not board.door_open(7)
            queue = cart.queue
            assert queue is not None
            await until(
                service,
                lambda view: view.pending_events == 0 and any(e.kind == "pickup" for e in queue.events()),
                WAIT,
            )
            assert _state(services, "TN-1") is ParcelState.PICKED_UP
            assert cart.agent is not None
            vehicle = cart.agent.vehicle
            changed = asyncio.Event()
            vehicle.add_listener(changed.set)

            def finished() -> bool:
                changed.clear()
                return any(
                    a.action_id == "dwell-7" and a.action_status is ActionStatus.FINISHED
                    for a in vehicle.state_body()["action_states"]
                )

            async with asyncio.timeout(WAIT):
                while not finished():
                    await changed.wait()
            assert GATEWAY_PATH in people.gateway_url
        finally:
            await orchestrator.stop()
