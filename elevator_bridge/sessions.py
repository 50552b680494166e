"""Lift sessions of one building: the bridge's pure core (no I/O, no sleeping; time from a ``Clock``).

``Building`` takes what happens — robot requests (``request``), equipment reports (``status``), the
passing of time (``tick``), answers to its commands (``command_result``) — and answers with driver
commands to send (``take_commands``), the state of each lift (``state``) and a log of session events
(``take_events``). The service (``elevator_bridge.service``) moves these between MQTT and the drivers;
tests drive it directly with a ``VirtualClock``.

Rules (issue 4; Open-RMF serves lifts first come first served and leaves stale sessions behind — here):

- **One session per lift.** A session is bound to at most one lift and a lift holds at most one
  session; it stays bound, after it has ended, while its robot is still in the doorway or the cabin
  (phase CLEARING), so nobody else is served around a robot.
- **Queue by readiness.** Waiting sessions are served in order of ``ready`` = max(first request, ETA),
  then arrival. A session becomes eligible for a lift once ``ready - lead <= now``, ``lead`` being
  the time the cabin needs to reach the robot's floor: a robot still far away neither blocks one
  already waiting nor keeps a lift idle, and its cabin is sent so as to arrive with it.
- **Building-wide dispatch.** A free lift serves the first eligible waiting session whose floor it
  serves: the free cabin that reaches the robot's floor soonest (the lift named in the request when
  it is as near as any), so a robot asking for a busy or distant lift gets an idle, nearer one.
  A robot whose first request says it is already in a lift (INSIDE, or in its doors: the bridge
  restarted under it) is served by that lift only, before anyone else; for ``resume_grace_s`` after
  the start only such robots are served, so that they can speak up before a lift is given away.
- **Doors.** At the session's floor the doors are held open while the robot wants them open, at most
  ``door_hold_max_s`` after they opened (or after the robot's ETA, if later); then the session is
  aborted with TIMEOUT. The bridge never sends *close* or *call* while the robot is in the doorway
  (ENTERING / EXITING), not even after the session has ended; only a vanished robot (no heartbeat) is
  no longer protected, as the bridge cannot know where it is (the equipment's own door edge is).
- **Heartbeat.** Every request refreshes its session; a robot silent for ``heartbeat_timeout_s`` has
  its session RELEASED (HEARTBEAT_LOST), bound or waiting.
- **Modes.** FIRE / EMERGENCY / OFFLINE (reported, or no status for ``status_timeout_s``) refuse new
  sessions when no other lift of the building can serve them, abort waiting sessions no lift can serve
  any more, and abort the running session with the mode as the reason; the equipment does the rest
  (fire recall to the fire floor). A HUMAN_MODE session keeps its lift for people: no robot session
  starts on it until it ends.
- **Door blocked.** Doors that stay open ``door_close_timeout_s`` after the bridge asked them to
  close, or a blocked-door fault code, are reported in the state; by policy the session then waits
  (up to ``door_blocked_max_s``) or is aborted at once with DOOR_BLOCKED.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from elevator_bridge.drivers.base import DriverResult, LiftStatus
from interfaces.clock import Clock
from interfaces.lift import (
    DoorState,
    EndReason,
    LiftMode,
    LiftRequest,
    LiftRequestType,
    LiftState,
    MotionState,
    Passage,
    SessionEnd,
    SessionOutcome,
    SessionPhase,
)

FAULT_MODES = {LiftMode.FIRE: EndReason.FIRE, LiftMode.EMERGENCY: EndReason.EMERGENCY}
SEVERITY = (EndReason.FIRE, EndReason.EMERGENCY, EndReason.OFFLINE)
DOOR_BLOCKED = "DOOR_BLOCKED"


class DoorBlockedPolicy(StrEnum):
    WAIT = "wait"  # report it and keep trying, up to door_blocked_max_s, then abort
    ABORT = "abort"  # abort the session at once


@dataclass(frozen=True, slots=True)
class LiftSettings:
    """One lift as the session logic needs it (times in seconds; ``floors`` lowest first)."""

    name: str
    floors: tuple[str, ...]
    fire_floor: str | None = None
    heartbeat_timeout_s: float = 10.0
    door_hold_max_s: float = 60.0
    status_timeout_s: float = 5.0
    door_close_timeout_s: float = 12.0
    door_blocked_policy: DoorBlockedPolicy = DoorBlockedPolicy.WAIT
    door_blocked_max_s: float = 60.0
    door_blocked_faults: tuple[str, ...] = (DOOR_BLOCKED,)
    session_max_s: float = 900.0
    floor_travel_s: float = 2.0
    door_time_s: float = 3.0
    retry_s: float = 3.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a lift needs a name")
        if not self.floors or len(set(self.floors)) != len(self.floors):
            raise ValueError(f"lift {self.name}: floors must be a non-empty list without repeats")
        if self.fire_floor is not None and self.fire_floor not in self.floors:
            raise ValueError(f"lift {self.name}: fire floor {self.fire_floor} is not one of its floors")
        for name in ("heartbeat_timeout_s", "door_hold_max_s", "status_timeout_s", "door_close_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"lift {self.name}: {name} must be > 0")


class Verb(StrEnum):
    CALL = "call"
    HOLD_OPEN = "hold_open"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class LiftCommand:
    """One driver verb for one lift, on behalf of a session (``""`` when none)."""

    lift: str
    verb: Verb
    floor: str | None = None
    session_id: str = ""


class EventKind(StrEnum):
    QUEUED = "queued"
    BOUND = "bound"
    ENDED = "ended"
    UNBOUND = "unbound"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Something that happened to a session (for logs and tests)."""

    time: float
    kind: EventKind
    session_id: str
    robot_id: str = ""
    lift: str | None = None
    detail: str = ""
    end: SessionEnd | None = None  # for ENDED


@dataclass(frozen=True, slots=True)
class WaitingView:
    """A waiting session: its service-order key and the lifts it is eligible for now."""

    session_id: str
    robot_id: str
    floor: str
    ready: float
    seq: int
    eligible: tuple[str, ...]


@dataclass(eq=False)
class _Session:
    id: str
    robot: str
    human: bool
    preferred: str
    floor: str  # where the robot boards (the destination while it has not ridden)
    destination: str
    door: DoorState
    arrived: float
    heard: float
    seq: int
    eta: float | None = None
    passage: Passage = Passage.OUTSIDE
    lift: str | None = None
    bound_at: float = 0.0
    hold_from: float | None = None
    rode: bool = False
    pinned: bool = False  # only its preferred lift may serve it (people; a robot already in that lift)
    end: SessionEnd | None = None
    clearing_since: float = 0.0

    @property
    def ready(self) -> float:
        """When the robot is (or plans to be) at the lift."""
        return self.arrived if self.eta is None else max(self.arrived, self.eta)

    @property
    def key(self) -> tuple[float, int]:
        return (self.ready, self.seq)


@dataclass(eq=False)
class _Lift:
    settings: LiftSettings
    created: float
    ended: deque[SessionEnd]
    status: LiftStatus | None = None
    heard: float | None = None
    session: _Session | None = None
    door_cmd: Verb | None = None
    door_cmd_at: float = -math.inf
    call_cmd: str | None = None
    call_cmd_at: float = -math.inf
    retry_after: float = -math.inf
    close_wanted_since: float | None = None
    blocked_since: float | None = None
    resync: bool = False  # after a fault: send the door wish again, whatever was sent before

    @property
    def name(self) -> str:
        return self.settings.name

    def stopped_at(self, floor: str | None = None) -> bool:
        """The cabin stands still at ``floor`` (at any known floor when None)."""
        st = self.status
        if st is None or st.floor is None or st.motion is not MotionState.STOPPED:
            return False
        return floor is None or st.floor == floor


class Building:
    """The lift sessions of one building (see the module docstring for the rules)."""

    def __init__(
        self,
        name: str,
        lifts: Sequence[LiftSettings],
        clock: Clock,
        *,
        ended_shown: int = 16,
        remembered: int = 4096,
        resume_grace_s: float = 0.0,
    ) -> None:
        if not lifts:
            raise ValueError(f"building {name}: no lifts")
        if len({lift.name for lift in lifts}) != len(lifts):
            raise ValueError(f"building {name}: lift names repeat")
        self.name = name
        self._clock = clock
        now = clock.now()
        self._lifts = {s.name: _Lift(s, now, deque(maxlen=ended_shown)) for s in lifts}
        self._live: dict[str, _Session] = {}
        self._gone: dict[str, None] = {}  # ended session ids (ordered, bounded): repeats are ignored
        self._remembered = remembered
        self._commands: list[LiftCommand] = []
        self._events: list[SessionEvent] = []
        self._seq = 0
        self._serve_from = now + resume_grace_s  # until then only robots already in a lift are served

    # ---- inputs ----------------------------------------------------------------------------------

    def request(self, req: LiftRequest) -> None:
        """Take one request (a new session, a heartbeat, a step of the robot, or END_SESSION)."""
        if req.building != self.name:
            self._event(EventKind.IGNORED, req.session_id, req.robot_id, detail=f"building {req.building}")
            return
        session = self._live.get(req.session_id)
        if session is None:
            if req.session_id not in self._gone and req.request_type is not LiftRequestType.END_SESSION:
                self._open(req)
        elif session.robot != req.robot_id:
            self._event(EventKind.IGNORED, session.id, req.robot_id, detail="session of another robot")
        else:
            session.heard = self._clock.now()
            self._follow(session, req)
        self._update()

    def status(self, lift: str, status: LiftStatus) -> None:
        """Take one report of a lift's equipment."""
        state = self._lift(lift)
        state.status, state.heard = status, self._clock.now()
        self._update()

    def tick(self) -> None:
        """Let time pass: heartbeats, hold times, silent controllers, the queue."""
        self._update()

    def command_result(self, command: LiftCommand, result: DriverResult) -> None:
        """The driver's answer to a command: RETRY sends it again later, IMPOSSIBLE aborts."""
        lift = self._lift(command.lift)
        if result is DriverResult.SUCCESS:
            return
        if result is DriverResult.RETRY:
            lift.retry_after = self._clock.now() + lift.settings.retry_s
            if command.verb is Verb.CALL:
                lift.call_cmd = None
            else:
                lift.door_cmd = None
        else:
            session = lift.session
            if session is not None and session.id == command.session_id and session.end is None:
                self._end(session, SessionOutcome.ABORTED, EndReason.REFUSED_BY_LIFT)
        self._update()

    # ---- outputs ---------------------------------------------------------------------------------

    def take_commands(self) -> list[LiftCommand]:
        """The driver commands decided since the last call, in order."""
        commands, self._commands = self._commands, []
        return commands

    def take_events(self) -> list[SessionEvent]:
        """The session events since the last call, in order."""
        events, self._events = self._events, []
        return events

    @property
    def lifts(self) -> list[str]:
        return list(self._lifts)

    def state(self, lift: str) -> LiftState:
        """The state to publish for ``lift`` now."""
        state = self._lift(lift)
        st, session = state.status, state.session
        active = session is not None and session.end is None and not session.human
        return LiftState(
            lift_time=self._clock.now(),
            building=self.name,
            lift_name=state.name,
            available_floors=list(state.settings.floors),
            current_floor=st.floor if st else None,
            destination_floor=session.destination if active and session else None,
            door_state=st.door if st else DoorState.CLOSED,
            motion_state=st.motion if st else MotionState.UNKNOWN,
            available_modes=self._available_modes(state),
            current_mode=self._mode(state),
            session_id=session.id if session else "",
            robot_id=session.robot if session else "",
            phase=self._phase(state),
            queue=[s.id for s in self._waiting() if self._may_serve(state, s)],
            faults=self._faults(state),
            ended=list(state.ended),
        )

    def bound(self, lift: str) -> str | None:
        """The session bound to ``lift`` (running or clearing), if any."""
        session = self._lift(lift).session
        return session.id if session else None

    def lift_of(self, session_id: str) -> str | None:
        """The lift a live session is bound to (None while it waits or once it is gone)."""
        session = self._live.get(session_id)
        return session.lift if session else None

    def is_live(self, session_id: str) -> bool:
        """Whether the session waits, runs or clears (has not been forgotten)."""
        return session_id in self._live

    def passage(self, session_id: str) -> Passage | None:
        """Where a live session's robot is, as the bridge accepted it."""
        session = self._live.get(session_id)
        return session.passage if session else None

    def heard(self, session_id: str) -> float | None:
        """When a live session's robot was last heard."""
        session = self._live.get(session_id)
        return session.heard if session else None

    def usable(self, lift: str) -> bool:
        """Whether the lift reports and is in normal service (no FIRE / EMERGENCY / OFFLINE)."""
        state = self._lift(lift)
        return state.status is not None and self._fault(state) is None

    def reserved(self, lift: str) -> bool:
        """Whether a session only this lift may serve waits for it (HUMAN_MODE, or a robot inside)."""
        return any(s.pinned and s.preferred == lift for s in self._waiting())

    def waiting(self) -> list[WaitingView]:
        """The waiting sessions in service order, each with the lifts it is eligible for now."""
        now = self._clock.now()
        return [
            WaitingView(s.id, s.robot, s.floor, s.ready, s.seq, tuple(self._eligible(s, now)))
            for s in self._waiting()
        ]

    # ---- requests --------------------------------------------------------------------------------

    def _open(self, req: LiftRequest) -> None:
        """A new session: refuse it, or queue it."""
        now = self._clock.now()
        human = req.request_type is LiftRequestType.HUMAN_MODE
        floor = req.destination_floor
        session = _Session(
            id=req.session_id,
            robot=req.robot_id,
            human=human,
            preferred=req.lift_name,
            floor=floor,
            destination=floor,
            door=req.door_state,
            arrived=now,
            heard=now,
            seq=self._next_seq(),
            eta=req.eta,
            pinned=human,
        )
        if not human and req.passage is not Passage.OUTSIDE:
            # a robot already in (or in the doors of) a lift, e.g. after the bridge restarted
            session.pinned, session.passage = True, req.passage
            session.rode = req.passage in (Passage.INSIDE, Passage.EXITING)
        self._live[session.id] = session
        self._event(EventKind.QUEUED, session.id, session.robot, req.lift_name, f"floor {floor or '-'}")
        if req.lift_name not in self._lifts or (not human and not self._serving(floor)):
            self._end(session, SessionOutcome.ABORTED, EndReason.BAD_REQUEST)
            return
        if not human and session.robot:
            self._supersede(session)
        reason = self._refusal(session)
        if reason is not None:
            self._end(session, SessionOutcome.ABORTED, reason)

    def _supersede(self, session: _Session) -> None:
        """A robot opening a new session has left its older ones: free their lifts."""
        for other in list(self._live.values()):
            if other is session or other.robot != session.robot or other.human:
                continue
            if other.end is None:
                self._end(other, SessionOutcome.RELEASED, EndReason.SUPERSEDED, clear=False)
            else:
                self._unbind(other)

    def _follow(self, session: _Session, req: LiftRequest) -> None:
        """A request for a live session: END_SESSION, or the robot's latest wishes and whereabouts."""
        if req.request_type is LiftRequestType.END_SESSION:
            if session.end is None:
                self._end(session, SessionOutcome.FINISHED, None, clear=False)
            else:
                self._unbind(session)
            return
        self._move_robot(session, req.passage)
        if session.end is not None or session.human:
            return
        if session.lift is None:
            session.eta = req.eta
        session.door = req.door_state
        if req.destination_floor != session.destination:
            self._retarget(session, req.destination_floor)

    def _move_robot(self, session: _Session, passage: Passage) -> None:
        """Accept where the robot says it is; the doorway only while the cabin stands at a floor."""
        if passage is session.passage:
            return
        lift = self._lifts[session.lift] if session.lift else None
        where = None if session.end is not None else session.destination
        if passage.in_doorway and (lift is None or not lift.stopped_at(where)):
            self._event(EventKind.IGNORED, session.id, session.robot, session.lift, f"{passage} now")
            return
        if passage is Passage.INSIDE and lift is None:
            self._event(EventKind.IGNORED, session.id, session.robot, None, "INSIDE before a lift")
            return
        session.passage = passage
        if passage is Passage.INSIDE and not session.rode:
            session.rode = True
            session.floor = lift.status.floor if lift and lift.status and lift.status.floor else session.floor
        if session.end is not None and passage is Passage.OUTSIDE:
            self._unbind(session)

    def _retarget(self, session: _Session, floor: str) -> None:
        """The robot wants the cabin at another floor (its boarding floor, or where it rides to)."""
        if session.passage.in_doorway:
            return  # not while it is between the doors; its next heartbeat repeats the wish
        floors = self._lifts[session.lift].settings.floors if session.lift else self._serving(floor)
        if floor not in floors:
            self._end(session, SessionOutcome.ABORTED, EndReason.BAD_REQUEST)
            return
        session.destination, session.hold_from = floor, None
        if not session.rode:
            session.floor = floor

    def _refusal(self, session: _Session) -> EndReason | None:
        """Why no lift can serve this session now (the most severe fault), or None."""
        if session.pinned:
            return self._fault(self._lifts[session.preferred])
        faults = [self._fault(lift) for lift in self._lifts.values() if session.floor in lift.settings.floors]
        if any(f is None for f in faults):
            return None
        return min((f for f in faults if f is not None), key=SEVERITY.index)

    # ---- the update: timeouts, modes, dispatch, door/call commands ---------------------------------

    def _update(self) -> None:
        now = self._clock.now()
        self._expire_heartbeats(now)
        for lift in self._lifts.values():
            self._check_lift(lift, now)
        for session in list(self._waiting()):
            reason = self._refusal(session)
            if reason is not None:
                self._end(session, SessionOutcome.ABORTED, reason)
        self._dispatch(now)
        for lift in self._lifts.values():
            self._reconcile(lift, now)

    def _expire_heartbeats(self, now: float) -> None:
        for session in list(self._live.values()):
            if session.human:
                continue
            if now - session.heard > self._heartbeat_timeout(session):
                if session.end is None:
                    self._end(session, SessionOutcome.RELEASED, EndReason.HEARTBEAT_LOST, clear=False)
                else:
                    self._unbind(session)

    def _check_lift(self, lift: _Lift, now: float) -> None:
        """Faults, session length, hold time and blocked doors of the session bound to ``lift``."""
        fault = self._fault(lift)
        if fault is not None:
            lift.call_cmd, lift.close_wanted_since, lift.blocked_since = None, None, None
            lift.resync = True  # the equipment may have dropped (or kept) our hold meanwhile
        blocked = fault is None and self._blocked(lift, now)
        session = lift.session
        if session is None or session.end is not None:
            return
        settings = lift.settings
        if fault is not None:
            self._end(session, SessionOutcome.ABORTED, fault)
        elif session.human:
            return
        elif now - session.bound_at > settings.session_max_s or self._hold_expired(lift, session, now):
            self._end(session, SessionOutcome.ABORTED, EndReason.TIMEOUT)
        elif blocked and (
            settings.door_blocked_policy is DoorBlockedPolicy.ABORT
            or now - (lift.blocked_since or now) > settings.door_blocked_max_s
        ):
            self._end(session, SessionOutcome.ABORTED, EndReason.DOOR_BLOCKED)

    def _hold_expired(self, lift: _Lift, session: _Session, now: float) -> bool:
        """Whether the doors have been held for this stop longer than allowed (starts the hold)."""
        holding = (
            session.door is DoorState.OPEN
            and lift.stopped_at(session.destination)
            and lift.status is not None
            and lift.status.door is DoorState.OPEN
        )
        if not holding:
            if not session.passage.in_doorway:
                session.hold_from = None
            return False
        if session.hold_from is None:
            session.hold_from = now
        start = session.hold_from
        if not session.rode and session.eta is not None:
            start = max(start, session.eta)
        return now - start > lift.settings.door_hold_max_s

    def _blocked(self, lift: _Lift, now: float) -> bool:
        """Doors that will not close (fault code, or still open long after the close command)."""
        st = lift.status
        if st is None:
            return False
        coded = any(code in lift.settings.door_blocked_faults for code in st.faults)
        late = (
            lift.close_wanted_since is not None
            and st.door is not DoorState.CLOSED
            and now - lift.close_wanted_since > lift.settings.door_close_timeout_s
        )
        if coded or late:
            lift.blocked_since = lift.blocked_since if lift.blocked_since is not None else now
            return True
        lift.blocked_since = None
        return False

    def _dispatch(self, now: float) -> None:
        """Bind waiting sessions to free lifts: pinned ones (people, robots already in a lift) first,
        then robots in service order."""
        free = [lift for lift in self._lifts.values() if lift.session is None and self._usable(lift)]
        waiting = self._waiting()
        for session in [s for s in waiting if s.pinned]:
            lift = self._lifts[session.preferred]
            if lift in free:
                self._bind(session, lift, now)
                free.remove(lift)
        reserved = {s.preferred for s in waiting if s.pinned and s.lift is None}
        free = [lift for lift in free if lift.name not in reserved]
        if now < self._serve_from:
            return
        for session in [s for s in waiting if not s.pinned and s.lift is None]:
            if not free:
                return
            names = self._eligible(session, now, free)
            if not names:
                continue
            nearest = self._lead(self._lifts[names[0]], session.floor)
            preferred = self._lifts.get(session.preferred)
            pick = names[0]
            if session.preferred in names and preferred and self._lead(preferred, session.floor) <= nearest:
                pick = session.preferred  # as near as the nearest: the robot's choice
            lift = self._lifts[pick]
            self._bind(session, lift, now)
            free.remove(lift)

    def _eligible(self, session: _Session, now: float, among: Iterable[_Lift] | None = None) -> list[str]:
        """Lifts serving the session's floor that could leave for it now, nearest first."""
        if session.pinned:
            return [session.preferred]
        lifts = list(self._lifts.values()) if among is None else list(among)
        order = list(self._lifts)
        leads = [
            (self._lead(lift, session.floor), order.index(lift.name), lift.name)
            for lift in lifts
            if session.floor in lift.settings.floors and self._usable(lift)
        ]
        return [name for lead, _, name in sorted(leads) if session.ready - lead <= now]

    def _lead(self, lift: _Lift, floor: str) -> float:
        """How long the cabin needs to stand at ``floor`` with its doors open (an estimate)."""
        settings, st = lift.settings, lift.status
        target = settings.floors.index(floor)
        here = settings.floors.index(st.floor) if st and st.floor in settings.floors else None
        storeys = len(settings.floors) - 1 if here is None else abs(target - here)
        closing = settings.door_time_s if storeys and st and st.door is not DoorState.CLOSED else 0.0
        return closing + storeys * settings.floor_travel_s + settings.door_time_s

    def _reconcile(self, lift: _Lift, now: float) -> None:
        """Send the door and call commands that bring the equipment to what the session needs."""
        st = lift.status
        if st is None or self._fault(lift) is not None or now < lift.retry_after:
            return
        door, call = self._desired(lift, now)
        if door is Verb.CLOSE and st.door is DoorState.CLOSED and lift.door_cmd is not Verb.HOLD_OPEN:
            door = None  # already shut and not held by us: nothing to release
        if st.door is DoorState.CLOSED or door is not Verb.CLOSE:
            lift.close_wanted_since = None
        session_id = lift.session.id if lift.session else ""
        retry = lift.settings.retry_s
        resend = lift.resync or self._door_lagging(lift, door, now, retry)
        if door is not None and (door is not lift.door_cmd or resend):
            self._commands.append(LiftCommand(lift.name, door, None, session_id))
            lift.door_cmd, lift.door_cmd_at = door, now
        lift.resync = False
        if door is Verb.CLOSE and st.door is not DoorState.CLOSED and lift.close_wanted_since is None:
            lift.close_wanted_since = now
        if call is not None and (call != lift.call_cmd or self._call_lagging(lift, call, now, retry)):
            self._commands.append(LiftCommand(lift.name, Verb.CALL, call, session_id))
            lift.call_cmd, lift.call_cmd_at = call, now

    def _desired(self, lift: _Lift, now: float) -> tuple[Verb | None, str | None]:
        """(door verb, floor to call) the bound session needs; None where the bridge has no wish."""
        session = lift.session
        if session is None or session.human:
            return (Verb.CLOSE if lift.door_cmd is Verb.HOLD_OPEN else None), None
        if session.passage.in_doorway:
            return Verb.HOLD_OPEN, None  # never close or move with a robot between the doors
        if session.end is not None:
            inside = session.passage is Passage.INSIDE
            if inside and now - session.clearing_since <= lift.settings.door_hold_max_s:
                return (Verb.HOLD_OPEN if lift.stopped_at() else None), None
            return Verb.CLOSE, None
        if not lift.stopped_at(session.destination):
            return Verb.CLOSE, session.destination
        if session.door is DoorState.OPEN:
            return Verb.HOLD_OPEN, None
        return Verb.CLOSE, None

    @staticmethod
    def _door_lagging(lift: _Lift, door: Verb | None, now: float, retry: float) -> bool:
        """The equipment has not done the last door command for a while: press again."""
        st = lift.status
        if door is None or st is None or now - lift.door_cmd_at < retry:
            return False
        if door is Verb.HOLD_OPEN:
            return st.door is DoorState.CLOSED and lift.stopped_at()
        return st.door is DoorState.OPEN

    @staticmethod
    def _call_lagging(lift: _Lift, floor: str, now: float, retry: float) -> bool:
        """The cabin stands still, doors shut, at another floor long after the call: call again."""
        st = lift.status
        if st is None or now - lift.call_cmd_at < retry:
            return False
        return lift.stopped_at() and st.floor != floor and st.door is DoorState.CLOSED

    # ---- binding and ending ------------------------------------------------------------------------

    def _bind(self, session: _Session, lift: _Lift, now: float) -> None:
        session.lift, session.bound_at = lift.name, now
        lift.session, lift.call_cmd, lift.blocked_since = session, None, None
        self._event(EventKind.BOUND, session.id, session.robot, lift.name)

    def _end(
        self,
        session: _Session,
        outcome: SessionOutcome,
        reason: EndReason | None,
        *,
        clear: bool = True,
    ) -> None:
        """Decide how a session ended; it stays bound (CLEARING) while its robot is not outside."""
        if session.end is not None:
            return
        now = self._clock.now()
        lift_name = session.lift or session.preferred
        session.end = SessionEnd(
            session_id=session.id,
            robot_id=session.robot,
            lift_name=session.lift,
            outcome=outcome,
            reason=reason,
            time=now,
        )
        self._lifts.get(lift_name, next(iter(self._lifts.values()))).ended.appendleft(session.end)
        self._remember(session.id)
        detail = f"{outcome} {reason}" if reason else str(outcome)
        self._event(EventKind.ENDED, session.id, session.robot, session.lift, detail, session.end)
        if clear and session.lift is not None and session.passage is not Passage.OUTSIDE:
            session.clearing_since = now
        else:
            self._unbind(session)

    def _unbind(self, session: _Session) -> None:
        self._live.pop(session.id, None)
        if session.lift is None:
            return
        lift = self._lifts[session.lift]
        if lift.session is session:
            lift.session, lift.call_cmd = None, None
            lift.close_wanted_since, lift.blocked_since = None, None
            self._event(EventKind.UNBOUND, session.id, session.robot, lift.name)

    def _remember(self, session_id: str) -> None:
        self._gone[session_id] = None
        while len(self._gone) > self._remembered:
            del self._gone[next(iter(self._gone))]

    # ---- small helpers -----------------------------------------------------------------------------

    def _lift(self, name: str) -> _Lift:
        try:
            return self._lifts[name]
        except KeyError:
            raise ValueError(f"building {self.name} has no lift {name!r}") from None

    def _waiting(self) -> list[_Session]:
        """Unbound live sessions in service order: pinned first, then by readiness and arrival."""
        waiting = [s for s in self._live.values() if s.lift is None and s.end is None]
        return sorted(waiting, key=lambda s: (not s.pinned, s.key))

    @staticmethod
    def _may_serve(lift: _Lift, session: _Session) -> bool:
        """Whether ``lift`` is one that could take the waiting ``session``."""
        if session.pinned:
            return session.preferred == lift.name
        return session.floor in lift.settings.floors

    def _serving(self, floor: str) -> tuple[str, ...]:
        """``(floor,)`` when a lift of the building serves ``floor``, else ``()``."""
        return (floor,) if any(floor in lift.settings.floors for lift in self._lifts.values()) else ()

    def _heartbeat_timeout(self, session: _Session) -> float:
        lift = self._lifts.get(session.lift or session.preferred)
        if lift is not None:
            return lift.settings.heartbeat_timeout_s
        return max(lift.settings.heartbeat_timeout_s for lift in self._lifts.values())

    def _fault(self, lift: _Lift) -> EndReason | None:
        """FIRE / EMERGENCY / OFFLINE of a lift (OFFLINE also when its controller went silent)."""
        now = self._clock.now()
        last = lift.heard if lift.heard is not None else lift.created
        if now - last > lift.settings.status_timeout_s:
            return EndReason.OFFLINE
        if lift.status is None:
            return None
        if lift.status.mode is LiftMode.OFFLINE:
            return EndReason.OFFLINE
        return FAULT_MODES.get(lift.status.mode)

    def _usable(self, lift: _Lift) -> bool:
        return lift.status is not None and self._fault(lift) is None

    def _mode(self, lift: _Lift) -> LiftMode:
        fault = self._fault(lift)
        if fault is not None:
            return LiftMode(fault.value)
        if lift.status is None:
            return LiftMode.UNKNOWN
        session = lift.session
        if session is not None and not session.human:
            return LiftMode.AGV
        return LiftMode.HUMAN

    def _available_modes(self, lift: _Lift) -> list[LiftMode]:
        if not self._usable(lift):
            return []
        waiting = any(s.human and s.preferred == lift.name for s in self._waiting())
        human = (lift.session is not None and lift.session.human) or waiting
        return [LiftMode.HUMAN] if human else [LiftMode.HUMAN, LiftMode.AGV]

    def _phase(self, lift: _Lift) -> SessionPhase:
        session = lift.session
        if session is None:
            return SessionPhase.IDLE
        if session.human:
            return SessionPhase.HUMAN
        if session.end is not None:
            return SessionPhase.CLEARING
        there = lift.stopped_at(session.destination)
        if not session.rode:
            return SessionPhase.BOARDING if there else SessionPhase.CALLING
        if there and session.destination != session.floor:
            return SessionPhase.ALIGHTING
        return SessionPhase.BOARDING if there else SessionPhase.RIDING

    def _faults(self, lift: _Lift) -> list[str]:
        faults = list(lift.status.faults) if lift.status else []
        if self._fault(lift) is EndReason.OFFLINE and (
            lift.status is None or lift.status.mode is not LiftMode.OFFLINE
        ):
            faults.append("SILENT")  # no report within status_timeout_s
        if lift.blocked_since is not None and DOOR_BLOCKED not in faults:
            faults.append(DOOR_BLOCKED)
        return faults

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _event(
        self,
        kind: EventKind,
        session_id: str,
        robot: str = "",
        lift: str | None = None,
        detail: str = "",
        end: SessionEnd | None = None,
    ) -> None:
        self._events.append(SessionEvent(self._clock.now(), kind, session_id, robot, lift, detail, end))


__all__ = [
    "Building",
    "DoorBlockedPolicy",
    "EventKind",
    "LiftCommand",
    "LiftSettings",
    "SessionEvent",
    "Verb",
    "WaitingView",
]
