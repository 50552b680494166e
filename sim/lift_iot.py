"""A simulated LiftLink LL-200 gateway: the vendor IoT box of ``elevator_bridge.drivers.iot_mqtt``.

It speaks the gateway's MQTT protocol (documented in that module) for one simulated ``LiftCar``: it
executes ``cmd`` messages on the car and acknowledges them, publishes the retained ``status`` on
every change of the car and every ``status_period_s`` of its clock, and announces itself on
``online`` (its last will says ``offline``). The car runs on its own clock (``LiftCar.run``), so a
test can drive the car in virtual time while the box talks in real time.

While ``car.controller_silent`` is set the box hangs: no status, no acks, commands are dropped
(its MQTT connection stays up, so no last will either).

Its QoS 1 messages go out one at a time, each after the broker acknowledged the previous one: simple
in-order delivery, which also keeps clear of a lock-order deadlock ``interfaces.mqtt`` had with several
QoS 1 messages in flight (tests/interfaces/test_mqtt_burst.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from interfaces.clock import Clock, RealClock, within
from interfaces.mqtt import Message, MqttClient, MqttConfig, Subscription, Will
from interfaces.tasks import cancel_and_wait
from sim.lift import CarFault, CarMode, CarSnapshot, CommandResult, LiftCar

_VENDOR_MODE = {CarMode.NORMAL: "NORMAL", CarMode.FIRE: "FIRE", CarMode.OUT_OF_SERVICE: "SERVICE"}
_ACK_CODE = {
    CommandResult.ACCEPTED: "OK",
    CommandResult.NOT_SERVED: "E_FLOOR",
    CommandResult.REFUSED_MODE: "E_MODE",
    CommandResult.REFUSED_MOVING: "E_MOVING",
}


def vendor_status(car: CarSnapshot, labels: dict[str, str], seq: int, ts: float) -> dict[str, Any]:
    """The gateway's status object for ``car`` (``labels``: car floor → panel label)."""
    faults = ["E12"] if CarFault.DOOR_BLOCKED in car.faults else []
    if car.mode is CarMode.OUT_OF_SERVICE:
        faults.append("E30")
    return {
        "seq": seq,
        "ts": round(ts, 3),
        "floor": labels[car.floor],
        "direction": car.direction.value,
        "door": car.door.value,
        "mode": _VENDOR_MODE[car.mode],
        "hold": car.door_held,
        "faults": faults,
    }


class IotBoxSim:
    """One simulated gateway on the broker of ``mqtt`` (see the module docstring).

    ``labels`` are the panel labels of the car's floors (lowest first; default: the car's names).
    """

    def __init__(
        self,
        car: LiftCar,
        mqtt: MqttConfig,
        box_id: str,
        *,
        labels: Sequence[str] | None = None,
        topic_prefix: str = "liftlink",
        clock: Clock | None = None,
        status_period_s: float = 1.0,
        logger: logging.Logger | None = None,
    ) -> None:
        if not status_period_s > 0:
            raise ValueError(f"IotBoxSim: status_period_s must be > 0, got {status_period_s}")
        if labels is not None and len(labels) != len(car.floors):
            raise ValueError(f"IotBoxSim: {len(car.floors)} floors need as many labels, got {list(labels)}")
        self.car = car
        self.box_id = box_id
        self.labels = dict(zip(car.floors, labels or car.floors, strict=True))
        self.status_period_s = status_period_s
        self.commands = 0
        self.statuses_sent = 0
        self._floors = {label: floor for floor, label in self.labels.items()}
        self._prefix = f"{topic_prefix}/{box_id}"
        self._mqtt = mqtt
        self._clock = clock or RealClock()
        self._log = logger or logging.getLogger("robopost.sim.liftlink")
        self._client: MqttClient | None = None
        self._changed = asyncio.Event()
        self._sending = asyncio.Lock()
        self._seq = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Connect (last will: offline), say online, and start serving."""
        will = Will(f"{self._prefix}/online", b"offline", qos=1, retain=True)
        config = replace(self._mqtt, client_id=self._mqtt.client_id or f"liftlink-{self.box_id}")
        client = MqttClient(config, will=will, logger=self._log)
        await client.connect()
        self._client = client
        commands = client.subscribe(f"{self._prefix}/cmd", qos=1)
        await self._send("online", "online", retain=True)
        self.car.add_listener(self._on_car_change)
        self._changed.set()  # publish the first status at once
        self._tasks = [
            asyncio.create_task(self._serve(commands), name=f"liftlink sim {self.box_id} commands"),
            asyncio.create_task(self._report(), name=f"liftlink sim {self.box_id} status"),
        ]

    async def stop(self) -> None:
        """Say offline and disconnect (a clean shutdown)."""
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)
        with contextlib.suppress(ValueError):
            self.car.remove_listener(self._on_car_change)
        if self._client is not None:
            await self._send("online", "offline", retain=True)
            await self._client.disconnect()
            self._client = None

    # ---- status -------------------------------------------------------------------------------------

    def _on_car_change(self, _snapshot: CarSnapshot) -> None:
        self._changed.set()

    async def _report(self) -> None:
        """Publish the status on every change of the car and every ``status_period_s``."""
        while True:
            await within(self._clock, self.status_period_s, self._changed.wait())
            self._changed.clear()
            if not self.car.controller_silent:
                await self._publish_status()

    async def _publish_status(self) -> None:
        status = vendor_status(self.car.snapshot(), self.labels, next(self._seq), self._clock.now())
        await self._send("status", status, retain=True)
        self.statuses_sent += 1

    async def _send(self, kind: str, payload: Any, retain: bool = False) -> None:
        """Publish at QoS 1, one message at a time (see the module docstring)."""
        async with self._sending:
            if self._client is not None:
                await self._client.publish(f"{self._prefix}/{kind}", payload, qos=1, retain=retain, wait=True)

    # ---- commands -----------------------------------------------------------------------------------

    async def _serve(self, commands: Subscription) -> None:
        async for message in commands:
            if self.car.controller_silent:
                continue  # a hung gateway reads nothing and answers nothing
            self.commands += 1
            seq, code, text = self._execute(message)
            ack: dict[str, Any] = {"seq": seq, "ok": code == "OK", "code": code}
            if text:
                ack["msg"] = text
            await self._send("ack", ack)

    def _execute(self, message: Message) -> tuple[int | None, str, str]:
        """Run one command on the car: ``(seq, ack code, message)``."""
        try:
            body = message.json()
        except ValueError:
            return None, "E_BADCMD", "not JSON"
        if not isinstance(body, dict):
            return None, "E_BADCMD", "not a JSON object"
        seq = body.get("seq") if isinstance(body.get("seq"), int) else None
        if body.get("cmd") == "call" and isinstance(body.get("floor"), str):
            floor = self._floors.get(body["floor"])
            if floor is None:
                return seq, "E_FLOOR", f"floor {body['floor']} is not served"
            return seq, _ACK_CODE[self.car.car_call(floor)], ""
        if body.get("cmd") == "door" and body.get("action") in ("open", "hold", "close"):
            action = body["action"]
            result = self.car.close_door() if action == "close" else self.car.open_door(hold=action == "hold")
            return seq, _ACK_CODE[result], ""
        return seq, "E_BADCMD", f"unknown command {body.get('cmd')!r}"
