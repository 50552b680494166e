"""The safety layer in the agent (``robots.agent.safety``) on a SimDriver in virtual time: remote stops,
releases, teleop with its dead man, mode handover, orders refused, state and errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from agent_samples import MAP, act, instant, line_order, master_headers, run_until

from interfaces.clock import VirtualClock
from interfaces.mqtt import Message
from interfaces.vda5050 import BlockingType, EStop, HeaderFactory, OperatingMode, State
from robots.agent.driver import Pose
from robots.agent.safety import AcknowledgeCallback, AgentSafety, SafetySettings, SpeedZone, party_of
from robots.agent.sim_driver import SimDriver, SimDriverConfig
from robots.agent.vehicle import Vehicle, VehicleSettings
from robots.safety import SYSTEM, Mode, PartyKind, Role, SafetyLevel, Source

PERIOD = 0.05
N = BlockingType.NONE
H = BlockingType.HARD


@dataclass
class Rig:
    clock: VirtualClock
    driver: SimDriver
    vehicle: Vehicle
    safety: AgentSafety
    headers: HeaderFactory
    seq: int = 0

    async def send(self, action_id: str, action_type: str, blocking: BlockingType = N, **params: Any) -> str:
        """One instant action; returns its status once handled, with its result description."""
        await self.vehicle.receive_instant_actions(
            instant(self.headers, act(action_id, action_type, blocking, **params))
        )
        await self.clock.settle()
        return self.vehicle.instant[action_id].status.value

    def result(self, action_id: str) -> str:
        return self.vehicle.instant[action_id].result or ""

    def teleop(self, vx: float, omega: float = 0.0, *, operator: str = "alice") -> None:
        """One teleop message as it arrives from MQTT."""
        self.seq += 1
        payload = {
            "seq": self.seq,
            "vx": vx,
            "omega": omega,
            "sentAt": self.clock.now(),
            "operator": operator,
        }
        self.safety.on_teleop(Message("uagv/v2/acme/r1/teleop", json.dumps(payload).encode()))

    def state(self) -> State:
        return self.headers.make(State, **self.vehicle.state_body())

    async def semiautomatic(self, operator: str = "alice") -> None:
        """Hand the robot over to remote driving by ``operator`` (request, then confirmation)."""
        assert (
            await self.send("m1", "setOperatingMode", H, mode="SEMIAUTOMATIC", operator=operator)
            == "FINISHED"
        )
        assert (
            await self.send("m2", "confirmOperatingMode", H, operator=operator, role="operator") == "FINISHED"
        )
        assert self.safety.modes.mode is Mode.SEMIAUTOMATIC


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A vehicle with its safety layer at (0, 0), 1 m/s, on a virtual clock; control period 50 ms."""
    clock = VirtualClock(1_700_000_000.0)
    driver = SimDriver(clock, SimDriverConfig(speed=1.0, turn_rate=20.0), start=Pose(0, 0, 0, MAP))
    vehicle = Vehicle(driver, clock, VehicleSettings(map_id=MAP))
    safety = AgentSafety(vehicle, clock, SafetySettings(period=PERIOD))
    await vehicle.start()
    safety.start()
    yield Rig(clock, driver, vehicle, safety, master_headers(clock))
    await safety.stop()
    await vehicle.stop()


async def test_simulated_robot_without_sensors_is_not_stuck(rig: Rig) -> None:
    """Absent layers are fed clear readings: the supervisor says NORMAL, no errors, eStop NONE; an order
    runs to its end."""
    await rig.clock.run_for(1.0)
    assert rig.safety.last is not None and rig.safety.last.decision.level is SafetyLevel.NORMAL
    state = rig.state()
    assert state.safety_state.e_stop is EStop.NONE and state.errors == []
    assert state.operating_mode is OperatingMode.AUTOMATIC
    await rig.vehicle.receive_order(line_order(rig.headers, last=2))
    await run_until(rig.clock, lambda: not rig.vehicle.busy)
    assert rig.vehicle.last_node_id == "n2"


async def test_safety_stop_zeroes_velocity_and_release_needs_an_operator(rig: Rig) -> None:
    """safetyStop mid-drive: FINISHED with zero velocity already commanded, the drive stops, eStop REMOTE
    with an operatorStop error; a viewer's release FAILS; an operator's release lets the order finish."""
    await rig.vehicle.receive_order(line_order(rig.headers, last=2, spacing=5.0))
    await run_until(rig.clock, lambda: rig.driver.readout().vx > 0.5)
    status = await rig.send("s1", "safetyStop", kind="operator", operator="bob", role="operator")
    assert status == "FINISHED"
    assert rig.safety.sent == (0.0, 0.0) and rig.driver.readout().vx == 0.0
    state = rig.state()
    assert state.safety_state.e_stop is EStop.REMOTE
    assert "operatorStop" in {e.error_type for e in state.errors}
    x = rig.driver.readout().pose
    await rig.clock.run_for(2.0)
    assert rig.driver.readout().pose == x and rig.driver.readout().vx == 0.0  # stays stopped
    assert await rig.send("r1", "safetyRelease", kind="operator", operator="vic", role="viewer") == "FAILED"
    assert "viewer" in rig.result("r1")
    assert rig.state().safety_state.e_stop is EStop.REMOTE
    assert (
        await rig.send("r2", "safetyRelease", kind="operator", operator="bob", role="operator") == "FINISHED"
    )
    assert rig.state().safety_state.e_stop is EStop.NONE
    await run_until(rig.clock, lambda: not rig.vehicle.busy)
    assert rig.vehicle.last_node_id == "n2"


async def test_system_may_stop_but_never_release(rig: Rig) -> None:
    """A fleet stop by the system (role ``system``) holds; the system's release FAILS; a building alarm
    latches a building stop that an operator releases only once the alarm is off."""
    assert await rig.send("s1", "safetyStop", kind="fleet", role="system") == "FINISHED"
    assert await rig.send("r1", "safetyRelease", kind="fleet", role="system") == "FAILED"
    assert await rig.send("r2", "safetyRelease", kind="fleet", operator="bob") == "FINISHED"
    assert await rig.send("b1", "buildingAlarm", building="B1", active=True) == "FINISHED"
    assert rig.state().safety_state.e_stop is EStop.REMOTE
    assert await rig.send("r3", "safetyRelease", kind="building", building="B1", operator="bob") == "FAILED"
    assert await rig.send("b2", "buildingAlarm", building="B1", active=False) == "FINISHED"
    assert await rig.send("r4", "safetyRelease", kind="building", building="B1", operator="bob") == "FINISHED"
    assert rig.state().safety_state.e_stop is EStop.NONE


async def test_e_stop_button_needs_on_site_acknowledgement(rig: Rig) -> None:
    """The button (from the readout) latches eStop MANUAL; a remote acknowledgement FAILS; once released,
    the reset key on site clears it."""
    rig.driver.set_e_stop(True)
    await rig.clock.run_for(0.1)
    assert rig.state().safety_state.e_stop is EStop.MANUAL
    rig.driver.set_e_stop(False)
    await rig.clock.run_for(0.1)
    assert rig.state().safety_state.e_stop is EStop.MANUAL  # latched
    assert await rig.send("a1", "safetyAcknowledge", operator="bob") == "FAILED"
    assert rig.safety.acknowledge_on_site() is None
    assert rig.state().safety_state.e_stop is EStop.NONE


async def test_teleop_drives_in_semiautomatic_and_dead_man_stops(rig: Rig) -> None:
    """After the handover, teleop commands move the robot; orders are rejected; once the stream is cut
    the robot stands within the dead man (300 ms) plus one control period."""
    await rig.semiautomatic()
    assert rig.state().operating_mode is OperatingMode.SEMIAUTOMATIC
    for _ in range(20):
        rig.teleop(0.5)
        await rig.clock.run_for(PERIOD)
    moving = rig.driver.readout()
    assert moving.vx == pytest.approx(0.5) and moving.pose is not None and moving.pose.x > 0.3
    cut = rig.clock.monotonic()
    await run_until(rig.clock, lambda: rig.driver.readout().vx == 0.0, limit=1.0)
    assert rig.clock.monotonic() - cut <= 0.3 + PERIOD + 1e-9
    await rig.vehicle.receive_order(line_order(rig.headers, last=1))
    errors = rig.state().errors
    assert any(
        e.error_type == "orderError" and "SEMIAUTOMATIC" in (e.error_description or "") for e in errors
    )
    assert rig.vehicle.order is None


async def test_stop_overrides_teleop(rig: Rig) -> None:
    """A remote stop while driving remotely: zero at once, and further teleop commands move nothing."""
    await rig.semiautomatic()
    rig.teleop(0.5)
    await rig.clock.run_for(PERIOD)
    assert rig.driver.readout().vx == pytest.approx(0.5)
    assert await rig.send("s1", "safetyStop", kind="operator", operator="bob") == "FINISHED"
    assert rig.driver.readout().vx == 0.0
    for _ in range(5):
        rig.teleop(0.5)
        await rig.clock.run_for(PERIOD)
        assert rig.driver.readout().vx == 0.0


async def test_malformed_teleop_is_dropped(rig: Rig) -> None:
    """Garbage and a command missing fields are dropped: nothing moves."""
    await rig.semiautomatic()
    rig.safety.on_teleop(Message("t", b"\x00 not json"))
    rig.safety.on_teleop(Message("t", b'{"seq": 1, "vx": 1.0}'))
    await rig.clock.run_for(PERIOD)
    assert rig.driver.readout().vx == 0.0


async def test_mode_switch_while_moving_is_refused(rig: Rig) -> None:
    """setOperatingMode while the robot drives an order FAILS (moving) and the order goes on."""
    await rig.vehicle.receive_order(line_order(rig.headers, last=2, spacing=5.0))
    await run_until(rig.clock, lambda: rig.driver.readout().vx > 0.5)
    assert await rig.send("m1", "setOperatingMode", H, mode="SEMIAUTOMATIC", operator="alice") == "FAILED"
    assert "moving" in rig.result("m1") or "stand" in rig.result("m1")
    assert rig.safety.modes.mode is Mode.AUTOMATIC and rig.safety.modes.pending is None
    await run_until(rig.clock, lambda: not rig.vehicle.busy)
    assert rig.vehicle.last_node_id == "n2"


async def test_handover_cancels_the_waiting_order_and_back(rig: Rig) -> None:
    """A robot standing at the end of its base hands over to remote driving: the order is cancelled
    (clears_orders); handing back to AUTOMATIC makes it available again; SERVICE is not supported."""
    await rig.vehicle.receive_order(line_order(rig.headers, last=2, base_end=0))
    await rig.clock.run_for(0.5)
    assert rig.vehicle.order is not None and not rig.vehicle.order.idle
    await rig.semiautomatic()
    assert rig.vehicle.order.idle
    assert rig.safety.order_refusal() is not None
    assert await rig.send("m3", "setOperatingMode", H, mode="AUTOMATIC", operator="alice") == "FINISHED"
    assert rig.safety.order_refusal() is not None  # pending until confirmed
    assert await rig.send("m4", "cancelOperatingMode", operator="alice") == "FINISHED"
    assert await rig.send("m5", "setOperatingMode", H, mode="AUTOMATIC", operator="alice") == "FINISHED"
    assert await rig.send("m6", "confirmOperatingMode", H, operator="carol") == "FINISHED"
    assert rig.safety.order_refusal() is None and rig.state().operating_mode is OperatingMode.AUTOMATIC
    assert await rig.send("m7", "setOperatingMode", H, mode="SERVICE") == "FAILED"


async def test_state_changes_are_announced(rig: Rig) -> None:
    """A stop, its release and a mode request each notify the vehicle's listeners (a state goes out)."""
    calls: list[int] = []
    rig.vehicle.add_listener(lambda: calls.append(1))
    await rig.clock.run_for(0.5)
    quiet = len(calls)
    await rig.clock.run_for(0.5)
    assert len(calls) == quiet  # nothing changes: no state flood from the control loop
    await rig.send("s1", "safetyStop", kind="operator", operator="bob")
    assert len(calls) > quiet


def test_party_of_and_settings() -> None:
    """The party of an action's parameters; the layer kinds are checked."""
    assert party_of({"role": "system"}) is SYSTEM
    bob = party_of({"operator": "bob", "role": "admin"})
    assert bob.kind is PartyKind.CONTROL_CENTRE and bob.who == "bob" and bob.role is Role.ADMIN
    assert SafetySettings().absent_layers == {Source.ULTRASONIC, Source.CAMERA, Source.BUMPER}
    with pytest.raises(ValueError):
        SafetySettings(readout_layers=frozenset({Source.LIDAR}), external_layers=frozenset({Source.LIDAR}))
    with pytest.raises(ValueError):
        SafetySettings(readout_layers=frozenset({Source.CAMERA}))


class KeyedDriver(SimDriver):
    """A SimDriver with a reset key (as ``RosDriver``'s acknowledge service): holds the callback."""

    key: AcknowledgeCallback | None = None

    def on_acknowledge(self, callback: AcknowledgeCallback | None) -> None:
        self.key = callback


async def _keyed(settings: SafetySettings) -> tuple[VirtualClock, KeyedDriver, Vehicle, AgentSafety]:
    clock = VirtualClock(1_700_000_000.0)
    driver = KeyedDriver(clock, SimDriverConfig(speed=1.0), start=Pose(0, 0, 0, MAP))
    vehicle = Vehicle(driver, clock, VehicleSettings(map_id=MAP))
    safety = AgentSafety(vehicle, clock, settings)
    await vehicle.start()
    safety.start()
    return clock, driver, vehicle, safety


@pytest.mark.parametrize(("role", "cleared"), [(Role.OPERATOR, True), (Role.VIEWER, False)])
async def test_driver_reset_key_acknowledges_as_the_on_site_role(role: Role, cleared: bool) -> None:
    """``start`` hands the driver a reset key acting on site with ``on_site_role``: an operator's key
    clears the released e-stop, a viewer's is refused and says so; ``stop`` takes the key back."""
    clock, driver, vehicle, safety = await _keyed(SafetySettings(period=PERIOD, on_site_role=role))
    assert driver.key is not None
    assert driver.key() == "nothing to clear"
    driver.set_e_stop(True)
    await clock.run_for(0.1)
    pressed = driver.key()
    assert pressed is not None and pressed.startswith("refused eStop:")
    assert ("still pressed" if cleared else "may not acknowledge") in pressed
    driver.set_e_stop(False)
    await clock.run_for(0.1)
    answer = driver.key()
    if cleared:
        assert answer is None and safety.last is not None
        assert safety.last.decision.level is SafetyLevel.NORMAL
    else:
        assert answer is not None and "may not acknowledge" in answer
        assert safety.last is not None and safety.last.decision.level is SafetyLevel.EMERGENCY_STOP
    await safety.stop()
    assert driver.key is None
    await vehicle.stop()


async def test_teleop_zone_caps_apply_where_the_robot_is() -> None:
    """A slow zone (0.2 m/s) around the start caps remote driving there; outside it the mode's cap."""
    zone = SpeedZone(-1.0, -1.0, 1.0, 1.0, 0.2, "lobby")
    clock, driver, vehicle, safety = await _keyed(SafetySettings(period=PERIOD, zones=(zone,)))
    rig = Rig(clock, driver, vehicle, safety, master_headers(clock))
    await rig.semiautomatic()
    for _ in range(10):
        rig.teleop(0.8)
        await clock.run_for(PERIOD)
    assert driver.readout().vx == pytest.approx(0.2)
    driver.send_velocity(0.0, 0.0)
    await driver.run_action("initPosition", {"x": 5.0, "y": 0.0, "theta": 0.0, "mapId": MAP})
    for _ in range(10):
        rig.teleop(0.8)
        await clock.run_for(PERIOD)
    assert driver.readout().vx == pytest.approx(0.8)
    await safety.stop()
    await vehicle.stop()
    with pytest.raises(ValueError, match="x_min < x_max"):
        SpeedZone(1.0, 0.0, 0.0, 1.0, 0.5)
