"""Lift (elevator) messages between robots/orchestrator and the elevator bridge, over MQTT.

Semantics follow Open-RMF's ``rmf_lift_msgs`` LiftRequest / LiftState (request types END_SESSION,
AGV_MODE, HUMAN_MODE; door CLOSED / MOVING / OPEN; motion STOPPED / UP / DOWN / UNKNOWN; modes UNKNOWN,
HUMAN, AGV, FIRE, OFFLINE, EMERGENCY), written as JSON with names instead of numbers.

Topics: ``robopost/lift/{building}/{lift}/request`` (QoS 1) and ``robopost/lift/{building}/{lift}/state``
(retained).

A session, as a robot sees it (each step is a ``LiftRequest`` with the same ``session_id``, and the
robot repeats its latest request every few seconds as a heartbeat)::

    AGV_MODE  destination=<my floor>  door=OPEN  passage=OUTSIDE  [eta]   call the cabin; wait in the queue
              ... state: session_id = mine, current_floor = my floor, door OPEN, motion STOPPED
    AGV_MODE  passage=ENTERING                                           I am in the doorway: hold the doors
    AGV_MODE  passage=INSIDE                                             I am in the cabin, clear of the doors
    AGV_MODE  destination=<target>  door=OPEN  passage=INSIDE            close, ride, open at the target
              ... state: current_floor = target, door OPEN, motion STOPPED
    AGV_MODE  passage=EXITING                                            hold the doors while I leave
    END_SESSION  passage=OUTSIDE                                         done: the lift is free (FINISHED)

``door_state`` in a request is the door state wanted once the cabin stands at ``destination_floor``
(as in Open-RMF). ``eta`` (epoch seconds) is when the robot plans to be at the lift: the bridge serves
the queue in order of readiness (arrival, or ETA when later), so a robot still far away does not hold
up one already waiting, and it may send the cabin early so that it arrives with the robot.

How a session ended is in every ``LiftState.ended`` (newest first) of the lift that served it (or that
it asked for): ``FINISHED`` (the robot ended it), ``RELEASED`` (the bridge freed the lift: the robot
went silent or opened a newer session) or ``ABORTED`` with a reason (FIRE, EMERGENCY, OFFLINE,
DOOR_BLOCKED, TIMEOUT, ...). A request in FIRE / EMERGENCY / OFFLINE is refused the same way (ABORTED).

``HUMAN_MODE`` (sent by building staff or the console for one lift) keeps the lift for people: no robot
session starts on it until that session ends (robots waiting for it are served by another lift).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

LIFT_TOPIC_ROOT = "robopost/lift"


class LiftRequestType(StrEnum):
    END_SESSION = "END_SESSION"
    AGV_MODE = "AGV_MODE"
    HUMAN_MODE = "HUMAN_MODE"


class DoorState(StrEnum):
    CLOSED = "CLOSED"
    MOVING = "MOVING"
    OPEN = "OPEN"


class MotionState(StrEnum):
    STOPPED = "STOPPED"
    UP = "UP"
    DOWN = "DOWN"
    UNKNOWN = "UNKNOWN"


class LiftMode(StrEnum):
    UNKNOWN = "UNKNOWN"
    HUMAN = "HUMAN"
    AGV = "AGV"
    FIRE = "FIRE"
    OFFLINE = "OFFLINE"
    EMERGENCY = "EMERGENCY"


class Passage(StrEnum):
    """Where the robot is relative to the cabin doors (the bridge never closes doors on the doorway)."""

    OUTSIDE = "OUTSIDE"
    ENTERING = "ENTERING"
    INSIDE = "INSIDE"
    EXITING = "EXITING"

    @property
    def in_doorway(self) -> bool:
        """True while the robot is between the doors."""
        return self in (Passage.ENTERING, Passage.EXITING)


class SessionPhase(StrEnum):
    """What the lift does for its current session (``LiftState.phase``)."""

    IDLE = "IDLE"  # no session
    CALLING = "CALLING"  # going to the robot's floor
    BOARDING = "BOARDING"  # at the robot's floor, doors held for it
    RIDING = "RIDING"  # robot inside, going to its destination
    ALIGHTING = "ALIGHTING"  # at the destination, doors held while the robot leaves
    CLEARING = "CLEARING"  # the session has ended; waiting for the robot to leave the doors/cabin
    HUMAN = "HUMAN"  # kept for people (a HUMAN_MODE session)


class SessionOutcome(StrEnum):
    FINISHED = "FINISHED"  # the robot ended it (END_SESSION)
    RELEASED = "RELEASED"  # the bridge freed the lift (HEARTBEAT_LOST, SUPERSEDED)
    ABORTED = "ABORTED"  # refused or stopped by the bridge; see the reason


class EndReason(StrEnum):
    FIRE = "FIRE"
    EMERGENCY = "EMERGENCY"
    OFFLINE = "OFFLINE"
    DOOR_BLOCKED = "DOOR_BLOCKED"
    TIMEOUT = "TIMEOUT"  # doors held too long, or the session lasted too long
    HEARTBEAT_LOST = "HEARTBEAT_LOST"  # no request from the robot within the heartbeat timeout
    SUPERSEDED = "SUPERSEDED"  # the robot opened a newer session
    BAD_REQUEST = "BAD_REQUEST"  # unknown lift or floor
    REFUSED_BY_LIFT = "REFUSED_BY_LIFT"  # the equipment answered IMPOSSIBLE


class _Message(BaseModel):
    """Lift messages: immutable, unknown keys ignored (newer senders may add fields)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class LiftRequest(_Message):
    """A robot's (or the console's) request for one lift session; repeated as a heartbeat.

    ``lift_name`` is the lift the requester would like; any lift of the building serving the floor may
    serve an AGV session (the state of the lift that took it shows its ``session_id``).
    """

    building: str = Field(min_length=1)
    lift_name: str = Field(min_length=1)
    session_id: str = Field(min_length=1, max_length=128)
    robot_id: str = Field(default="", max_length=128)
    request_type: LiftRequestType
    destination_floor: str = ""
    door_state: DoorState = DoorState.OPEN
    passage: Passage = Passage.OUTSIDE
    request_time: float = Field(ge=0)
    eta: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> LiftRequest:
        if self.request_type is LiftRequestType.AGV_MODE and not self.destination_floor:
            raise ValueError("an AGV_MODE request needs a destination_floor")
        return self


class SessionEnd(_Message):
    """How one session ended; ``reason`` is set for RELEASED and ABORTED."""

    session_id: str
    robot_id: str = ""
    lift_name: str | None = None
    outcome: SessionOutcome
    reason: EndReason | None = None
    time: float

    @model_validator(mode="after")
    def _check(self) -> SessionEnd:
        if self.outcome is not SessionOutcome.FINISHED and self.reason is None:
            raise ValueError(f"a {self.outcome} session needs a reason")
        return self


class LiftState(_Message):
    """What a lift is doing, published retained by the bridge (on change and periodically).

    ``available_modes`` lacks AGV while robots cannot start a session on this lift (human mode, fire,
    offline...). ``queue`` lists the waiting sessions this lift could serve, in service order.
    ``faults`` are current problems (e.g. ``DOOR_BLOCKED``, the equipment's fault codes).
    """

    lift_time: float
    building: str
    lift_name: str
    available_floors: list[str]
    current_floor: str | None = None
    destination_floor: str | None = None
    door_state: DoorState = DoorState.CLOSED
    motion_state: MotionState = MotionState.UNKNOWN
    available_modes: list[LiftMode] = Field(default_factory=list)
    current_mode: LiftMode = LiftMode.UNKNOWN
    session_id: str = ""
    robot_id: str = ""
    phase: SessionPhase = SessionPhase.IDLE
    queue: list[str] = Field(default_factory=list)
    faults: list[str] = Field(default_factory=list)
    ended: list[SessionEnd] = Field(default_factory=list)

    def end_of(self, session_id: str) -> SessionEnd | None:
        """The end record of ``session_id`` in this state, if it is there."""
        return next((e for e in self.ended if e.session_id == session_id), None)


def lift_topic(building: str, lift: str, kind: str) -> str:
    """``robopost/lift/{building}/{lift}/{kind}`` with ``kind`` request or state."""
    return f"{LIFT_TOPIC_ROOT}/{building}/{lift}/{kind}"


def lift_requests(building: str) -> str:
    """The subscription pattern for every lift request of a building."""
    return lift_topic(building, "+", "request")


def lift_states(building: str) -> str:
    """The subscription pattern for every lift state of a building."""
    return lift_topic(building, "+", "state")


def parse_lift_topic(topic: str) -> tuple[str, str, str] | None:
    """``(building, lift, kind)`` of a lift topic, or None when ``topic`` is not one."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != LIFT_TOPIC_ROOT or not all(parts[2:]):
        return None
    return parts[2], parts[3], parts[4]
