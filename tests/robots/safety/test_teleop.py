"""The teleoperation gate: admission (age, order, sessions, rate, mode and sender), caps (mode, zone,
the supervisor's limit), the dead man in virtual time, and the wire format. Property tests check that
the output never exceeds the supervisor's limit, that out-of-order commands never reach the output,
and that the dead man zeroes within 300 ms plus one control period."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from interfaces.clock import VirtualClock
from robots.safety import (
    Detection,
    Drop,
    LatchKind,
    Mode,
    ModeController,
    ObjectClass,
    Party,
    PartyKind,
    SafetySupervisor,
    TeleopCommand,
    TeleopConfig,
    TeleopGate,
    TeleopStatus,
    VehicleStatus,
    clamp_velocity,
    teleop_from_json,
    teleop_to_json,
)

from .kit import ALICE, BOB, ON_SITE, feed

EPOCH = 1_714_564_800.0


@dataclass
class Control:
    """A settable ``ControlView``."""

    mode: Mode = Mode.SEMIAUTOMATIC
    controller: Party | None = ALICE


def cmd(seq: int, vx: float = 0.5, omega: float = 0.0, *, at: float = EPOCH, **kw: object) -> TeleopCommand:
    kw.setdefault("operator", "alice")
    return TeleopCommand(seq, vx, omega, at, **kw)  # type: ignore[arg-type]


def offer(gate: TeleopGate, command: TeleopCommand, mono: float = 0.0, wall: float = EPOCH):
    return gate.offer(command, wall_now=wall, mono_now=mono)


# --- clamp_velocity --------------------------------------------------------------------------------------


def test_clamp_keeps_the_direction_and_respects_both_caps() -> None:
    """(1.0, 0.5) under 0.5 m/s becomes (0.5, 0.25); a turn-rate cap scales both the same way."""
    assert clamp_velocity(1.0, 0.5, 0.5) == pytest.approx((0.5, 0.25))
    assert clamp_velocity(0.4, 2.0, 1.0, max_omega=1.0) == pytest.approx((0.2, 1.0))
    assert clamp_velocity(-2.0, 1.0, 1.0) == pytest.approx((-1.0, 0.5))
    assert clamp_velocity(0.3, 0.1, 1.0) == (0.3, 0.1)


def test_clamp_to_zero_is_exactly_zero() -> None:
    """A limit of 0 (or garbage) stops everything, turning on the spot included, without -0.0."""
    assert clamp_velocity(0.0, 1.0, 0.0) == (0.0, 0.0)
    assert clamp_velocity(-1.0, -1.0, 0.0) == (0.0, 0.0)
    assert math.copysign(1.0, clamp_velocity(-1.0, -1.0, 0.0)[0]) == 1.0
    assert clamp_velocity(math.nan, 0.0, 1.0) == (0.0, 0.0)
    assert clamp_velocity(1.0, 0.0, math.inf) == (0.0, 0.0)


@given(
    vx=st.floats(-5.0, 5.0),
    omega=st.floats(-5.0, 5.0),
    limit=st.floats(0.0, 3.0),
    max_omega=st.one_of(st.none(), st.floats(0.0, 3.0)),
)
@settings(max_examples=200, deadline=None)
def test_clamp_never_exceeds_and_never_turns(vx: float, omega: float, limit: float, max_omega) -> None:
    """Output within both caps, same signs, same curvature (one scale factor <= 1)."""
    out_vx, out_omega = clamp_velocity(vx, omega, limit, max_omega)
    assert abs(out_vx) <= limit
    if max_omega is not None:
        assert abs(out_omega) <= max_omega
    assert out_vx * vx >= 0.0 and out_omega * omega >= 0.0
    assert abs(out_vx) <= abs(vx) and abs(out_omega) <= abs(omega)
    assert out_vx * omega == pytest.approx(out_omega * vx, abs=1e-9)


# --- admission -------------------------------------------------------------------------------------------


def test_a_fresh_in_order_command_drives_and_stale_or_future_ones_are_dropped() -> None:
    """Within max age + allowance accepted; older is STALE; from the future beyond the allowance dropped."""
    gate = TeleopGate(Control())
    assert offer(gate, cmd(1, at=EPOCH - 0.39)).accepted
    assert offer(gate, cmd(2, at=EPOCH - 0.41)).drop is Drop.STALE
    assert offer(gate, cmd(3, at=EPOCH + 0.11)).drop is Drop.FROM_FUTURE
    assert offer(gate, cmd(4, at=EPOCH + 0.09)).accepted
    assert gate.drops[Drop.STALE] == 1 and gate.drops[Drop.FROM_FUTURE] == 1


def test_duplicates_and_out_of_order_commands_are_dropped() -> None:
    """A repeated or lower sequence number never replaces a newer command."""
    gate = TeleopGate(Control())
    assert offer(gate, cmd(5, vx=0.5)).accepted
    assert offer(gate, cmd(5, vx=0.9)).drop is Drop.DUPLICATE
    assert offer(gate, cmd(3, vx=-0.9)).drop is Drop.OUT_OF_ORDER
    out = gate.tick(0.01, speed_limit=1.5)
    assert (out.vx, out.seq) == (0.5, 5)


def test_a_new_session_restarts_numbering_and_retires_the_old_one() -> None:
    """A console reconnecting numbers from 0 under a new session; late packets of the old one are dropped."""
    gate = TeleopGate(Control())
    assert offer(gate, cmd(40, session="s1")).accepted
    assert offer(gate, cmd(0, vx=0.2, session="s2")).accepted
    assert offer(gate, cmd(41, session="s1")).drop is Drop.OLD_SESSION
    assert gate.tick(0.0, speed_limit=1.0).vx == 0.2


def test_retired_sessions_are_bounded() -> None:
    """Only the last ``retired_sessions`` sessions are remembered (memory stays bounded)."""
    gate = TeleopGate(Control(), TeleopConfig(retired_sessions=2))
    for k in range(4):
        assert offer(gate, cmd(0, session=f"s{k}")).accepted
    assert offer(gate, cmd(9, session="s0")).accepted  # forgotten, so taken as a new session
    assert offer(gate, cmd(9, session="s2")).drop is Drop.OLD_SESSION


def test_rate_limit_is_a_token_bucket() -> None:
    """A burst beyond ``burst`` is dropped; tokens come back at ``max_rate`` per second."""
    gate = TeleopGate(Control(), TeleopConfig(max_rate=10.0, burst=3))
    results = [offer(gate, cmd(k), mono=0.0).drop for k in range(5)]
    assert results == [None, None, None, Drop.RATE_LIMITED, Drop.RATE_LIMITED]
    assert offer(gate, cmd(5), mono=0.1).accepted  # one token back after 0.1 s
    assert offer(gate, cmd(6), mono=0.1).drop is Drop.RATE_LIMITED
    assert offer(gate, cmd(4), mono=0.5).drop is Drop.OUT_OF_ORDER  # a dropped number still counted


def test_teleop_only_in_the_right_mode_from_the_right_sender() -> None:
    """AUTOMATIC takes no teleop; SEMIAUTOMATIC only the driving operator's console; MANUAL only the
    on-site handheld."""
    control = Control(Mode.AUTOMATIC, None)
    gate = TeleopGate(control)
    assert offer(gate, cmd(1)).drop is Drop.NOT_IN_CONTROL
    out = gate.tick(0.0, speed_limit=1.0)
    assert out.publish is False and out.status is TeleopStatus.NOT_IN_CONTROL

    control.mode, control.controller = Mode.SEMIAUTOMATIC, ALICE
    assert offer(gate, cmd(2, operator="bob")).drop is Drop.WRONG_SENDER
    assert offer(gate, cmd(3, source=PartyKind.ON_SITE)).drop is Drop.WRONG_SENDER
    assert offer(gate, cmd(4)).accepted

    control.mode, control.controller = Mode.MANUAL, ON_SITE
    assert offer(gate, cmd(5)).drop is Drop.WRONG_SENDER
    assert offer(gate, cmd(6, operator="", source=PartyKind.ON_SITE)).accepted


def test_invalid_numbers_are_dropped() -> None:
    """NaN or infinite velocities or times never count."""
    gate = TeleopGate(Control())
    assert offer(gate, cmd(1, vx=math.nan)).drop is Drop.INVALID
    assert offer(gate, cmd(2, at=math.inf)).drop is Drop.INVALID


def test_a_change_of_controller_drops_the_command_in_force() -> None:
    """When control passes (here to BOB) the old command stops at once; BOB must send his own."""
    control = Control()
    gate = TeleopGate(control)
    offer(gate, cmd(1, vx=0.8))
    assert gate.tick(0.01, speed_limit=1.0).vx == 0.8
    control.controller = BOB
    out = gate.tick(0.02, speed_limit=1.0)
    assert (out.vx, out.status) == (0.0, TeleopStatus.NO_COMMAND)
    assert offer(gate, cmd(2, vx=0.3, operator="bob"), mono=0.03).accepted
    assert gate.tick(0.04, speed_limit=1.0).vx == 0.3


def test_the_gate_follows_a_real_mode_controller() -> None:
    """With ``ModeController`` as the control view, teleop counts only after the confirmed handover."""
    modes = ModeController()
    gate = TeleopGate(modes)
    assert offer(gate, cmd(1)).drop is Drop.NOT_IN_CONTROL
    modes.request(Mode.SEMIAUTOMATIC, ALICE, 0.0, VehicleStatus(0.0))
    assert offer(gate, cmd(2)).drop is Drop.NOT_IN_CONTROL
    modes.confirm(ALICE, 0.0, VehicleStatus(0.0))
    assert offer(gate, cmd(3)).accepted
    assert gate.tick(0.0, speed_limit=1.0).vx == 0.5


# --- caps ------------------------------------------------------------------------------------------------


def test_caps_mode_zone_and_supervisor_the_lowest_wins() -> None:
    """Remote top speed 1.2, a 0.8 zone, a 0.5 supervisor limit: 0.5, direction kept, status CAPPED."""
    gate = TeleopGate(Control(), zone_cap=lambda x, y: 0.8 if x > 10 else None)
    offer(gate, cmd(1, vx=2.0, omega=0.4))
    assert gate.tick(0.0, speed_limit=1.5, position=(0.0, 0.0)).vx == pytest.approx(1.2)
    assert gate.tick(0.0, speed_limit=1.5, position=(20.0, 0.0)).vx == pytest.approx(0.8)
    out = gate.tick(0.0, speed_limit=0.5, position=(20.0, 0.0))
    assert (out.vx, out.omega, out.cap, out.status) == pytest.approx((0.5, 0.1, 0.5, TeleopStatus.CAPPED))
    assert gate.tick(0.0, speed_limit=1.5, position=None).vx == pytest.approx(0.5)  # unknown: 0.5 cap


def test_manual_mode_has_its_own_top_speed() -> None:
    """On the handheld the top speed is ``manual_max_speed`` (walking pace)."""
    gate = TeleopGate(Control(Mode.MANUAL, ON_SITE))
    offer(gate, cmd(1, vx=3.0, source=PartyKind.ON_SITE))
    assert gate.tick(0.0, speed_limit=1.5).vx == pytest.approx(1.0)


def test_a_supervisor_stop_zeroes_teleop_even_turning_on_the_spot() -> None:
    """An operator e-stop: the supervisor's limit 0 makes the output exactly zero."""
    sup = SafetySupervisor()
    feed(sup, 0.0)
    sup.remote_stop(LatchKind.OPERATOR_STOP, ALICE, 0.0)
    gate = TeleopGate(Control())
    offer(gate, cmd(1, vx=0.0, omega=0.8))
    out = gate.tick(0.01, speed_limit=sup.step(0.01).speed_limit)
    assert (out.vx, out.omega, out.publish) == (0.0, 0.0, True)


# --- the dead man ----------------------------------------------------------------------------------------


def test_dead_man_zeroes_after_300_ms_and_needs_a_new_command() -> None:
    """At 299 ms the command still drives; at 300 ms zero (DEADMAN), then NO_COMMAND until a new one."""
    gate = TeleopGate(Control())
    offer(gate, cmd(1, vx=0.6), mono=10.0)
    assert gate.tick(10.299, speed_limit=1.0).vx == 0.6
    dead = gate.tick(10.3, speed_limit=1.0)
    assert (dead.vx, dead.omega, dead.status) == (0.0, 0.0, TeleopStatus.DEADMAN)
    assert gate.tick(10.31, speed_limit=1.0).status is TeleopStatus.NO_COMMAND
    assert gate.requested == (0.0, 0.0)


@given(
    period=st.sampled_from([0.01, 0.02, 0.05, 0.1]),
    phase=st.floats(0.0, 0.099),
    stream=st.integers(1, 30),
    send_every=st.sampled_from([0.02, 0.05, 0.1]),
)
@settings(max_examples=60, deadline=None)
def test_dead_man_zeroes_within_300_ms_plus_one_period(
    period: float, phase: float, stream: int, send_every: float
) -> None:
    """A stream cut at any moment: the published velocity is zero from the first control tick at or
    after the last command + 300 ms, which is at most 300 ms + one control period after it — on a
    VirtualClock, driving the loop as the agent would."""
    clock = VirtualClock(start=EPOCH)
    gate = TeleopGate(Control())
    clock.advance(phase)
    next_send, sent, next_tick, last_sent = clock.monotonic(), 0, clock.monotonic(), -1.0
    zero_at = None
    while sent < stream or clock.monotonic() < last_sent + 0.3 + 2 * period:
        now = clock.monotonic()
        if sent < stream and now >= next_send - 1e-12:
            assert gate.offer(cmd(sent, vx=0.7, at=clock.now()), wall_now=clock.now(), mono_now=now).accepted
            sent, last_sent, next_send = sent + 1, now, next_send + send_every
        if now >= next_tick - 1e-12:
            out = gate.tick(now, speed_limit=1.5)
            if now - last_sent < 0.3 - 1e-9:
                assert out.vx == 0.7
            elif zero_at is None:
                zero_at = now
            if now - last_sent >= 0.3:
                assert out.vx == 0.0 and out.omega == 0.0
            next_tick += period
        clock.advance(min(next_send if sent < stream else math.inf, next_tick) - clock.monotonic())
    assert zero_at is not None
    assert last_sent + 0.3 - 1e-9 <= zero_at <= last_sent + 0.3 + period + 1e-9


# --- properties over random command streams --------------------------------------------------------------


class TeleopMachine(RuleBasedStateMachine):
    """Random commands (any order, any age, two sessions), random obstacles and remote stops, control
    ticks on a VirtualClock: the published velocity never exceeds the supervisor's limit, comes only
    from the newest accepted command of the session, and is zero once the dead man is due."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock(start=EPOCH)
        self.sup = SafetySupervisor()
        self.gate = TeleopGate(Control(), zone_cap=lambda x, y: 0.8 if x > 5 else None)
        self.accepted: dict[str, int] = {}
        self.current: TeleopCommand | None = None
        self.accepted_at = -math.inf
        self.x = 0.0

    @initialize()
    def sensors_up(self) -> None:
        feed(self.sup, self.clock.monotonic())

    @rule(
        seq=st.integers(0, 40),
        vx=st.floats(-3.0, 3.0),
        omega=st.floats(-2.0, 2.0),
        age=st.floats(-0.2, 0.6),
        session=st.sampled_from(["a", "a", "a", "b"]),
    )
    def send(self, seq: int, vx: float, omega: float, age: float, session: str) -> None:
        command = cmd(seq, vx, omega, at=self.clock.now() - age, session=session)
        before = self.accepted.get(session)
        admission = self.gate.offer(command, wall_now=self.clock.now(), mono_now=self.clock.monotonic())
        if admission.accepted:
            assert before is None or seq > before, "an out-of-order command was accepted"
            self.accepted[session] = seq
            self.current, self.accepted_at = command, self.clock.monotonic()
            if session == "b":
                self.accepted.pop("a", None)  # 'a' retired: anything of it is dropped from now on
        elif admission.drop in (Drop.DUPLICATE, Drop.OUT_OF_ORDER):
            assert before is not None and seq <= before

    @rule(distance=st.one_of(st.just(math.inf), st.floats(0.0, 5.0)), person=st.booleans())
    def sense(self, distance: float, person: bool) -> None:
        seen = (Detection(ObjectClass.PERSON, distance),) if person and math.isfinite(distance) else ()
        feed(self.sup, self.clock.monotonic(), lidar=distance, detections=seen)

    @rule()
    def operator_stop(self) -> None:
        self.sup.remote_stop(LatchKind.OPERATOR_STOP, ALICE, self.clock.monotonic())

    @rule(dt=st.sampled_from([0.0, 0.02, 0.05, 0.1, 0.25, 0.4]), x=st.floats(0.0, 10.0))
    def tick(self, dt: float, x: float) -> None:
        self.clock.advance(dt)
        now = self.clock.monotonic()
        feed(self.sup, now)
        decision = self.sup.step(now, commanded=self.gate.requested[0], measured=0.0)
        out = self.gate.tick(now, speed_limit=decision.speed_limit, position=(x, 0.0))
        assert abs(out.vx) <= decision.speed_limit
        if decision.speed_limit == 0.0 or now - self.accepted_at >= 0.3 or self.current is None:
            assert (out.vx, out.omega) == (0.0, 0.0)
        if (out.vx, out.omega) != (0.0, 0.0):
            assert self.current is not None and out.seq == self.current.seq
            assert out.vx * self.current.omega == pytest.approx(out.omega * self.current.vx, abs=1e-9)
        if now - self.accepted_at >= 0.3:
            self.current = None

    @invariant()
    def requested_is_the_current_command(self) -> None:
        if self.current is not None and self.gate.requested != (0.0, 0.0):
            assert self.gate.requested == (self.current.vx, self.current.omega)


TeleopMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestTeleopMachine = TeleopMachine.TestCase
TestTeleopMachine.__doc__ = "Teleop never exceeds the supervisor's limit; stale or out-of-order never drives."


# --- wire format and config ------------------------------------------------------------------------------


def test_wire_format_round_trip() -> None:
    """``teleop_to_json`` then ``teleop_from_json`` gives the same command; optional fields default."""
    command = cmd(7, 0.4, -0.1, session="s", source=PartyKind.ON_SITE)
    assert teleop_from_json(teleop_to_json(command)) == command
    minimal = teleop_from_json({"seq": 1, "vx": 1, "omega": 0, "sentAt": EPOCH})
    assert minimal == TeleopCommand(1, 1.0, 0.0, EPOCH)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ([], "JSON object"),
        ({"vx": 0, "omega": 0, "sentAt": 0}, "missing field 'seq'"),
        ({"seq": -1, "vx": 0, "omega": 0, "sentAt": 0}, "seq"),
        ({"seq": True, "vx": 0, "omega": 0, "sentAt": 0}, "seq"),
        ({"seq": 1, "vx": "fast", "omega": 0, "sentAt": 0}, "vx"),
        ({"seq": 1, "vx": 0, "omega": float("nan"), "sentAt": 0}, "omega"),
        ({"seq": 1, "vx": 0, "omega": 0, "sentAt": 0, "session": 3}, "session"),
        ({"seq": 1, "vx": 0, "omega": 0, "sentAt": 0, "source": "moon"}, "source"),
        ({"seq": 1, "vx": 0, "omega": 0, "sentAt": 0, "source": "system"}, "source"),
    ],
)
def test_malformed_wire_messages_raise_value_error(payload: object, match: str) -> None:
    """Every malformed payload is refused with a ValueError naming the field."""
    with pytest.raises(ValueError, match=match):
        teleop_from_json(payload)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"deadman_timeout": 0.0}, "deadman_timeout"),
        ({"max_rate": -1.0}, "max_rate"),
        ({"clock_allowance": math.nan}, "clock_allowance"),
        ({"burst": 0}, "burst"),
        ({"retired_sessions": 1.5}, "retired_sessions"),
    ],
)
def test_teleop_config_validation(kwargs: dict[str, object], match: str) -> None:
    """Bad settings raise ValueError naming the field."""
    with pytest.raises(ValueError, match=match):
        TeleopConfig(**kwargs)  # type: ignore[arg-type]
