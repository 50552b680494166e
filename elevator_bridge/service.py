"""The bridge service of one building: MQTT northbound, lift drivers southbound, pure logic between.

Northbound (``interfaces.lift`` / ``door`` / ``gate``): requests arrive on
``robopost/{lift|door|gate}/{building}/+/request`` (QoS 1); states go out retained at QoS 1 on
``.../state`` whenever they change and at least every ``state_period_s``. A message that is not JSON,
does not fit its model, or names another building or device than its topic is logged, counted in
``stats.malformed`` and ignored: the bridge stays up. The bridge announces itself retained on
``robopost/bridge/{building}/online`` (``online``; ``bridge_will`` gives the ``offline`` last will).

Southbound: every lift has a ``LiftDriver``; the service feeds its status reports to the session logic
(``elevator_bridge.sessions.Building``) and sends the commands the logic decides, one at a time per
lift, feeding each answer back. Door and gate relays are switched by publishing
``{"open": true|false, "time": t}`` to ``{iot_prefix}/{iot}/command`` (QoS 1); a door without ``iot``
is only modelled.

Tasks: one reader per request topic, one status reader and one command worker per lift, and a ticker
(``tick_s`` of the service's clock) for timeouts and periodic states. ``idle()`` waits until every
command decided so far has been answered (tests use it to step time deterministically).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from elevator_bridge.config import BridgeConfig
from elevator_bridge.doors import Door, DoorCommand, Gate
from elevator_bridge.drivers.base import DriverResult, LiftDriver
from elevator_bridge.sessions import Building, EventKind, LiftCommand, SessionEvent, Verb
from interfaces.clock import Clock
from interfaces.door import DoorRequest, door_requests, door_topic
from interfaces.gate import GateRequest, gate_requests, gate_topic
from interfaces.lift import LiftRequest, lift_requests, lift_topic
from interfaces.mqtt import AckTimeoutError, Message, MqttClient, Subscription, Will
from interfaces.tasks import cancel_and_wait

_M = TypeVar("_M", bound=BaseModel)

STOP_ACK_S = 5.0
"""Seconds ``stop`` waits for the broker to acknowledge the retained ``offline`` (it may be gone)."""


def bridge_topic(building: str) -> str:
    """Where the bridge of ``building`` says whether it is online (retained)."""
    return f"robopost/bridge/{building}/online"


def bridge_will(building: str) -> Will:
    """The last will a bridge's MQTT client should carry: ``offline``, retained."""
    return Will(bridge_topic(building), b"offline", qos=1, retain=True)


@dataclass
class BridgeStats:
    """What the service has handled since it started."""

    requests: int = 0
    malformed: int = 0
    commands: int = 0
    command_errors: int = 0
    states_published: int = 0


class BridgeService:
    """One building's bridge (see the module docstring). ``start()``, then ``stop()``."""

    def __init__(
        self,
        config: BridgeConfig,
        mqtt: MqttClient,
        drivers: Mapping[str, LiftDriver],
        clock: Clock,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        missing = set(config.lifts) ^ set(drivers)
        if missing:
            raise ValueError(
                f"bridge {config.building}: drivers and configured lifts differ: {sorted(missing)}"
            )
        self.config = config
        self.name = config.building
        self.stats = BridgeStats()
        self.building = Building(
            config.building, config.lift_settings(), clock, resume_grace_s=config.resume_grace_s
        )
        self.doors = {s.name: Door(config.building, s, clock) for s in config.door_settings()}
        self.gates = {s.name: Gate(config.building, s, clock) for s in config.gate_settings()}
        self._mqtt = mqtt
        self._drivers = dict(drivers)
        self._clock = clock
        self._log = logger or logging.getLogger(f"robopost.elevator_bridge.{config.building}")
        self._queues: dict[str, asyncio.Queue[LiftCommand]] = {name: asyncio.Queue() for name in drivers}
        self._published: dict[str, tuple[str, float]] = {}
        self._subscriptions: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._streams: list[Any] = []

    # ---- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the drivers, listen to requests, publish every state, start the loops."""
        for lift, driver in self._drivers.items():
            stream = driver.statuses()  # before start: the first report must not be missed
            self._streams.append(stream)
            self._spawn(self._watch(lift, stream), f"status {lift}")
            self._spawn(self._work(lift, driver), f"commands {lift}")
        for lift, driver in self._drivers.items():
            await driver.start()
            latest = driver.status()
            if latest is not None:
                self.building.status(lift, latest)
        handlers: list[tuple[str, Callable[[Message], None]]] = [
            (lift_requests(self.name), self._on_lift_request),
            (door_requests(self.name), self._on_door_request),
            (gate_requests(self.name), self._on_gate_request),
        ]
        for pattern, handler in handlers:
            subscription = self._mqtt.subscribe(pattern, qos=1)
            self._subscriptions.append(subscription)
            self._spawn(self._serve(subscription, handler), f"requests {pattern}")
        self._spawn(self._tick(), "tick")
        self._mqtt.on_connect(self._on_reconnect)
        await self._mqtt.publish(bridge_topic(self.name), "online", qos=1, retain=True)
        await self._flush(force=True)
        self._log.info(
            "bridge %s: %d lifts, %d doors, %d gates",
            self.name,
            len(self._drivers),
            len(self.doors),
            len(self.gates),
        )

    async def stop(self) -> None:
        """Stop the loops and the drivers; say ``offline``."""
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)
        for stream in self._streams:
            close = getattr(stream, "close", None) or getattr(stream, "aclose", None)
            if close is not None:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
        self._streams.clear()
        for subscription in self._subscriptions:
            self._mqtt.unsubscribe(subscription)
        self._subscriptions.clear()
        for driver in self._drivers.values():
            await driver.stop()
        if self._mqtt.connected.is_set():
            try:  # the broker may go in the meantime: stopping must not hang on its acknowledgement
                await self._mqtt.publish(
                    bridge_topic(self.name), "offline", qos=1, retain=True, wait=True, timeout=STOP_ACK_S
                )
            except AckTimeoutError as exc:
                self._log.warning("bridge %s: offline not acknowledged: %s", self.name, exc)

    async def idle(self) -> None:
        """Wait until every lift command decided so far has been sent and answered."""
        for queue in self._queues.values():
            await queue.join()

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        self._tasks.append(asyncio.ensure_future(self._guard(coro, name)))

    async def _guard(self, coro: Awaitable[None], name: str) -> None:
        """Run a loop of the service; a crash is logged with its traceback (and re-raised)."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            self._log.exception("bridge %s: task %s crashed", self.name, name)
            raise

    # ---- northbound ----------------------------------------------------------------------------------

    async def _serve(self, subscription: Subscription, handler: Callable[[Message], None]) -> None:
        async for message in subscription:
            self.stats.requests += 1
            try:
                handler(message)
            except Exception:  # a bug must not take the building's lifts down: log it, go on
                self.stats.malformed += 1
                self._log.exception("bridge %s: failed on a message on %s", self.name, message.topic)
            await self._flush()

    def _on_lift_request(self, message: Message) -> None:
        request = self._parse(message, LiftRequest)
        if request is None:
            return
        _, _, lift = self._topic_parts(message.topic)
        if request.building != self.name or request.lift_name != lift:
            self._malformed(message, f"names {request.building}/{request.lift_name}, not its topic's")
            return
        self.building.request(request)

    def _on_door_request(self, message: Message) -> None:
        request = self._parse(message, DoorRequest)
        if request is None:
            return
        door = self.doors.get(request.door_name)
        if (
            request.building != self.name
            or door is None
            or request.door_name != self._topic_parts(message.topic)[2]
        ):
            self._malformed(message, f"no door {request.door_name} here")
            return
        door.handle(request)

    def _on_gate_request(self, message: Message) -> None:
        request = self._parse(message, GateRequest)
        if request is None:
            return
        gate = self.gates.get(request.gate_name)
        if (
            request.building != self.name
            or gate is None
            or request.gate_name != self._topic_parts(message.topic)[2]
        ):
            self._malformed(message, f"no gate {request.gate_name} here")
            return
        decision = gate.handle(request)
        if not decision.accepted:
            self._log.warning("gate %s refused %s: %s", gate.name, request.requester_id, decision.reason)

    def _parse(self, message: Message, model: type[_M]) -> _M | None:
        try:
            return model.model_validate(json.loads(message.payload))
        except (ValueError, ValidationError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            self._malformed(message, " ".join(str(exc).split())[:200])
            return None

    def _malformed(self, message: Message, why: str) -> None:
        self.stats.malformed += 1
        self._log.warning("bridge %s: ignored message on %s: %s", self.name, message.topic, why)

    @staticmethod
    def _topic_parts(topic: str) -> tuple[str, str, str]:
        """(kind, building, device) of ``robopost/{kind}/{building}/{device}/request``."""
        parts = topic.split("/")
        return parts[1], parts[2], parts[3]

    async def _on_reconnect(self) -> None:
        """After the broker came back: say online again and republish every state."""
        await self._mqtt.publish(bridge_topic(self.name), "online", qos=1, retain=True)
        await self._flush(force=True)

    # ---- southbound ----------------------------------------------------------------------------------

    async def _watch(self, lift: str, stream: Any) -> None:
        async for status in stream:
            self.building.status(lift, status)
            await self._flush()

    async def _work(self, lift: str, driver: LiftDriver) -> None:
        queue = self._queues[lift]
        while True:
            command = await queue.get()
            try:
                result = await self._send(driver, command)
                self.building.command_result(command, result)
                await self._flush()
            finally:
                queue.task_done()

    async def _send(self, driver: LiftDriver, command: LiftCommand) -> DriverResult:
        """One verb; a driver that raises is logged and the command tried again later (RETRY)."""
        self.stats.commands += 1
        try:
            if command.verb is Verb.CALL:
                return await driver.call(command.floor or "")
            if command.verb is Verb.HOLD_OPEN:
                return await driver.open_door(hold=True)
            return await driver.close_door()
        except Exception:
            self.stats.command_errors += 1
            self._log.exception("bridge %s: driver of %s failed on %s", self.name, command.lift, command.verb)
            return DriverResult.RETRY

    async def _tick(self) -> None:
        while True:
            await self._clock.sleep(self.config.tick_s)
            self.building.tick()
            for device in self._devices():
                device.tick()
            await self._flush()

    # ---- carrying decisions out ---------------------------------------------------------------------

    async def _flush(self, force: bool = False) -> None:
        """Queue the lift commands, switch the relays, log the events, publish changed states."""
        for command in self.building.take_commands():
            self._queues[command.lift].put_nowait(command)
        for event in self.building.take_events():
            self._log_event(event)
        for device in self._devices():
            for relay in device.take_commands():
                await self._switch(relay)
        await self._publish_states(force)

    def _devices(self) -> list[Door | Gate]:
        return [*self.doors.values(), *self.gates.values()]

    async def _switch(self, command: DoorCommand) -> None:
        if command.iot is None:
            return
        topic = f"{self.config.iot_prefix}/{command.iot}/command"
        await self._mqtt.publish(topic, {"open": command.open, "time": self._clock.now()}, qos=1)

    async def _publish_states(self, force: bool) -> None:
        now = self._clock.now()
        for lift in self.building.lifts:
            state = self.building.state(lift)
            await self._publish(lift_topic(self.name, lift, "state"), state, "lift_time", now, force)
        for door in self.doors.values():
            await self._publish(
                door_topic(self.name, door.name, "state"), door.state(), "door_time", now, force
            )
        for gate in self.gates.values():
            await self._publish(
                gate_topic(self.name, gate.name, "state"), gate.state(), "gate_time", now, force
            )

    async def _publish(self, topic: str, state: BaseModel, time_field: str, now: float, force: bool) -> None:
        """Publish ``state`` retained when it changed (its time aside) or is due again."""
        content = state.model_dump_json(exclude={time_field})
        last = self._published.get(topic)
        if (
            not force
            and last is not None
            and last[0] == content
            and now - last[1] < self.config.state_period_s
        ):
            return
        self._published[topic] = (content, now)
        await self._mqtt.publish(topic, state.model_dump_json().encode(), qos=1, retain=True)
        self.stats.states_published += 1

    def _log_event(self, event: SessionEvent) -> None:
        level = logging.WARNING if event.kind is EventKind.IGNORED else logging.INFO
        if event.kind is EventKind.ENDED and event.end is not None and event.end.reason is not None:
            level = logging.WARNING
        self._log.log(
            level,
            "lift session %s (robot %s) %s%s%s",
            event.session_id,
            event.robot_id or "-",
            event.kind,
            f" on {event.lift}" if event.lift else "",
            f": {event.detail}" if event.detail else "",
        )
