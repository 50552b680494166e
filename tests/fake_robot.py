"""A minimal VDA 5050 robot over MQTT for the fleet master's tests (the test decides what it does),
and helpers to wait for what the fleet master does.

It publishes a retained ``connection`` ONLINE (last will CONNECTIONBROKEN), receives ``order`` and
``instantActions`` (each checked against the official 2.1 schema as it arrives), and publishes a
``state`` built from its fields whenever the test calls ``publish_state()``. It has no timers and no
rules of its own: accepting, passing nodes, finishing actions and refusing are explicit calls.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from vda5050_samples import OfficialSchemas

from interfaces.clock import Clock
from interfaces.mqtt import MqttClient, MqttConfig, Will
from interfaces.vda5050 import (
    ActionState,
    ActionStatus,
    AgvError,
    AgvPosition,
    BatteryState,
    Connection,
    ConnectionState,
    EdgeState,
    ErrorLevel,
    ErrorReference,
    EStop,
    Factsheet,
    HeaderFactory,
    InstantActions,
    NodeState,
    OperatingMode,
    Order,
    SafetyState,
    State,
    Topic,
    TopicKind,
    parse_as,
    to_bytes,
)
from maps.model import Edge, GeoOrigin, Node, Site
from orchestrator.fleet import FleetConfig, FleetEvent, FleetMaster, parse_fleet
from orchestrator.fleet.digest import StateDigest
from orchestrator.fleet.events import EventStream
from sim.mosquitto import MosquittoBroker

TIMEOUT = 5.0

SAMPLE_FLEET = {
    "orchestrator": {"username": "orchestrator", "password": "orch-secret"},
    "robots": [
        {"manufacturer": "acme", "serial": "r1", "kind": "cart", "password": "r1-secret", "name": "Cart 1"},
        {"manufacturer": "acme", "serial": "r2", "kind": "indoor", "password": "r2-secret"},
    ],
}
"""A fleet file's content: the orchestrator and robots r1 (cart) and r2 (indoor) of manufacturer acme."""
E = TypeVar("E", bound=FleetEvent)


class FakeRobot:
    """One robot: ``await start()``, then drive it from the test."""

    def __init__(
        self,
        broker: MosquittoBroker,
        serial: str,
        clock: Clock,
        schemas: OfficialSchemas,
        *,
        manufacturer: str = "acme",
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.serial = serial
        self.manufacturer = manufacturer
        self.broker = broker
        self.schemas = schemas
        self.headers = HeaderFactory(manufacturer, serial, clock=clock)
        self.topic = Topic(manufacturer=manufacturer, serial_number=serial, kind=TopicKind.STATE)
        self.username, self.password = username, password
        self.mqtt: MqttClient | None = None
        self.orders_in: asyncio.Queue[Order] = asyncio.Queue()
        self.instant_in: asyncio.Queue[InstantActions] = asyncio.Queue()
        # what the next state says
        self.order_id = ""
        self.order_update_id = 0
        self.last_node_id = "start"
        self.last_node_sequence_id = 0
        self.node_states: list[NodeState] = []
        self.edge_states: list[EdgeState] = []
        self.action_states: dict[str, ActionState] = {}
        self.errors: list[AgvError] = []
        self.driving = False
        self.paused = False
        self.battery = 80.0
        self.position = AgvPosition(x=0.0, y=0.0, theta=0.0, map_id="outdoor", position_initialized=True)
        self.e_stop = EStop.NONE

    # ---- link ----------------------------------------------------------------------------------

    def connection_bytes(self, state: ConnectionState) -> bytes:
        return to_bytes(self.headers.make(Connection, connection_state=state))

    async def start(self) -> None:
        """Connect with the last will, announce ONLINE (retained), listen to orders and instant actions."""
        will = Will(
            str(self.topic.sibling("connection")), self.connection_bytes(ConnectionState.CONNECTIONBROKEN)
        )
        config = MqttConfig(
            host=self.broker.host, port=self.broker.port, username=self.username, password=self.password
        )
        self.mqtt = MqttClient(config, will=will)
        await self.mqtt.connect()
        orders = self.mqtt.subscribe(str(self.topic.sibling("order")))
        instant = self.mqtt.subscribe(str(self.topic.sibling("instantActions")))
        await orders.wait_granted()
        await instant.wait_granted()
        self._tasks = [
            asyncio.create_task(self._pump(orders, Order, TopicKind.ORDER, self.orders_in)),
            asyncio.create_task(
                self._pump(instant, InstantActions, TopicKind.INSTANT_ACTIONS, self.instant_in)
            ),
        ]
        await self.send(TopicKind.CONNECTION, self.connection_bytes(ConnectionState.ONLINE), retain=True)

    async def _pump(self, sub, model, kind, queue) -> None:  # type: ignore[no-untyped-def]
        async for message in sub:
            self.schemas.check(kind, json.loads(message.payload))
            queue.put_nowait(parse_as(model, message.payload))

    async def stop(self) -> None:
        """Say OFFLINE (retained) and disconnect cleanly."""
        if self.mqtt is None:
            return
        await self.send(TopicKind.CONNECTION, self.connection_bytes(ConnectionState.OFFLINE), retain=True)
        await self.close()

    async def close(self) -> None:
        """Disconnect without announcing anything."""
        for task in getattr(self, "_tasks", []):
            task.cancel()
        if self.mqtt is not None:
            await self.mqtt.disconnect()
            self.mqtt = None

    async def send(
        self, kind: TopicKind | str, payload: bytes, *, retain: bool = False, topic: str = ""
    ) -> None:
        """Publish raw bytes on one of our topics (or any ``topic``), QoS 1, waiting for the broker."""
        assert self.mqtt is not None
        where = topic or str(self.topic.sibling(kind))
        await self.mqtt.publish(where, payload, qos=1, retain=retain, wait=True)

    # ---- receiving -----------------------------------------------------------------------------

    async def next_order(self) -> Order:
        """The next order received (schema-checked)."""
        return await asyncio.wait_for(self.orders_in.get(), TIMEOUT)

    async def next_instant(self) -> InstantActions:
        """The next instantActions received (schema-checked)."""
        return await asyncio.wait_for(self.instant_in.get(), TIMEOUT)

    # ---- behaviour, by hand ----------------------------------------------------------------------

    def accept(self, order: Order) -> None:
        """Take a new order: standing at its first node, everything else still to do."""
        self.order_id, self.order_update_id = order.order_id, order.order_update_id
        first = order.nodes[0]
        self.last_node_id, self.last_node_sequence_id = first.node_id, first.sequence_id
        self.node_states = [
            NodeState(node_id=n.node_id, sequence_id=n.sequence_id, released=n.released)
            for n in order.nodes[1:]
        ]
        self.edge_states = [
            EdgeState(edge_id=e.edge_id, sequence_id=e.sequence_id, released=e.released) for e in order.edges
        ]
        self._record_released(order)

    def _record_released(self, order: Order) -> None:
        """Report the actions of released nodes and edges (as a real robot does), WAITING."""
        for part in [*order.nodes, *order.edges]:
            for action in part.actions if part.released else []:
                if action.action_id not in self.action_states:
                    self.action_states[action.action_id] = ActionState(
                        action_id=action.action_id,
                        action_type=action.action_type,
                        action_status=ActionStatus.WAITING,
                    )

    def accept_update(self, order: Order) -> None:
        """Take an update: the horizon is replaced by the update's nodes after the stitching node."""
        stitch = order.nodes[0].sequence_id
        self.order_update_id = order.order_update_id
        self.node_states = [n for n in self.node_states if n.sequence_id <= stitch]
        self.edge_states = [e for e in self.edge_states if e.sequence_id < stitch]
        self.node_states += [
            NodeState(node_id=n.node_id, sequence_id=n.sequence_id, released=n.released)
            for n in order.nodes[1:]
        ]
        self.edge_states += [
            EdgeState(edge_id=e.edge_id, sequence_id=e.sequence_id, released=e.released) for e in order.edges
        ]
        self._record_released(order)

    def pass_node(self) -> str:
        """Drive the next edge to the next node; its id."""
        node = self.node_states.pop(0)
        if self.edge_states:
            self.edge_states.pop(0)
        self.last_node_id, self.last_node_sequence_id = node.node_id, node.sequence_id
        return node.node_id

    def set_action(self, action_id: str, status: ActionStatus, action_type: str | None = None) -> None:
        """Report an action (of the order or instant) in ``status``."""
        old = self.action_states.get(action_id)
        self.action_states[action_id] = ActionState(
            action_id=action_id,
            action_type=action_type or (old.action_type if old else None),
            action_status=status,
        )

    def finish_all_actions(self, status: ActionStatus = ActionStatus.FINISHED) -> None:
        for action_id in list(self.action_states):
            self.set_action(action_id, status)

    def refuse(self, order: Order, error_type: str, description: str) -> None:
        """Report an order error naming the order and update."""
        refs = [
            ErrorReference(reference_key="orderId", reference_value=order.order_id),
            ErrorReference(reference_key="orderUpdateId", reference_value=str(order.order_update_id)),
        ]
        self.errors.append(
            AgvError(
                error_type=error_type,
                error_level=ErrorLevel.WARNING,
                error_references=refs,
                error_description=description,
            )
        )

    # ---- publishing --------------------------------------------------------------------------------

    def state(self) -> State:
        return self.headers.make(
            State,
            order_id=self.order_id,
            order_update_id=self.order_update_id,
            last_node_id=self.last_node_id,
            last_node_sequence_id=self.last_node_sequence_id,
            node_states=list(self.node_states),
            edge_states=list(self.edge_states),
            driving=self.driving,
            paused=self.paused,
            action_states=list(self.action_states.values()),
            battery_state=BatteryState(battery_charge=self.battery, charging=False),
            operating_mode=OperatingMode.AUTOMATIC,
            errors=list(self.errors),
            safety_state=SafetyState(e_stop=self.e_stop, field_violation=False),
            agv_position=self.position,
        )

    async def publish_state(self) -> State:
        """Publish the state the fields describe (and wait for the broker to have it)."""
        state = self.state()
        await self.send(TopicKind.STATE, to_bytes(state))
        return state

    async def publish_factsheet(self, factsheet: Factsheet) -> None:
        await self.send(TopicKind.FACTSHEET, to_bytes(factsheet))


def die_without_goodbye(broker: MosquittoBroker, will_topic: str, will: bytes, client_id: str) -> None:
    """Connect a raw paho client with a last will, then drop its TCP link without DISCONNECT.

    The broker sees the link die and publishes the will (as when a robot's process is killed).
    """
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
    client.will_set(will_topic, will, qos=1, retain=True)
    client.connect(broker.host, broker.port, keepalive=30)
    for _ in range(20):
        if client.is_connected():
            break
        client.loop(timeout=0.5)
    assert client.is_connected(), "raw client did not connect"
    sock = client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


async def next_event(stream: EventStream, kind: type[E], **match: Any) -> E:
    """The next event of ``kind`` whose fields equal ``match`` (others are skipped)."""

    async def find() -> E:
        while True:
            event = await stream.get()
            if isinstance(event, kind) and all(getattr(event, k) == v for k, v in match.items()):
                return event

    return await asyncio.wait_for(find(), TIMEOUT)


class StateWaiter:
    """Counts the states the master took in, per robot, so a test can wait for the n-th."""

    def __init__(self, master: FleetMaster) -> None:
        self.counts: dict[str, int] = {}
        self._changed = asyncio.Event()
        self.last: dict[str, StateDigest] = {}
        master.add_state_listener(self._seen)

    def _seen(self, serial: str, digest: StateDigest, _at: float) -> None:
        self.counts[serial] = self.counts.get(serial, 0) + 1
        self.last[serial] = digest
        self._changed.set()

    async def wait(self, serial: str, count: int) -> None:
        """Until the master took in ``count`` states of ``serial`` in all."""

        async def until() -> None:
            while self.counts.get(serial, 0) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), TIMEOUT)

    async def until(self, serial: str, holds: Callable[[StateDigest], bool]) -> None:
        """Until the last state the master took in from ``serial`` satisfies ``holds``. Other states
        (a responder's answer to an instant action, say) may come in between; counting would race them."""

        async def seen() -> None:
            while serial not in self.last or not holds(self.last[serial]):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(seen(), TIMEOUT)


def line_site(n: int = 5, spacing: float = 1.0, prefix: str = "n") -> Site:
    """``n`` outdoor nodes ``{prefix}0..`` ``spacing`` metres apart in a line, joined by edges."""
    site = Site("line", GeoOrigin(29.58, 105.06, 350.0))
    for i in range(n):
        site.add_node(Node(f"{prefix}{i}", spacing * i, 0.0))
    for i in range(n - 1):
        site.add_edge(Edge(f"e{i}", f"{prefix}{i}", f"{prefix}{i + 1}"))
    return site


def one_robot_fleet(serial: str = "r1", kind: str = "cart") -> FleetConfig:
    """A fleet of one robot ``acme/{serial}`` (passwords are placeholders: the test brokers are open)."""
    return parse_fleet(
        {
            "orchestrator": {"username": "orchestrator", "password": "x"},
            "robots": [{"manufacturer": "acme", "serial": serial, "kind": kind, "password": "x"}],
        }
    )
