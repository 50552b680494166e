"""The robot's MQTT side of VDA 5050: its own topics in; state, visualization, connection, factsheet out.

Subscribed (the robot's own topics only): ``order``, ``instantActions``, and ``teleop`` (its messages
go to the handler given — the ``Agent``'s safety layer by default — else they are dropped). Published
(VDA 5050 §6.3, §6.14):

================  ====  ========  ==================================================================
topic             QoS   retained  when
================  ====  ========  ==================================================================
``connection``    1     yes       ONLINE after every (re)connection; OFFLINE on a clean stop;
                                  CONNECTIONBROKEN as the last will (``connection_will``)
``factsheet``     1     yes       after every (re)connection and on ``factsheetRequest``
``state``         0     no        on every change of the vehicle (changes in one loop turn are
                                  coalesced), at least every ``state_period`` s, and in full after
                                  every reconnection (resync)
``visualization`` 0     no        every ``visualization_period`` s (0: never)
================  ====  ========  ==================================================================

Garbage never crashes the link: a payload that is not JSON, has the wrong shape or types, exceeds
``max_payload_bytes``, or carries another robot's manufacturer/serial in its header is logged and
dropped, and a ``validationError`` naming the topic and the reason goes into ``state.errors``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from interfaces.clock import Clock
from interfaces.mqtt import Message, MqttClient, NotConnectedError, Subscription, Will
from interfaces.vda5050 import (
    DEFAULT_INTERFACE,
    DEFAULT_MAX_BYTES,
    Connection,
    ConnectionState,
    ErrorType,
    Factsheet,
    HeaderFactory,
    InstantActions,
    Order,
    PayloadError,
    State,
    Topic,
    TopicKind,
    Visualization,
    major_version_of,
    parse,
    to_bytes,
)
from robots.agent.order import header_problem, make_error
from robots.agent.vehicle import Vehicle

_PREVIEW = 80
"""Characters of a dropped payload shown in the log."""


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Periods in seconds; ``visualization_period`` 0 sends none."""

    state_period: float = 30.0
    visualization_period: float = 1.0
    max_payload_bytes: int = DEFAULT_MAX_BYTES
    offline_timeout: float = 5.0
    interface: str = DEFAULT_INTERFACE

    def __post_init__(self) -> None:
        if not 0 < self.state_period <= 30:
            raise ValueError(f"LinkSettings: state_period must be in (0, 30] s, got {self.state_period}")
        if self.visualization_period < 0:
            raise ValueError(
                f"LinkSettings: visualization_period must be >= 0, got {self.visualization_period}"
            )


def robot_topic(headers: HeaderFactory, kind: TopicKind, interface: str = DEFAULT_INTERFACE) -> Topic:
    """The robot's own topic of ``kind`` (manufacturer, serial and major version from ``headers``)."""
    return Topic(
        interface=interface,
        major_version=major_version_of(headers.version),
        manufacturer=headers.manufacturer,
        serial_number=headers.serial_number,
        kind=kind,
    )


def connection_will(headers: HeaderFactory, interface: str = DEFAULT_INTERFACE) -> Will:
    """The last will: ``connection`` CONNECTIONBROKEN, retained, QoS 1 (VDA 5050 §6.14)."""
    message = headers.make(Connection, connection_state=ConnectionState.CONNECTIONBROKEN)
    topic = robot_topic(headers, TopicKind.CONNECTION, interface)
    return Will(topic=str(topic), payload=to_bytes(message), qos=1, retain=True)


class VehicleLink:
    """Connects one ``Vehicle`` to MQTT (see the module docstring). ``start()``, later ``stop()``."""

    def __init__(
        self,
        vehicle: Vehicle,
        mqtt: MqttClient,
        headers: HeaderFactory,
        factsheet: Factsheet,
        clock: Clock,
        settings: LinkSettings | None = None,
        *,
        on_teleop: Callable[[Message], None] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.vehicle = vehicle
        self.mqtt = mqtt
        self.headers = headers
        self.factsheet = factsheet
        self.clock = clock
        self.settings = settings or LinkSettings()
        self.log = logger or logging.getLogger("robopost.agent.link")
        self.dropped = 0  # messages dropped as garbage
        self._on_teleop = on_teleop
        self._dirty = asyncio.Event()
        self._last_state = -float("inf")
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriptions: list[Subscription] = []
        self._resyncs: set[asyncio.Task[None]] = set()
        vehicle.add_listener(self._dirty.set)
        vehicle.on_factsheet_request = self.request_factsheet

    def topic(self, kind: TopicKind) -> Topic:
        """This robot's topic of ``kind``."""
        return robot_topic(self.headers, kind, self.settings.interface)

    def start(self) -> None:
        """Subscribe, register the resync on (re)connection, start the publishing loops."""
        self.mqtt.on_connect(self._on_connected)
        handlers = {
            TopicKind.ORDER: self._handle_order,
            TopicKind.INSTANT_ACTIONS: self._handle_instant_actions,
            TopicKind.TELEOP: self._handle_teleop,
        }
        for kind, handler in handlers.items():
            sub = self.mqtt.subscribe(str(self.topic(kind)), qos=1, maxsize=1000)
            self._subscriptions.append(sub)
            self._tasks.append(asyncio.create_task(self._consume(sub, handler), name=f"link-{kind}"))
        self._tasks.append(asyncio.create_task(self._state_loop(), name="link-state"))
        if self.settings.visualization_period > 0:
            self._tasks.append(asyncio.create_task(self._visualization_loop(), name="link-visualization"))

    async def stop(self, *, offline: bool = True) -> None:
        """Stop the loops; with ``offline`` publish ``connection`` OFFLINE and wait for the broker's ack."""
        for task in [*self._tasks, *self._resyncs]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._resyncs, return_exceptions=True)
        self._tasks.clear()
        if offline and self.mqtt.connected.is_set():
            try:
                await asyncio.wait_for(self._publish_connection(ConnectionState.OFFLINE, wait=True), 5.0)
            except TimeoutError:
                self.log.warning("connection OFFLINE not acknowledged within 5 s")

    # --- out -------------------------------------------------------------------------------------------

    async def resync(self) -> None:
        """Connection ONLINE, the factsheet, and a full state (after every (re)connection).

        ONLINE goes out only once the broker granted our order/instantActions subscriptions, so an
        order master control sends on seeing ONLINE cannot be lost."""
        try:
            for sub in self._subscriptions:
                await sub.wait_granted()
        except TimeoutError:  # the link went down again meanwhile; the next connection resyncs
            return
        await self._publish_connection(ConnectionState.ONLINE)
        await self.publish_factsheet()
        self._dirty.set()

    def _on_connected(self) -> None:
        task = asyncio.create_task(self.resync(), name="link-resync")
        self._resyncs.add(task)
        task.add_done_callback(self._resyncs.discard)

    async def _publish_connection(self, state: ConnectionState, *, wait: bool = False) -> None:
        message = self.headers.make(Connection, connection_state=state)
        await self.mqtt.publish(
            str(self.topic(TopicKind.CONNECTION)), to_bytes(message), qos=1, retain=True, wait=wait
        )

    async def publish_factsheet(self) -> None:
        """Publish the factsheet (retained) with a fresh header."""
        factsheet = self.headers.stamp(self.factsheet)
        await self.mqtt.publish(str(self.topic(TopicKind.FACTSHEET)), to_bytes(factsheet), qos=1, retain=True)

    def request_factsheet(self) -> None:
        """Publish the factsheet soon (``factsheetRequest``; called from the vehicle, not awaited)."""
        task = asyncio.create_task(self.publish_factsheet(), name="link-factsheet")
        self._resyncs.add(task)
        task.add_done_callback(self._resyncs.discard)

    async def publish_state(self) -> bool:
        """Publish the vehicle's state now; False when the link is down (resync will send it)."""
        if not self.mqtt.connected.is_set():
            return False
        state = self.headers.make(State, **self.vehicle.state_body())
        try:
            await self.mqtt.publish(str(self.topic(TopicKind.STATE)), to_bytes(state), qos=0)
        except NotConnectedError:
            return False
        self._last_state = self.clock.monotonic()
        return True

    async def _state_loop(self) -> None:
        """A state on every change, and at least every ``state_period`` seconds."""
        while True:
            due = self._last_state + self.settings.state_period - self.clock.monotonic()
            if due > 0 and not self._dirty.is_set():
                await self._wait_dirty(due)
            self._dirty.clear()
            if not await self.publish_state():
                self._last_state = self.clock.monotonic()  # nothing to do until the link is back

    async def _wait_dirty(self, timeout: float) -> None:
        """Until the vehicle changed or ``timeout`` seconds of the clock passed."""
        changed = asyncio.create_task(self._dirty.wait())
        timer = asyncio.create_task(self.clock.sleep(timeout))
        try:
            await asyncio.wait({changed, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            timer.cancel()

    async def _visualization_loop(self) -> None:
        topic = str(self.topic(TopicKind.VISUALIZATION))
        while True:
            await self.clock.sleep(self.settings.visualization_period)
            if not self.mqtt.connected.is_set():
                continue
            message = self.headers.make(Visualization, **self.vehicle.motion_body())
            try:
                await self.mqtt.publish(topic, to_bytes(message), qos=0)
            except NotConnectedError:
                continue

    # --- in --------------------------------------------------------------------------------------------

    async def _consume(self, sub: Subscription, handler: Callable[[Message], object]) -> None:
        """Hand each message to ``handler``; anything it raises is logged, never fatal."""
        async for message in sub:
            try:
                result = handler(message)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                self.log.exception("message on %s could not be handled: dropped", message.topic)

    def _parse(self, kind: TopicKind, message: Message) -> Order | InstantActions | None:
        """The message as a model addressed to this robot, or None after reporting why not."""
        try:
            parsed = parse(kind, message.payload, max_bytes=self.settings.max_payload_bytes)
        except PayloadError as exc:
            self._drop(kind, message, str(exc), None)
            return None
        if not isinstance(parsed, Order | InstantActions):
            return None
        problem = header_problem(
            parsed.manufacturer,
            parsed.serial_number,
            expected_manufacturer=self.headers.manufacturer,
            expected_serial=self.headers.serial_number,
        )
        if problem is not None:
            self._drop(kind, message, problem, parsed.header_id)
            return None
        return parsed

    def _drop(self, kind: TopicKind, message: Message, reason: str, header_id: int | None) -> None:
        """Log a refused message and report a ``validationError``."""
        self.dropped += 1
        preview = message.payload[:_PREVIEW].decode("utf-8", errors="replace")
        size = len(message.payload)
        self.log.warning("dropped %s (%d bytes, %r...): %s", message.topic, size, preview, reason)
        refs: list[tuple[str, str | int]] = [("topic", kind.value)]
        if header_id is not None:
            refs.insert(0, ("headerId", header_id))
        self.vehicle.report(make_error(ErrorType.VALIDATION_ERROR, f"{kind.value} dropped: {reason}", refs))

    async def _handle_order(self, message: Message) -> None:
        order = self._parse(TopicKind.ORDER, message)
        if isinstance(order, Order):
            await self.vehicle.receive_order(order)

    async def _handle_instant_actions(self, message: Message) -> None:
        actions = self._parse(TopicKind.INSTANT_ACTIONS, message)
        if isinstance(actions, InstantActions):
            await self.vehicle.receive_instant_actions(actions)

    def _handle_teleop(self, message: Message) -> None:
        if self._on_teleop is None:
            self.log.debug("teleop message on %s dropped: no teleop handler", message.topic)
            return
        self._on_teleop(message)
