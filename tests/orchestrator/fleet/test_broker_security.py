"""Broker security from the fleet file, checked on a real Mosquitto started from the generated files."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fake_robot import FakeRobot, StateWaiter
from vda5050_samples import OfficialSchemas

from interfaces.clock import VirtualClock
from interfaces.mqtt import MqttClient, MqttConfig, MqttConnectError
from interfaces.vda5050 import ConnectionState
from maps.model import Site
from orchestrator.fleet import FleetConfig, FleetMaster, FleetOptions, Leg, Link
from orchestrator.fleet.broker import acl_text, password_hash, write_broker_files
from sim.mosquitto import MosquittoBroker

pytestmark = pytest.mark.integration


def test_generated_files(fleet: FleetConfig, tmp_path: Path) -> None:
    """passwd holds one PBKDF2-SHA512 line per account that checks out; the ACL gives each robot
    its own topics only and the orchestrator every robot's; both files are private; the snippet
    names them and refuses anonymous clients."""
    files = write_broker_files(fleet, tmp_path / "out", source="fleet.yaml")
    lines = files.passwd.read_text().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["orchestrator", "r1", "r2"]
    _, algo, rounds, salt, key = lines[1].split(":", 1)[1].split("$")
    expected = hashlib.pbkdf2_hmac("sha512", b"r1-secret", base64.b64decode(salt), int(rounds))
    assert algo == "7" and base64.b64decode(key) == expected
    for path in (files.passwd, files.acl):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    acl = files.acl.read_text()
    r1 = acl[acl.index("user r1") : acl.index("user r2")]
    assert r1.split("\n")[1:8] == [
        "topic write robopost/v2/acme/r1/state",
        "topic write robopost/v2/acme/r1/connection",
        "topic write robopost/v2/acme/r1/visualization",
        "topic write robopost/v2/acme/r1/factsheet",
        "topic read robopost/v2/acme/r1/order",
        "topic read robopost/v2/acme/r1/instantActions",
        "topic read robopost/v2/acme/r1/teleop",
    ]
    assert "topic read robopost/v2/+/+/state" in acl and "topic write robopost/v2/+/+/order" in acl
    conf = files.conf.read_text()
    assert "allow_anonymous false" in conf and f"password_file {files.passwd.resolve()}" in conf
    assert f"acl_file {files.acl.resolve()}" in conf and "from fleet.yaml" in conf
    assert password_hash("x", iterations=101, salt=b"0" * 12).startswith("$7$101$MDAwMDAwMDAwMDAw$")
    assert acl_text(fleet) == acl_text(fleet)


@pytest.fixture
def secured(fleet: FleetConfig) -> Iterator[MosquittoBroker]:
    """Mosquitto with a listener plus exactly the generated snippet, password file and ACL."""
    broker = MosquittoBroker()
    files = write_broker_files(fleet, broker.dir / "security")
    lines = [
        f"listener {broker.port} 127.0.0.1",
        "persistence false",
        f"log_dest file {broker.dir / 'log'}",
        files.conf.read_text(),
    ]
    (broker.dir / "mosquitto.conf").write_text("\n".join(lines), encoding="utf-8")
    if os.geteuid() == 0:
        os.chown(broker.dir / "mosquitto.conf", (broker.dir / "log").stat().st_uid, -1)
    broker.start()
    yield broker
    broker.close()


def _config(broker: MosquittoBroker, user: str | None, password: str | None) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, username=user, password=password)


@pytest.fixture
async def secured_master(
    secured: MosquittoBroker, fleet: FleetConfig, small_site: Site, clock: VirtualClock
) -> AsyncIterator[FleetMaster]:
    """A fleet master logged in as the orchestrator."""
    mqtt = MqttClient(_config(secured, "orchestrator", "orch-secret"))
    await mqtt.connect()
    options = FleetOptions(request_factsheet=False)
    master = FleetMaster(fleet, mqtt, small_site, clock=clock, options=options, owns_client=True)
    await master.start()
    yield master
    await master.stop()


async def _robot(
    broker: MosquittoBroker, serial: str, clock: VirtualClock, schemas: OfficialSchemas
) -> FakeRobot:
    robot = FakeRobot(broker, serial, clock, schemas, username=serial, password=f"{serial}-secret")
    await robot.start()
    return robot


@pytest.mark.parametrize(
    ("user", "password"),
    [("r1", "wrong"), ("nobody", "r1-secret"), (None, None), ("r1", "r2-secret")],
)
async def test_wrong_credentials_are_refused(
    secured: MosquittoBroker, user: str | None, password: str | None
) -> None:
    """A wrong password, an unknown user, no login at all, or another robot's password: refused."""
    client = MqttClient(_config(secured, user, password))
    with pytest.raises(MqttConnectError, match="refused"):
        await client.connect(timeout=5)


async def test_a_robot_cannot_speak_for_another(
    secured_master: FleetMaster, secured: MosquittoBroker, clock: VirtualClock, schemas: OfficialSchemas
) -> None:
    """r2 publishing r1's state or connection (QoS 0 and 1) is refused by the broker: the master
    never receives them, while r2's own state arrives."""
    seen = StateWaiter(secured_master)
    r2 = await _robot(secured, "r2", clock, schemas)
    forged = r2.state()
    forged_bytes = forged.model_dump_json(by_alias=True, exclude_none=True).encode()
    assert r2.mqtt is not None
    for qos in (0, 1):
        await r2.mqtt.publish("robopost/v2/acme/r1/state", forged_bytes, qos=qos, wait=qos == 1)
        offline = r2.connection_bytes(ConnectionState.OFFLINE)
        await r2.mqtt.publish("robopost/v2/acme/r1/connection", offline, qos=qos, retain=True, wait=qos == 1)
    r2.battery = 61.0
    await r2.publish_state()
    await seen.wait("r2", 1)
    assert secured_master.view("r2").battery_charge == 61.0
    assert seen.counts.get("r1") is None and secured_master.view("r1").link is Link.UNKNOWN
    await r2.close()


async def test_a_robot_cannot_read_another_robots_orders(
    secured_master: FleetMaster, secured: MosquittoBroker, clock: VirtualClock, schemas: OfficialSchemas
) -> None:
    """The orchestrator may write every robot's order; r2, also subscribed to r1's orders, gets only
    its own; r1 cannot send r2 an order."""
    r1 = await _robot(secured, "r1", clock, schemas)
    r2 = await _robot(secured, "r2", clock, schemas)
    assert r1.mqtt is not None and r2.mqtt is not None
    snooped = r2.mqtt.subscribe("robopost/v2/acme/r1/order")
    everything = r2.mqtt.subscribe("robopost/v2/#")
    await r1.mqtt.publish("robopost/v2/acme/r2/order", b"{}", qos=1, wait=True)
    to_r1 = await secured_master.send_order(Leg("r1", ("S", "A")))
    assert (await r1.next_order()).order_id == to_r1.order_id
    to_r2 = await secured_master.send_order(Leg("r2", ("h1", "h1b")))
    assert (await r2.next_order()).order_id == to_r2.order_id
    own = await asyncio.wait_for(everything.get(), 5)
    assert own.topic == "robopost/v2/acme/r2/order"
    assert snooped.pending() == 0 and everything.pending() == 0
    await r1.close()
    await r2.close()
