"""One control tick: the supervisor's decision caps navigation in AUTOMATIC and teleop otherwise."""

from __future__ import annotations

from robots.safety import (
    LatchKind,
    Mode,
    ModeConfig,
    ModeController,
    Refusal,
    SafetyController,
    SafetySupervisor,
    TeleopCommand,
    TeleopGate,
    TeleopStatus,
)

from .kit import ALICE, feed

EPOCH = 1_714_564_800.0


def controller(confirm_timeout: float = 30.0) -> SafetyController:
    modes = ModeController(ModeConfig(confirm_timeout=confirm_timeout))
    return SafetyController(SafetySupervisor(), modes, TeleopGate(modes))


def test_navigation_is_capped_by_the_supervisor_in_automatic() -> None:
    """Nothing around: navigation's velocity passes; an obstacle in the warning field: 0.5 m/s with the
    turn scaled alike; an operator stop: zero at the very next tick."""
    ctl = controller()
    feed(ctl.supervisor, 0.0)
    out = ctl.tick(0.0, measured=1.0, navigation=(1.0, 0.2))
    assert (out.vx, out.omega, out.driver, out.teleop) == (1.0, 0.2, Mode.AUTOMATIC, None)
    feed(ctl.supervisor, 0.02, lidar=2.0)
    out = ctl.tick(0.02, measured=1.0, navigation=(1.0, 0.2))
    assert (out.vx, out.omega) == (0.5, 0.1)
    ctl.supervisor.remote_stop(LatchKind.OPERATOR_STOP, ALICE, 0.03)
    out = ctl.tick(0.03, measured=1.0, navigation=(1.0, 0.2))
    assert (out.vx, out.omega) == (0.0, 0.0) and out.decision.latches


def test_teleop_drives_after_the_handover_and_navigation_is_ignored() -> None:
    """In SEMIAUTOMATIC the operator's command is published (capped); navigation's request is not."""
    ctl = controller()
    feed(ctl.supervisor, 0.0)
    ctl.tick(0.0, measured=0.0)
    assert ctl.modes.request(Mode.SEMIAUTOMATIC, ALICE, 0.0, ctl.status(0.0)).ok
    assert ctl.modes.confirm(ALICE, 0.0, ctl.status(0.0)).ok
    ctl.gate.offer(TeleopCommand(1, 2.0, 0.0, EPOCH, operator="alice"), wall_now=EPOCH, mono_now=0.0)
    out = ctl.tick(0.02, measured=0.0, navigation=(1.0, 0.0))
    assert out.driver is Mode.SEMIAUTOMATIC and out.vx == 1.2  # the remote top speed
    assert out.teleop is not None and out.teleop.status is TeleopStatus.CAPPED
    dead = ctl.tick(0.3, measured=0.0, navigation=(1.0, 0.0))
    assert (dead.vx, dead.omega) == (0.0, 0.0)


def test_a_mode_switch_while_moving_is_refused_from_the_controller_status() -> None:
    """The status handed to the mode controller carries the measured speed and the latches."""
    ctl = controller()
    feed(ctl.supervisor, 0.0)
    ctl.tick(0.0, measured=0.8, navigation=(0.8, 0.0))
    assert ctl.modes.request(Mode.MANUAL, ALICE, 0.0, ctl.status(0.8)).refusal is Refusal.MOVING
    ctl.supervisor.remote_stop(LatchKind.FLEET_STOP, ALICE, 0.01)
    ctl.tick(0.01, measured=0.0)
    assert ctl.status(0.0).stop_latched


def test_the_tick_lapses_unconfirmed_requests() -> None:
    """A request left unconfirmed lapses on a later tick and the robot is available again."""
    ctl = controller(confirm_timeout=1.0)
    feed(ctl.supervisor, 0.0)
    ctl.modes.request(Mode.MANUAL, ALICE, 0.0, ctl.status(0.0))
    assert not ctl.modes.available_for_orders
    feed(ctl.supervisor, 1.5)
    ctl.tick(1.5, measured=0.0)
    assert ctl.modes.available_for_orders
