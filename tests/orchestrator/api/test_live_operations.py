"""The live dispatch loop in the real app: parcels imported over the intake API are planned, a real VDA
5050 cart agent (simulated base) on a real Mosquitto loads them at the station, waits at the dorm's
stop in the window, a pickup reported by the cart's API is the core's ``ParcelPickedUp``, and what
nobody took comes back to the station. Plus the pieces: compartment numbering and directed loading,
lift states, the link grace before a robot is failed.

The campus is ``live_testkit.live_campus``: the app and the agent share one ``ScaledClock`` (240x,
starting at 07:10 campus time, 20 virtual minutes — 5 real seconds — before window w1 opens: the
parcels must be imported before it opens to be planned into it), so the whole trip takes a few real
seconds; tests wait on the store and the fleet picture, each check woken by the next state the fleet
master takes in.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from delivery_testkit import SAMPLE_CAMPUS
from live_testkit import CART_TOKEN, START, STATION_TOKEN, LiveCampus, live_campus

from interfaces.clock import VirtualClock
from interfaces.lift import LiftMode
from maps.io import load_map
from orchestrator.api.delivery import Delivery
from orchestrator.api.live_operations import (
    TOKENS_PER_DAY,
    LiveDispatch,
    _Run,
    assign_compartments,
    compartment_sizes,
)
from orchestrator.dispatch.campus import Compartments, Leg, LegKind, Size
from orchestrator.domain import ParcelState
from orchestrator.fleet.picture import Link
from orchestrator.operations.messages import (
    LegFinished,
    LiftClosed,
    LiftReopened,
    RobotFailed,
    RobotRecovered,
)
from orchestrator.operations.timebase import ServiceDay
from orchestrator.settings import (
    OperationsSettings,
    Settings,
)
from sim.mosquitto import MosquittoBroker

pytestmark = pytest.mark.integration


# --- the pieces ---------------------------------------------------------------------------------------


def test_compartments_are_numbered_from_one_smallest_size_first() -> None:
    sizes = compartment_sizes(Compartments(s=2, m=1, l=1))
    assert sizes == {1: Size.S, 2: Size.S, 3: Size.M, 4: Size.L}


def test_loading_gives_the_smallest_free_compartment_that_fits_largest_parcels_first() -> None:
    compartments = Compartments(s=2, m=1, l=1)
    parcels = [("a", Size.S), ("b", Size.M), ("c", Size.S), ("d", Size.S), ("e", Size.L)]
    got = assign_compartments(parcels, compartments, taken={1})
    # L first: 4; then M: 3; then the S parcels: 2 is the only S left, and nothing bigger is free
    assert got == {"e": 4, "b": 3, "a": 2}
    assert assign_compartments([("x", Size.L)], compartments, taken={4}) == {}


class _Live:
    """A stand-in for ``LiveOperations``: running, records what is submitted."""

    running = True

    def __init__(self) -> None:
        self.events: list[object] = []

    def submit(self, event: object) -> None:
        self.events.append(event)


def test_a_lift_closes_on_fire_offline_or_emergency_and_only_changes_reach_the_core() -> None:
    dispatch = LiveDispatch.__new__(LiveDispatch)
    dispatch.site = load_map(SAMPLE_CAMPUS)
    dispatch._closed_lifts = {}
    live = _Live()
    dispatch.live = live  # type: ignore[assignment]
    for mode in (LiftMode.AGV, LiftMode.FIRE, LiftMode.FIRE, LiftMode.OFFLINE, LiftMode.HUMAN, LiftMode.AGV):
        dispatch.lift_state("ADM-L1", mode)
    dispatch.lift_state("NO-SUCH-LIFT", LiftMode.FIRE)
    assert live.events == [LiftClosed("ADM-L1"), LiftReopened("ADM-L1")]


# --- the whole loop -----------------------------------------------------------------------------------


@pytest.fixture
async def campus(tmp_path: Path, mqtt_broker: MosquittoBroker) -> AsyncIterator[LiveCampus]:
    # the students of this test come within two virtual minutes of the cart's arrival
    async with live_campus(tmp_path, mqtt_broker, durations={"waitForPickup": 120.0}) as campus:
        yield campus


async def test_imported_parcels_are_loaded_taken_to_the_stop_picked_up_or_brought_back(
    campus: LiveCampus,
) -> None:
    master = campus.master
    await campus.until(
        lambda: master.view("cart_1").online and master.view("cart_1").last_node_id is not None
    )
    rows = [
        {"tracking_number": f"LV{i}", "recipient_name": "张三", "phone": phone, "dorm": "DORM1", "size": "S"}
        for i, phone in enumerate(("13812341234", "13987654321", "15011112222"))
    ]
    imported = await campus.client.post(
        "/v1/parcels:import", json={"parcels": rows}, headers={"Authorization": f"Bearer {STATION_TOKEN}"}
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == 3

    # the cart loads them at the station (compartments 1..3: S), drives to the stop, the window opens
    await campus.until(lambda: all(campus.parcel(f"LV{i}") is ParcelState.AT_STOP for i in range(3)))
    services = campus.app.state.services
    sync = await Delivery.from_services(services).codes_for("cart_1")
    entries = {e.tracking_number: e for e in sync.codes}
    assert sorted(e.compartment or "" for e in entries.values()) == ["1", "2", "3"]

    # a student types LV0's code on the cart (checked offline, reported as an event)
    taken = entries["LV0"]
    picked = await campus.client.post(
        "/v1/carts/cart_1/pickups",
        json={
            "event_id": uuid.uuid4().hex,
            "parcel": "LV0",
            "compartment": taken.compartment,
            "code_hash": taken.code_hash,
        },
        headers={"Authorization": f"Bearer {CART_TOKEN}"},
    )
    assert picked.status_code == 200, picked.text

    # nobody comes for the other two: the cart brings them back to the station
    await campus.until(
        lambda: (
            campus.parcel("LV1") is not ParcelState.AT_STOP
            and campus.parcel("LV2") is not ParcelState.AT_STOP
        )
    )
    assert campus.dispatch.live is not None
    await campus.dispatch.live.idle()
    ops = campus.dispatch.ops
    assert ops is not None
    assert ops.where["LV0"] == "picked_up" and campus.parcel("LV0") is ParcelState.PICKED_UP
    for tn in ("LV1", "LV2"):
        assert ops.where[tn] == "station"
        assert campus.parcel(tn) in (ParcelState.RETURNED, ParcelState.SORTED)
    kinds = {a.kind for a in campus.dispatch.alarms.recent()}
    assert not kinds & {"core_error", "port_failed", "history_failed"}, campus.dispatch.alarms.recent()


class _Executor:
    """A stand-in for the leg executor: records cancels."""

    def __init__(self) -> None:
        self.cancelled: list[tuple[str, int]] = []

    async def cancel(self, robot: str, token: int) -> None:
        self.cancelled.append((robot, token))


async def test_a_robot_is_failed_only_when_its_link_stays_down_and_recovers_when_it_is_back() -> None:
    """A broker restart (the link back within ``robot_failed_after_s``) changes nothing; a robot gone
    longer is ``RobotFailed`` (its running leg cancelled on the robot, its report no longer awaited),
    and ``RobotRecovered`` once it is back."""
    clock = VirtualClock(start=START)
    dispatch = LiveDispatch.__new__(LiveDispatch)
    dispatch.settings = Settings(operations=OperationsSettings(robot_failed_after_s=60, recovery_guess_s=900))
    dispatch.clock = clock
    dispatch.day = ServiceDay.of(START, "Asia/Shanghai")
    dispatch.executor = executor = _Executor()  # type: ignore[assignment]
    dispatch._down, dispatch._failed, dispatch._stopping = {}, set(), False
    serial = dispatch.day.date.toordinal()
    dispatch._runs = {serial * TOKENS_PER_DAY + 7: _Run("cart_1", 7, LegKind.DWELL, serial)}
    live = _Live()
    dispatch.live = live  # type: ignore[assignment]

    dispatch._link_down("cart_1", Link.CONNECTIONBROKEN)
    await clock.run_for(30)
    dispatch._link_up("cart_1")
    await clock.run_for(120)
    assert live.events == [] and executor.cancelled == []

    dispatch._link_down("cart_1", Link.STALE)
    await clock.run_for(61)
    [failed] = live.events
    assert isinstance(failed, RobotFailed) and failed.robot == "cart_1" and "stale" in failed.reason
    assert failed.recovered_s == pytest.approx(dispatch.day.seconds(START + 30 + 120 + 60) + 900)
    assert executor.cancelled == [("cart_1", serial * TOKENS_PER_DAY + 7)] and dispatch._runs == {}
    dispatch._link_down("cart_1", Link.OFFLINE)  # still failed: no second timer
    await clock.run_for(120)
    dispatch._link_up("cart_1")
    assert live.events[1:] == [RobotRecovered("cart_1")]


class _Starts:
    """A stand-in for the leg executor: records what each leg was started with."""

    def __init__(self) -> None:
        self.started: dict[int, dict[str, object]] = {}

    async def start(self, token: int, leg: Leg, **given: object) -> None:
        self.started[token] = given


def _ops_with(where: dict[str, str], sizes: dict[str, str]) -> SimpleNamespace:
    """The parts of the core ``start_leg`` reads: where parcels are, their records, the robots."""
    robots = {
        "c1": SimpleNamespace(base=SimpleNamespace(compartments=Compartments(s=30, m=15, l=5))),
        "r1": SimpleNamespace(base=SimpleNamespace(compartments=Compartments(s=4, m=2, l=1))),
    }
    records = {p: SimpleNamespace(compartment=None, size=SimpleNamespace(value=z)) for p, z in sizes.items()}
    return SimpleNamespace(
        where=where,
        records=records,
        robots=robots,
        setup=SimpleNamespace(station="station"),
        closed_lifts=set(),
    )


async def test_an_indoor_load_waits_for_the_carts_hand_off_report_and_reshelves_later_parcels() -> None:
    """The MEET takes 9 parcels into a robot with 7 compartments (2 on the mailroom shelf); the LOAD
    for a trip of 6 (one from the shelf) ends before the cart reports its HANDOFF: its report is held
    until then, and the parcels the trip does not take are put back on the shelf, so the shelf parcel
    gets a compartment of its own."""
    parcels = [f"p{i}" for i in range(1, 10)]
    ops = _ops_with({p: "c1" for p in parcels}, {p: "S" for p in parcels})
    dispatch = LiveDispatch.__new__(LiveDispatch)
    dispatch.day = ServiceDay.of(START, "Asia/Shanghai")
    dispatch.live = live = _Live()  # type: ignore[assignment]
    live.ops = ops  # type: ignore[attr-defined]
    dispatch.executor = executor = _Starts()  # type: ignore[assignment]
    dispatch.master = SimpleNamespace(view=lambda _robot: SimpleNamespace(last_node_id="n", position=None))  # type: ignore[assignment]
    dispatch._runs, dispatch._received, dispatch._meet_partner = {}, {}, {}
    dispatch._handed, dispatch._held = set(), []
    base = dispatch.day.date.toordinal() * TOKENS_PER_DAY

    meet = Leg("r1", LegKind.MEET, "mailroom", 0, 0, 60, parcels=tuple(parcels), partner="c1")
    await dispatch.start_leg(1, meet)
    assert executor.started[base + 1]["receive_into"] == [1, 2, 3, 4, 5, 6, 7, 1001, 1002]
    dispatch._reported(
        LegFinished(
            "r1",
            base + 1,
            slots={p: str(n) for p, n in zip(parcels, [1, 2, 3, 4, 5, 6, 7, 1001, 1002], strict=True)},
        )
    )

    trip = ("p1", "p2", "p3", "p4", "p5", "p8")
    await dispatch.start_leg(2, Leg("r1", LegKind.LOAD, "mailroom", 0, 60, 120, parcels=trip))
    dispatch._reported(LegFinished("r1", base + 2))
    assert [type(e).__name__ for e in live.events] == ["LegFinished"]  # only the MEET's so far

    ops.where.update({p: "mailroom:B" for p in parcels})
    dispatch._runs[base + 3] = _Run("c1", 3, LegKind.HANDOFF, base // TOKENS_PER_DAY)
    dispatch._reported(LegFinished("c1", base + 3, moved=tuple(parcels)))
    handoff, load = live.events[1:]
    assert handoff == LegFinished("c1", 3, moved=tuple(parcels))
    assert load.token == 2 and load.moved == trip
    assert load.slots == {"p1": "1", "p2": "2", "p3": "3", "p4": "4", "p5": "5", "p8": "6"}
