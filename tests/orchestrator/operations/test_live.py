"""The live runtime of the operations core on a virtual clock, with fake ports recording calls.

Two kinds of test: the real core (``Operations`` over the real ``Dispatcher``, stopped by iteration
count) with a fake leg port that plays the robots (arrive at ``arrive_s``, finish at ``end_s``, move
what the leg plans) — on the small hand-made site with one cart, and on the sample campus with a cart
and an indoor robot for a hand-off; and a scripted stand-in core for the runtime's own rules (timers,
failures, history first, stop). The fake ports assert that what a command acts on is already stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from campus_fixtures import build_small_site

from interfaces.clock import VirtualClock
from maps.io import load_map
from maps.model import Site
from orchestrator.dispatch.campus import Leg, LegKind, Parcel, Size, Window
from orchestrator.dispatch.dispatcher import Dispatcher
from orchestrator.domain.events import DomainEvent, EntityKind
from orchestrator.domain.parcel import Destination, receive_parcel
from orchestrator.fleet.config import parse_fleet
from orchestrator.operations import (
    Alarm,
    Command,
    Event,
    LegArrived,
    LegFinished,
    LiftClosed,
    Operations,
    OperationsError,
    ParcelPickedUp,
    ParcelsArrived,
    ReleaseCodes,
    SetTimer,
    TimerFired,
)
from orchestrator.operations.live import HISTORY_RETRY_S, LiveOperations
from orchestrator.operations.ports import Ports
from orchestrator.operations.setup import dispatch_parcels, live_setup
from orchestrator.operations.timebase import ServiceDay
from orchestrator.store.domain_records import MaskedContact, ParcelRecord

CAMPUS = Path(__file__).resolve().parents[3] / "maps" / "campuses" / "neijiang.yaml"
HOUR = 3600.0
DAY = ServiceDay("Asia/Shanghai", dt.date(2026, 11, 27))
CART = "cart-01"
WINDOWS = (Window("w1", 7.5 * HOUR, 8.5 * HOUR), Window("w2", 12 * HOUR, 13.5 * HOUR))


# ---- fake ports ---------------------------------------------------------------------------------


@dataclass
class World:
    """What the fakes share: the clock, the runtime once made, every call with its core time."""

    clock: VirtualClock
    live: LiveOperations | None = None
    calls: list[tuple[float, str, tuple[Any, ...]]] = field(default_factory=list)
    stored: list[DomainEvent] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def record(self, name: str, *args: Any) -> None:
        self.calls.append((DAY.seconds(self.clock.now()), name, args))

    def of(self, name: str) -> list[tuple[float, tuple[Any, ...]]]:
        return [(t, args) for t, n, args in self.calls if n == name]

    def stored_kinds(self, entity_id: str) -> list[str]:
        return [e.kind for e in self.stored if e.entity_id == entity_id]

    def submit(self, event: Event) -> None:
        assert self.live is not None
        self.live.submit(event)


class FakeLegs:
    """Records starts and, with ``drive``, plays the robot: arrives at ``arrive_s``, finishes at ``end_s``."""

    def __init__(self, world: World, *, drive: bool = True) -> None:
        self.world = world
        self.drive = drive
        self.aboard: dict[str, set[str]] = {}  # robot -> parcels on board

    async def start(self, token: int, leg: Leg) -> None:
        self.world.record("legs.start", token, leg)
        # stored before acted on: every parcel of the leg already has its sort event in the store
        for pid in leg.parcels:
            assert "sort" in self.world.stored_kinds(pid) or "roll" in self.world.stored_kinds(pid)
        if self.drive:
            self.world.tasks.append(asyncio.get_running_loop().create_task(self._run(token, leg)))

    async def cancel(self, robot: str, token: int) -> None:
        self.world.record("legs.cancel", robot, token)

    async def _run(self, token: int, leg: Leg) -> None:
        clock = self.world.clock
        await clock.sleep(DAY.epoch(leg.arrive_s) - clock.now())
        self.world.submit(LegArrived(leg.robot, token))
        await clock.sleep(DAY.epoch(leg.end_s) - clock.now())
        aboard = self.aboard.setdefault(leg.robot, set())
        moved: tuple[str, ...] = ()
        slots: dict[str, str] = {}
        if leg.kind is LegKind.LOAD:
            moved = leg.parcels
            slots = {p: f"S{k:02d}" for k, p in enumerate(moved)}
            aboard |= set(moved)
        elif leg.kind in (LegKind.HANDOFF, LegKind.DELIVER):
            moved = tuple(p for p in leg.parcels if p in aboard)
            aboard -= set(moved)
        elif leg.kind is LegKind.RETURN:
            moved = tuple(sorted(aboard))
            aboard.clear()
        self.world.submit(LegFinished(leg.robot, token, moved, slots))


class FakeCodes:
    """Records releases; the recipient of the first parcel picks it up at once (unless ``fail``)."""

    def __init__(self, world: World, legs: FakeLegs, *, fail: bool = False) -> None:
        self.world = world
        self.legs = legs
        self.fail = fail

    async def release(
        self, robot: str, place: str, parcels: tuple[str, ...], window: str | None, until_epoch: float
    ) -> None:
        self.world.record("codes.release", robot, place, parcels, window, until_epoch)
        for pid in parcels:  # a dorm parcel's arrival at the stop is stored before its code goes out
            assert "arrive" in self.world.stored_kinds(pid) or "load_robot" in self.world.stored_kinds(pid)
        if self.fail:
            raise ConnectionError("SMS gateway unreachable")
        if robot.startswith("cart"):  # at a stop; at an office door the DELIVER hands it over
            self.legs.aboard[robot].discard(parcels[0])
            self.world.submit(ParcelPickedUp(parcels[0], robot))


class FakeAlarms:
    def __init__(self, world: World, *, fail: bool = False) -> None:
        self.world = world
        self.fail = fail

    async def raise_alarm(self, kind: str, text: str) -> None:
        self.world.record("alarm", kind, text)
        if self.fail:
            raise RuntimeError("console down")


class FakeHistory:
    """Stores events; the first ``failures`` appends raise."""

    def __init__(self, world: World, *, failures: int = 0) -> None:
        self.world = world
        self.failures = failures

    async def append(self, events: Sequence[DomainEvent]) -> None:
        self.world.record("history", tuple(events))
        if self.failures > 0:
            self.failures -= 1
            raise OSError("database is locked")
        self.world.stored.extend(events)


def ports(world: World, **fail: Any) -> Ports:
    legs = FakeLegs(world, drive=fail.get("drive", True))
    return Ports(
        legs=legs,
        codes=FakeCodes(world, legs, fail=fail.get("codes", False)),
        alarms=FakeAlarms(world, fail=fail.get("alarms", False)),
        history=FakeHistory(world, failures=fail.get("history", 0)),
    )


async def shut(live: LiveOperations, world: World) -> None:
    await live.stop(drain=False)
    for task in world.tasks:
        task.cancel()
    await asyncio.gather(*world.tasks, return_exceptions=True)


# ---- the real core on the small site ------------------------------------------------------------


@pytest.fixture(scope="module")
def site() -> Site:
    return build_small_site()


def real_ops(site: Site) -> Operations:
    fleet = parse_fleet(
        {
            "orchestrator": {"username": "orchestrator", "password": "x"},
            "robots": [{"manufacturer": "robopost", "serial": CART, "kind": "cart", "password": "p"}],
        }
    )
    setup = live_setup(site, fleet, WINDOWS, start_s=6 * HOUR)
    return Operations(Dispatcher(site, iterations=50, seed=0), setup)


def stored(tn: str) -> ParcelRecord:
    """A parcel the station imported at 06:30, as the store gives it back."""
    parcel, _ = receive_parcel(tn, "S", Destination(dorm="C", place="stop_c"), DAY.epoch(6.5 * HOUR))
    at = dt.datetime.fromtimestamp(parcel.received_at, dt.UTC)
    return ParcelRecord(1, parcel, MaskedContact("", ""), at, at, None, None)


def arrived(site: Site) -> tuple[Parcel, ...]:
    parcels, refused = dispatch_parcels(
        [stored(f"SF{i}") for i in range(3)], WINDOWS, DAY, places=site.places
    )
    assert not refused
    return parcels


PARCELS = arrived(build_small_site())
PARCELS_IDS = tuple(p.id for p in PARCELS)


async def morning(site: Site, **fail: Any) -> tuple[LiveOperations, World, VirtualClock]:
    clock = VirtualClock(DAY.epoch(6 * HOUR))
    world = World(clock)
    live = LiveOperations(real_ops(site), DAY, clock, ports(world, **fail))
    world.live = live
    live.start()
    await clock.run_until(DAY.epoch(6.5 * HOUR))
    live.submit(ParcelsArrived(PARCELS))
    await live.idle()
    return live, world, clock


def test_stored_parcels_become_the_cores_parcels() -> None:
    """The store's parcels as the core takes them: both windows, due at the last window's end."""
    assert PARCELS[0] == Parcel("SF0", Size.S, "stop_c", ("w1", "w2"), 13.5 * HOUR, 6.5 * HOUR)


async def test_a_window_trip_runs_in_virtual_time(site: Site) -> None:
    """Parcels in → planned; the LOAD starts at its release time, the DWELL's arrival releases the
    codes with the window, a pickup and the RETURN follow; the window timer re-plans the rest into w2."""
    live, world, clock = await morning(site)
    try:
        (stored,) = [args[0] for _, args in world.of("history")]
        assert {(e.entity_id, e.kind) for e in stored} >= {("SF0", "receive"), ("SF0", "sort")}
        assert all(e.at == DAY.epoch(6.5 * HOUR) for e in stored)  # epoch seconds in the store
        timers = live.timers()
        assert timers["window:w1"] == 8.5 * HOUR + live.ops.setup.replan_after_window_s
        assert not world.of("legs.start")

        await clock.run_until(DAY.epoch(10 * HOUR))
        await live.idle()
        started = [(t, args[1]) for t, args in world.of("legs.start")]
        assert [leg.kind for _, leg in started] == [LegKind.LOAD, LegKind.DWELL, LegKind.RETURN]
        (t_load, load), (t_dwell, dwell), (t_return, _) = started
        assert t_load == pytest.approx(load.start_s - live.ops.setup.release_lead_s)  # at the station
        assert t_dwell == pytest.approx(load.end_s) and t_return == pytest.approx(dwell.end_s)
        ((t_codes, codes),) = world.of("codes.release")
        assert codes == (CART, "stop_c", PARCELS_IDS, "w1", DAY.epoch(dwell.end_s))
        assert t_codes == pytest.approx(dwell.arrive_s)
        ops = live.ops
        assert ops.where == {"SF0": "picked_up", "SF1": "station", "SF2": "station"}
        assert ops.plans[-1][0] == pytest.approx(timers["window:w1"])  # the window timer re-planned
        assert {ops.records[p].window for p in ("SF1", "SF2")} == {"w2"}
        assert world.stored_kinds("SF1")[-2:] == ["return", "roll"]
        assert not world.of("alarm")

        await clock.run_until(DAY.epoch(14 * HOUR))
        await live.idle()
        second = [args[1] for _, args in world.of("legs.start")][3]
        assert (second.kind, second.window, set(second.parcels)) == (LegKind.LOAD, "w2", {"SF1", "SF2"})
    finally:
        await shut(live, world)


async def test_a_failing_port_becomes_an_alarm_and_the_day_goes_on(site: Site) -> None:
    """The SMS gateway fails at the stop: an alarm says so; the cart still finishes its trip."""
    live, world, clock = await morning(site, codes=True)
    try:
        await clock.run_until(DAY.epoch(8 * HOUR))
        await live.idle()
        ((_, (kind, text)),) = world.of("alarm")
        assert kind == "port_failed" and "codes.release(cart-01, stop_c)" in text and "SMS gateway" in text
        assert [args[1].kind for _, args in world.of("legs.start")][-1] is LegKind.RETURN
        assert set(live.ops.where.values()) == {"station"}  # nobody got a code: all came back
        assert live.port_failures == 1 and live.running
    finally:
        await shut(live, world)


async def test_an_office_delivery_goes_through_the_hand_off() -> None:
    """Neijiang, a cart and an indoor robot of ADM: the cart hands two office parcels over at the ADM
    stop while the robot meets it in the mailroom, then loads and delivers them (codes at the doors
    with the parcels' window); the dorm parcel is picked up at its stop."""
    site = load_map(CAMPUS)
    fleet = parse_fleet(
        {
            "orchestrator": {"username": "orchestrator", "password": "x"},
            "robots": [
                {"manufacturer": "robopost", "serial": CART, "kind": "cart", "password": "p"},
                {
                    "manufacturer": "robopost",
                    "serial": "adm-01",
                    "kind": "indoor",
                    "building": "ADM",
                    "password": "p",
                },
            ],
        }
    )
    setup = live_setup(site, fleet, WINDOWS, start_s=6 * HOUR)
    clock = VirtualClock(DAY.epoch(6 * HOUR))
    world = World(clock)
    live = LiveOperations(
        Operations(Dispatcher(site, iterations=50, seed=0), setup), DAY, clock, ports(world)
    )
    world.live = live
    live.start()
    try:
        await clock.run_until(DAY.epoch(6.5 * HOUR))
        received = 6.5 * HOUR
        live.submit(
            ParcelsArrived(
                (
                    Parcel("SF0", Size.S, "stop_dorm_1", ("w1", "w2"), 13.5 * HOUR, received),
                    Parcel("SF1", Size.S, "adm_reception", ("w1", "w2"), 13.5 * HOUR, received),
                    Parcel("SF2", Size.M, "adm_102", ("w1", "w2"), 13.5 * HOUR, received),
                )
            )
        )
        await clock.run_until(DAY.epoch(10 * HOUR))
        await live.idle()
        assert live.ops.where == {"SF0": "picked_up", "SF1": "delivered", "SF2": "delivered"}
        kinds = {(args[1].robot, args[1].kind) for _, args in world.of("legs.start")}
        assert {(CART, LegKind.HANDOFF), ("adm-01", LegKind.MEET), ("adm-01", LegKind.DELIVER)} <= kinds
        codes = sorted((args[0], args[1], args[2], args[3]) for _, args in world.of("codes.release"))
        assert codes == [
            ("adm-01", "adm_102", ("SF2",), "w1"),
            ("adm-01", "adm_reception", ("SF1",), "w1"),
            (CART, "stop_dorm_1", ("SF0",), "w1"),
        ]
        assert world.stored_kinds("SF1") == [
            "receive", "sort", "load", "hand_off", "load_robot", "deliver",
        ]  # fmt: skip
        assert not world.of("alarm")
    finally:
        await shut(live, world)


async def test_stop_cancels_the_timers(site: Site) -> None:
    """After stop no timer fires, no leg starts and submit is refused."""
    live, world, clock = await morning(site, drive=False)
    assert live.timers() and clock.pending >= 3
    await live.stop()
    assert live.timers() == {} and clock.pending == 0
    handled = live.handled
    await clock.run_until(DAY.epoch(12 * HOUR))
    assert live.handled == handled and not world.of("legs.start")
    with pytest.raises(RuntimeError, match="stopped"):
        live.submit(TimerFired("release:cart-01"))


# ---- the runtime's rules over a scripted core ----------------------------------------------------


@dataclass
class ScriptedCore:
    """Stands in for ``Operations``: answers scripted commands and history, records (event, now)."""

    script: dict[Event, list[Command]] = field(default_factory=dict)
    events: dict[Event, list[DomainEvent]] = field(default_factory=dict)
    refuse: set[Event] = field(default_factory=set)
    calls: list[tuple[Event, float]] = field(default_factory=list)
    history: list[DomainEvent] = field(default_factory=list)
    robots: dict[str, Any] = field(default_factory=dict)
    legs: dict[int, Leg] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)

    def on_event(self, event: Event, now: float) -> list[Command]:
        self.calls.append((event, now))
        self.history.extend(self.events.get(event, []))
        if event in self.refuse:
            raise OperationsError(f"robot r reports leg 9, which it was never given ({event})")
        return list(self.script.get(event, []))


def scripted(core: ScriptedCore, **fail: Any) -> tuple[LiveOperations, World, VirtualClock]:
    clock = VirtualClock(DAY.epoch(0.0))
    world = World(clock)
    live = LiveOperations(cast(Operations, core), DAY, clock, ports(world, **fail))
    world.live = live
    live.start()
    return live, world, clock


A, B, C = LiftClosed("a"), LiftClosed("b"), LiftClosed("c")


def parcel_event(at: float) -> DomainEvent:
    return DomainEvent(EntityKind.PARCEL, "SF1", "arrive", "loaded", "at_stop", at, 4)


async def test_a_newer_timer_replaces_the_older_and_fires_at_its_time() -> None:
    core = ScriptedCore(script={A: [SetTimer(100.0, "k")], B: [SetTimer(250.0, "k")]})
    live, world, clock = scripted(core)
    live.submit(A)
    await live.idle()
    await clock.run_until(DAY.epoch(50.0))
    live.submit(B)
    await live.idle()
    assert live.timers() == {"k": 250.0} and clock.pending == 1  # the older one is cancelled
    await clock.run_until(DAY.epoch(400.0))
    await live.idle()
    assert core.calls == [(A, 0.0), (B, 50.0), (TimerFired("k"), 250.0)]
    assert live.timers() == {}
    await shut(live, world)


async def test_a_timer_is_never_handled_before_it_is_due() -> None:
    """The float round trip through epoch seconds may land a hair early: the core still sees ``at``;
    a timer already due fires at once."""
    at = 30000.123456789
    core = ScriptedCore(script={A: [SetTimer(at, "k"), SetTimer(-5.0, "past")]})
    live, world, clock = scripted(core)
    live.submit(A)
    await clock.run_until(DAY.epoch(0.0))
    await live.idle()
    assert core.calls[1] == (TimerFired("past"), 0.0)
    await clock.run_until(DAY.epoch(at))
    await live.idle()
    assert core.calls[2][0] == TimerFired("k") and core.calls[2][1] >= at
    await shut(live, world)


async def test_history_is_stored_before_the_commands_and_in_epoch_seconds() -> None:
    core = ScriptedCore(
        script={A: [ReleaseCodes("r", "stop", ("SF1",), 120.0), Alarm("x", "a sentence")]},
        events={A: [parcel_event(60.0)]},
    )
    live, world, clock = scripted(core)
    await clock.run_until(DAY.epoch(60.0))
    live.submit(A)
    await live.idle()
    assert [name for _, name, _ in world.calls] == ["history", "codes.release", "alarm"]
    (stored,) = world.stored
    assert stored.at == DAY.epoch(60.0) and stored.entity_id == "SF1"
    _, codes = world.of("codes.release")[0]
    assert codes == ("r", "stop", ("SF1",), None, DAY.epoch(120.0))
    await shut(live, world)


async def test_commands_wait_while_the_history_cannot_be_stored() -> None:
    """A failed append holds the event's commands back, raises an alarm, and is retried later."""
    core = ScriptedCore(
        script={A: [ReleaseCodes("r", "stop", ("SF1",), 120.0)]}, events={A: [parcel_event(0.0)]}
    )
    live, world, clock = scripted(core, history=1)
    live.submit(A)
    await live.idle()
    assert not world.of("codes.release") and not world.stored
    ((_, (kind, text)),) = world.of("alarm")
    assert kind == "history_failed" and "1 command(s) wait" in text
    await clock.run_until(DAY.epoch(HISTORY_RETRY_S))
    await live.idle()
    assert len(world.stored) == 1
    assert [name for _, name, _ in world.calls] == ["history", "alarm", "history", "codes.release"]
    await shut(live, world)


async def test_a_core_error_or_a_broken_alarm_port_never_stops_the_loop() -> None:
    """The core refusing a report and the alarm port failing are logged; the next events go on."""
    core = ScriptedCore(script={B: [Alarm("plan_kept", "kept")]}, refuse={A}, events={A: [parcel_event(0.0)]})
    live, world, _ = scripted(core, alarms=True)
    live.submit(A)
    live.submit(B)
    live.submit(C)
    await live.idle()
    assert [e for e, _ in core.calls] == [A, B, C]
    assert [args[0] for _, args in world.of("alarm")] == ["core_error", "plan_kept"]
    assert "never given" in world.of("alarm")[0][1][1]
    assert live.port_failures == 2 and live.running
    assert [e.entity_id for e in world.stored] == ["SF1"]  # changed before it raised: still stored
    await shut(live, world)


@pytest.mark.parametrize("drain", [True, False])
async def test_stop_drains_or_drops_the_queue(drain: bool) -> None:
    core = ScriptedCore(script={A: [SetTimer(10.0, "late")]})
    live, world, clock = scripted(core)
    for event in (A, B, C):
        live.submit(event)
    await live.stop(drain=drain)
    assert [e for e, _ in core.calls] == ([A, B, C] if drain else [])
    assert live.timers() == {} and clock.pending == 0  # a timer set while draining is not started
    await shut(live, world)


async def test_the_core_can_think_in_a_worker_thread() -> None:
    """``offload=True``: on_event runs off the loop, still one at a time and in order."""
    core = ScriptedCore(script={A: [Alarm("x", "from the thread")]})
    clock = VirtualClock(DAY.epoch(0.0))
    world = World(clock)
    live = LiveOperations(cast(Operations, core), DAY, clock, ports(world), offload=True)
    world.live = live
    live.start()
    for event in (A, B, C):
        live.submit(event)
    await live.idle()
    assert [e for e, _ in core.calls] == [A, B, C]
    assert world.of("alarm") == [(0.0, ("x", "from the thread"))]
    await shut(live, world)
