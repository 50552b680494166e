"""The VDA 5050 master control: robots' messages in, orders and instant actions out.

``FleetMaster`` subscribes to every fleet robot's ``state``, ``connection``, ``visualization`` and
``factsheet`` topics, keeps the fleet picture (``views()``), follows orders and instant actions
(``tracking``), publishes what the dispatcher and the console ask for, and persists snapshots at a
bounded rate. Timeouts use the ``Clock`` it is given, so tests run them in virtual time.

Typical use::

    master = FleetMaster(fleet, mqtt, site, clock=clock, snapshots=SnapshotStore(engine, site_id, clock))
    await master.start()
    handle = await master.send_order(Leg("cart-01", route.path, actions={"stop_c": [drop]}))
    await handle.confirmed            # a state carried the new orderId/orderUpdateId
    await handle.reached("stop_c")    # NodePassed
    ended = await handle.finished     # OrderEnded(status=FINISHED|FAILED|CANCELLED|...)
    await master.stop()

Robustness: a message that cannot be used — not JSON, wrong types, too big, on a malformed topic, from
a robot not in the fleet — is counted, logged (when the topic's problem is new or changed, and every
1000th repeat) and dropped; the master goes on. Resends are bounded: after ``max_resends`` unconfirmed
resends an order's ``confirmed`` fails with ``OrderNotConfirmedError`` and ``OrderNotConfirmed`` is
published; never is an order resent or updated after ``cancelOrder`` (a new order gets a new id).

Orders and instant actions go out with QoS 1 (``FleetOptions.order_qos``; VDA 5050 §6.3 names QoS 0):
the client then queues them while the broker is away, and a robot ignores an identical resend.
Incoming states are read with ``digest.read_state`` (only the fields used), taken in a burst at a
time, and never written to the database one by one (see ``persistence``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from interfaces.clock import Clock
from interfaces.mqtt import Message, MqttClient, MqttError, Subscription
from interfaces.vda5050 import (
    DEFAULT_MAX_BYTES,
    ActionParams,
    CancelOrder,
    Connection,
    Factsheet,
    FactsheetRequest,
    HeaderFactory,
    InitPosition,
    InstantActions,
    Order,
    PayloadError,
    StartPause,
    StateRequest,
    StopPause,
    Topic,
    TopicKind,
    Vda5050Model,
    make_action,
    parse_as,
    subscription,
    to_bytes,
)
from maps.model import OUTDOOR, Site
from orchestrator.fleet.config import FleetConfig
from orchestrator.fleet.digest import STATE_MAX_BYTES, StateDigest, read_state, read_visualization
from orchestrator.fleet.errors import LegError, UnknownRobotError
from orchestrator.fleet.events import EventBus, EventStream, FactsheetReceived, FleetEvent, LinkChanged
from orchestrator.fleet.orders import Leg, OrderBuilder
from orchestrator.fleet.persistence import SnapshotPersister, SnapshotStore
from orchestrator.fleet.picture import FleetPicture, Link, RobotStatus, RobotView
from orchestrator.fleet.tracking import InstantActionHandle, OrderHandle, RobotOrders

StateListener = Callable[[str, StateDigest, float], None]
"""Called with (serial, state digest, receive time) for every state taken into the picture."""

_LOG_EVERY = 1000


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """Timing and limits of the fleet master (seconds, bytes)."""

    stale_after_s: float = 45.0  # no state for this long → STALE (robots send one at least every 30 s)
    stale_check_s: float = 1.0
    confirm_timeout_s: float = 5.0  # wait this long for a confirming state before resending
    max_resends: int = 3
    persist_interval_s: float = 5.0  # at most one snapshot write per robot per interval
    order_qos: int = 1
    state_max_bytes: int = STATE_MAX_BYTES
    factsheet_max_bytes: int = DEFAULT_MAX_BYTES
    request_factsheet: bool = True  # ask a robot that comes online for its factsheet if none is known
    outdoor_map_id: str = OUTDOOR
    allowed_deviation_xy: float | None = None

    def __post_init__(self) -> None:
        for name in ("stale_after_s", "stale_check_s", "confirm_timeout_s", "persist_interval_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FleetOptions.{name} must be > 0, got {getattr(self, name)}")
        if self.max_resends < 0:
            raise ValueError(f"FleetOptions.max_resends must be >= 0, got {self.max_resends}")
        if self.order_qos not in (0, 1, 2):
            raise ValueError(f"FleetOptions.order_qos must be 0, 1 or 2, got {self.order_qos}")


class FleetMaster:
    """Master control of one fleet over one MQTT client (see the module docstring)."""

    def __init__(
        self,
        fleet: FleetConfig,
        mqtt: MqttClient,
        site: Site,
        *,
        clock: Clock,
        options: FleetOptions | None = None,
        snapshots: SnapshotStore | None = None,
        logger: logging.Logger | None = None,
        new_order_id: Callable[[], str] | None = None,
        owns_client: bool = False,
    ) -> None:
        self.fleet = fleet
        self.mqtt = mqtt
        self.clock = clock
        self.options = options or FleetOptions()
        self.builder = OrderBuilder(
            site,
            outdoor_map_id=self.options.outdoor_map_id,
            allowed_deviation_xy=self.options.allowed_deviation_xy,
        )
        self.picture = FleetPicture.of(fleet.robots)
        self.events = EventBus()
        self.received: Counter[str] = Counter()  # messages taken in, by topic kind
        self.dropped: Counter[str] = Counter()  # messages dropped, by reason
        self._log = logger or logging.getLogger("robopost.fleet")
        self._snapshots = snapshots
        self._persister: SnapshotPersister | None = None
        self._new_order_id = new_order_id or (lambda: str(uuid.uuid4()))
        self._owns_client = owns_client
        self._orders = {r.serial: RobotOrders(r.serial) for r in fleet.robots}
        self._headers = {
            r.serial: HeaderFactory(r.manufacturer, r.serial, r.version, clock=clock) for r in fleet.robots
        }
        self._topics = {r.serial: _topic(fleet, r.serial) for r in fleet.robots}
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listeners: list[StateListener] = []
        self._drop_counts: Counter[tuple[str, str]] = Counter()
        self._last_drop: dict[tuple[str, str], str] = {}

    # ---- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Register the robots in the store (if any), subscribe, and start the background loops."""
        if self._snapshots is not None:
            ids = await asyncio.to_thread(self._snapshots.register, self.fleet.robots)
            self._persister = SnapshotPersister(
                self._snapshots, ids, self.clock, self.options.persist_interval_s, self._log
            )
            self._spawn(self._every(self.options.persist_interval_s / 10, self.flush_snapshots))
        handlers: dict[TopicKind, Callable[[RobotStatus, Message], None]] = {
            TopicKind.CONNECTION: self._on_connection,
            TopicKind.STATE: self._on_state,
            TopicKind.VISUALIZATION: self._on_visualization,
            TopicKind.FACTSHEET: self._on_factsheet,
        }
        majors = sorted({r.major_version for r in self.fleet.robots} or {"v2"})
        for kind, handler in handlers.items():
            for major in majors:
                sub = self.mqtt.subscribe(
                    subscription(kind, interface=self.fleet.interface, major_version=major), qos=1
                )
                self._subs.append(sub)
                self._spawn(self._ingest(sub, kind, handler))
        if self.mqtt.connected.is_set():  # from here on no robot message is missed
            await asyncio.gather(*(sub.wait_granted() for sub in self._subs))
        self._spawn(self._every(self.options.stale_check_s, self._check_stale_now))

    async def stop(self) -> None:
        """Stop the loops, cancel the futures of orders and actions still open, write the last
        snapshots, unsubscribe (and disconnect an owned client)."""
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sub in self._subs:
            self.mqtt.unsubscribe(sub)
        self._subs.clear()
        for orders in self._orders.values():
            orders.close()
        if self._persister is not None:
            await self._persister.flush_all(self.picture.robots.values())
        if self._owns_client:
            await self.mqtt.disconnect()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("fleet: background task failed", exc_info=task.exception())

    async def _every(self, seconds: float, action: Callable[[], Awaitable[Any] | Any]) -> None:
        while True:
            await self.clock.sleep(seconds)
            result = action()
            if asyncio.iscoroutine(result):
                await result

    # ---- reading the picture -----------------------------------------------------------------------

    def views(self) -> list[RobotView]:
        """A snapshot of every robot, by serial number."""
        return self.picture.views(self.clock.now())

    def view(self, robot: str) -> RobotView:
        """A snapshot of one robot; ``UnknownRobotError`` if it is not in the fleet."""
        return self._status(robot).view(self.clock.now())

    def stats(self) -> dict[str, Any]:
        """Counters: messages taken in by kind, dropped by reason (``queue full``: the ingestion fell
        too far behind), robots by link state."""
        links = Counter(r.link.value for r in self.picture.robots.values())
        dropped = dict(self.dropped)
        behind = sum(sub.dropped for sub in self._subs)
        if behind:
            dropped["queue full"] = behind
        return {"received": dict(self.received), "dropped": dropped, "links": dict(links)}

    def subscribe(self, maxsize: int = 10_000) -> EventStream:
        """A stream of every fleet event from now on (``with master.subscribe() as events: ...``)."""
        return self.events.subscribe(maxsize)

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener`` for every state taken in; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _status(self, robot: str) -> RobotStatus:
        status = self.picture.robots.get(robot)
        if status is None:
            raise UnknownRobotError(f"robot {robot!r} is not in the fleet")
        return status

    # ---- orders ------------------------------------------------------------------------------------

    async def send_order(self, leg: Leg) -> OrderHandle:
        """Send a new order (new ``orderId``, ``orderUpdateId`` 0) for ``leg``.

        ``OrderStateError`` while the robot still has an unfinished order (update or cancel it first);
        ``LegError`` if the leg does not fit the map.
        """
        self._status(leg.robot)
        orders = self._orders[leg.robot]
        orders.check_idle()
        parts = self.builder.build(leg)
        message = self._headers[leg.robot].make(
            Order,
            order_id=self._new_order_id(),
            order_update_id=0,
            nodes=list(parts.nodes),
            edges=list(parts.edges),
        )
        handle = orders.new_order(message, parts)
        await self._send_order(handle)
        return handle

    async def update_order(self, leg: Leg) -> OrderHandle:
        """Extend the robot's current order from its decision point (``leg.path[0]``) with ``leg``.

        Same ``orderId``, ``orderUpdateId`` + 1. ``OrderStateError`` if the robot has no running order,
        the previous message is not confirmed yet, or the order was cancelled; ``LegError`` if the leg
        does not start at the decision point.
        """
        self._status(leg.robot)
        orders = self._orders[leg.robot]
        run = orders.check_updatable()
        if run.parts is None:
            raise LegError(f"robot {leg.robot}: order {run.order_id} has no confirmed nodes to continue")
        parts = self.builder.stitch(run.parts, leg)
        message = self._headers[leg.robot].make(
            Order,
            order_id=run.order_id,
            order_update_id=run.update_id + 1,
            nodes=list(parts.nodes),
            edges=list(parts.edges),
        )
        handle = orders.update(message, parts)
        await self._send_order(handle)
        return handle

    def pending_order(self, robot: str) -> OrderHandle | None:
        """The order or update sent to ``robot`` and not confirmed yet, if any."""
        self._status(robot)
        return self._orders[robot].pending

    async def _send_order(self, handle: OrderHandle) -> None:
        await self._publish(handle.robot, TopicKind.ORDER, handle.message)
        self._spawn(self._confirm_order(handle))

    async def _confirm_order(self, handle: OrderHandle) -> None:
        """Resend the identical order (new header) until a state confirms it; give up after the limit."""
        orders = self._orders[handle.robot]
        while not await self._wait(handle.confirmed, self.options.confirm_timeout_s):
            if orders.pending is not handle:
                return  # cancelled meanwhile: never resend
            if handle.attempts > self.options.max_resends:
                self._emit(orders.give_up(handle, self.clock.now()))
                return
            handle.attempts += 1
            self._log.info(
                "fleet: %s: order %s/%d unconfirmed, resending (%d)",
                handle.robot,
                handle.order_id,
                handle.order_update_id,
                handle.attempts,
            )
            await self._publish(
                handle.robot, TopicKind.ORDER, self._headers[handle.robot].stamp(handle.message)
            )

    # ---- instant actions ---------------------------------------------------------------------------

    async def instant_action(self, robot: str, params: ActionParams) -> InstantActionHandle:
        """Send one instant action and track it until the robot reports it FINISHED or FAILED."""
        self._status(robot)
        orders = self._orders[robot]
        message = self._headers[robot].make(InstantActions, actions=[make_action(params)])
        handle = orders.instant_action(message)
        if isinstance(params, CancelOrder):
            self._emit(orders.cancel_requested(self.clock.now()))
        await self._publish(robot, TopicKind.INSTANT_ACTIONS, message)
        self._spawn(self._confirm_action(handle))
        return handle

    async def cancel(self, robot: str) -> InstantActionHandle:
        """``cancelOrder``: the current order ends CANCELLED; it can never be updated again."""
        return await self.instant_action(robot, CancelOrder())

    async def pause(self, robot: str) -> InstantActionHandle:
        """``startPause``: the robot stops driving and pauses its actions."""
        return await self.instant_action(robot, StartPause())

    async def resume(self, robot: str) -> InstantActionHandle:
        """``stopPause``: the robot carries on."""
        return await self.instant_action(robot, StopPause())

    async def init_position(self, robot: str, node_id: str, theta: float = 0.0) -> InstantActionHandle:
        """``initPosition`` at a map node: its coordinates and map, ``lastNodeId`` = the node."""
        if node_id not in self.builder.site.nodes:
            raise LegError(f"robot {robot}: unknown map node {node_id!r}")
        x, y = self.builder.map_xy(node_id)
        params = InitPosition(
            x=x, y=y, theta=theta, map_id=self.builder.map_of(node_id), last_node_id=node_id
        )
        return await self.instant_action(robot, params)

    async def request_state(self, robot: str) -> InstantActionHandle:
        """``stateRequest``: the robot publishes a state now."""
        return await self.instant_action(robot, StateRequest())

    async def request_factsheet(self, robot: str) -> InstantActionHandle:
        """``factsheetRequest``: the robot publishes its factsheet."""
        return await self.instant_action(robot, FactsheetRequest())

    async def _confirm_action(self, handle: InstantActionHandle) -> None:
        orders = self._orders[handle.robot]
        while not await self._wait(handle.reported, self.options.confirm_timeout_s):
            if orders.instant.get(handle.action_id) is not handle:
                return
            if handle.attempts > self.options.max_resends:
                self._emit(orders.give_up_action(handle, self.clock.now()))
                return
            handle.attempts += 1
            stamped = self._headers[handle.robot].stamp(handle.message)
            await self._publish(handle.robot, TopicKind.INSTANT_ACTIONS, stamped)

    # ---- publishing and waiting --------------------------------------------------------------------

    async def _publish(self, robot: str, kind: TopicKind, message: Vda5050Model) -> None:
        """Publish; a failure is logged (the resend loop tries again)."""
        try:
            await self.mqtt.publish(self._topics[robot][kind], to_bytes(message), qos=self.options.order_qos)
        except MqttError as exc:
            self._log.warning("fleet: %s: cannot publish %s: %s", robot, kind, exc)

    async def _wait(self, fut: asyncio.Future[Any], seconds: float) -> bool:
        """Whether ``fut`` is done within ``seconds`` of the master's clock."""
        if fut.done():
            return True
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({fut, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
        return fut.done()

    def _emit(self, events: list[FleetEvent]) -> None:
        for event in events:
            self.events.publish(event)

    # ---- taking messages in ------------------------------------------------------------------------

    async def _ingest(
        self, sub: Subscription, kind: TopicKind, handler: Callable[[RobotStatus, Message], None]
    ) -> None:
        """Hand every message of ``sub`` to ``handler``, a burst at a time; a bad one never stops it."""
        while True:
            batch = [await sub.get()]
            batch += [sub.get_nowait() for _ in range(sub.pending())]
            for message in batch:
                try:
                    self._take(kind, message, handler)
                except Exception:  # one message must never stop the fleet's ingestion: log and go on
                    self._log.exception("fleet: failed on a %s message from %s", kind, message.topic)
                    self.dropped["internal error"] += 1

    def _take(
        self, kind: TopicKind, message: Message, handler: Callable[[RobotStatus, Message], None]
    ) -> None:
        """Find the robot the topic names, then let ``handler`` read the message; drop garbage."""
        parts = message.topic.split("/")
        status = self.picture.robots.get(parts[3]) if len(parts) == 5 else None
        if status is None or status.config.manufacturer != parts[2]:
            self._drop(message.topic, "unknown robot", f"{message.topic}: not a robot of this fleet")
            return
        try:
            handler(status, message)
        except PayloadError as exc:
            self._drop(message.topic, f"bad {kind}", str(exc))
            return
        self.received[kind.value] += 1

    def _drop(self, topic: str, reason: str, detail: str) -> None:
        """Count a dropped message; log it when its topic and reason are new or its problem changed,
        and every 1000th of a kind (a robot repeating one fault must not flood the log)."""
        self.dropped[reason] += 1
        key = (topic, reason)
        self._drop_counts[key] += 1
        count = self._drop_counts[key]
        if count % _LOG_EVERY == 0 or self._last_drop.get(key) != detail:
            self._last_drop[key] = detail
            self._log.warning("fleet: dropped (%s, %d so far): %s", reason, count, detail[:300])

    def _on_state(self, status: RobotStatus, message: Message) -> None:
        digest = read_state(message.payload, max_bytes=self.options.state_max_bytes)
        now = self.clock.now()
        previous = status.on_state(digest, now, self.clock.monotonic())
        if previous is not None:
            self._link_changed(status, previous, now)
        orders = self._orders[status.config.serial]
        if orders.watching:
            self._emit(orders.on_state(digest, now))
        for listener in self._listeners:
            listener(status.config.serial, digest, now)

    def _on_connection(self, status: RobotStatus, message: Message) -> None:
        connection = parse_as(Connection, message.payload, max_bytes=self.options.state_max_bytes)
        now = self.clock.now()
        previous = status.on_connection(connection.connection_state, now, self.clock.monotonic())
        if previous is not None:
            self._link_changed(status, previous, now)

    def _on_visualization(self, status: RobotStatus, message: Message) -> None:
        digest = read_visualization(message.payload, max_bytes=self.options.state_max_bytes)
        if digest.agv_position is not None:
            status.position, status.dirty = digest.agv_position, True

    def _on_factsheet(self, status: RobotStatus, message: Message) -> None:
        factsheet = parse_as(Factsheet, message.payload, max_bytes=self.options.factsheet_max_bytes)
        status.factsheet, status.dirty = factsheet, True
        series = factsheet.type_specification.series_name
        self.events.publish(FactsheetReceived(status.config.serial, self.clock.now(), series))

    def _link_changed(self, status: RobotStatus, previous: Link, now: float) -> None:
        serial = status.config.serial
        self._log.info("fleet: %s %s → %s", serial, previous, status.link)
        self.events.publish(LinkChanged(serial, now, status.link, previous))
        if status.link is Link.ONLINE and status.factsheet is None and self.options.request_factsheet:
            self._spawn(self.request_factsheet(serial))

    # ---- periodic work -----------------------------------------------------------------------------

    def check_stale(self) -> list[str]:
        """Mark ONLINE robots without a state for ``stale_after_s`` as STALE; their serial numbers."""
        mono, now = self.clock.monotonic(), self.clock.now()
        stale = []
        for status in self.picture.robots.values():
            if status.is_stale(mono, self.options.stale_after_s):
                previous = status.set_link(Link.STALE, now, mono)
                if previous is not None:
                    self._link_changed(status, previous, now)
                    stale.append(status.config.serial)
        return stale

    def _check_stale_now(self) -> None:
        self.check_stale()

    async def flush_snapshots(self) -> int:
        """Write the snapshots that are due (at most one per robot per persist interval); how many."""
        if self._persister is None:
            return 0
        return await self._persister.flush_due(self.picture.robots.values())


def _topic(fleet: FleetConfig, serial: str) -> dict[TopicKind, str]:
    """The topics the master publishes to for one robot."""
    robot = fleet.robot(serial)
    base = Topic(
        interface=fleet.interface,
        major_version=robot.major_version,
        manufacturer=robot.manufacturer,
        serial_number=robot.serial,
        kind=TopicKind.ORDER,
    )
    return {
        kind: str(base.sibling(kind))
        for kind in (TopicKind.ORDER, TopicKind.INSTANT_ACTIONS, TopicKind.TELEOP)
    }
