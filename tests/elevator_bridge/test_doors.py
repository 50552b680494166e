"""Doors and gates (pure logic, virtual time): open on request, hold, auto-close, credentials."""

from __future__ import annotations

import pytest

from elevator_bridge.doors import Door, DoorCommand, DoorSettings, Gate, credential_digest
from interfaces.clock import VirtualClock
from interfaces.door import DoorMode
from interfaces.gate import GateRequest


def door(**kw: object) -> tuple[Door, VirtualClock]:
    clock = VirtualClock(100.0)
    settings = DoorSettings(name="D", iot="b/d", **kw)  # type: ignore[arg-type]
    return Door("B", settings, clock), clock


def run(device: Door | Gate, clock: VirtualClock, seconds: float, renew: str | None = None) -> None:
    """Let ``seconds`` pass in 0.5 s steps; ``renew`` repeats that requester's OPEN every second."""
    for step in range(int(seconds * 2)):
        clock.advance(0.5)
        if renew is not None and step % 2 == 1 and isinstance(device, Door):
            device.request(renew, DoorMode.OPEN)
        device.tick()


def test_door_opens_moves_and_closes_by_itself() -> None:
    """OPEN switches the relay on; the door reads MOVING for open_s, then OPEN; without renewal it
    closes hold_s + auto_close_s later (MOVING for close_s, then CLOSED)."""
    d, clock = door(open_s=3.0, close_s=3.0, hold_s=5.0, auto_close_s=5.0)
    assert d.state().current_mode is DoorMode.CLOSED
    d.request("r1", DoorMode.OPEN)
    assert d.take_commands() == [DoorCommand("D", "b/d", True)]
    assert d.state().current_mode is DoorMode.MOVING and d.state().holders == ["r1"]
    run(d, clock, 3.0)
    assert d.state().current_mode is DoorMode.OPEN
    run(d, clock, 7.0)  # the hold lapses after 5 s (at 5.5), the door closes 5 s later
    assert d.state().current_mode is DoorMode.OPEN and d.state().holders == []
    run(d, clock, 0.5)
    assert d.take_commands() == [DoorCommand("D", "b/d", False)]
    assert d.state().current_mode is DoorMode.MOVING
    run(d, clock, 3.0)
    assert d.state().current_mode is DoorMode.CLOSED


def test_door_stays_open_while_held_and_closes_after_release() -> None:
    """Renewed OPEN requests hold the door; CLOSED releases it and it closes after auto_close_s."""
    d, clock = door(hold_s=3.0, auto_close_s=2.0, hold_max_s=100.0)
    d.request("r1", DoorMode.OPEN)
    run(d, clock, 30.0, renew="r1")
    assert d.state().current_mode is DoorMode.OPEN and d.state().holders == ["r1"]
    d.request("r1", DoorMode.CLOSED)
    run(d, clock, 1.5)
    assert d.take_commands() == [DoorCommand("D", "b/d", True)]
    run(d, clock, 1.0)
    assert d.take_commands() == [DoorCommand("D", "b/d", False)]


def test_hold_is_limited_per_requester() -> None:
    """A requester cannot hold longer than hold_max_s: its renewals are ignored until it sends CLOSED."""
    d, clock = door(hold_s=3.0, hold_max_s=20.0, auto_close_s=1.0)
    d.request("r1", DoorMode.OPEN)
    run(d, clock, 30.0, renew="r1")
    assert d.state().holders == [] and d.state().current_mode is DoorMode.CLOSED
    d.request("r1", DoorMode.CLOSED)
    d.request("r1", DoorMode.OPEN)
    assert d.state().holders == ["r1"]


def test_two_holders_keep_the_door_open_until_both_leave() -> None:
    """The door stays open while any requester holds it."""
    d, clock = door(hold_s=3.0, auto_close_s=0.0)
    d.request("r1", DoorMode.OPEN)
    d.request("r2", DoorMode.OPEN)
    d.request("r1", DoorMode.CLOSED)
    run(d, clock, 1.0)
    assert d.state().holders == ["r2"]
    d.request("r2", DoorMode.CLOSED)
    assert d.take_commands()[-1] == DoorCommand("D", "b/d", False)


def test_other_modes_are_ignored() -> None:
    """Only OPEN and CLOSED can be requested."""
    d, _ = door()
    d.request("r1", DoorMode.MOVING)
    assert d.take_commands() == [] and d.state().holders == []


def gate_request(
    requester: str, credential: str, mode: DoorMode = DoorMode.OPEN, rid: str = "q1"
) -> GateRequest:
    return GateRequest(
        building="B",
        gate_name="G",
        requester_id=requester,
        request_id=rid,
        requested_mode=mode,
        credential=credential,
        request_time=0.0,
    )


def make_gate() -> tuple[Gate, VirtualClock]:
    clock = VirtualClock(0.0)
    credentials = {"r1": credential_digest("secret-1"), "r2": "plain-2"}
    return Gate("B", DoorSettings(name="G", iot="b/g", credentials=credentials), clock, remembered=3), clock


@pytest.mark.parametrize(("requester", "credential"), [("r1", "secret-1"), ("r2", "plain-2")])
def test_gate_opens_for_known_credentials(requester: str, credential: str) -> None:
    """A hashed or a plain configured credential opens the gate; the decision is in the state."""
    gate, _ = make_gate()
    decision = gate.handle(gate_request(requester, credential))
    assert decision.accepted and gate.take_commands() == [DoorCommand("G", "b/g", True)]
    assert gate.state().decision_for("q1") == decision and gate.state().holders == [requester]


@pytest.mark.parametrize(
    ("requester", "credential"), [("r1", "secret-2"), ("r1", ""), ("r3", "secret-1"), ("r2", "secret-1")]
)
def test_gate_refuses_unknown_credentials(requester: str, credential: str) -> None:
    """A wrong, empty or foreign credential, or an unknown robot, is refused and the gate stays shut."""
    gate, _ = make_gate()
    decision = gate.handle(gate_request(requester, credential))
    assert not decision.accepted and decision.reason == "credential refused"
    assert gate.take_commands() == [] and gate.state().holders == []


def test_gate_release_and_decision_memory() -> None:
    """CLOSED releases without a credential; repeats of a request replace its decision; only the
    last ``remembered`` decisions are kept, newest first; MOVING is refused."""
    gate, _ = make_gate()
    gate.handle(gate_request("r1", "secret-1"))
    gate.handle(gate_request("r1", "secret-1"))
    assert [d.request_id for d in gate.state().decisions] == ["q1"]
    assert gate.handle(gate_request("r1", "", DoorMode.CLOSED)).accepted
    assert gate.state().holders == []
    for n in range(4):
        gate.handle(gate_request("r1", "secret-1", rid=f"n{n}"))
    assert [d.request_id for d in gate.state().decisions] == ["n3", "n2", "n1"]
    assert not gate.handle(gate_request("r1", "secret-1", DoorMode.MOVING, rid="m")).accepted


def test_door_settings_are_checked() -> None:
    """Negative or zero times are refused with a sentence naming the door and the setting."""
    with pytest.raises(ValueError, match="door D: open_s"):
        DoorSettings(name="D", open_s=-1)
    with pytest.raises(ValueError, match="hold_s and hold_max_s"):
        DoorSettings(name="D", hold_s=0)
