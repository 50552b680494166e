"""What the fleet master tells the rest of the orchestrator, and the stream that carries it.

Every event is a frozen dataclass with the robot's serial number and the clock's epoch time ``at``.
``EventBus.subscribe()`` gives an ``EventStream`` (an async iterator with a bounded queue: a consumer
that falls ``maxsize`` events behind loses the newest ones, counted in ``dropped``, rather than the
memory of the process). Close a stream (or leave its ``with`` block) to stop receiving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType

from orchestrator.fleet.picture import Link


class OrderStatus(StrEnum):
    """How an order ended."""

    FINISHED = "FINISHED"  # every node passed, every action FINISHED
    FAILED = "FAILED"  # every node passed, but at least one action FAILED
    CANCELLED = "CANCELLED"  # cancelOrder was confirmed by the robot
    REJECTED = "REJECTED"  # the robot refused the order (an orderError/validationError names it)
    UNCONFIRMED = "UNCONFIRMED"  # no state confirmed it after the bounded resends
    ABANDONED = "ABANDONED"  # the robot went on reporting another orderId before finishing ours


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """Base of the fleet's events."""

    robot: str
    at: float


@dataclass(frozen=True, slots=True)
class LinkChanged(FleetEvent):
    """The robot's link changed (``connection`` message, or the stale-state timeout)."""

    link: Link
    previous: Link


@dataclass(frozen=True, slots=True)
class FactsheetReceived(FleetEvent):
    """The robot published its factsheet (now in the registry)."""

    series_name: str


@dataclass(frozen=True, slots=True)
class OrderConfirmed(FleetEvent):
    """A ``state`` carried the new ``orderId``/``orderUpdateId``."""

    order_id: str
    order_update_id: int
    attempts: int


@dataclass(frozen=True, slots=True)
class OrderNotConfirmed(FleetEvent):
    """No ``state`` confirmed the order or update after ``attempts`` sendings; or the robot refused it."""

    order_id: str
    order_update_id: int
    attempts: int
    reason: str


@dataclass(frozen=True, slots=True)
class NodePassed(FleetEvent):
    """The robot reported ``node_id`` (``sequence_id``) of the order as its last node."""

    order_id: str
    node_id: str
    sequence_id: int


@dataclass(frozen=True, slots=True)
class OrderEnded(FleetEvent):
    """The order is over; ``failed_actions`` lists the ids of actions that ended FAILED."""

    order_id: str
    order_update_id: int
    status: OrderStatus
    failed_actions: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ActionEnded(FleetEvent):
    """An instant action ended: ``status`` is FINISHED or FAILED (or UNCONFIRMED: never reported)."""

    action_id: str
    action_type: str
    status: str
    result: str = ""


class EventStream:
    """Events in arrival order; ``async for event in stream`` or ``await stream.get()``."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[FleetEvent] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, event: FleetEvent) -> None:
        """Queue ``event`` (dropped and counted when the consumer is too far behind)."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def get(self) -> FleetEvent:
        """The next event."""
        return await self._queue.get()

    def get_nowait(self) -> FleetEvent:
        """The next event if one is queued (``asyncio.QueueEmpty`` otherwise)."""
        return self._queue.get_nowait()

    def pending(self) -> int:
        """How many events are queued."""
        return self._queue.qsize()

    def close(self) -> None:
        """Stop receiving events."""
        self._bus.unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[FleetEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[FleetEvent]:
        while True:
            yield await self._queue.get()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


class EventBus:
    """Fan-out of fleet events to every open stream."""

    def __init__(self) -> None:
        self._streams: list[EventStream] = []

    def subscribe(self, maxsize: int = 10_000) -> EventStream:
        """A new stream receiving every event published from now on."""
        stream = EventStream(self, maxsize)
        self._streams.append(stream)
        return stream

    def unsubscribe(self, stream: EventStream) -> None:
        """Stop delivering to ``stream`` (no error if it was already closed)."""
        if stream in self._streams:
            self._streams.remove(stream)

    def publish(self, event: FleetEvent) -> None:
        """Deliver ``event`` to every stream."""
        for stream in self._streams:
            stream.offer(event)
