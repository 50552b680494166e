"""The simulated LiftLink gateway: its status object and its MQTT conversation on a real Mosquitto."""

from __future__ import annotations

import asyncio

import pytest

from interfaces.mqtt import MqttClient, MqttConfig
from sim.lift import LiftCar, LiftCarConfig
from sim.lift_iot import IotBoxSim, vendor_status
from sim.mosquitto import MosquittoBroker

FLOORS = ("1", "2", "3")
LABELS = {"1": "G", "2": "1F", "3": "2F"}


def test_vendor_status_uses_panel_labels_and_fault_codes() -> None:
    """The status shows panel labels, E12 for blocked doors, SERVICE and E30 out of service."""
    car = LiftCar(LiftCarConfig(floors=FLOORS, start_floor="2"))
    car.open_door()
    car.set_door_blocked(True)
    car.step(20.0)
    status = vendor_status(car.snapshot(), LABELS, 7, 1.5)
    assert status == {
        "seq": 7,
        "ts": 1.5,
        "floor": "1F",
        "direction": "STOP",
        "door": "OPEN",
        "mode": "NORMAL",
        "hold": False,
        "faults": ["E12"],
    }
    car.set_out_of_service(True)
    status = vendor_status(car.snapshot(), LABELS, 8, 2.0)
    assert status["mode"] == "SERVICE" and status["faults"] == ["E12", "E30"]


def test_labels_must_match_the_floors() -> None:
    """A gateway needs one panel label per floor of its car."""
    car = LiftCar(LiftCarConfig(floors=FLOORS))
    with pytest.raises(ValueError, match="labels"):
        IotBoxSim(car, MqttConfig(), "X", labels=["G", "1F"])


async def test_gateway_conversation(mqtt_broker: MosquittoBroker) -> None:
    """The gateway says online, publishes its retained status, acks a call by panel label (the car gets
    the cabin call), refuses an unknown floor with E_FLOOR, and says offline when it stops."""
    config = MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port)
    car = LiftCar(LiftCarConfig(floors=FLOORS))
    box = IotBoxSim(car, config, "T1", labels=list(LABELS.values()), status_period_s=60.0)
    await box.start()
    peer = MqttClient(config)
    await peer.connect()
    online, status, acks = (peer.subscribe(f"liftlink/T1/{kind}") for kind in ("online", "status", "ack"))
    try:
        assert (await asyncio.wait_for(online.get(), 2)).payload == b"online"
        first = await asyncio.wait_for(status.get(), 2)
        assert first.json()["floor"] == "G"  # live or retained: the subscription may race the publish
        late = MqttClient(config)
        await late.connect()
        try:  # whoever subscribes later gets it as the retained status
            kept = await asyncio.wait_for(late.subscribe("liftlink/T1/status").get(), 2)
            assert kept.retain and kept.json()["floor"] == "G"
        finally:
            await late.disconnect()
        await peer.publish("liftlink/T1/cmd", {"cmd": "call", "floor": "2F", "seq": 5}, qos=1, wait=True)
        assert (await asyncio.wait_for(acks.get(), 2)).json() == {"seq": 5, "ok": True, "code": "OK"}
        assert car.snapshot().car_calls == ("3",)
        await peer.publish("liftlink/T1/cmd", {"cmd": "call", "floor": "9F", "seq": 6}, qos=1, wait=True)
        refused = (await asyncio.wait_for(acks.get(), 2)).json()
        assert refused["ok"] is False and refused["code"] == "E_FLOOR"
        await peer.publish("liftlink/T1/cmd", b"{oops", qos=1, wait=True)
        assert (await asyncio.wait_for(acks.get(), 2)).json()["code"] == "E_BADCMD"
        await box.stop()
        assert (await asyncio.wait_for(online.get(), 2)).payload == b"offline"
        assert box.commands == 3
    finally:
        await peer.disconnect()
