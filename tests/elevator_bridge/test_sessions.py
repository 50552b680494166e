"""Lift sessions (pure logic) against fake lifts in virtual time: rides, queueing, faults, timeouts."""

from __future__ import annotations

import pytest
from lift_testkit import Bot, FakeLift, PureWorld, settings

from elevator_bridge.drivers.base import DriverResult, LiftStatus
from elevator_bridge.sessions import Building, DoorBlockedPolicy, LiftCommand, LiftSettings, Verb
from interfaces.clock import VirtualClock
from interfaces.lift import (
    DoorState,
    EndReason,
    LiftMode,
    LiftRequest,
    LiftRequestType,
    MotionState,
    Passage,
    SessionOutcome,
    SessionPhase,
)


def ride(bot: Bot, world: PureWorld, to: str, pass_s: float = 3.0) -> None:
    """Board at the current floor (doors open), ride to ``to``, get out and end the session."""
    bot.send(passage=Passage.ENTERING)
    world.run(pass_s)
    bot.send(passage=Passage.INSIDE, destination=to)
    world.run(120, until=lambda: bot.doors_open_at(to))
    assert bot.doors_open_at(to)
    bot.send(passage=Passage.EXITING)
    world.run(pass_s)
    bot.end()


def test_ride_up_and_back() -> None:
    """A robot calls an idle lift, rides F1 → F6, and a second session rides back; both FINISHED."""
    world = PureWorld.make([settings("L1")])
    up = Bot(world, "r1", "s-up", "L1", "F1")
    up.send()
    world.run(30, until=lambda: up.doors_open_at("F1"))
    assert world.building.state("L1").phase is SessionPhase.BOARDING
    ride(up, world, "F6")
    down = Bot(world, "r1", "s-down", "L1", "F6")
    down.send()
    world.run(30, until=lambda: down.doors_open_at("F6"))
    ride(down, world, "F1")
    for bot in (up, down):
        record = bot.end_record()
        assert record is not None and record.outcome is SessionOutcome.FINISHED and record.reason is None
    state = world.building.state("L1")
    assert state.session_id == "" and state.phase is SessionPhase.IDLE and state.current_floor == "F1"


def test_time_to_doors_open_for_an_idle_lift() -> None:
    """An idle lift at F1 opens its doors at F6 after 5 floors × 2 s + 3 s doors (+ one report step)."""
    world = PureWorld.make([settings("L1")])
    bot = Bot(world, "r1", "s1", "L1", "F6")
    bot.send()
    took = world.run(60, until=lambda: bot.doors_open_at("F6"))
    assert 13.0 <= took <= 13.5


def test_lift_state_fields_during_a_session() -> None:
    """The state shows the session, its robot, destination, the AGV mode and the waiting queue."""
    world = PureWorld.make([settings("L1")])
    Bot(world, "r1", "s1", "L1", "F4").send()
    Bot(world, "r2", "s2", "L1", "F2").send()
    state = world.building.state("L1")
    assert (state.session_id, state.robot_id, state.destination_floor) == ("s1", "r1", "F4")
    assert state.current_mode is LiftMode.AGV and state.phase is SessionPhase.CALLING
    assert state.queue == ["s2"] and state.available_modes == [LiftMode.HUMAN, LiftMode.AGV]
    assert state.available_floors == ["F1", "F2", "F3", "F4", "F5", "F6"]


def test_two_robots_one_lift_served_in_order() -> None:
    """Two robots contend for the only lift: the first asker rides first, the second only after it."""
    world = PureWorld.make([settings("L1")])
    first, second = Bot(world, "r1", "s1", "L1", "F3"), Bot(world, "r2", "s2", "L1", "F1")
    first.send()
    world.run(1)
    second.send()
    assert first.served_by == "L1" and second.served_by is None
    world.run(30, until=lambda: first.doors_open_at("F3"))
    ride(first, world, "F5")
    assert second.served_by == "L1"
    world.run(30, until=lambda: second.doors_open_at("F1"))
    ride(second, world, "F2")
    assert [b.end_record().outcome for b in (first, second)] == [SessionOutcome.FINISHED] * 2  # type: ignore[union-attr]


def test_idle_second_lift_serves_the_waiting_robot() -> None:
    """A robot asking for a busy lift is served at once by the building's other, idle lift."""
    world = PureWorld.make([settings("L1"), settings("L2")])
    Bot(world, "r1", "s1", "L1", "F4").send()
    waiting = Bot(world, "r2", "s2", "L1", "F2")
    waiting.send()
    assert world.building.bound("L1") == "s1" and waiting.served_by == "L2"
    world.run(30, until=lambda: waiting.doors_open_at("F2"))
    assert waiting.doors_open_at("F2")


def test_preferred_lift_when_both_are_free() -> None:
    """When both lifts are free, the lift the robot named serves it."""
    world = PureWorld.make([settings("L1"), settings("L2")])
    bot = Bot(world, "r1", "s1", "L2", "F3")
    bot.send()
    assert bot.served_by == "L2"


def test_far_eta_does_not_block_a_waiting_robot() -> None:
    """A robot that asked first but arrives in 10 minutes does not hold up one already at the lift."""
    world = PureWorld.make([settings("L1")])
    world.building.status("L1", world.lifts["L1"].status(world.clock.now()))
    far = Bot(world, "far", "s-far", "L1", "F5", eta=world.clock.now() + 600)
    busy = Bot(world, "busy", "s-busy", "L1", "F2")
    busy.send()  # the lift is busy while the far robot asks
    far.send()
    here = Bot(world, "here", "s-here", "L1", "F3")
    here.send()
    queue = world.building.state("L1").queue
    assert queue == ["s-here", "s-far"]
    world.run(30, until=lambda: busy.doors_open_at("F2"))
    ride(busy, world, "F4")
    assert here.served_by == "L1" and far.served_by is None


def test_eta_sends_the_cabin_to_arrive_with_the_robot() -> None:
    """A robot 60 s away gets its lift so that the doors open about when it arrives, not earlier."""
    world = PureWorld.make([settings("L1")])
    eta = world.clock.now() + 60
    bot = Bot(world, "r1", "s1", "L1", "F6", eta=eta)
    bot.send()
    assert bot.served_by is None
    world.run(120, until=lambda: bot.doors_open_at("F6"))
    assert bot.doors_open_at("F6") and abs(world.clock.now() - eta) <= 1.0


def test_hold_time_counts_from_the_eta_when_the_cabin_is_early() -> None:
    """A cabin that arrives before the robot's ETA holds its doors from the ETA on, not from arrival."""
    world = PureWorld.make([settings("L1", door_hold_max_s=10.0)])
    eta = world.clock.now() + 20
    bot = Bot(world, "r1", "s1", "L1", "F1", eta=eta)  # the cabin is already at F1: lead 3 s
    bot.send()
    world.run(28)
    assert bot.served_by == "L1" and bot.end_record() is None
    world.run(5)
    record = bot.end_record()
    assert record is not None and record.reason is EndReason.TIMEOUT


def test_vanished_robot_is_released_within_the_heartbeat_timeout() -> None:
    """A robot that stops sending while it holds the lift frees it within the heartbeat timeout."""
    world = PureWorld.make([settings("L1", heartbeat_timeout_s=8.0)])
    gone, next_one = Bot(world, "r1", "s1", "L1", "F1"), Bot(world, "r2", "s2", "L1", "F1")
    gone.send()
    next_one.send()
    world.run(2)
    gone.alive = False
    silent_from = gone.last_sent
    world.run(20, until=lambda: gone.end_record() is not None)
    record = gone.end_record()
    assert record is not None
    assert (record.outcome, record.reason) == (SessionOutcome.RELEASED, EndReason.HEARTBEAT_LOST)
    assert record.time - silent_from <= 8.0 + world.dt
    assert next_one.served_by == "L1"


def test_vanished_waiting_robot_leaves_the_queue() -> None:
    """A waiting robot that goes silent is dropped from the queue (RELEASED)."""
    world = PureWorld.make([settings("L1", heartbeat_timeout_s=5.0)])
    Bot(world, "r1", "s1", "L1", "F6").send()
    waiting = Bot(world, "r2", "s2", "L1", "F1", alive=False)
    waiting.send()
    world.run(7)
    record = waiting.end_record()
    assert record is not None and record.reason is EndReason.HEARTBEAT_LOST
    assert world.building.state("L1").queue == []


def test_robot_that_never_comes_times_out_and_the_doors_close() -> None:
    """Doors held for a robot that never boards: after the maximum hold the session is aborted
    (TIMEOUT) and the doors close."""
    world = PureWorld.make([settings("L1", door_hold_max_s=15.0)])
    bot = Bot(world, "r1", "s1", "L1", "F1")
    bot.send()
    world.run(40, until=lambda: bot.end_record() is not None)
    record = bot.end_record()
    assert record is not None and (record.outcome, record.reason) == (
        SessionOutcome.ABORTED,
        EndReason.TIMEOUT,
    )
    world.run(5)
    assert world.lifts["L1"].status(world.clock.now()).door is DoorState.CLOSED


def test_doors_never_close_on_a_robot_in_the_doorway() -> None:
    """A robot stuck in the doorway past the hold time: the session is aborted (TIMEOUT) but the doors
    stay open, and the lift stays CLEARING, until the robot reports it is out."""
    world = PureWorld.make([settings("L1", door_hold_max_s=10.0)])
    closes: list[LiftCommand] = []
    world.on_command = lambda c: closes.append(c) if c.verb in (Verb.CLOSE, Verb.CALL) else None
    bot = Bot(world, "r1", "s1", "L1", "F1")
    bot.send()
    world.run(10, until=lambda: bot.doors_open_at("F1"))
    bot.send(passage=Passage.ENTERING)
    world.run(60)
    record = bot.end_record()
    assert record is not None and record.reason is EndReason.TIMEOUT
    assert closes == [] and bot.doors_open_at("F1")
    assert world.building.state("L1").phase is SessionPhase.CLEARING
    other = Bot(world, "r2", "s2", "L1", "F3")
    other.send()
    assert other.served_by is None  # nobody is served around a robot in the doors
    bot.send(passage=Passage.OUTSIDE)
    assert other.served_by == "L1"
    assert closes and closes[0].verb is Verb.CLOSE


def test_doorway_claim_while_moving_is_ignored() -> None:
    """A robot cannot claim the doorway while the cabin travels (the claim would stop the lift)."""
    world = PureWorld.make([settings("L1")])
    bot = Bot(world, "r1", "s1", "L1", "F6")
    bot.send()
    world.run(3)
    bot.send(passage=Passage.ENTERING)
    assert world.building.passage("s1") is Passage.OUTSIDE
    world.run(30, until=lambda: bot.doors_open_at("F6"))
    assert bot.doors_open_at("F6")


def test_fire_mid_ride_aborts_and_the_lift_goes_to_its_fire_floor() -> None:
    """Fire mode during a ride: the session is aborted with FIRE, the cabin goes to the fire floor,
    and new requests are refused with FIRE."""
    world = PureWorld.make([settings("L1")])
    bot = Bot(world, "r1", "s1", "L1", "F1")
    bot.send()
    world.run(5, until=lambda: bot.doors_open_at("F1"))
    bot.send(passage=Passage.ENTERING)
    bot.send(passage=Passage.INSIDE, destination="F6")
    world.run(8)
    assert world.lifts["L1"].status(world.clock.now()).motion is MotionState.UP
    world.lifts["L1"].set_mode(LiftMode.FIRE)
    world.run(1)
    record = bot.end_record()
    assert record is not None and (record.outcome, record.reason) == (SessionOutcome.ABORTED, EndReason.FIRE)
    state = world.building.state("L1")
    assert state.current_mode is LiftMode.FIRE and state.available_modes == []
    world.run(30)
    assert world.lifts["L1"].status(world.clock.now()).floor == "F1"
    late = Bot(world, "r2", "s2", "L1", "F3")
    late.send()
    refused = late.end_record()
    assert refused is not None and refused.reason is EndReason.FIRE and late.served_by is None


@pytest.mark.parametrize("mode", [LiftMode.EMERGENCY, LiftMode.OFFLINE])
def test_emergency_and_offline_refuse_and_abort(mode: LiftMode) -> None:
    """EMERGENCY / OFFLINE reported by the equipment abort the running session and refuse new ones."""
    world = PureWorld.make([settings("L1")])
    bot = Bot(world, "r1", "s1", "L1", "F4")
    bot.send()
    world.run(2)
    world.lifts["L1"].set_mode(mode)
    world.run(1)
    assert bot.end_record().reason is EndReason(mode.value)  # type: ignore[union-attr]
    later = Bot(world, "r2", "s2", "L1", "F2")
    later.send()
    assert later.end_record().reason is EndReason(mode.value)  # type: ignore[union-attr]


def test_fault_on_one_lift_leaves_the_other_in_service() -> None:
    """With one lift in EMERGENCY a request is not refused: the other lift serves it."""
    world = PureWorld.make([settings("L1"), settings("L2")])
    world.lifts["L1"].set_mode(LiftMode.EMERGENCY)
    world.run(1)
    bot = Bot(world, "r1", "s1", "L1", "F2")
    bot.send()
    assert bot.end_record() is None and bot.served_by == "L2"


def test_silent_controller_goes_offline_within_the_status_timeout() -> None:
    """A controller that stops reporting makes the lift OFFLINE within status_timeout_s, aborting its
    session with OFFLINE; when it reports again the lift serves again."""
    world = PureWorld.make([settings("L1", status_timeout_s=4.0)])
    bot = Bot(world, "r1", "s1", "L1", "F5")
    bot.send()
    world.run(2)
    world.silent.add("L1")
    silent_at = world.clock.now()
    world.run(10, until=lambda: world.building.state("L1").current_mode is LiftMode.OFFLINE)
    assert world.clock.now() - silent_at <= 4.0 + world.dt
    assert bot.end_record().reason is EndReason.OFFLINE  # type: ignore[union-attr]
    assert "SILENT" in world.building.state("L1").faults
    world.silent.clear()
    world.run(1)
    again = Bot(world, "r2", "s2", "L1", "F1")
    again.send()
    assert again.served_by == "L1" and world.building.state("L1").current_mode is LiftMode.AGV


def test_lift_that_never_reported_is_offline() -> None:
    """A lift whose controller never reported is OFFLINE after the status timeout; requests are refused."""
    clock = VirtualClock(100.0)
    building = Building("B", [settings("L1", status_timeout_s=3.0)], clock)
    assert building.state("L1").current_mode is LiftMode.UNKNOWN
    clock.advance(4)
    building.tick()
    assert building.state("L1").current_mode is LiftMode.OFFLINE
    building.request(_request("s1", "F2", clock.now()))
    assert building.state("L1").end_of("s1").reason is EndReason.OFFLINE  # type: ignore[union-attr]


def _blocked_world(policy: DoorBlockedPolicy) -> tuple[PureWorld, Bot]:
    world = PureWorld.make([settings("L1", door_blocked_policy=policy, door_blocked_max_s=20.0)])
    bot = Bot(world, "r1", "s1", "L1", "F1")
    bot.send()
    world.run(5, until=lambda: bot.doors_open_at("F1"))
    bot.send(passage=Passage.ENTERING)
    bot.send(passage=Passage.INSIDE)
    world.lifts["L1"].blocked = True
    bot.send(destination="F4")
    world.run(6)
    return world, bot


def test_door_blocked_wait_policy_reports_and_rides_on_when_cleared() -> None:
    """Door blocked under the wait policy: reported in the state, the session waits, and the ride goes
    on once the doors close."""
    world, bot = _blocked_world(DoorBlockedPolicy.WAIT)
    state = world.building.state("L1")
    assert "DOOR_BLOCKED" in state.faults and bot.end_record() is None
    world.lifts["L1"].blocked = False
    world.run(30, until=lambda: bot.doors_open_at("F4"))
    assert bot.doors_open_at("F4") and "DOOR_BLOCKED" not in world.building.state("L1").faults


def test_door_blocked_wait_policy_gives_up_after_its_limit() -> None:
    """Door blocked for longer than door_blocked_max_s under the wait policy: aborted DOOR_BLOCKED."""
    world, bot = _blocked_world(DoorBlockedPolicy.WAIT)
    world.run(25)
    assert bot.end_record().reason is EndReason.DOOR_BLOCKED  # type: ignore[union-attr]


def test_door_blocked_abort_policy_aborts_at_once() -> None:
    """Door blocked under the abort policy: the session is aborted DOOR_BLOCKED as soon as it is seen,
    and the doors stay open for the robot inside."""
    world, bot = _blocked_world(DoorBlockedPolicy.ABORT)
    record = bot.end_record()
    assert record is not None and record.reason is EndReason.DOOR_BLOCKED
    assert world.building.state("L1").phase is SessionPhase.CLEARING


def test_human_mode_keeps_the_lift_for_people() -> None:
    """A HUMAN_MODE session keeps its lift: robots are served by the other lift, or wait for it."""
    world = PureWorld.make([settings("L1"), settings("L2")])
    world.building.request(_request("staff", "", world.clock.now(), kind=LiftRequestType.HUMAN_MODE))
    state = world.building.state("L1")
    assert state.current_mode is LiftMode.HUMAN and state.available_modes == [LiftMode.HUMAN]
    bot = Bot(world, "r1", "s1", "L1", "F2")
    bot.send()
    assert bot.served_by == "L2"
    waiting = Bot(world, "r2", "s2", "L1", "F3")
    waiting.send()
    world.run(20)
    assert waiting.served_by is None and world.building.bound("L1") == "staff"
    world.building.request(_request("staff", "", world.clock.now(), kind=LiftRequestType.END_SESSION))
    assert waiting.served_by == "L1"


def test_human_mode_waits_for_the_running_robot() -> None:
    """HUMAN_MODE asked while a robot rides takes the lift when that session ends, before other robots."""
    world = PureWorld.make([settings("L1")])
    bot = Bot(world, "r1", "s1", "L1", "F1")
    bot.send()
    robot_next = Bot(world, "r2", "s2", "L1", "F2")
    robot_next.send()
    world.building.request(_request("staff", "", world.clock.now(), kind=LiftRequestType.HUMAN_MODE))
    assert world.building.state("L1").queue == ["staff", "s2"]
    world.run(5, until=lambda: bot.doors_open_at("F1"))
    ride(bot, world, "F3")
    assert world.building.bound("L1") == "staff"


def test_bad_requests_are_aborted() -> None:
    """An unknown lift or a floor no lift serves ends the session at once with BAD_REQUEST."""
    world = PureWorld.make([settings("L1")])
    Bot(world, "r1", "s1", "L9", "F1").send()
    Bot(world, "r2", "s2", "L1", "F99").send()
    ends = [world.building.state("L1").end_of(s) for s in ("s1", "s2")]
    assert [e.reason for e in ends if e] == [EndReason.BAD_REQUEST] * 2


def test_riding_to_an_unserved_floor_is_aborted() -> None:
    """Asking to ride to a floor the serving lift does not serve aborts with BAD_REQUEST."""
    world = PureWorld.make([settings("L1", floors=3), settings("L2", floors=6)])
    bot = Bot(world, "r1", "s1", "L1", "F1")
    bot.send()
    world.run(5, until=lambda: bot.doors_open_at("F1"))
    bot.send(passage=Passage.ENTERING)
    bot.send(passage=Passage.INSIDE, destination="F6")
    assert bot.end_record().reason is EndReason.BAD_REQUEST  # type: ignore[union-attr]


def test_new_session_supersedes_the_robots_old_one() -> None:
    """A robot opening a new session frees the lift of its old one (RELEASED, SUPERSEDED)."""
    world = PureWorld.make([settings("L1")])
    old = Bot(world, "r1", "old", "L1", "F4")
    old.send()
    old.alive = False
    Bot(world, "r1", "new", "L1", "F2").send()
    record = old.end_record()
    assert record is not None and (record.outcome, record.reason) == (
        SessionOutcome.RELEASED,
        EndReason.SUPERSEDED,
    )
    assert world.building.bound("L1") == "new"


def test_requests_for_ended_sessions_and_other_robots_are_ignored() -> None:
    """Repeats of an ended session do not reopen it; another robot cannot drive someone's session."""
    world = PureWorld.make([settings("L1")])
    bot = Bot(world, "r1", "s1", "L1", "F3")
    bot.send()
    bot.end()
    bot.ended = False
    bot.send()
    assert not world.building.is_live("s1")
    owner = Bot(world, "r2", "s2", "L1", "F2")
    owner.send()
    Bot(world, "intruder", "s2", "L1", "F6").send()
    world.run(20, until=lambda: owner.doors_open_at("F2"))
    assert owner.doors_open_at("F2")
    world.building.request(_request("s9", "F1", world.clock.now(), building="OTHER"))
    assert not world.building.is_live("s9")


def test_driver_retry_and_impossible() -> None:
    """A RETRY answer is sent again after retry_s; IMPOSSIBLE aborts the session (REFUSED_BY_LIFT)."""
    clock = VirtualClock(0.0)
    building = Building("B", [settings("L1", retry_s=2.0)], clock)
    lift = FakeLift(["F1", "F2", "F3", "F4", "F5", "F6"])
    building.status("L1", lift.status(clock.now()))
    building.request(_request("s1", "F3", clock.now()))
    (call,) = building.take_commands()
    building.command_result(call, DriverResult.RETRY)
    assert building.take_commands() == []
    clock.advance(2.5)
    building.tick()
    assert building.take_commands() == [call]
    building.command_result(call, DriverResult.IMPOSSIBLE)
    assert building.state("L1").end_of("s1").reason is EndReason.REFUSED_BY_LIFT  # type: ignore[union-attr]


def test_session_longer_than_its_maximum_is_aborted() -> None:
    """A session that lasts longer than session_max_s is aborted with TIMEOUT."""
    world = PureWorld.make([settings("L1", session_max_s=30.0, door_hold_max_s=300.0)])
    bot = Bot(world, "r1", "s1", "L1", "F2")
    bot.send()
    world.run(35)
    assert bot.end_record().reason is EndReason.TIMEOUT  # type: ignore[union-attr]


def test_status_for_unknown_lift_is_an_error() -> None:
    """Reporting a lift the building does not have raises ValueError naming it."""
    building = Building("B", [settings("L1")], VirtualClock())
    with pytest.raises(ValueError, match="no lift 'L7'"):
        building.status("L7", LiftStatus(0.0, "F1"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"floors": ()}, "non-empty"),
        ({"floors": ("A", "A")}, "without repeats"),
        ({"floors": ("A", "B"), "fire_floor": "C"}, "fire floor C"),
        ({"floors": ("A",), "heartbeat_timeout_s": 0}, "heartbeat_timeout_s"),
    ],
)
def test_lift_settings_are_checked(kwargs: dict[str, object], message: str) -> None:
    """Impossible lift settings raise ValueError with one clear sentence."""
    with pytest.raises(ValueError, match=message):
        LiftSettings(name="L", **kwargs)  # type: ignore[arg-type]


def _request(
    session: str,
    floor: str,
    now: float,
    *,
    kind: LiftRequestType = LiftRequestType.AGV_MODE,
    building: str = "B",
    lift: str = "L1",
) -> LiftRequest:
    return LiftRequest(
        building=building,
        lift_name=lift,
        session_id=session,
        robot_id="staff" if kind is not LiftRequestType.AGV_MODE else "r",
        request_type=kind,
        destination_floor=floor,
        request_time=now,
    )


def test_bridge_restart_mid_ride_resumes_with_the_same_lift() -> None:
    """The bridge restarts while a robot rides in L2: the robot's next heartbeat (INSIDE, riding to F5)
    binds its session to L2 again, ahead of a robot waiting, and the ride finishes."""
    world = PureWorld.make([settings("L1"), settings("L2")])
    Bot(world, "r0", "s0", "L1", "F6").send()  # keeps L1 busy so that the rider gets L2
    rider = Bot(world, "r1", "s1", "L2", "F1")
    rider.send()
    world.run(10, until=lambda: rider.doors_open_at("F1"))
    rider.send(passage=Passage.ENTERING)
    rider.send(passage=Passage.INSIDE, destination="F5")
    world.run(4)
    for bot in world.bots:
        bot.ended = True  # the old bridge's robots are gone with it
    world.building = Building("B", [settings("L1"), settings("L2")], world.clock, resume_grace_s=3.0)
    world.report()
    Bot(world, "r2", "s2", "L2", "F2").send()  # asks first, but L2 has a robot inside
    world.run(1)
    assert world.building.lift_of("s2") is None  # nobody is served in the grace time
    rider.ended = False
    world.bots.append(rider)
    rider.send()
    assert world.building.lift_of("s1") == "L2"
    world.run(3)
    assert world.building.lift_of("s2") == "L1"
    world.run(30, until=lambda: rider.doors_open_at("F5"))
    assert rider.doors_open_at("F5") and world.lifts["L2"].status(world.clock.now()).floor == "F5"
    rider.send(passage=Passage.EXITING)
    rider.end()
    assert rider.end_record().outcome is SessionOutcome.FINISHED  # type: ignore[union-attr]


def test_nearest_free_cabin_wins_over_the_named_lift() -> None:
    """A robot naming a lift whose cabin is far gets the free lift whose cabin is at its floor."""
    world = PureWorld.make([settings("L1"), settings("L2")])
    world.lifts["L2"].pos = 4.0  # L2 stands at F5
    world.report()
    bot = Bot(world, "r1", "s1", "L1", "F6")
    bot.send()
    assert bot.served_by == "L2"
