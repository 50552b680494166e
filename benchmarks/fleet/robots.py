"""Lightweight bench robots: many VDA 5050 robots in one process, one MQTT connection each.

Each robot is a paho client driven by this process's asyncio loop (no network thread per client:
paho's sockets are watched with ``loop.add_reader``; publishes write straight to the socket). A robot
logs in with its own account, leaves a last will, announces ``connection`` ONLINE (retained), then
publishes a ``state`` of about 1 kB every ``period_s`` with a fresh ``headerId`` and ``timestamp``
(the rest of the message is rendered once, from a real ``State`` model). Phases are spread evenly
so the load is smooth.

Run by ``benchmarks.fleet.bench`` in one or more child processes: ``run_robots(spec, go, stop, ready)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing.synchronize
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from interfaces.clock import RealClock
from interfaces.vda5050 import (
    ActionState,
    ActionStatus,
    AgvPosition,
    BatteryState,
    Connection,
    ConnectionState,
    EdgeState,
    EStop,
    HeaderFactory,
    NodePosition,
    NodeState,
    OperatingMode,
    SafetyState,
    State,
    Velocity,
    format_timestamp,
    to_bytes,
    to_json,
)


@dataclass(frozen=True, slots=True)
class RobotSpec:
    """What one robot process runs: broker, robots as (serial, password), topic prefix, period."""

    host: str
    port: int
    manufacturer: str
    robots: tuple[tuple[str, str], ...]
    interface: str = "robopost"
    period_s: float = 0.5


def state_template(manufacturer: str, serial: str) -> tuple[bytes, bytes]:
    """The state message split around its header: ``prefix + b'%d,"timestamp":"%s",' + rest``."""
    headers = HeaderFactory(manufacturer, serial, clock=RealClock())
    state = headers.make(
        State,
        order_id="bench-order",
        order_update_id=0,
        last_node_id="n1",
        last_node_sequence_id=2,
        node_states=[
            NodeState(
                node_id="n2",
                sequence_id=4,
                released=True,
                node_position=NodePosition(x=10, y=5, map_id="outdoor"),
            ),
            NodeState(node_id="n3", sequence_id=6, released=False),
        ],
        edge_states=[
            EdgeState(edge_id="e12", sequence_id=3, released=True),
            EdgeState(edge_id="e23", sequence_id=5, released=False),
        ],
        driving=True,
        paused=False,
        action_states=[
            ActionState(action_id="a-pick", action_type="pick", action_status=ActionStatus.FINISHED),
            ActionState(action_id="a-drop", action_type="drop", action_status=ActionStatus.WAITING),
        ],
        battery_state=BatteryState(battery_charge=76.5, battery_voltage=48.1, charging=False),
        operating_mode=OperatingMode.AUTOMATIC,
        errors=[],
        safety_state=SafetyState(e_stop=EStop.NONE, field_violation=False),
        agv_position=AgvPosition(x=5.25, y=2.5, theta=0.4, map_id="outdoor", position_initialized=True),
        velocity=Velocity(vx=1.2, vy=0.0, omega=0.0),
    )
    body = to_json(state)
    del body["headerId"], body["timestamp"]
    rest = json.dumps(body, separators=(",", ":")).encode()[1:]  # without the opening brace
    return b'{"headerId":', rest


class BenchRobot:
    """One robot: a paho client on the shared loop, its state template and header counter."""

    def __init__(self, spec: RobotSpec, serial: str, password: str, loop: asyncio.AbstractEventLoop) -> None:
        base = f"{spec.interface}/v2/{spec.manufacturer}/{serial}"
        self.state_topic = f"{base}/state"
        self.connection_topic = f"{base}/connection"
        self.prefix, self.rest = state_template(spec.manufacturer, serial)
        self.header_id = 0
        self.connected = asyncio.Event()
        self.loop = loop
        headers = HeaderFactory(spec.manufacturer, serial, clock=RealClock())
        self.online = to_bytes(headers.make(Connection, connection_state=ConnectionState.ONLINE))
        self.offline = to_bytes(headers.make(Connection, connection_state=ConnectionState.OFFLINE))
        broken = to_bytes(headers.make(Connection, connection_state=ConnectionState.CONNECTIONBROKEN))
        c = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"bench-{serial}",
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        c.username_pw_set(serial, password)
        c.will_set(self.connection_topic, broken, qos=1, retain=True)
        c.on_socket_open = lambda _c, _u, sock: loop.add_reader(sock, self._read)
        c.on_socket_close = lambda _c, _u, sock: loop.remove_reader(sock)
        c.on_connect = self._on_connect
        self.client = c

    def _read(self) -> None:
        self.client.loop_read(max_packets=10)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            self.client.publish(self.connection_topic, self.online, qos=1, retain=True)
            self.loop.call_soon(self.connected.set)

    def connect(self, host: str, port: int) -> None:
        """Open the TCP link and send CONNECT (the CONNACK arrives through the loop)."""
        self.client.connect(host, port, keepalive=60)
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def publish_state(self) -> None:
        """Publish the next state (QoS 0) with a fresh header id and the current time."""
        stamp = format_timestamp(datetime.now(UTC)).encode()
        payload = b'%s%d,"timestamp":"%s",%s' % (self.prefix, self.header_id, stamp, self.rest)
        self.header_id += 1
        self.client.publish(self.state_topic, payload, qos=0)

    def housekeeping(self) -> None:
        """Keep-alive pings and any write left over from a full socket buffer."""
        self.client.loop_misc()
        if self.client.want_write():
            self.client.loop_write()

    def goodbye(self) -> None:
        """Announce OFFLINE and disconnect cleanly."""
        self.client.publish(self.connection_topic, self.offline, qos=0, retain=True)
        self.client.disconnect()


async def _drive(robot: BenchRobot, period_s: float, phase: float, stop: asyncio.Event) -> int:
    """Publish a state every ``period_s`` after ``phase``; how many were sent."""
    loop = asyncio.get_running_loop()
    due = loop.time() + phase
    sent = 0
    while not stop.is_set():
        await asyncio.sleep(max(0.0, due - loop.time()))
        robot.publish_state()
        sent += 1
        due += period_s
    return sent


async def _robots_main(
    spec: RobotSpec,
    go: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
    ready: multiprocessing.synchronize.Event,
) -> int:
    loop = asyncio.get_running_loop()
    robots = [BenchRobot(spec, serial, password, loop) for serial, password in spec.robots]
    for robot in robots:
        robot.connect(spec.host, spec.port)
    await asyncio.wait_for(asyncio.gather(*(r.connected.wait() for r in robots)), 60)
    ready.set()
    await loop.run_in_executor(None, go.wait)
    stopping = asyncio.Event()
    n = len(robots)
    drivers = [
        asyncio.create_task(_drive(r, spec.period_s, spec.period_s * i / n, stopping))
        for i, r in enumerate(robots)
    ]
    while not stop.is_set():
        for robot in robots:
            robot.housekeeping()
        await loop.run_in_executor(None, stop.wait, 1.0)
    stopping.set()
    sent = sum(await asyncio.gather(*drivers))
    for robot in robots:
        robot.goodbye()
    return sent


def run_robots(
    spec: RobotSpec,
    go: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
    ready: multiprocessing.synchronize.Event,
) -> None:
    """Entry point of a robot process: connect every robot, wait for ``go``, publish until ``stop``."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_robots_main(spec, go, stop, ready))
