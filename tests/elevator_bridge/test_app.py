"""``robopost elevator-bridge --config FILE`` as a real process against a real Mosquitto."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
import yaml

from interfaces.lift import LiftMode, LiftState, lift_topic
from interfaces.mqtt import MqttClient, MqttConfig
from sim.mosquitto import MosquittoBroker

pytestmark = pytest.mark.integration


async def test_bridge_process_serves_and_stops_cleanly(mqtt_broker: MosquittoBroker, tmp_path: Path) -> None:
    """The command connects, says ``online``, publishes its lifts' states (OFFLINE: no gateway answers
    here), and on SIGTERM says ``offline`` and exits 0."""
    config = {
        "building": "P",
        "mqtt": {"host": mqtt_broker.host, "port": mqtt_broker.port},
        "session": {"status_timeout_s": 0.5},
        "lifts": {"P-L1": {"floors": ["P-1F", "P-2F"], "driver": {"kind": "iot_mqtt", "box_id": "P-L1"}}},
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    watcher = MqttClient(MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port))
    await watcher.connect()
    online = watcher.subscribe("robopost/bridge/P/online")
    states = watcher.subscribe(lift_topic("P", "P-L1", "state"))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "launch.cli",
        "elevator-bridge",
        "--config",
        str(path),
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert (await asyncio.wait_for(online.get(), 20)).payload == b"online"
        while True:
            state = LiftState.model_validate_json((await asyncio.wait_for(states.get(), 20)).payload)
            if state.current_mode is LiftMode.OFFLINE:
                break
        assert state.available_floors == ["P-1F", "P-2F"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
        assert (await asyncio.wait_for(online.get(), 5)).payload == b"offline"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await watcher.disconnect()
