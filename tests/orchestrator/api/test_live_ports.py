"""The store-side ports of the live runtime on the real app's services (SQLite, virtual clock): the
core's parcel events stored through the delivery flows (codes at load, SMS at the stop, messages
cancelled on return, the office robot's code), repeats skipped, disagreements refused with the parcel
named, ``DeliveryCodes`` at an office door and a cart stop, and the bounded alarm log.

Core-like events are made with the domain machine itself (``orchestrator.domain.parcel.transition``)
from the stored parcel, as the core continues a stored parcel's history (``ParcelsArrived.stored``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from campus_fixtures import build_small_site
from delivery_testkit import import_parcels, quiet_app
from notify_testkit import T0, inline
from sqlalchemy import func, select

from interfaces.clock import VirtualClock
from orchestrator.api.delivery import BlockingRunner, Delivery
from orchestrator.api.live_ports import AlarmLog, DeliveryCodes, HistoryMismatch, StoreHistory
from orchestrator.api.services import Services
from orchestrator.dispatch.campus import Leg, LegKind, Window
from orchestrator.dispatch.dispatcher import Dispatcher
from orchestrator.domain import DomainEvent, ParcelEvent, ParcelState
from orchestrator.domain import parcel as domain
from orchestrator.fleet.config import parse_fleet
from orchestrator.notify import LogProvider, OutboxStatus
from orchestrator.notify.outbox import Outbox
from orchestrator.operations import (
    LegArrived,
    LegFinished,
    LiveOperations,
    Operations,
    ParcelsArrived,
    Ports,
    ServiceDay,
)
from orchestrator.operations.setup import dispatch_parcels, live_setup
from orchestrator.store.domain_records import ParcelIntake
from orchestrator.store.domain_repositories import ParcelRepository, PickupCodeRepository
from orchestrator.store.domain_tables import PickupCodeRow
from orchestrator.store.notify_tables import OutboxRow

CART, ROBOT = "cart_1", "robot_7"
WINDOW, STOP, HANDOFF_STOP = "w-1600", "stop_dorm_1", "stop_adm"
WINDOW_END = T0 + 3600.0
PHONES = ("13812341234", "13900001111", "13700002222")
T = TypeVar("T")


@dataclass
class Env:
    """The app's services, a ``StoreHistory`` over them and the core's view of each parcel."""

    services: Services
    clock: VirtualClock
    history: StoreHistory
    delivery: Delivery
    core: dict[str, domain.Parcel] = field(default_factory=dict)

    def event(self, tn: str, kind: ParcelEvent, **data: str | bool) -> DomainEvent:
        """The core's next event of ``tn`` (its view moves on, like ``Operations._apply``)."""
        self.core[tn], ev = domain.transition(self.core[tn], kind, self.clock.now(), **data)
        return ev

    def stored(self, tn: str) -> domain.Parcel:
        with self.services.sessions.begin() as session:
            return ParcelRepository(session, self.clock, self.services.personal).get(tn).parcel

    def outbox_status(self, prefix: str, tn: str) -> list[OutboxStatus]:
        """Statuses of the messages of kind ``prefix`` about ``tn`` (by its live or last code)."""
        with self.services.sessions.begin() as session:
            pid = ParcelRepository(session, self.clock, self.services.personal).get(tn).id
            rows = session.scalars(
                select(OutboxRow).where(OutboxRow.dedupe_key.like(f"{prefix}/p{pid}/%"))
            ).all()
            keys = [r.dedupe_key for r in rows]
            outbox = Outbox(session, self.services.cipher, self.clock)
            return [outbox.get_by_key(k).status for k in keys]

    def codes(self, tn: str) -> int:
        with self.services.sessions.begin() as session:
            pid = ParcelRepository(session, self.clock, self.services.personal).get(tn).id
            count = session.scalar(select(func.count()).where(PickupCodeRow.parcel_id == pid))
        return int(count or 0)

    async def send_due(self) -> list[str]:
        """Send what is due now; the texts sent."""
        await self.services.outbox_worker.run_once()
        provider = self.services.provider
        assert isinstance(provider, LogProvider)
        return [m.text for m in provider.messages]


@asynccontextmanager
async def running(tmp_path: Path, start: float = T0, **options: Callable[[str], float]) -> AsyncIterator[Env]:
    async with quiet_app(f"sqlite:///{tmp_path / 'robopost.db'}", tmp_path, start) as (_, services, clock):
        # the store work in the app's thread (like the outbox worker's), or inline (right in the loop,
        # deterministic on the virtual clock) for the live runtime
        blocking: BlockingRunner = inline if "windows_end" in options else services.threads
        delivery = Delivery.from_services(services, rng=Counting(), blocking=blocking)
        windows_end = options.get("windows_end", {WINDOW: WINDOW_END}.__getitem__)
        history = StoreHistory(
            services.sessions, clock, services.personal, delivery, windows_end, blocking=blocking
        )
        yield Env(services, clock, history, delivery)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with running(tmp_path) as started:
        yield started


def intake(env: Env, *parcels: tuple[str, str], office: bool = False) -> None:
    """Import parcels ``(tracking number, phone)``; the core starts from their stored records."""
    with env.services.sessions.begin() as session:
        repo = ParcelRepository(session, env.clock, env.services.personal)
        import_parcels(repo, parcels, office=office)
        for tn, _ in parcels:
            env.core[tn] = repo.get(tn).parcel


class Counting(random.Random):
    """Codes in the order issued: 111111, 222222, ... (so a test can type them)."""

    def __init__(self) -> None:
        super().__init__(0)
        self.drawn = 0

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        self.drawn += 1
        return 111111 * self.drawn


async def test_window_parcels_get_codes_at_load_sms_at_the_stop_and_a_return_cancels(env: Env) -> None:
    """sort → load issues each code with its SMS held; arrive moves both parcels to the stop and
    releases the SMS; the pickup (typed on the cart) makes the core's pick_up a repeat; the return
    cancels the other parcel's reminder."""
    intake(env, ("SF1", PHONES[0]), ("SF2", PHONES[1]))
    await env.history.append(
        [
            env.event("SF1", ParcelEvent.SORT, window=WINDOW, stop=STOP, office=False),
            env.event("SF2", ParcelEvent.SORT, window=WINDOW, stop=STOP, office=False),
            env.event("SF1", ParcelEvent.LOAD, cart=CART, compartment="1"),
            env.event("SF2", ParcelEvent.LOAD, cart=CART, compartment="2"),
        ]
    )
    for tn in ("SF1", "SF2"):
        assert env.stored(tn).state is ParcelState.LOADED and env.stored(tn).version == 3
        assert env.codes(tn) == 1
        assert env.outbox_status("cart_at_stop", tn) == [OutboxStatus.HELD]
    assert await env.send_due() == []

    await env.clock.run_until(T0 + 600)
    await env.history.append([env.event("SF1", ParcelEvent.ARRIVE), env.event("SF2", ParcelEvent.ARRIVE)])
    assert [env.stored(tn).state for tn in ("SF1", "SF2")] == [ParcelState.AT_STOP] * 2
    sent = await env.send_due()
    assert len(sent) == 2

    opened = (await env.delivery.verify(CART, "111111")).opened
    assert opened is not None and opened.tracking_number == "SF1"
    await env.history.append(
        [
            env.event("SF1", ParcelEvent.PICK_UP),
            env.event("SF2", ParcelEvent.RETURN, reason="unclaimed"),
        ]
    )
    assert env.stored("SF1").state is ParcelState.PICKED_UP and env.stored("SF1").version == 5
    assert env.stored("SF2").state is ParcelState.RETURNED and env.stored("SF2").version == 5
    assert env.outbox_status("window_ending", "SF2") == [OutboxStatus.CANCELLED]
    with env.services.sessions.begin() as session:
        live = PickupCodeRepository(session, env.clock).live_for_parcel("SF1")
    assert live is None  # its code was used once, by the cart


async def test_a_load_staff_scanned_first_is_a_repeat(env: Env) -> None:
    """Staff scanned the load (``Delivery.load``) before the core's load came: it is skipped, so the
    parcel keeps its one code; the same append again changes nothing either."""
    intake(env, ("SF1", PHONES[0]))
    sort = env.event("SF1", ParcelEvent.SORT, window=WINDOW, stop=STOP, office=False)
    await env.history.append([sort])
    await env.delivery.load("SF1", CART, "4", window_end=WINDOW_END)
    load = env.event("SF1", ParcelEvent.LOAD, cart=CART, compartment="4")
    await env.history.append([sort, load])
    await env.history.append([sort, load])
    assert env.codes("SF1") == 1
    assert env.stored("SF1").version == 3 and env.stored("SF1").compartment == "4"


async def test_disagreements_name_the_parcel_and_the_versions(env: Env) -> None:
    """A core event where the store holds another one, or one that skips a version, is refused with
    the parcel and the versions named; the store is left as it was."""
    intake(env, ("SF1", PHONES[0]))
    await env.history.append([env.event("SF1", ParcelEvent.SORT, window=WINDOW, stop=STOP)])
    await env.delivery.load("SF1", CART, "4", window_end=WINDOW_END)  # the core does not know
    resort = env.event("SF1", ParcelEvent.SORT, window=WINDOW, stop="stop_dorm_2")
    with pytest.raises(HistoryMismatch, match=r"'SF1'.* event 3 is sort → sorted, the store's is load"):
        await env.history.append([resort])
    ahead = env.event("SF1", ParcelEvent.LOAD, cart=CART, compartment="1")
    ahead = domain.DomainEvent(**{**_fields(ahead), "sequence": 6})
    with pytest.raises(
        HistoryMismatch, match=r"'SF1'.* event 6, but the store is at version 3 \(expected 5\)"
    ):
        await env.history.append([ahead])
    assert env.stored("SF1").version == 3 and env.stored("SF1").state is ParcelState.LOADED


async def test_office_parcel_code_comes_with_the_robot_and_the_sms_at_the_door(env: Env) -> None:
    """sort → load (no cart code) → hand_off → load_robot (the robot's code, SMS and call held) →
    ``DeliveryCodes`` at the door releases the SMS → the code opens the robot, so the core's deliver
    is a repeat."""
    intake(env, ("OF1", PHONES[2]), office=True)
    await env.history.append(
        [
            env.event("OF1", ParcelEvent.SORT, window=WINDOW, stop=HANDOFF_STOP, office=True),
            env.event("OF1", ParcelEvent.LOAD, cart=CART, compartment="9"),
        ]
    )
    assert env.codes("OF1") == 0
    await env.clock.run_until(T0 + 900)
    await env.history.append(
        [
            env.event("OF1", ParcelEvent.HAND_OFF, place="adm_mailroom"),
            env.event("OF1", ParcelEvent.LOAD_ROBOT, robot=ROBOT, compartment="a"),
        ]
    )
    assert env.stored("OF1").state is ParcelState.IN_ROBOT and env.codes("OF1") == 1
    assert env.outbox_status("robot_at_door", "OF1") == [OutboxStatus.HELD]
    assert await env.send_due() == []

    codes = DeliveryCodes(env.delivery, indoor={ROBOT})
    await codes.release(ROBOT, "adm_201", ("OF1",), WINDOW, WINDOW_END)
    await codes.release(ROBOT, "adm_201", ("OF1",), WINDOW, WINDOW_END)  # again: nothing twice
    sent = await env.send_due()
    assert len(sent) == 1
    opened = (await env.delivery.verify(ROBOT, "111111")).opened
    assert opened is not None and opened.state is ParcelState.DELIVERED
    await env.history.append([env.event("OF1", ParcelEvent.DELIVER)])
    assert env.stored("OF1").version == 6
    assert env.outbox_status("office_call", "OF1") == [OutboxStatus.CANCELLED]


async def test_codes_at_a_cart_stop_release_each_sms_once(env: Env) -> None:
    """``DeliveryCodes`` at a stop: after the history's arrive it releases nothing more; on its own it
    moves the cart's parcels to the stop and releases their SMS."""
    intake(env, ("SF1", PHONES[0]), ("SF2", PHONES[1]))
    await env.history.append(
        [
            env.event("SF1", ParcelEvent.SORT, window=WINDOW, stop=STOP),
            env.event("SF2", ParcelEvent.SORT, window=WINDOW, stop="stop_dorm_2"),
            env.event("SF1", ParcelEvent.LOAD, cart=CART, compartment="1"),
            env.event("SF2", ParcelEvent.LOAD, cart=CART, compartment="2"),
            env.event("SF1", ParcelEvent.ARRIVE),
        ]
    )
    codes = DeliveryCodes(env.delivery, indoor={ROBOT})
    await codes.release(CART, STOP, ("SF1",), WINDOW, WINDOW_END)
    assert len(await env.send_due()) == 1
    await codes.release(CART, "stop_dorm_2", ("SF2",), WINDOW, WINDOW_END)
    assert env.stored("SF2").state is ParcelState.AT_STOP
    assert len(await env.send_due()) == 2
    await env.history.append([env.event("SF2", ParcelEvent.ARRIVE)])  # the store got there first
    assert len(await env.send_due()) == 2
    with pytest.raises(ValueError, match="window is unknown"):
        await codes.release(CART, STOP, ("SF1",), None, WINDOW_END)


async def test_the_alarm_log_keeps_the_last_alarms_with_their_time() -> None:
    clock = VirtualClock(start=T0)
    alarms = AlarmLog(clock, capacity=2)
    await alarms.raise_alarm("a", "first")
    await clock.run_until(T0 + 5)
    await alarms.raise_alarm("b", "second")
    await alarms.raise_alarm("c", "third")
    assert [(a.kind, a.at) for a in alarms.recent()] == [("c", T0 + 5), ("b", T0 + 5)]
    assert [a.text for a in alarms.recent(1)] == ["third"] and alarms.total == 3
    with pytest.raises(ValueError, match="capacity"):
        AlarmLog(clock, capacity=0)


# ---- through the live runtime and the real core --------------------------------------------------

HOUR = 3600.0
DAY = ServiceDay("Asia/Shanghai", dt.date(2026, 11, 27))
WINDOWS = (Window("w1", 7.5 * HOUR, 8.5 * HOUR), Window("w2", 12 * HOUR, 13.5 * HOUR))
LIVE_CART = "cart-01"


class DrivingLegs:
    """Plays the cart: arrives at ``arrive_s``, finishes at ``end_s``, moves what the leg plans."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.live: LiveOperations | None = None
        self.aboard: set[str] = set()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, token: int, leg: Leg) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(self._run(token, leg)))

    async def cancel(self, robot: str, token: int) -> None:
        raise AssertionError(f"no leg is cancelled here ({robot}, {token})")

    async def _run(self, token: int, leg: Leg) -> None:
        assert self.live is not None
        await self.clock.sleep(DAY.epoch(leg.arrive_s) - self.clock.now())
        self.live.submit(LegArrived(leg.robot, token))
        await self.clock.sleep(DAY.epoch(leg.end_s) - self.clock.now())
        moved: tuple[str, ...] = ()
        if leg.kind is LegKind.LOAD:
            moved = leg.parcels
            self.aboard |= set(moved)
        elif leg.kind is LegKind.RETURN:
            moved = tuple(sorted(self.aboard))
            self.aboard.clear()
        slots = {p: f"S{k:02d}" for k, p in enumerate(moved)}
        self.live.submit(LegFinished(leg.robot, token, moved, slots))


@dataclass
class LiveDay:
    """The real core on the small site over ``env``'s store, three dorm parcels imported at 06:30."""

    live: LiveOperations
    ops: Operations
    legs: DrivingLegs
    alarms: AlarmLog
    arrived: ParcelsArrived

    async def stop(self) -> None:
        await self.live.stop(drain=False)
        for task in self.legs.tasks:
            task.cancel()
        await asyncio.gather(*self.legs.tasks, return_exceptions=True)


def live_day(env: Env) -> LiveDay:
    with env.services.sessions.begin() as session:
        repo = ParcelRepository(session, env.clock, env.services.personal)
        repo.import_rows(
            [ParcelIntake(f"SF{i}", "S", "张三", PHONES[i], dorm="C", place="stop_c") for i in range(3)]
        )
        records = [repo.get(f"SF{i}") for i in range(3)]
    site = build_small_site()
    parcels, refused = dispatch_parcels(records, WINDOWS, DAY, places=site.places)
    assert not refused
    fleet = parse_fleet(
        {
            "orchestrator": {"username": "orchestrator", "password": "x"},
            "robots": [{"manufacturer": "robopost", "serial": LIVE_CART, "kind": "cart", "password": "p"}],
        }
    )
    ops = Operations(
        Dispatcher(site, iterations=50, seed=0), live_setup(site, fleet, WINDOWS, start_s=6 * HOUR)
    )
    legs, alarms = DrivingLegs(env.clock), AlarmLog(env.clock)
    codes = DeliveryCodes(env.delivery, indoor=())
    live = LiveOperations(ops, DAY, env.clock, Ports(legs, codes, alarms, env.history))
    legs.live = live
    live.start()
    arrived = ParcelsArrived(parcels, stored={r.tracking_number: r.parcel for r in records})
    return LiveDay(live, ops, legs, alarms, arrived)


async def test_a_window_trip_through_the_live_runtime_is_stored_with_codes_and_sms(tmp_path: Path) -> None:
    """The real core on the small site over the real store: parcels imported by intake are sorted,
    loaded (codes), arrive at the stop (SMS out) and, unclaimed, come back (reminders cancelled) and
    roll into w2; the store's versions follow the core's and no alarm is raised."""
    windows_end = {w.id: DAY.epoch(w.end_s) for w in WINDOWS}.__getitem__
    async with running(tmp_path, DAY.epoch(6.5 * HOUR), windows_end=windows_end) as env:
        day = live_day(env)
        live, ops, alarms = day.live, day.ops, day.alarms
        try:
            live.submit(day.arrived)
            await live.idle()
            assert [env.stored(f"SF{i}").state for i in range(3)] == [ParcelState.SORTED] * 3
            sent: list[str] = []
            seen: set[ParcelState] = set()
            while env.clock.now() < DAY.epoch(11 * HOUR):  # the outbox worker, once a minute
                await env.clock.run_for(60.0)
                await live.idle()
                sent = await env.send_due()
                seen |= {env.stored(f"SF{i}").state for i in range(3)}
            assert ParcelState.AT_STOP in seen and len(sent) == 3  # the SMS went out at the stop
            for i in range(3):
                tn = f"SF{i}"
                with env.services.sessions.begin() as session:
                    repo = ParcelRepository(session, env.clock, env.services.personal)
                    kinds = [e.kind for e in repo.events(tn)]
                assert kinds == ["receive", "sort", "load", "arrive", "return", "roll"], kinds
                assert env.stored(tn).version == ops.records[tn].version
                assert env.stored(tn).window == "w2" and env.codes(tn) == 1
                assert env.outbox_status("window_ending", tn) == [OutboxStatus.CANCELLED]
            assert alarms.recent() == []
        finally:
            await day.stop()


async def test_a_load_the_store_refuses_holds_the_trip_and_raises_history_failed(tmp_path: Path) -> None:
    """The store cannot take the core's loads (no end known for w1, so no code could be issued): the
    runtime holds the cart's next legs, the alarm log shows ``history_failed`` naming the parcel and
    the window, and the parcels stay sorted in the store."""
    windows_end = {"w2": DAY.epoch(WINDOWS[1].end_s)}.__getitem__
    async with running(tmp_path, DAY.epoch(6.5 * HOUR), windows_end=windows_end) as env:
        day = live_day(env)
        try:
            day.live.submit(day.arrived)
            await env.clock.run_until(DAY.epoch(9 * HOUR))
            await day.live.idle()
            failed = [a for a in day.alarms.recent() if a.kind == "history_failed"]
            assert failed and "parcel 'SF" in failed[-1].text
            assert "window 'w1' is not a window of the day" in failed[-1].text
            assert "command(s) wait" in failed[-1].text
            assert len(day.legs.tasks) == 1  # the LOAD ran; the DWELL waits for the history
            assert [env.stored(f"SF{i}").state for i in range(3)] == [ParcelState.SORTED] * 3
        finally:
            await day.stop()


def _fields(event: DomainEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in DomainEvent.__dataclass_fields__}
