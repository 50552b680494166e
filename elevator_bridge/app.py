"""Composition of one building's bridge: configuration → MQTT client, drivers, service; run until told.

``robopost elevator-bridge --config FILE`` calls ``run(load_config(FILE))``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from elevator_bridge.config import BridgeConfig, IotDriverSection, LiftSection, ModbusDriverSection
from elevator_bridge.drivers.base import LiftDriver
from elevator_bridge.service import BridgeService, bridge_will
from interfaces.clock import Clock, RealClock
from interfaces.mqtt import MqttClient, MqttConfig


def build_driver(lift: LiftSection, mqtt: MqttClient, clock: Clock) -> LiftDriver:
    """The driver a lift's configuration names (the IoT driver shares the bridge's MQTT client)."""
    section = lift.driver
    if isinstance(section, IotDriverSection):
        from elevator_bridge.drivers.iot_mqtt import IotBoxConfig, IotBoxDriver

        labels = section.labels or lift.floors
        iot = IotBoxConfig(
            box_id=section.box_id,
            floors=dict(zip(lift.floors, labels, strict=True)),
            topic_prefix=section.topic_prefix,
            ack_timeout_s=section.ack_timeout_s,
            silent_after_s=section.silent_after_s,
        )
        return IotBoxDriver(mqtt, iot, clock=clock)
    if isinstance(section, ModbusDriverSection):
        from elevator_bridge.drivers.modbus_relay import ModbusRelayConfig, ModbusRelayDriver

        modbus = ModbusRelayConfig(
            port=section.port,
            floors=tuple(lift.floors),
            device_id=section.device_id,
            baudrate=section.baudrate,
            parity=section.parity,
            poll_s=section.poll_s,
            timeout_s=section.timeout_s,
            offline_after_s=section.offline_after_s,
        )
        return ModbusRelayDriver(modbus, clock=clock)
    raise ValueError(f"unknown driver kind in {section!r}")


def mqtt_config(config: BridgeConfig) -> MqttConfig:
    """The MQTT connection settings of a bridge configuration (the password from the environment)."""
    section = config.mqtt
    return MqttConfig(
        host=section.host,
        port=section.port,
        username=section.username,
        password=config.mqtt_password(),
        client_id=section.client_id or f"robopost-bridge-{config.building}",
        keepalive=section.keepalive,
    )


async def serve(config: BridgeConfig, stop: asyncio.Event, clock: Clock | None = None) -> BridgeService:
    """Connect, build the drivers, run the service until ``stop`` is set; then shut down cleanly."""
    clock = clock or RealClock()
    log = logging.getLogger(f"robopost.elevator_bridge.{config.building}")
    mqtt = MqttClient(mqtt_config(config), will=bridge_will(config.building), logger=log)
    await mqtt.connect()
    try:
        drivers = {name: build_driver(lift, mqtt, clock) for name, lift in config.lifts.items()}
        service = BridgeService(config, mqtt, drivers, clock, logger=log)
        await service.start()
        try:
            await stop.wait()
        finally:
            await service.stop()
    finally:
        await mqtt.disconnect()
    return service


def run(config: BridgeConfig) -> None:
    """Run the bridge in the foreground until SIGINT/SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on every platform
                loop.add_signal_handler(sig, stop.set)
        await serve(config, stop)

    asyncio.run(main())


__all__ = ["build_driver", "mqtt_config", "run", "serve"]
