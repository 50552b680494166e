"""A Hypothesis state machine over the safety supervisor: random readings of all five layers (late,
early, pressed, in contact, obstacles), remote stops, fire alarms, acknowledgements and releases by
random parties, time steps and control steps.

Checked after every step against a model of the latches:

* the latches are exactly those set by a press, a contact or a remote stop and not yet cleared;
* a latch is cleared only by an acknowledgement/release the rules allow: the right party (kind and
  role), the button released / the bumper free and its layer alive, the building's alarm off;
* while any latch is set, no decision has a non-zero speed limit (EMERGENCY_STOP, eStop MANUAL or
  REMOTE); a button latch that needs an on-site acknowledgement always reads MANUAL;
* a limit is 0 exactly in the two stop levels and never exceeds ``max_speed``;
* a correct acknowledgement (button released, bumper free, on site) does clear both local latches.
"""

from __future__ import annotations

import math

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from interfaces.vda5050 import EStop
from robots.safety import (
    SYSTEM,
    AckPolicy,
    BumperReading,
    CameraReading,
    Detection,
    EStopReading,
    LatchKind,
    LidarReading,
    ObjectClass,
    Party,
    PartyKind,
    SafetyConfig,
    SafetyLevel,
    SafetySupervisor,
    Source,
    UltrasonicReading,
)

from .kit import ADMIN, ALICE, ON_SITE, ON_SITE_VIEWER, VIEWER

PARTIES = st.sampled_from([ON_SITE, ON_SITE_VIEWER, ALICE, ADMIN, VIEWER, SYSTEM])
REMOTE_KINDS = st.sampled_from([LatchKind.OPERATOR_STOP, LatchKind.FLEET_STOP, LatchKind.BUILDING_STOP])
BUILDINGS = st.sampled_from(["", "library", "gym"])
DISTANCES = st.one_of(st.just(math.inf), st.floats(0.0, 6.0))
LAG = st.floats(-0.1, 0.4)  # stamp = now - lag; negative lags are from the future
STOP_LEVELS = {SafetyLevel.PROTECTIVE_STOP, SafetyLevel.EMERGENCY_STOP}


class SupervisorMachine(RuleBasedStateMachine):
    """Random life of one supervisor, with a model of its latches."""

    def __init__(self) -> None:
        super().__init__()
        self.sup = SafetySupervisor()
        self.now = 0.0
        self.model: set[tuple[LatchKind, str]] = set()
        self.newest: dict[Source, float] = {}
        self.button: bool | None = None
        self.contact: bool | None = None
        self.alarms: set[str] = set()

    @initialize(e_stop_remote=st.booleans(), bumper_remote=st.booleans(), hold=st.sampled_from([0.0, 0.5]))
    def configure(self, e_stop_remote: bool, bumper_remote: bool, hold: float) -> None:
        acks = AckPolicy(e_stop_remote_ack=e_stop_remote, bumper_remote_ack=bumper_remote)
        self.sup = SafetySupervisor(SafetyConfig(acks=acks, hold_off=hold))

    @property
    def cfg(self) -> SafetyConfig:
        return self.sup.config

    # --- time and readings --------------------------------------------------------------------------------

    @rule(dt=st.floats(0.0, 0.5))
    def advance(self, dt: float) -> None:
        self.now += dt

    def _observe(self, reading, lag_ok: bool = True) -> bool:
        accepted = self.sup.observe(reading, self.now)
        layer = reading.layer
        expected = reading.stamp <= self.now + self.cfg.future_tolerance and reading.stamp >= self.newest.get(
            layer, -math.inf
        )
        assert accepted == expected
        if accepted:
            self.newest[layer] = reading.stamp
        return accepted

    @rule(pressed=st.booleans(), lag=LAG)
    def e_stop(self, pressed: bool, lag: float) -> None:
        if self._observe(EStopReading(self.now - lag, pressed)):
            self.button = pressed
            if pressed:
                self.model.add((LatchKind.E_STOP, ""))

    @rule(contact=st.booleans(), lag=LAG)
    def bumper(self, contact: bool, lag: float) -> None:
        if self._observe(BumperReading(self.now - lag, contact)):
            self.contact = contact
            if contact:
                self.model.add((LatchKind.BUMPER, ""))

    @rule(lidar=st.lists(DISTANCES, min_size=1, max_size=8), lag=LAG)
    def lidar(self, lidar: list[float], lag: float) -> None:
        self._observe(LidarReading(self.now - lag, tuple(lidar)))

    @rule(ranges=st.lists(DISTANCES, min_size=1, max_size=4), lag=LAG)
    def ultrasonic(self, ranges: list[float], lag: float) -> None:
        self._observe(UltrasonicReading(self.now - lag, tuple(ranges)))

    @rule(
        seen=st.lists(
            st.builds(Detection, st.sampled_from(ObjectClass), st.floats(0.0, 8.0), st.floats(0.0, 1.0)),
            max_size=3,
        ),
        lag=LAG,
    )
    def camera(self, seen: list[Detection], lag: float) -> None:
        self._observe(CameraReading(self.now - lag, tuple(seen)))

    @rule(pressed=st.booleans(), contact=st.booleans(), commanded=st.floats(-2.0, 2.0))
    def all_layers_fresh_then_step(self, pressed: bool, contact: bool, commanded: float) -> None:
        """Every sensing layer reports 'nothing' now, the switches as drawn, then a control step: the
        states where only a latch could stop the vehicle."""
        for reading in (
            LidarReading(self.now, (math.inf,)),
            UltrasonicReading(self.now, (math.inf,)),
            CameraReading(self.now),
        ):
            self._observe(reading)
        self.e_stop(pressed, 0.0)
        self.bumper(contact, 0.0)
        self.step(commanded, commanded)

    # --- remote stops, alarms, acknowledgements, releases -------------------------------------------------

    @rule(kind=REMOTE_KINDS, party=PARTIES, scope=BUILDINGS)
    def remote_stop(self, kind: LatchKind, party: Party, scope: str) -> None:
        self.sup.remote_stop(kind, party, self.now, scope=scope)
        self.model.add((kind, scope))

    @rule(building=st.sampled_from(["library", "gym"]), active=st.booleans())
    def alarm(self, building: str, active: bool) -> None:
        self.sup.building_alarm(building, active, self.now)
        if active:
            self.alarms.add(building)
            self.model.add((LatchKind.BUILDING_STOP, building))
        else:
            self.alarms.discard(building)

    def _alive(self, layer: Source) -> bool:
        stamp = self.newest.get(layer)
        return stamp is not None and self.now - stamp <= self.cfg.heartbeats.timeout(layer)

    def _may_ack(self, kind: LatchKind, party: Party) -> bool:
        acks = self.cfg.acks
        if not party.may_act:
            return False
        if party.kind is PartyKind.CONTROL_CENTRE:
            remote = acks.e_stop_remote_ack if kind is LatchKind.E_STOP else acks.bumper_remote_ack
            if not remote or party.role not in acks.remote_ack_roles:
                return False
        if kind is LatchKind.E_STOP:
            return self.button is False and self._alive(Source.E_STOP)
        return self.contact is False and self._alive(Source.BUMPER)

    @rule(party=PARTIES)
    def acknowledge(self, party: Party) -> None:
        answer = self.sup.acknowledge(party, self.now)
        cleared = {(latch.kind, latch.scope) for latch in answer.cleared}
        refused = {(latch.kind, latch.scope) for latch, _ in answer.refused}
        local = {key for key in self.model if not key[0].remote}
        assert cleared | refused == local and not cleared & refused
        for kind, _ in cleared:
            assert self._may_ack(kind, party), f"{kind} cleared by {party} against the rules"
        for kind, _ in refused:
            assert not self._may_ack(kind, party), f"{kind} refused to {party} although allowed"
        self.model -= cleared

    @rule(kind=REMOTE_KINDS, party=PARTIES, scope=st.one_of(st.none(), BUILDINGS))
    def release(self, kind: LatchKind, party: Party, scope: str | None) -> None:
        answer = self.sup.release(kind, party, self.now, scope=scope)
        for latch in answer.cleared:
            assert latch.kind is kind and (scope is None or latch.scope == scope)
            assert party.kind is PartyKind.CONTROL_CENTRE and party.may_act
            assert not (kind is LatchKind.BUILDING_STOP and latch.scope in self.alarms)
            self.model.discard((latch.kind, latch.scope))
        for latch, _ in answer.refused:
            assert (latch.kind, latch.scope) in self.model

    @rule()
    def correct_on_site_acknowledgement(self) -> None:
        """Button released and bumper free, both fresh, acknowledged on site: both local latches go."""
        self.e_stop(False, 0.0)
        self.bumper(False, 0.0)
        if self.button is False and self.contact is False:
            self.acknowledge(ON_SITE)
            assert not any(not kind.remote for kind, _ in self.model)

    # --- decisions ----------------------------------------------------------------------------------------

    @rule(commanded=st.floats(-2.0, 2.0), measured=st.floats(-2.0, 2.0))
    def step(self, commanded: float, measured: float) -> None:
        d = self.sup.step(self.now, commanded=commanded, measured=measured)
        assert 0.0 <= d.speed_limit <= self.cfg.max_speed
        assert (d.speed_limit == 0.0) == (d.level in STOP_LEVELS)
        if self.model:
            assert d.speed_limit == 0.0 and d.level is SafetyLevel.EMERGENCY_STOP
            assert d.e_stop in (EStop.MANUAL, EStop.REMOTE)
            assert len(d.errors) >= len(self.model)
        else:
            assert d.e_stop in (EStop.AUTOACK, EStop.NONE)
            assert (d.e_stop is EStop.AUTOACK) == (d.level is SafetyLevel.PROTECTIVE_STOP)
        if (LatchKind.E_STOP, "") in self.model and not self.cfg.acks.e_stop_remote_ack:
            assert d.e_stop is EStop.MANUAL
        if d.field_violation:
            assert d.level in STOP_LEVELS

    @invariant()
    def latches_are_the_model(self) -> None:
        assert {(latch.kind, latch.scope) for latch in self.sup.latches} == self.model


SupervisorMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
TestSupervisorMachine = SupervisorMachine.TestCase
TestSupervisorMachine.__doc__ = "No input sequence moves a latched vehicle; latches clear only by the rules."
