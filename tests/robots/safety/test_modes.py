"""Operating modes: the VDA 5050 mapping, every legal handover, the illegal ones with their reasons,
confirmation timeouts, and when the robot is available for orders."""

from __future__ import annotations

import math

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from interfaces.vda5050 import OperatingMode
from robots.safety import (
    SYSTEM,
    LatchKind,
    Mode,
    ModeConfig,
    ModeController,
    Party,
    PartyKind,
    Refusal,
    SafetySupervisor,
    VehicleStatus,
    control_centre,
    on_site,
)

from .kit import ADMIN, ALICE, BOB, ON_SITE, ON_SITE_VIEWER, VIEWER, feed

STILL = VehicleStatus(0.0)


def controller_in(mode: Mode) -> ModeController:
    """A controller brought into ``mode`` by the legal path (ALICE drives in SEMIAUTOMATIC)."""
    modes = ModeController()
    if mode is Mode.SEMIAUTOMATIC:
        assert modes.request(Mode.SEMIAUTOMATIC, ALICE, 0.0, STILL).ok
        assert modes.confirm(ALICE, 1.0, STILL).ok
    elif mode is Mode.MANUAL:
        assert modes.request(Mode.MANUAL, ON_SITE, 0.0, STILL).ok
        assert modes.confirm(ON_SITE, 1.0, STILL).ok
    assert modes.mode is mode
    return modes


def test_modes_map_onto_vda5050_operating_modes() -> None:
    """AUTOMATIC, SEMIAUTOMATIC (remote parallel driving) and MANUAL (on-site) are the VDA 5050 names."""
    assert [m.operating_mode for m in Mode] == [
        OperatingMode.AUTOMATIC,
        OperatingMode.SEMIAUTOMATIC,
        OperatingMode.MANUAL,
    ]
    assert Mode.MANUAL.holder is PartyKind.ON_SITE
    assert Mode.SEMIAUTOMATIC.holder is PartyKind.CONTROL_CENTRE
    assert "parallel" in Mode.SEMIAUTOMATIC.description


def test_a_new_controller_is_automatic_and_available() -> None:
    """By default the robot starts autonomous, nobody drives it, and it takes orders."""
    modes = ModeController()
    assert modes.mode is Mode.AUTOMATIC and modes.operating_mode is OperatingMode.AUTOMATIC
    assert modes.controller is None and modes.available_for_orders and modes.unavailable_reason is None


LEGAL = [
    (Mode.AUTOMATIC, Mode.SEMIAUTOMATIC, BOB, BOB),
    (Mode.AUTOMATIC, Mode.SEMIAUTOMATIC, ALICE, BOB),
    (Mode.AUTOMATIC, Mode.MANUAL, ON_SITE, ON_SITE),
    (Mode.AUTOMATIC, Mode.MANUAL, BOB, ON_SITE),
    (Mode.SEMIAUTOMATIC, Mode.AUTOMATIC, ALICE, BOB),
    (Mode.SEMIAUTOMATIC, Mode.AUTOMATIC, ADMIN, ADMIN),
    (Mode.SEMIAUTOMATIC, Mode.MANUAL, ON_SITE, ON_SITE),
    (Mode.SEMIAUTOMATIC, Mode.MANUAL, ALICE, ON_SITE),
    (Mode.MANUAL, Mode.AUTOMATIC, ON_SITE, BOB),
    (Mode.MANUAL, Mode.SEMIAUTOMATIC, ON_SITE, BOB),
]


@pytest.mark.parametrize(("start", "target", "requester", "confirmer"), LEGAL)
def test_legal_handovers(start: Mode, target: Mode, requester: Party, confirmer: Party) -> None:
    """Request by an allowed party, confirmation by the receiving side: the mode changes, the confirmer
    is in control (none in AUTOMATIC) and the order-clearing rule holds."""
    modes = controller_in(start)
    asked = modes.request(target, requester, 10.0, STILL)
    assert asked.ok and asked.pending is not None and asked.mode is start
    assert not modes.available_for_orders
    done = modes.confirm(confirmer, 12.0, STILL)
    assert done.ok and done.switch is not None and modes.mode is target
    assert modes.controller == (None if target is Mode.AUTOMATIC else confirmer)
    assert done.switch.clears_orders == (start is Mode.AUTOMATIC or Mode.MANUAL in (start, target))
    assert modes.pending is None and modes.history[-1] == done.switch
    assert modes.available_for_orders == (target is Mode.AUTOMATIC)


ILLEGAL_REQUESTS = [
    (Mode.AUTOMATIC, Mode.SEMIAUTOMATIC, ON_SITE),  # on site cannot hand to a remote driver
    (Mode.MANUAL, Mode.AUTOMATIC, ALICE),  # the control centre never takes it from the person there
    (Mode.MANUAL, Mode.SEMIAUTOMATIC, ADMIN),
    (Mode.SEMIAUTOMATIC, Mode.AUTOMATIC, ON_SITE),
    (Mode.SEMIAUTOMATIC, Mode.AUTOMATIC, BOB),  # not the driving operator, not an admin
    (Mode.SEMIAUTOMATIC, Mode.MANUAL, BOB),
    (Mode.AUTOMATIC, Mode.MANUAL, VIEWER),
    (Mode.AUTOMATIC, Mode.MANUAL, ON_SITE_VIEWER),
    (Mode.AUTOMATIC, Mode.SEMIAUTOMATIC, SYSTEM),
]


@pytest.mark.parametrize(("start", "target", "requester"), ILLEGAL_REQUESTS)
def test_illegal_requests_are_refused_as_not_authorised(start: Mode, target: Mode, requester: Party) -> None:
    """Parties outside the request table (or without an acting role) are refused with a reason."""
    modes = controller_in(start)
    answer = modes.request(target, requester, 10.0, STILL)
    assert not answer.ok and answer.refusal is Refusal.NOT_AUTHORISED and answer.message
    assert modes.mode is start and modes.pending is None


@pytest.mark.parametrize(
    ("target", "requester", "wrong"),
    [
        (Mode.MANUAL, ALICE, BOB),  # the on-site side receives MANUAL
        (Mode.SEMIAUTOMATIC, ALICE, ON_SITE),  # the control centre receives a remote drive
        (Mode.MANUAL, ON_SITE, ON_SITE_VIEWER),
        (Mode.SEMIAUTOMATIC, ALICE, VIEWER),
    ],
)
def test_only_the_receiving_side_confirms(target: Mode, requester: Party, wrong: Party) -> None:
    """A confirmation by anyone but the receiving side (with an acting role) is refused; the request stays."""
    modes = ModeController()
    assert modes.request(target, requester, 0.0, STILL).ok
    answer = modes.confirm(wrong, 1.0, STILL)
    assert answer.refusal is Refusal.NOT_RECEIVER and modes.mode is Mode.AUTOMATIC
    assert modes.pending is not None


def test_a_switch_while_moving_is_refused_at_request_and_at_confirmation() -> None:
    """Moving faster than the standstill speed refuses the request; moving at confirmation refuses it
    but keeps the request pending until the vehicle stands."""
    modes = ModeController()
    answer = modes.request(Mode.SEMIAUTOMATIC, ALICE, 0.0, VehicleStatus(0.4))
    assert answer.refusal is Refusal.MOVING and "moving" in answer.message
    assert modes.request(Mode.SEMIAUTOMATIC, ALICE, 0.0, VehicleStatus(-0.05)).ok  # at the threshold
    assert modes.confirm(ALICE, 1.0, VehicleStatus(0.3)).refusal is Refusal.MOVING
    assert modes.pending is not None
    assert modes.confirm(ALICE, 2.0, STILL).ok


def test_an_unknown_speed_counts_as_moving() -> None:
    """A NaN speed (broken odometry) never passes the standstill check."""
    assert (
        ModeController().request(Mode.MANUAL, ON_SITE, 0.0, VehicleStatus(math.nan)).refusal is Refusal.MOVING
    )


def test_into_automatic_needs_no_latched_stop_and_a_localized_robot() -> None:
    """Handing an unresolved emergency or a lost robot to the autonomy is refused."""
    modes = controller_in(Mode.MANUAL)
    latched = VehicleStatus(0.0, stop_latched=True)
    assert modes.request(Mode.AUTOMATIC, ON_SITE, 5.0, latched).refusal is Refusal.STOP_PENDING
    lost = VehicleStatus(0.0, localized=False)
    assert modes.request(Mode.AUTOMATIC, ON_SITE, 5.0, lost).refusal is Refusal.NOT_LOCALIZED
    assert modes.request(Mode.AUTOMATIC, ON_SITE, 5.0, STILL).ok
    assert modes.confirm(ALICE, 6.0, latched).refusal is Refusal.STOP_PENDING
    assert modes.confirm(ALICE, 7.0, STILL).ok and modes.mode is Mode.AUTOMATIC


def test_a_latch_does_not_block_a_person_taking_over() -> None:
    """Into MANUAL or SEMIAUTOMATIC a latched stop is no obstacle (people resolve emergencies)."""
    modes = ModeController()
    latched = VehicleStatus(0.0, stop_latched=True)
    assert modes.request(Mode.MANUAL, ON_SITE, 0.0, latched).ok
    assert modes.confirm(ON_SITE, 1.0, latched).ok


def test_the_vehicle_status_reads_latches_from_the_supervisor() -> None:
    """``VehicleStatus.of`` says stop_latched while the supervisor holds a latch."""
    sup = SafetySupervisor()
    feed(sup, 0.0)
    assert not VehicleStatus.of(sup.step(0.0), 0.0).stop_latched
    sup.remote_stop(LatchKind.FLEET_STOP, ALICE, 0.1)
    assert VehicleStatus.of(sup.step(0.1), 0.0).stop_latched
    assert not VehicleStatus.of(None, 0.0).stop_latched


def test_requests_lapse_without_confirmation() -> None:
    """Unconfirmed within the timeout, a request lapses: tick reports it, a late confirmation is refused."""
    modes = ModeController(ModeConfig(confirm_timeout=10.0))
    assert modes.request(Mode.MANUAL, ALICE, 0.0, STILL).ok
    assert modes.tick(10.0) is None  # exactly at the deadline it still holds
    lapsed = modes.tick(10.5)
    assert lapsed is not None and lapsed.refusal is Refusal.LAPSED and modes.pending is None
    assert modes.available_for_orders
    assert modes.request(Mode.MANUAL, ALICE, 20.0, STILL).ok
    late = modes.confirm(ON_SITE, 31.0, STILL)
    assert late.refusal is Refusal.LAPSED and modes.mode is Mode.AUTOMATIC


def test_one_request_at_a_time_and_no_switch_to_the_same_mode() -> None:
    """A second request while one is pending, or a request for the current mode, is refused."""
    modes = ModeController()
    assert modes.request(Mode.AUTOMATIC, ALICE, 0.0, STILL).refusal is Refusal.ALREADY_IN_MODE
    assert modes.request(Mode.MANUAL, ON_SITE, 0.0, STILL).ok
    assert modes.request(Mode.SEMIAUTOMATIC, ALICE, 1.0, STILL).refusal is Refusal.REQUEST_PENDING
    assert modes.confirm(ON_SITE, 2.0, STILL).ok
    assert modes.confirm(ON_SITE, 3.0, STILL).refusal is Refusal.NO_REQUEST


def test_cancel_by_requester_or_receiver_only() -> None:
    """The requester may withdraw and the receiving side decline; others are refused."""
    modes = ModeController()
    modes.request(Mode.SEMIAUTOMATIC, ALICE, 0.0, STILL)
    assert modes.cancel(ON_SITE, 1.0).refusal is Refusal.NOT_AUTHORISED
    assert modes.cancel(VIEWER, 1.0).refusal is Refusal.NOT_AUTHORISED
    assert modes.cancel(ALICE, 1.0).ok and modes.pending is None
    assert modes.cancel(ALICE, 1.0).refusal is Refusal.NO_REQUEST
    modes.request(Mode.MANUAL, ALICE, 2.0, STILL)
    assert modes.cancel(ON_SITE, 3.0).ok  # the receiving side declines


def test_unavailable_reasons_name_the_mode_or_the_pending_handover() -> None:
    """The dispatcher is told why: a human mode, or a handover in progress."""
    modes = ModeController()
    modes.request(Mode.MANUAL, ON_SITE, 0.0, STILL)
    assert modes.unavailable_reason == "handover to MANUAL pending"
    modes.confirm(ON_SITE, 1.0, STILL)
    assert modes.unavailable_reason == "in MANUAL mode (on-site remote control)"


def test_mode_config_validation() -> None:
    """Timeouts must be positive, standstill speeds non-negative."""
    with pytest.raises(ValueError, match="confirm_timeout"):
        ModeConfig(confirm_timeout=0.0)
    with pytest.raises(ValueError, match="standstill_speed"):
        ModeConfig(standstill_speed=-1.0)
    assert ModeController(ModeConfig(initial=Mode.MANUAL)).available_for_orders is False


# --- every sequence of requests keeps the rules ----------------------------------------------------------

PARTIES = st.sampled_from(
    [ON_SITE, ON_SITE_VIEWER, ALICE, BOB, ADMIN, VIEWER, SYSTEM, on_site("k2"), control_centre("carol")]
)


class ModeMachine(RuleBasedStateMachine):
    """Random requests, confirmations, cancellations and time by random parties at random speeds."""

    def __init__(self) -> None:
        super().__init__()
        self.modes = ModeController(ModeConfig(confirm_timeout=5.0))
        self.now = 0.0

    @rule(dt=st.floats(0.0, 4.0))
    def wait(self, dt: float) -> None:
        self.now += dt
        self.modes.tick(self.now)

    @rule(
        to=st.sampled_from(Mode), by=PARTIES, speed=st.sampled_from([0.0, 0.03, 0.5]), latched=st.booleans()
    )
    def request(self, to: Mode, by: Party, speed: float, latched: bool) -> None:
        before = self.modes.mode
        answer = self.modes.request(to, by, self.now, VehicleStatus(speed, latched))
        assert self.modes.mode is before
        if answer.ok:
            assert by.may_act and speed <= 0.05 and to is not before
            assert not (to is Mode.AUTOMATIC and latched)

    @rule(by=PARTIES, speed=st.sampled_from([0.0, 0.5]), latched=st.booleans())
    def confirm(self, by: Party, speed: float, latched: bool) -> None:
        pending, before = self.modes.pending, self.modes.mode
        answer = self.modes.confirm(by, self.now, VehicleStatus(speed, latched))
        if answer.ok:
            assert pending is not None and answer.switch is not None
            assert pending.from_mode is before and self.now <= pending.expires
            assert by.kind is pending.to_mode.holder and by.may_act and speed == 0.0
            assert not (pending.to_mode is Mode.AUTOMATIC and latched)
            if before is Mode.MANUAL:
                assert pending.by.kind is PartyKind.ON_SITE  # local beats remote
        else:
            assert self.modes.mode is before

    @rule(by=PARTIES)
    def cancel(self, by: Party) -> None:
        self.modes.cancel(by, self.now)

    @invariant()
    def availability_and_control_agree(self) -> None:
        modes = self.modes
        assert modes.available_for_orders == (modes.mode is Mode.AUTOMATIC and modes.pending is None)
        assert (modes.controller is None) == (modes.mode is Mode.AUTOMATIC)
        if modes.controller is not None:
            assert modes.controller.kind is modes.mode.holder


ModeMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
TestModeMachine = ModeMachine.TestCase
TestModeMachine.__doc__ = "Any sequence of handover calls keeps the request/confirm rules and availability."
