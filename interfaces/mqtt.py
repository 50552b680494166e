"""An asyncio MQTT client over paho-mqtt, shared by the orchestrator, the robot agents and the bridge.

Why here: ``interfaces`` is the one package every process may import, and every process speaks MQTT.

Threads: paho runs its network loop in its own thread. Its callbacks do nothing but hand events to the
owning asyncio loop with ``call_soon_threadsafe`` (they tolerate being called after the loop closed).
Subscriptions are remembered and made again on every (re)connection, so a broker restart is invisible
to subscribers except for the gap; ``on_connect`` listeners run after each (re)connection so that
owners can resynchronise (e.g. a robot re-publishes its state).

Errors::

    MqttError
    ├── MqttConnectError     the broker refused us (bad credentials, not authorised) or cannot be reached
    └── NotConnectedError    a QoS 0 publish while the link is down (QoS ≥ 1 is queued and resent)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

_client_ids = itertools.count(1)


class MqttError(Exception):
    """Base of the MQTT client's errors."""


class MqttConnectError(MqttError):
    """The broker refused the connection or could not be reached in time."""


class NotConnectedError(MqttError):
    """A QoS 0 message could not be sent: the link is down."""


class AckTimeoutError(MqttError):
    """``publish(wait=True, timeout=...)``: the broker did not acknowledge in time (it may be away)."""


@dataclass(frozen=True, slots=True)
class Message:
    """A received message."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False

    def json(self) -> Any:
        """The payload parsed as JSON (raises ``ValueError`` for anything else)."""
        return json.loads(self.payload)


@dataclass(frozen=True, slots=True)
class Will:
    """The last will the broker publishes when our link dies without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Where the broker is and who we are. ``keepalive`` in seconds."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str = ""
    keepalive: int = 10
    reconnect_min_s: float = 0.1
    reconnect_max_s: float = 2.0
    max_queued: int = 10_000


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches the subscription ``pattern`` (MQTT 3.1.1 §4.7: ``+`` and ``#``)."""
    pat, top = pattern.split("/"), topic.split("/")
    if top[0].startswith("$") and pat[0] in ("+", "#"):
        return False  # $SYS topics do not match leading wildcards (§4.7.2)
    for i, part in enumerate(pat):
        if part == "#":
            return True
        if i >= len(top) or (part != "+" and part != top[i]):
            return False
    return len(pat) == len(top)


def encode(payload: bytes | str | Any) -> bytes:
    """Bytes as they are, text as UTF-8, anything else as compact JSON."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(eq=False)
class Subscription:
    """Messages matching one topic filter, in arrival order. Iterate it with ``async for``.

    The queue is bounded: when the consumer falls ``maxsize`` messages behind, new ones are dropped
    and counted in ``dropped`` (a slow consumer must not eat the memory of the process).
    """

    pattern: str
    qos: int
    maxsize: int = 10_000
    dropped: int = 0
    _queue: asyncio.Queue[Message] = field(init=False)

    def __post_init__(self) -> None:
        self._queue = asyncio.Queue(self.maxsize)
        self._granted = asyncio.get_running_loop().create_future()

    @property
    def granted(self) -> bool:
        """Whether the broker has acknowledged the subscription (SUBACK) on the current connection."""
        return self._granted.done()

    async def wait_granted(self, timeout: float = 10.0) -> None:
        """Wait for the broker's SUBACK on the current connection (after a reconnection: for the
        subscription made again): from then on no message published to ``pattern`` is missed."""
        await asyncio.wait_for(asyncio.shield(self._granted), timeout)

    def _regrant(self) -> None:
        if self._granted.done():
            self._granted = asyncio.get_running_loop().create_future()

    def _grant(self) -> None:
        if not self._granted.done():
            self._granted.set_result(None)

    def offer(self, message: Message) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1

    async def get(self) -> Message:
        return await self._queue.get()

    def get_nowait(self) -> Message:
        return self._queue.get_nowait()

    def pending(self) -> int:
        return self._queue.qsize()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            yield await self._queue.get()


ConnectListener = Callable[[], Awaitable[None] | None]


class MqttClient:
    """One MQTT connection. Create, ``await connect()``, subscribe/publish, ``await disconnect()``."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        will: Will | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.config = config
        self.log = logger or logging.getLogger("robopost.mqtt")
        self.client_id = config.client_id or f"robopost-{next(_client_ids)}"
        self.connected = asyncio.Event()
        self.connections = 0  # how many times the link came up
        self._loop = asyncio.get_running_loop()
        self._subs: list[Subscription] = []
        self._listeners: list[ConnectListener] = []
        self._first: asyncio.Future[None] = self._loop.create_future()
        self._lock = threading.RLock()
        self._acks: dict[int, asyncio.Future[None]] = {}  # touched on the loop only
        self._suback_waiters: dict[int, Subscription] = {}  # SUBSCRIBE message id → subscription
        self._closing = False
        self._paho = self._make_paho(will)

    # ---- paho wiring (runs in paho's thread: only hand over to the loop) ---------------------------

    def _make_paho(self, will: Will | None) -> paho.Client:
        c = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=True,
        )
        if self.config.username is not None:
            c.username_pw_set(self.config.username, self.config.password)
        if will is not None:
            c.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        # paho's stubs say int; its back-off arithmetic works in floats, and 0.1 s matters after a restart.
        c.reconnect_delay_set(
            min_delay=self.config.reconnect_min_s,  # type: ignore[arg-type]
            max_delay=self.config.reconnect_max_s,  # type: ignore[arg-type]
        )
        c.max_queued_messages_set(self.config.max_queued)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        c.on_socket_open = _no_delay
        return c

    def _hand_over(self, fn: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening any more
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            self._hand_over(self._refused, str(rc))
            return
        with self._lock:
            for sub in list(self._subs):
                _rc, mid = client.subscribe(sub.pattern, sub.qos)
                if mid is not None:
                    self._suback_waiters[mid] = sub
        self._hand_over(self._up)

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self._hand_over(self._down, str(rc))

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        self._hand_over(self._dispatch, Message(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))

    def _on_publish(self, _c: paho.Client, _u: Any, mid: int, _rc: ReasonCode, _p: Any) -> None:
        # paho calls this holding its message mutex, which ``publish`` needs too: take no lock here
        # (taking ours deadlocked against a publish in progress); the loop resolves the waiter.
        self._hand_over(self._acked, mid)

    def _on_subscribe(self, _c: paho.Client, _u: Any, mid: int, _rcs: Any, _p: Any) -> None:
        # Like _on_publish: no lock here, the loop looks the message id up.
        self._hand_over(self._subacked, mid)

    # ---- loop side -------------------------------------------------------------------------------

    def _refused(self, reason: str) -> None:
        if not self._first.done():
            self._first.set_exception(MqttConnectError(f"{self._where()}: connection refused: {reason}"))
        self.log.error("mqtt %s refused: %s", self._where(), reason)

    def _up(self) -> None:
        with self._lock:  # subscriptions made again by _on_connect wait for their new SUBACK
            for sub in self._suback_waiters.values():
                sub._regrant()
        self.connections += 1
        self.connected.set()
        if not self._first.done():
            self._first.set_result(None)
        self.log.info("mqtt %s connected (%d)", self._where(), self.connections)
        for listener in list(self._listeners):
            result = listener()
            if asyncio.iscoroutine(result):
                self._loop.create_task(result)

    def _down(self, reason: str) -> None:
        self.connected.clear()
        if not self._closing:
            self.log.warning("mqtt %s link lost (%s); reconnecting", self._where(), reason)

    def _subacked(self, mid: int) -> None:
        with self._lock:
            sub = self._suback_waiters.pop(mid, None)
        if sub is not None:
            sub._grant()

    def _acked(self, mid: int) -> None:
        """The broker acknowledged ``mid``. Runs on the loop, so never before ``publish`` registered
        its waiter (no await lies between paho's publish and the registration)."""
        fut = self._acks.pop(mid, None)
        if fut is not None:
            _resolve(fut)

    def _dispatch(self, message: Message) -> None:
        for sub in self._subs:
            if topic_matches(sub.pattern, message.topic):
                sub.offer(message)

    def _where(self) -> str:
        return f"{self.client_id}@{self.config.host}:{self.config.port}"

    # ---- public API --------------------------------------------------------------------------------

    async def connect(self, timeout: float = 10.0) -> None:
        """Connect (paho keeps reconnecting afterwards). ``MqttConnectError`` when refused or too slow."""
        self._paho.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive)
        self._paho.loop_start()
        try:
            await asyncio.wait_for(asyncio.shield(self._first), timeout)
        except (TimeoutError, MqttConnectError) as exc:
            await self.disconnect()
            if isinstance(exc, MqttConnectError):
                raise
            raise MqttConnectError(f"{self._where()}: no connection within {timeout} s") from None

    async def disconnect(self) -> None:
        """Say goodbye cleanly (no last will) and stop the network thread."""
        self._closing = True
        self._paho.disconnect()
        await asyncio.to_thread(self._paho.loop_stop)
        self.connected.clear()

    def on_connect(self, listener: ConnectListener) -> None:
        """Call ``listener`` after every (re)connection (a coroutine function is run as a task)."""
        self._listeners.append(listener)

    def subscribe(self, pattern: str, qos: int = 1, maxsize: int = 10_000) -> Subscription:
        """Start receiving messages on ``pattern``; kept across reconnections."""
        sub = Subscription(pattern, qos, maxsize)
        with self._lock:
            self._subs.append(sub)
            if self.connected.is_set():
                _rc, mid = self._paho.subscribe(pattern, qos)
                if mid is not None:
                    self._suback_waiters[mid] = sub
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub`` (the broker subscription ends when no other uses the pattern)."""
        with self._lock:
            self._subs.remove(sub)
            if not any(s.pattern == sub.pattern for s in self._subs):
                self._paho.unsubscribe(sub.pattern)

    async def publish(
        self,
        topic: str,
        payload: bytes | str | Any,
        *,
        qos: int = 0,
        retain: bool = False,
        wait: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Publish. QoS ≥ 1 is queued while the link is down; ``wait`` waits for the broker's ack — for
        ever while the broker is away, or at most ``timeout`` seconds (then ``AckTimeoutError``; the
        message stays queued and still goes out if the link comes back)."""
        data = encode(payload)
        info = self._paho.publish(topic, data, qos=qos, retain=retain)
        if info.rc == paho.MQTT_ERR_NO_CONN and qos == 0:
            raise NotConnectedError(f"{self._where()}: not connected, {topic} not sent")
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise MqttError(f"{self._where()}: publish to {topic} failed: {paho.error_string(info.rc)}")
        if not wait:
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        self._acks[info.mid] = fut
        if timeout is None:
            await fut
            return
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._acks.pop(info.mid, None)
            raise AckTimeoutError(
                f"{self._where()}: no acknowledgement for {topic} within {timeout:g} s"
            ) from None


def _no_delay(_c: paho.Client, _u: Any, sock: Any) -> None:
    """Send small messages at once: without TCP_NODELAY a request/ack pair waits ~40-90 ms on Nagle's
    algorithm meeting the peer's delayed ACK."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
