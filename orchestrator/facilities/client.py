"""The facilities client: lift sessions, doors and gates, spoken over MQTT with the elevator bridge.

It speaks only the JSON protocol of ``interfaces.lift`` / ``door`` / ``gate`` (it imports nothing from
``elevator_bridge``). Time, for heartbeats and time-outs, comes from the ``Clock`` it is given.

A lift ride::

    facilities = Facilities(mqtt, clock, robot_id="indoor-01")
    session = await facilities.request_lift("ADM", "ADM-1F", eta=clock.now() + 40)
    await session.wait_arrival()          # cabin at ADM-1F, doors open, for us
    await session.enter()                 # in the doorway: doors held
    await session.entered()               # inside, clear of the doors
    await session.ride_to("ADM-6F")       # doors closed, ride, doors open at ADM-6F
    await session.exit()                  # in the doorway again
    await session.release()               # out: the lift is free (FINISHED)

The latest request is repeated every ``heartbeat_s`` until ``release()`` (also after the bridge
ended the session, so it still knows where the robot is while the robot gets out). A session the
bridge refuses or ends raises ``LiftAborted`` from whatever is waiting; ``async with session:``
releases it in any case.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import ValidationError

from interfaces.clock import Clock
from interfaces.door import DoorMode, DoorRequest, DoorStateMsg, door_topic
from interfaces.gate import GateRequest, GateStateMsg, gate_topic
from interfaces.lift import (
    DoorState,
    LiftMode,
    LiftRequest,
    LiftRequestType,
    LiftState,
    MotionState,
    Passage,
    SessionEnd,
    SessionOutcome,
    lift_states,
    lift_topic,
)
from interfaces.mqtt import Message, MqttClient, Subscription
from orchestrator.facilities.errors import (
    DoorTimeout,
    GateRefused,
    LiftAborted,
    LiftTimeout,
)

_T = TypeVar("_T")
_sessions = itertools.count(1)


class _Watch:
    """The latest retained states under one subscription pattern; wakes waiters on every message."""

    def __init__(self, mqtt: MqttClient, pattern: str, parse: Callable[[Message], object | None]) -> None:
        self.latest: dict[str, object] = {}
        self.changed = asyncio.Event()
        self._parse = parse
        self._subscription: Subscription = mqtt.subscribe(pattern, qos=1)
        self._mqtt = mqtt
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        async for message in self._subscription:
            state = self._parse(message)
            if state is not None:
                self.latest[message.topic] = state
                self.changed.set()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._mqtt.unsubscribe(self._subscription)


class Facilities:
    """Lift sessions, doors and gates for one robot (or the orchestrator acting for it)."""

    def __init__(
        self,
        mqtt: MqttClient,
        clock: Clock,
        robot_id: str,
        *,
        heartbeat_s: float = 2.0,
        logger: logging.Logger | None = None,
    ) -> None:
        if heartbeat_s <= 0:
            raise ValueError(f"Facilities: heartbeat_s must be > 0, got {heartbeat_s}")
        self.mqtt = mqtt
        self.clock = clock
        self.robot_id = robot_id
        self.heartbeat_s = heartbeat_s
        self.log = logger or logging.getLogger("robopost.facilities")
        self._watches: dict[str, _Watch] = {}
        self._beating: set[_Beat] = set()

    async def close(self) -> None:
        """Stop every heartbeat and subscription (sessions are not ended: the bridge times them out)."""
        for beat in list(self._beating):
            await beat.stop()
        for watch in self._watches.values():
            await watch.close()
        self._watches.clear()

    # ---- lifts -------------------------------------------------------------------------------------

    async def request_lift(
        self,
        building: str,
        floor: str,
        *,
        lift: str | None = None,
        eta: float | None = None,
        timeout: float = 10.0,
    ) -> LiftSession:
        """Ask for a lift to ``floor``; returns once the bridge has queued or bound the session.

        ``lift`` is the preferred lift (default: the best one the lift states offer); ``eta`` when
        the robot plans to be at the lift (epoch seconds). ``LiftAborted`` when refused (fire...),
        ``LiftTimeout`` when no lift state or answer comes within ``timeout``.
        """
        watch = self._watch(f"lift/{building}", lift_states(building), _parse_lift_state)
        session = LiftSession(self, watch, building, floor, eta)
        session.preferred = lift or await session.choose_lift(timeout)
        await session.begin(timeout)
        return session

    # ---- doors and gates ---------------------------------------------------------------------------

    async def open_door(self, building: str, door: str, *, timeout: float = 30.0) -> DoorPass:
        """Open ``door`` and hold it until the returned pass is released. ``DoorTimeout`` if it stays shut."""
        watch = self._watch(f"door/{building}/{door}", door_topic(building, door, "state"), _parse_door_state)

        def request(mode: DoorMode) -> DoorRequest:
            return DoorRequest(
                building=building,
                door_name=door,
                requester_id=self.robot_id,
                requested_mode=mode,
                request_time=self.clock.now(),
            )

        passage = DoorPass(self, watch, door, door_topic(building, door, "request"), request)
        await passage.open(timeout)
        return passage

    async def open_gate(
        self, building: str, gate: str, credential: str, *, timeout: float = 30.0
    ) -> DoorPass:
        """Show ``credential`` to ``gate`` and hold it open until the pass is released.

        ``GateRefused`` when the gate does not know the credential; ``DoorTimeout`` when no answer or
        the gate does not open in time.
        """
        watch = self._watch(f"gate/{building}/{gate}", gate_topic(building, gate, "state"), _parse_gate_state)
        request_id = uuid.uuid4().hex

        def request(mode: DoorMode) -> GateRequest:
            return GateRequest(
                building=building,
                gate_name=gate,
                requester_id=self.robot_id,
                request_id=request_id,
                requested_mode=mode,
                credential=credential if mode is DoorMode.OPEN else "",
                request_time=self.clock.now(),
            )

        passage = DoorPass(self, watch, gate, gate_topic(building, gate, "request"), request, request_id)
        await passage.open(timeout)
        return passage

    # ---- shared helpers ----------------------------------------------------------------------------

    def _watch(self, key: str, pattern: str, parse: Callable[[Message], object | None]) -> _Watch:
        if key not in self._watches:
            self._watches[key] = _Watch(self.mqtt, pattern, parse)
        return self._watches[key]

    async def wait(
        self,
        watch: _Watch,
        check: Callable[[], _T | None],
        timeout: float,
        error: Callable[[], Exception],
    ) -> _T:
        """Wait (on this client's clock) until ``check()`` returns a value; ``check`` may raise."""
        deadline = self.clock.monotonic() + timeout
        while True:
            watch.changed.clear()
            result = check()
            if result is not None:
                return result
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                raise error()
            await _first(watch.changed.wait(), self.clock.sleep(remaining))


class _Beat:
    """Repeats a request every ``heartbeat_s`` of the client's clock until stopped."""

    def __init__(self, owner: Facilities, send: Callable[[], Awaitable[None]]) -> None:
        self._owner = owner
        self._send = send
        self._task = asyncio.ensure_future(self._run())
        owner._beating.add(self)

    async def _run(self) -> None:
        while True:
            await self._owner.clock.sleep(self._owner.heartbeat_s)
            await self._send()

    async def stop(self) -> None:
        self._owner._beating.discard(self)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class LiftSession:
    """One lift session of a robot (see the module docstring for the steps)."""

    def __init__(
        self, owner: Facilities, watch: _Watch, building: str, floor: str, eta: float | None
    ) -> None:
        self.session_id = f"{owner.robot_id}-{next(_sessions)}-{uuid.uuid4().hex[:8]}"
        self.building = building
        self.floor = floor  # where the cabin must come now (boarding floor, then the destination)
        self.preferred = ""
        self.passage = Passage.OUTSIDE
        self.end: SessionEnd | None = None
        self._owner = owner
        self._watch = watch
        self._eta = eta
        self._beat: _Beat | None = None
        self._released = False

    # ---- what the bridge says ----------------------------------------------------------------------

    @property
    def state(self) -> LiftState | None:
        """The latest state of the lift serving this session (None while it waits)."""
        return next((s for s in self._states() if s.session_id == self.session_id), None)

    @property
    def lift(self) -> str | None:
        """The lift serving this session, once one does."""
        state = self.state
        return state.lift_name if state else None

    def _states(self) -> list[LiftState]:
        return [s for s in self._watch.latest.values() if isinstance(s, LiftState)]

    def _ended(self) -> SessionEnd | None:
        if self.end is None:
            self.end = next((e for s in self._states() if (e := s.end_of(self.session_id))), None)
        return self.end

    def _raise_if_over(self) -> None:
        end = self._ended()
        if end is not None and end.outcome is not SessionOutcome.FINISHED:
            raise LiftAborted(self.session_id, end.outcome, end.reason)

    # ---- steps -------------------------------------------------------------------------------------

    async def choose_lift(self, timeout: float) -> str:
        """The building's lift to ask for: one serving the floor and taking robots, least busy and
        nearest first (from the retained states)."""

        def pick() -> str | None:
            serving = [s for s in self._states() if self.floor in s.available_floors]
            if not serving:
                return None
            serving.sort(
                key=lambda s: (
                    LiftMode.AGV not in s.available_modes,
                    bool(s.session_id),
                    len(s.queue),
                    _distance(s, self.floor),
                    s.lift_name,
                )
            )
            return serving[0].lift_name

        return await self._owner.wait(
            self._watch, pick, timeout, lambda: LiftTimeout(f"no lift of {self.building} serves {self.floor}")
        )

    async def begin(self, timeout: float) -> None:
        """Send the first request and wait until the bridge queues or binds it (or refuses it)."""
        await self._send(wait=True)
        self._beat = _Beat(self._owner, self._send)

        def known() -> bool | None:
            self._raise_if_over()
            if any(s.session_id == self.session_id or self.session_id in s.queue for s in self._states()):
                return True
            return None

        try:
            await self._owner.wait(
                self._watch,
                known,
                timeout,
                lambda: LiftTimeout(
                    f"the bridge of {self.building} did not answer lift session {self.session_id}"
                ),
            )
        except BaseException:
            await self._stop_beating()
            raise

    async def wait_arrival(self, timeout: float = 180.0) -> LiftState:
        """Wait until the cabin stands at this session's floor with open doors, for this session."""

        def there() -> LiftState | None:
            self._raise_if_over()
            state = self.state
            if (
                state is not None
                and state.current_floor == self.floor
                and state.door_state is DoorState.OPEN
                and state.motion_state is MotionState.STOPPED
                and state.destination_floor == self.floor
            ):
                return state
            return None

        return await self._owner.wait(
            self._watch,
            there,
            timeout,
            lambda: LiftTimeout(
                f"lift session {self.session_id}: no cabin with open doors at {self.floor} within {timeout} s"
            ),
        )

    async def enter(self) -> None:
        """The robot starts through the doors: they are held open."""
        await self._step(Passage.ENTERING)

    async def entered(self) -> None:
        """The robot is in the cabin, clear of the doors."""
        await self._step(Passage.INSIDE)

    async def ride_to(self, floor: str, timeout: float = 180.0) -> LiftState:
        """Close, ride to ``floor`` and wait there with open doors."""
        self._raise_if_over()
        self.floor = floor
        await self._send(wait=True)
        return await self.wait_arrival(timeout)

    async def exit(self) -> None:
        """The robot starts out through the doors: they are held open."""
        await self._step(Passage.EXITING)

    async def release(self, timeout: float = 10.0) -> SessionEnd:
        """The robot is out: end the session (END_SESSION) and return how it ended."""
        self.passage = Passage.OUTSIDE
        await self._stop_beating()
        if self._released:
            return await self._end_record(timeout)
        self._released = True
        await self._owner.mqtt.publish(
            self._topic(), self._request(LiftRequestType.END_SESSION).model_dump_json(), qos=1, wait=True
        )
        return await self._end_record(timeout)

    async def __aenter__(self) -> LiftSession:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if not self._released:
            with contextlib.suppress(LiftTimeout):
                await self.release()

    # ---- internals ---------------------------------------------------------------------------------

    async def _step(self, passage: Passage) -> None:
        self.passage = passage
        await self._send(wait=True)

    async def _end_record(self, timeout: float) -> SessionEnd:
        return await self._owner.wait(
            self._watch,
            self._ended,
            timeout,
            lambda: LiftTimeout(f"lift session {self.session_id}: the bridge did not confirm its end"),
        )

    async def _stop_beating(self) -> None:
        beat, self._beat = self._beat, None
        if beat is not None:
            await beat.stop()

    def _topic(self) -> str:
        return lift_topic(self.building, self.lift or self.preferred, "request")

    def _request(self, kind: LiftRequestType) -> LiftRequest:
        return LiftRequest(
            building=self.building,
            lift_name=self.lift or self.preferred,
            session_id=self.session_id,
            robot_id=self._owner.robot_id,
            request_type=kind,
            destination_floor=self.floor,
            door_state=DoorState.OPEN,
            passage=self.passage,
            request_time=self._owner.clock.now(),
            eta=self._eta if self.lift is None else None,
        )

    async def _send(self, wait: bool = False) -> None:
        request = self._request(LiftRequestType.AGV_MODE)
        await self._owner.mqtt.publish(self._topic(), request.model_dump_json(), qos=1, wait=wait)


class DoorPass:
    """A held door or gate: ``release()`` (or leaving ``async with``) lets it close."""

    def __init__(
        self,
        owner: Facilities,
        watch: _Watch,
        name: str,
        topic: str,
        request: Callable[[DoorMode], DoorRequest | GateRequest],
        request_id: str | None = None,
    ) -> None:
        self.name = name
        self._owner = owner
        self._watch = watch
        self._topic = topic
        self._request = request
        self._request_id = request_id
        self._beat: _Beat | None = None

    async def open(self, timeout: float) -> None:
        """Ask, keep asking, and wait until the door is open for us."""
        await self._send(DoorMode.OPEN, wait=True)
        self._beat = _Beat(self._owner, self._send)
        try:
            await self._owner.wait(
                self._watch,
                self._is_open,
                timeout,
                lambda: DoorTimeout(f"{self.name} did not open within {timeout} s"),
            )
        except BaseException:
            await self.release()
            raise

    def _is_open(self) -> bool | None:
        for state in self._watch.latest.values():
            if isinstance(state, GateStateMsg) and self._request_id is not None:
                decision = state.decision_for(self._request_id)
                if decision is not None and not decision.accepted:
                    raise GateRefused(self.name, decision.reason)
            if isinstance(state, DoorStateMsg | GateStateMsg) and self._owner.robot_id in state.holders:
                return True if state.current_mode is DoorMode.OPEN else None
        return None

    async def release(self) -> None:
        """We are through: stop holding (the door closes after its auto-close time)."""
        beat, self._beat = self._beat, None
        if beat is not None:
            await beat.stop()
        await self._send(DoorMode.CLOSED, wait=True)

    async def __aenter__(self) -> DoorPass:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.release()

    async def _send(self, mode: DoorMode = DoorMode.OPEN, wait: bool = False) -> None:
        await self._owner.mqtt.publish(self._topic, self._request(mode).model_dump_json(), qos=1, wait=wait)


async def _first(*awaitables: Awaitable[object]) -> None:
    """Wait for the first of ``awaitables``; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _distance(state: LiftState, floor: str) -> int:
    floors = state.available_floors
    if state.current_floor not in floors:
        return len(floors)
    return abs(floors.index(floor) - floors.index(state.current_floor))


def _parse_lift_state(message: Message) -> LiftState | None:
    return _parse(message, LiftState.model_validate_json)


def _parse_door_state(message: Message) -> DoorStateMsg | None:
    return _parse(message, DoorStateMsg.model_validate_json)


def _parse_gate_state(message: Message) -> GateStateMsg | None:
    return _parse(message, GateStateMsg.model_validate_json)


def _parse(message: Message, validate: Callable[[bytes], _T]) -> _T | None:
    """A state message, or None (logged) when it cannot be read."""
    try:
        return validate(message.payload)
    except ValidationError as exc:
        logging.getLogger("robopost.facilities").warning(
            "ignored state on %s: %s", message.topic, " ".join(str(exc).split())[:200]
        )
        return None
