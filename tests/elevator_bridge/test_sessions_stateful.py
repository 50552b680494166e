"""A Hypothesis state machine over the pure session logic: random requests, heartbeats, robot steps,
vanishing robots, faults (fire, emergency, offline, silent controller, blocked doors), human mode and
time, on a two-lift building of fake lifts in virtual time.

Checked after every step (and at every 0.5 s of virtual time): at most one session per lift; doors
never closed (nor the cabin sent away) while a live robot is in the doorway; waiting robots are bound
in service order and an idle lift never leaves an eligible robot waiting; a vanished robot's session is
released within the heartbeat timeout; FIRE aborts the running session. At the end: every session ended
exactly once (FINISHED, or RELEASED/ABORTED with a reason) and nothing is left bound.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from lift_testkit import Bot, PureWorld
from lift_testkit import settings as lift_settings

from elevator_bridge.sessions import DoorBlockedPolicy, EventKind, LiftCommand, SessionEvent, Verb
from interfaces.lift import (
    DoorState,
    EndReason,
    LiftMode,
    LiftRequest,
    LiftRequestType,
    MotionState,
    Passage,
    SessionEnd,
    SessionOutcome,
    SessionPhase,
)

LIFTS = ("L1", "L2")
FLOORS = ("F1", "F2", "F3", "F4", "F5")
ROBOTS = ("r1", "r2", "r3", "r4")
HEARTBEAT_S = 6.0
DT = 0.5


@dataclass(eq=False)
class Robot(Bot):
    """A protocol-following robot: boards at ``destination``, rides to ``target``, gets out."""

    target: str = "F1"
    arrived: float = 0.0
    seq: int = 0
    lift_at: str | None = None  # the lift whose doorway/cabin it is in
    pace_s: float = 2.0  # how often it takes its next step by itself
    acted: float = 0.0

    @property
    def key(self) -> tuple[float, int]:
        ready = self.arrived if self.eta is None else max(self.arrived, self.eta)
        return (ready, self.seq)


class LiftSessions(RuleBasedStateMachine):
    """Random life of a two-lift building."""

    def __init__(self) -> None:
        super().__init__()
        self.world: PureWorld
        self.robots: dict[str, Robot] = {}
        self.sessions: dict[str, Robot] = {}
        self.ends: dict[str, list[SessionEnd]] = {}
        self.humans: dict[str, str] = {}
        self.until: dict[tuple[str, str], float] = {}
        self.ids = itertools.count(1)

    @initialize(
        policy=st.sampled_from(DoorBlockedPolicy),
        hold=st.sampled_from([8.0, 20.0]),
    )
    def build(self, policy: DoorBlockedPolicy, hold: float) -> None:
        specs = [
            lift_settings(
                name,
                floors=len(FLOORS),
                heartbeat_timeout_s=HEARTBEAT_S,
                door_hold_max_s=hold,
                status_timeout_s=3.0,
                door_close_timeout_s=8.0,
                door_blocked_policy=policy,
                door_blocked_max_s=15.0,
                session_max_s=240.0,
            )
            for name in LIFTS
        ]
        self.world = PureWorld.make(specs, start=1_000.0)
        self.world.dt = DT
        self.world.on_command = self.check_command
        self.absorb()

    # ---- robots --------------------------------------------------------------------------------

    @precondition(lambda self: len(self.sessions) < 24)
    @rule(
        robot=st.sampled_from(ROBOTS),
        lift=st.sampled_from(LIFTS),
        floor=st.sampled_from(FLOORS),
        to=st.sampled_from(FLOORS),
        eta=st.one_of(st.none(), st.floats(-10, 90)),
        pace=st.sampled_from([0.5, 2.0, 5.0, 1_000.0]),
        anew=st.booleans(),
    )
    def request(
        self, robot: str, lift: str, floor: str, to: str, eta: float | None, pace: float, anew: bool
    ) -> None:
        """A robot outside any lift opens a new session (``anew``: even if its last one still runs)."""
        old = self.robots.get(robot)
        busy = old is not None and old.alive and not old.ended and not self.gone(old)
        if busy and old is not None and (old.passage is not Passage.OUTSIDE or not anew):
            return  # a robot in a cabin or doorway does not ask for another lift
        if old is not None:
            old.alive, old.ended = False, True
        now = self.world.clock.now()
        session = f"s{next(self.ids)}"
        bot = Robot(
            self.world,
            robot,
            session,
            lift,
            floor,
            eta=None if eta is None else now + eta,
            target=to,
            arrived=now,
            seq=len(self.sessions) + 1,
            pace_s=pace,
            acted=now,
        )
        self.robots[robot], self.sessions[session] = bot, bot
        bot.send()
        self.absorb()

    @rule(robot=st.sampled_from(ROBOTS))
    def step_robot(self, robot: str) -> None:
        """The robot takes its next protocol step if it can (board, ride, get out, end; or leave an
        aborted session)."""
        bot = self.robots.get(robot)
        if bot is None or not bot.alive or bot.ended:
            return
        bot.acted = self.world.clock.now()
        if self.gone(bot):
            self.leave(bot)
        else:
            self.advance_robot(bot)
        self.absorb()

    def advance_robot(self, bot: Robot) -> None:
        lift = bot.served_by
        if lift is None:
            return
        there = self.open_at(lift, bot.destination)
        if bot.passage is Passage.OUTSIDE and not bot.lift_at and there:
            bot.lift_at = lift
            bot.send(passage=Passage.ENTERING)
        elif bot.passage is Passage.ENTERING and self.open_at(lift):
            bot.send(passage=Passage.INSIDE)
        elif bot.passage is Passage.INSIDE and bot.destination != bot.target:
            bot.send(destination=bot.target)
        elif bot.passage is Passage.INSIDE and there:
            bot.send(passage=Passage.EXITING)
        elif bot.passage is Passage.EXITING and self.open_at(lift):
            bot.lift_at = None
            bot.end()

    def leave(self, bot: Robot) -> None:
        """After its session ended, a robot backs out of the doorway or gets out of the cabin."""
        if bot.passage.in_doorway and bot.lift_at and self.open_at(bot.lift_at):
            bot.lift_at = None
            bot.send(passage=Passage.OUTSIDE)
        elif bot.passage is Passage.INSIDE and bot.lift_at and self.stopped(bot.lift_at):
            bot.send(passage=Passage.EXITING)  # the bridge opens the doors for it
        elif bot.passage is Passage.OUTSIDE:
            bot.end()

    @rule(robot=st.sampled_from(ROBOTS), how=st.sampled_from(["vanish", "cancel"]))
    def misbehave(self, robot: str, how: str) -> None:
        """The robot stops talking (crash, network loss), or, waiting outside, ends its session."""
        bot = self.robots.get(robot)
        if bot is None or not bot.alive or bot.ended:
            return
        if how == "vanish":
            bot.alive = False
        elif bot.passage is Passage.OUTSIDE:
            bot.end()
            self.absorb()

    # ---- people and equipment ------------------------------------------------------------------

    @rule(lift=st.sampled_from(LIFTS))
    def human_mode(self, lift: str) -> None:
        """Staff keep a lift for people (HUMAN_MODE), or give it back (END_SESSION)."""
        now = self.world.clock.now()
        if lift in self.humans:
            kind, session = LiftRequestType.END_SESSION, self.humans.pop(lift)
        else:
            kind, session = LiftRequestType.HUMAN_MODE, f"staff-{next(self.ids)}"
            self.humans[lift] = session
        self.world.building.request(
            LiftRequest(
                building="B",
                lift_name=lift,
                session_id=session,
                robot_id="staff",
                request_type=kind,
                request_time=now,
            )
        )
        self.world.flush()
        self.absorb()

    @rule(
        lift=st.sampled_from(LIFTS),
        fault=st.sampled_from(
            [
                "normal",
                "FIRE",
                "EMERGENCY",
                "OFFLINE",
                "silent 2",
                "silent 10",
                "silent 60",
                "blocked 5",
                "blocked 30",
            ]
        ),
    )
    def fault(self, lift: str, fault: str) -> None:
        """The equipment changes mode (normal, FIRE, EMERGENCY, OFFLINE), its controller falls silent
        for a while, or something blocks its doors for a while."""
        what, _, seconds = fault.partition(" ")
        if what == "silent":
            self.world.silent.add(lift)
            self.until[("silent", lift)] = self.world.clock.now() + float(seconds)
        elif what == "blocked":
            self.world.lifts[lift].blocked = True
            self.until[("blocked", lift)] = self.world.clock.now() + float(seconds)
        else:
            self.set_mode(lift, LiftMode.HUMAN if what == "normal" else LiftMode(what))

    def set_mode(self, lift: str, mode: LiftMode) -> None:
        """Change the equipment's mode and report it; FIRE must abort the running session at once."""
        running = self.world.building.bound(lift)
        was_active = running is not None and self.world.building.state(lift).phase not in (
            SessionPhase.CLEARING,
            SessionPhase.HUMAN,
        )
        reported = lift not in self.world.silent and self.world.building.usable(lift)
        self.world.lifts[lift].set_mode(mode)
        self.world.report()
        self.absorb()
        if mode is LiftMode.FIRE and running is not None and was_active and reported:
            assert self.world.building.state(lift).phase in (SessionPhase.IDLE, SessionPhase.CLEARING)
            assert self.ends[running][0].reason is EndReason.FIRE

    def heal(self) -> None:
        """Timed faults end."""
        now = self.world.clock.now()
        for (what, lift), until in list(self.until.items()):
            if now >= until:
                del self.until[(what, lift)]
                if what == "silent":
                    self.world.silent.discard(lift)
                else:
                    self.world.lifts[lift].blocked = False

    @rule(seconds=st.sampled_from([0.5, 3.0, 10.0, 30.0, 60.0]))
    def wait(self, seconds: float) -> None:
        """Time passes; live robots repeat their requests every 2 s and take their steps at their pace."""
        for _ in range(int(seconds / DT)):
            self.heal()
            self.world.step()
            self.absorb()
            self.check_all()
            now = self.world.clock.now()
            for name, bot in self.robots.items():
                if bot.alive and not bot.ended and now - bot.acted >= bot.pace_s:
                    self.step_robot(name)
            self.check_all()

    # ---- checks --------------------------------------------------------------------------------

    def absorb(self) -> None:
        """Take the building's events: record ends, check the order of bindings."""
        events = self.world.building.take_events()
        for event in events:
            if event.kind is EventKind.ENDED and event.end is not None:
                self.ends.setdefault(event.session_id, []).append(event.end)
        self.check_binding_order([e for e in events if e.kind is EventKind.BOUND])

    def check_binding_order(self, bound: list[SessionEvent]) -> None:
        """No robot still waiting was ahead (in service order) of one bound to a lift it could take."""
        waiting = self.world.building.waiting()
        for event in bound:
            robot = self.sessions.get(event.session_id)
            if robot is None or event.lift is None:
                continue  # a human-mode session
            for view in waiting:
                ahead = self.sessions.get(view.session_id)
                if ahead is None or event.lift not in view.eligible:
                    continue
                assert ahead.key >= robot.key, f"{view.session_id} was ahead of {event.session_id}"

    def check_command(self, command: LiftCommand) -> None:
        """The bridge never closes doors or calls the cabin while a live robot is in its doorway."""
        if command.verb is Verb.HOLD_OPEN:
            return
        for bot in self.robots.values():
            if bot.lift_at == command.lift and bot.passage.in_doorway and self.protected(bot):
                raise AssertionError(f"{command} while {bot.robot} is {bot.passage} in {command.lift}")

    @invariant()
    def one_session_per_lift(self) -> None:
        """At most one session is bound to each lift."""
        if not hasattr(self, "world"):
            return
        for lift in LIFTS:
            bound = [s for s in self.sessions if self.world.building.lift_of(s) == lift]
            assert len(bound) <= 1, f"{lift} holds {bound}"

    def check_all(self) -> None:
        self.one_session_per_lift()
        self.doors_stay_open_for_robots_in_the_doorway()
        self.idle_lift_serves_waiting_robot()
        self.vanished_robots_are_released()
        for ends in self.ends.values():
            assert len(ends) == 1, f"ended twice: {ends}"

    def doors_stay_open_for_robots_in_the_doorway(self) -> None:
        """Physically: no door closes on a protected robot in the doorway, but in fire recall."""
        for bot in self.robots.values():
            if bot.lift_at is None or not bot.passage.in_doorway or not self.protected(bot):
                continue
            lift = self.world.lifts[bot.lift_at]
            if lift.mode is LiftMode.HUMAN and bot.lift_at not in self.world.silent:
                assert lift.door_dir != -1, f"doors closing on {bot.robot} in {bot.lift_at}"

    def idle_lift_serves_waiting_robot(self) -> None:
        """A free lift in service never leaves a robot waiting that it could serve now."""
        building = self.world.building
        for lift in LIFTS:
            if building.bound(lift) is None and building.usable(lift) and not building.reserved(lift):
                for view in building.waiting():
                    assert lift not in view.eligible, f"{lift} idle while {view.session_id} waits"

    def vanished_robots_are_released(self) -> None:
        """A silent robot's session is gone within the heartbeat timeout (plus one step)."""
        now = self.world.clock.now()
        for session, bot in self.sessions.items():
            if not bot.alive and self.world.building.is_live(session):
                assert now - bot.last_sent <= HEARTBEAT_S + DT, f"{session} silent since {bot.last_sent}"

    # ---- helpers -------------------------------------------------------------------------------

    def gone(self, bot: Robot) -> bool:
        return bot.session in self.ends

    def protected(self, bot: Robot) -> bool:
        """A robot the bridge must still protect: it spoke within the heartbeat timeout."""
        return self.world.clock.now() - bot.last_sent <= HEARTBEAT_S

    def stopped(self, lift: str) -> bool:
        return self.world.lifts[lift].status(self.world.clock.now()).motion is MotionState.STOPPED

    def open_at(self, lift: str, floor: str | None = None) -> bool:
        status = self.world.lifts[lift].status(self.world.clock.now())
        at = floor is None or status.floor == floor
        return at and status.door is DoorState.OPEN and status.motion is MotionState.STOPPED

    def teardown(self) -> None:
        """Everyone leaves; after the heartbeat timeout every session has ended exactly once."""
        if not hasattr(self, "world"):
            return
        for lift in list(self.humans):
            self.human_mode(lift)
        for bot in self.robots.values():
            bot.alive = False
        self.wait(HEARTBEAT_S + 2.0)
        self.wait(HEARTBEAT_S + 2.0)
        for session in self.sessions:
            assert not self.world.building.is_live(session), f"{session} still live"
            (end,) = self.ends[session]
            if end.outcome is not SessionOutcome.FINISHED:
                assert end.reason is not None
        for lift in LIFTS:
            assert self.world.building.bound(lift) is None


LiftSessions.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLiftSessions = LiftSessions.TestCase
TestLiftSessions.__doc__ = "Random request/heartbeat/fault/time sequences keep the session rules."
