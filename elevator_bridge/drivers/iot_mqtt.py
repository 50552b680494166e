"""Lift driver for a vendor IoT lift gateway speaking JSON over MQTT.

The gateway's interface, as its vendor documents it
----------------------------------------------------

**LiftLink LL-200 lift gateway — MQTT interface, protocol version 1.** The gateway is wired to the lift
controller and connects to the building's MQTT broker (MQTT 3.1.1). Payloads are UTF-8 JSON objects.
``{prefix}`` is ``liftlink`` unless configured; ``{box}`` is the gateway id on its label (``B3-L1``).
Floors are named by the labels on the car's own panel (``"B1"``, ``"1"``, ``"6"``...).

``{prefix}/{box}/cmd`` — to the gateway, not retained. One command per message::

    {"cmd": "call", "floor": "6", "seq": 12}             a cabin call to floor "6"
    {"cmd": "door", "action": "open", "seq": 13}         as the door-open button: open, dwell, close
    {"cmd": "door", "action": "hold", "seq": 14}         open and keep open until "close"
    {"cmd": "door", "action": "close", "seq": 15}        release a hold and close now

``seq`` is an integer of the sender's choosing, echoed in the acknowledgement. The gateway does not
deduplicate: resending a call is harmless, it is the same button pressed again.

``{prefix}/{box}/ack`` — from the gateway, QoS 1, not retained; one per command it could read::

    {"seq": 12, "ok": true, "code": "OK"}
    {"seq": 12, "ok": false, "code": "E_FLOOR", "msg": "floor 13 is not served"}

    OK        done (the call is registered / the doors were told)
    E_FLOOR   the car does not serve that floor
    E_MODE    the lift is not in normal service (fire recall, out of service): commands are ignored
    E_MOVING  a door command while the car travels
    E_BUSY    the gateway is busy; try again
    E_BADCMD  unreadable or unknown command ("seq" is null when it could not be read)

``{prefix}/{box}/status`` — from the gateway, QoS 1, retained; on every change and every second::

    {"seq": 4711, "ts": 1767000000.25, "floor": "6", "direction": "UP", "door": "CLOSING",
     "mode": "NORMAL", "hold": false, "faults": ["E12"]}

    floor      the position indicator: the floor the car is at or passed last
    direction  UP | DOWN | STOP
    door       OPEN | OPENING | CLOSED | CLOSING
    mode       NORMAL | FIRE (fire recall; the car parks at its fire floor, doors open)
               | SERVICE (out of service: key switch, inspection) | EMERGENCY
    faults     E12 door obstructed (the doors cannot close), E30 out of service, E50 controller fault

``{prefix}/{box}/online`` — from the gateway, retained: ``online`` after it connects, ``offline`` as its
MQTT last will (and when it shuts down).

How the driver maps it
----------------------

Our floor names map to the panel labels through ``IotBoxConfig.floors`` (ours → label, lowest first).
Commands go out at QoS 0 — a command that cannot be delivered now must not arrive later, when
nobody expects the lift to move — and the ack is the receipt: OK → SUCCESS; E_FLOOR, E_MODE,
E_BADCMD → IMPOSSIBLE; E_MOVING, E_BUSY, any other code, no ack within ``ack_timeout_s``, no broker
link or a gateway that said ``offline`` → RETRY. A floor missing from the map is IMPOSSIBLE without
asking the gateway.

Status: direction → motion (STOP → STOPPED), door OPENING/CLOSING → MOVING, mode NORMAL → HUMAN,
FIRE → FIRE, SERVICE → OFFLINE, EMERGENCY → EMERGENCY; faults become ``LiftFault`` names (E12 →
DOOR_BLOCKED, E30 → OUT_OF_SERVICE, others → LIFT_FAULT) followed by the vendor codes. No status for
``silent_after_s`` → ``mode=OFFLINE`` with NO_REPLY; the gateway's ``offline`` → OFFLINE with LINK_DOWN
at once (its statuses are ignored until it says ``online`` again). Malformed messages are logged,
counted in ``stats.malformed`` and ignored.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, replace
from typing import Any

from elevator_bridge.drivers.base import (
    DriverResult,
    LiftFault,
    LiftStatus,
    StatusFanout,
    StatusStream,
)
from interfaces.clock import Clock, RealClock, within
from interfaces.lift import DoorState, LiftMode, MotionState
from interfaces.mqtt import Message, MqttClient, MqttError, Subscription
from interfaces.tasks import cancel_and_wait

_MOTION = {"UP": MotionState.UP, "DOWN": MotionState.DOWN, "STOP": MotionState.STOPPED}
_DOOR = {
    "OPEN": DoorState.OPEN,
    "OPENING": DoorState.MOVING,
    "CLOSING": DoorState.MOVING,
    "CLOSED": DoorState.CLOSED,
}
_MODE = {
    "NORMAL": LiftMode.HUMAN,
    "FIRE": LiftMode.FIRE,
    "SERVICE": LiftMode.OFFLINE,
    "EMERGENCY": LiftMode.EMERGENCY,
}
_FAULTS = {"E12": LiftFault.DOOR_BLOCKED, "E30": LiftFault.OUT_OF_SERVICE}
_ACK_RESULTS = {
    "OK": DriverResult.SUCCESS,
    "E_FLOOR": DriverResult.IMPOSSIBLE,
    "E_MODE": DriverResult.IMPOSSIBLE,
    "E_BADCMD": DriverResult.IMPOSSIBLE,
    "E_MOVING": DriverResult.RETRY,
    "E_BUSY": DriverResult.RETRY,
}


@dataclass(frozen=True, slots=True)
class IotBoxConfig:
    """One lift's gateway. ``floors`` maps our floor names to the car's panel labels, lowest first."""

    box_id: str
    floors: dict[str, str]
    topic_prefix: str = "liftlink"
    ack_timeout_s: float = 2.0
    silent_after_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.box_id or any(c in self.box_id for c in "/+#"):
            raise ValueError(f"IotBoxConfig: box_id must be a plain topic level, got {self.box_id!r}")
        if len(self.floors) < 2 or len(set(self.floors.values())) != len(self.floors):
            raise ValueError(
                f"IotBoxConfig: floors must map 2 or more floors to distinct labels: {self.floors}"
            )
        for name in ("ack_timeout_s", "silent_after_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"IotBoxConfig: {name} must be > 0, got {getattr(self, name)}")

    def topic(self, kind: str) -> str:
        """``{prefix}/{box}/{kind}`` with ``kind`` cmd, ack, status or online."""
        return f"{self.topic_prefix}/{self.box_id}/{kind}"


@dataclass(slots=True)
class IotStats:
    """What the driver has seen since it started."""

    commands: int = 0
    acks: int = 0
    refused: int = 0
    ack_timeouts: int = 0
    late_acks: int = 0
    statuses: int = 0
    malformed: int = 0
    offline_reports: int = 0


class MalformedMessage(ValueError):
    """A gateway message we cannot read."""


def parse_status(payload: Any, labels: dict[str, str], time: float) -> LiftStatus:
    """A gateway status object as ``LiftStatus`` (``labels``: panel label → our floor name).

    ``MalformedMessage`` when it is not an object with string floor/direction/door/mode and a list of
    fault codes. Unknown values read as unknown (floor None, motion UNKNOWN, door MOVING, mode UNKNOWN).
    """
    if not isinstance(payload, dict):
        raise MalformedMessage(f"status is not an object: {payload!r}")
    direction, door, mode = (payload.get(k) for k in ("direction", "door", "mode"))
    if not (isinstance(direction, str) and isinstance(door, str) and isinstance(mode, str)):
        raise MalformedMessage(f"status needs string direction, door and mode: {payload!r}")
    codes = payload.get("faults", [])
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise MalformedMessage(f"status faults must be a list of codes: {codes!r}")
    floor = payload.get("floor")
    return LiftStatus(
        time=time,
        floor=labels.get(floor) if isinstance(floor, str) else None,
        motion=_MOTION.get(direction, MotionState.UNKNOWN),
        door=_DOOR.get(door, DoorState.MOVING),
        mode=_MODE.get(mode, LiftMode.UNKNOWN),
        faults=fault_names(codes),
    )


def fault_names(codes: list[str]) -> tuple[str, ...]:
    """``LiftFault`` names for vendor fault codes (each once, in order), then the codes themselves."""
    names = dict.fromkeys(_FAULTS.get(code, LiftFault.LIFT_FAULT) for code in codes)
    return (*names, *codes)


def ack_result(payload: dict[str, Any]) -> DriverResult:
    """The ``DriverResult`` an ack means (an unknown failure code: RETRY)."""
    if payload.get("ok") is True:
        return DriverResult.SUCCESS
    return _ACK_RESULTS.get(str(payload.get("code")), DriverResult.RETRY)


class IotBoxDriver:
    """``LiftDriver`` for a LiftLink gateway (see the module docstring). The owner connects ``client``."""

    def __init__(
        self,
        client: MqttClient,
        config: IotBoxConfig,
        *,
        clock: Clock | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.config = config
        self.floors = list(config.floors)
        self.stats = IotStats()
        self._client = client
        self._clock = clock or RealClock()
        self._log = logger or logging.getLogger("robopost.elevator_bridge.iot")
        self._labels = {label: floor for floor, label in config.floors.items()}
        self._fanout = StatusFanout()
        self._seq = itertools.count(1)
        self._pending: dict[int, asyncio.Future[DriverResult]] = {}
        self._box_online = True
        self._last_heard = 0.0
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ---- LiftDriver ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen to the gateway's ack, status and online topics; watch for silence."""
        if self._tasks:
            return
        self._last_heard = self._clock.monotonic()
        self._subscription = self._client.subscribe(f"{self.config.topic_prefix}/{self.config.box_id}/+")
        name = f"liftlink {self.config.box_id}"
        self._tasks = [
            asyncio.create_task(self._receive(self._subscription), name=f"{name} receive"),
            asyncio.create_task(self._watch(), name=f"{name} watchdog"),
        ]

    async def stop(self) -> None:
        """Stop listening (the client stays connected: its owner closes it)."""
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)
        if self._subscription is not None:
            self._client.unsubscribe(self._subscription)
            self._subscription = None
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()

    async def call(self, floor: str) -> DriverResult:
        """Register a cabin call to ``floor``."""
        label = self.config.floors.get(floor)
        if label is None:
            return DriverResult.IMPOSSIBLE
        return await self._command({"cmd": "call", "floor": label})

    async def open_door(self, hold: bool = False) -> DriverResult:
        """Open the doors (``hold``: until ``close_door``)."""
        return await self._command({"cmd": "door", "action": "hold" if hold else "open"})

    async def close_door(self) -> DriverResult:
        """Release a hold and close the doors now."""
        return await self._command({"cmd": "door", "action": "close"})

    def status(self) -> LiftStatus | None:
        """The latest status, or None before the first report."""
        return self._fanout.latest

    def statuses(self) -> StatusStream:
        """Every status report from now on, in order."""
        return self._fanout.stream()

    # ---- commands -----------------------------------------------------------------------------------

    async def _command(self, body: dict[str, Any]) -> DriverResult:
        """Send one command and wait for its ack."""
        if not self._client.connected.is_set() or not self._box_online:
            return DriverResult.RETRY
        seq = next(self._seq)
        future: asyncio.Future[DriverResult] = asyncio.get_running_loop().create_future()
        self._pending[seq] = future
        try:
            await self._client.publish(self.config.topic("cmd"), {**body, "seq": seq}, qos=0)
            self.stats.commands += 1
            if not await within(self._clock, self.config.ack_timeout_s, future):
                self.stats.ack_timeouts += 1
                box, timeout = self.config.box_id, self.config.ack_timeout_s
                self._log.warning("liftlink %s: no ack to %s within %s s", box, body, timeout)
                return DriverResult.RETRY
        except MqttError as exc:
            self._log.info("liftlink %s: %s not sent: %s", self.config.box_id, body, exc)
            return DriverResult.RETRY
        finally:
            self._pending.pop(seq, None)
        return future.result()

    # ---- receiving ----------------------------------------------------------------------------------

    async def _receive(self, subscription: Subscription) -> None:
        async for message in subscription:
            kind = message.topic.rsplit("/", 1)[-1]
            try:
                if kind == "status":
                    self._on_status(message)
                elif kind == "ack":
                    self._on_ack(message)
                elif kind == "online":
                    self._on_online(message)
            except (MalformedMessage, ValueError) as exc:
                self.stats.malformed += 1
                self._log.warning("liftlink %s: ignored malformed %s: %s", self.config.box_id, kind, exc)

    def _on_status(self, message: Message) -> None:
        status = parse_status(message.json(), self._labels, self._clock.now())
        if not self._box_online:
            return  # a retained status of a gateway that said it is gone
        self.stats.statuses += 1
        self._last_heard = self._clock.monotonic()
        self._fanout.publish(status)

    def _on_ack(self, message: Message) -> None:
        payload = message.json()
        if not isinstance(payload, dict) or not isinstance(payload.get("seq"), int | None):
            raise MalformedMessage(f"ack is not an object with an integer seq: {payload!r}")
        self._last_heard = self._clock.monotonic()
        result = ack_result(payload)
        future = self._pending.get(payload["seq"]) if payload.get("seq") is not None else None
        if future is None or future.done():
            self.stats.late_acks += 1
            return
        self.stats.acks += 1
        if result is not DriverResult.SUCCESS:
            self.stats.refused += 1
            self._log.info("liftlink %s: refused: %s", self.config.box_id, payload)
        future.set_result(result)

    def _on_online(self, message: Message) -> None:
        text = message.payload.decode(errors="replace").strip()
        if text not in ("online", "offline"):
            raise MalformedMessage(f"online is neither online nor offline: {text!r}")
        self._box_online = text == "online"
        if self._box_online:
            self._last_heard = self._clock.monotonic()
        else:
            self._report_offline(LiftFault.LINK_DOWN)

    async def _watch(self) -> None:
        """Report OFFLINE when the gateway has been silent for ``silent_after_s``."""
        while True:
            left = self._last_heard + self.config.silent_after_s - self._clock.monotonic()
            if left > 0:
                await self._clock.sleep(left)
                continue
            self._report_offline(LiftFault.NO_REPLY)
            await self._clock.sleep(self.config.silent_after_s)

    def _report_offline(self, why: LiftFault) -> None:
        latest = self._fanout.latest
        door = latest.door if latest is not None else DoorState.CLOSED
        status = LiftStatus(self._clock.now(), None, MotionState.UNKNOWN, door, LiftMode.OFFLINE, (why,))
        if latest is not None and replace(latest, time=status.time) == status:
            return
        self.stats.offline_reports += 1
        self._log.warning("liftlink %s: OFFLINE (%s)", self.config.box_id, why)
        self._fanout.publish(status)
