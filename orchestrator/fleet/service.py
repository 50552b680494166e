"""Building the fleet master from the orchestrator's settings (used by the app's lifespan)."""

from __future__ import annotations

import asyncio
import logging
import uuid

from sqlalchemy import Engine

from interfaces.clock import Clock
from interfaces.mqtt import MqttClient, MqttConfig
from maps.model import Site
from orchestrator.fleet.config import load_fleet
from orchestrator.fleet.errors import FleetConfigError
from orchestrator.fleet.master import FleetMaster, FleetOptions
from orchestrator.fleet.persistence import SnapshotStore
from orchestrator.settings import Settings


async def open_fleet_master(
    settings: Settings,
    site: Site,
    clock: Clock,
    *,
    engine: Engine | None = None,
    site_id: int | None = None,
    logger: logging.Logger | None = None,
) -> FleetMaster:
    """Read the fleet file, connect to ``settings.mqtt`` with the orchestrator's account and start.

    Snapshots go to the store when ``engine`` and ``site_id`` are given. Raises ``FleetConfigError``
    for a bad fleet file and ``MqttConnectError`` when the broker refuses us or cannot be reached.
    """
    if settings.fleet.config is None:
        raise FleetConfigError("settings: fleet.config is not set")
    fleet = await asyncio.to_thread(load_fleet, settings.fleet.config)
    mqtt = MqttClient(
        MqttConfig(
            host=settings.mqtt.host,
            port=settings.mqtt.port,
            username=fleet.orchestrator.username,
            password=fleet.orchestrator.password,
            client_id=f"robopost-fleet-{site.name}-{uuid.uuid4().hex[:8]}",
        ),
        logger=logger,
    )
    await mqtt.connect()
    options = FleetOptions(
        stale_after_s=settings.fleet.stale_after_s,
        confirm_timeout_s=settings.fleet.confirm_timeout_s,
        max_resends=settings.fleet.max_resends,
        persist_interval_s=settings.fleet.persist_interval_s,
    )
    snapshots = SnapshotStore(engine, site_id, clock) if engine is not None and site_id is not None else None
    master = FleetMaster(
        fleet, mqtt, site, clock=clock, options=options, snapshots=snapshots, logger=logger, owns_client=True
    )
    try:
        await master.start()
    except BaseException:
        await master.stop()
        raise
    return master
