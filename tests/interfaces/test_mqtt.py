"""The asyncio MQTT client against a real Mosquitto: pub/sub, retained, will, reconnect, auth."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from interfaces.mqtt import (
    AckTimeoutError,
    MqttClient,
    MqttConfig,
    MqttConnectError,
    NotConnectedError,
    Will,
    encode,
    topic_matches,
)
from sim.mosquitto import MosquittoBroker


def _config(broker: MosquittoBroker, **kw: object) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("a/b", "a/b", True),
        ("a/+/c", "a/x/c", True),
        ("a/+/c", "a/x/y/c", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("+/+", "a/b", True),
        ("+", "a/b", False),
        ("#", "$SYS/broker", False),
        ("a/b", "a/b/c", False),
    ],
)
def test_topic_matches(pattern: str, topic: str, matches: bool) -> None:
    """Wildcards follow MQTT 3.1.1 §4.7, without a broker."""
    assert topic_matches(pattern, topic) is matches


def test_encode() -> None:
    """Bytes pass, text is UTF-8, objects are compact JSON."""
    assert encode(b"x") == b"x"
    assert encode("格口") == "格口".encode()
    assert encode({"a": 1}) == b'{"a":1}'


async def test_publish_subscribe_and_retained(mqtt_broker: MosquittoBroker) -> None:
    """A subscriber gets matching messages in order; a retained message reaches a later subscriber."""
    pub, sub = MqttClient(_config(mqtt_broker)), MqttClient(_config(mqtt_broker))
    await pub.connect()
    await sub.connect()
    stream = sub.subscribe("robopost/+/state")
    await stream.wait_granted()
    assert stream.granted
    await pub.publish("robopost/r1/state", {"n": 0}, qos=1, retain=True, wait=True)
    late = MqttClient(_config(mqtt_broker))
    await late.connect()
    retained = late.subscribe("robopost/r1/state")
    for n in range(1, 4):
        await pub.publish("robopost/r1/state", {"n": n}, qos=1, wait=True)
    await pub.publish("robopost/r1/other", "ignored", qos=1, wait=True)
    got = [(await asyncio.wait_for(stream.get(), 5)).json()["n"] for _ in range(4)]
    assert got == [0, 1, 2, 3]
    first = await asyncio.wait_for(retained.get(), 5)
    assert first.retain and first.json() == {"n": 0}
    for c in (pub, sub, late):
        await c.disconnect()


async def test_resubscribes_and_resends_after_broker_restart(mqtt_broker: MosquittoBroker) -> None:
    """After a broker restart both clients reconnect by themselves, subscriptions come back, and
    connect listeners run again (for resync)."""
    pub, sub = MqttClient(_config(mqtt_broker)), MqttClient(_config(mqtt_broker))
    await pub.connect()
    await sub.connect()
    reconnected = asyncio.Event()
    sub.on_connect(reconnected.set)
    stream = sub.subscribe("t/#")
    await stream.wait_granted()
    mqtt_broker.restart()
    await asyncio.wait_for(reconnected.wait(), 10)
    await stream.wait_granted()  # the subscription made again on the new connection
    await asyncio.wait_for(pub.connected.wait(), 10)
    await pub.publish("t/after", "hello", qos=1, wait=True)
    msg = await asyncio.wait_for(stream.get(), 5)
    assert msg.topic == "t/after" and msg.payload == b"hello"
    assert sub.connections == 2
    await pub.disconnect()
    await sub.disconnect()


async def test_qos0_while_down_raises_and_qos1_is_queued(mqtt_broker: MosquittoBroker) -> None:
    """With the link down, QoS 0 raises NotConnectedError; waiting for a QoS 1 acknowledgement with a
    timeout raises AckTimeoutError; QoS 1 is delivered once the link is back."""
    pub, sub = MqttClient(_config(mqtt_broker)), MqttClient(_config(mqtt_broker))
    await pub.connect()
    await sub.connect()
    stream = sub.subscribe("q/#")
    mqtt_broker.stop()
    await asyncio.wait_for(_cleared(pub), 10)
    with pytest.raises(NotConnectedError):
        await pub.publish("q/zero", "x", qos=0)
    with pytest.raises(AckTimeoutError, match=r"no acknowledgement for late/x within 0\.2 s"):
        await pub.publish("late/x", "x", qos=1, wait=True, timeout=0.2)  # not under q/#
    # Retained, so the subscriber gets it whether it resubscribes before or after the publisher resends.
    sending = asyncio.create_task(pub.publish("q/one", "kept", qos=1, retain=True, wait=True))
    mqtt_broker.start()
    await asyncio.wait_for(sending, 15)
    msg = await asyncio.wait_for(stream.get(), 10)
    assert msg.payload == b"kept"
    await pub.disconnect()
    await sub.disconnect()


async def _cleared(client: MqttClient) -> None:
    while client.connected.is_set():
        await asyncio.sleep(0)


async def test_wrong_password_is_refused(make_broker) -> None:  # type: ignore[no-untyped-def]
    """A wrong password gives MqttConnectError at connect(), not an endless retry."""
    broker = make_broker(users={"robot1": "secret"})
    good = MqttClient(_config(broker, username="robot1", password="secret"))
    await good.connect()
    await good.disconnect()
    bad = MqttClient(_config(broker, username="robot1", password="wrong"))
    with pytest.raises(MqttConnectError, match="refused"):
        await bad.connect(timeout=5)


async def test_unreachable_broker_times_out() -> None:
    """No broker on the port: MqttConnectError after the timeout."""
    from sim.mosquitto import free_port

    client = MqttClient(MqttConfig(port=free_port(), reconnect_max_s=0.2))
    with pytest.raises(MqttConnectError, match="no connection within"):
        await client.connect(timeout=0.5)


async def test_last_will_is_published_when_the_process_is_killed(mqtt_broker: MosquittoBroker) -> None:
    """A client process killed with SIGKILL: the broker publishes its retained last will at once."""
    watcher = MqttClient(_config(mqtt_broker))
    await watcher.connect()
    wills = watcher.subscribe("robots/r9/connection")
    script = textwrap.dedent(f"""
        import asyncio, sys
        from interfaces.mqtt import MqttClient, MqttConfig, Will
        async def main():
            c = MqttClient(MqttConfig(port={mqtt_broker.port}), will=Will("robots/r9/connection", b"BROKEN"))
            await c.connect()
            await c.publish("robots/r9/connection", "ONLINE", qos=1, retain=True, wait=True)
            print("up", flush=True)
            await asyncio.Event().wait()
        asyncio.run(main())
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert await asyncio.to_thread(proc.stdout.readline) == b"up\n"
    assert (await asyncio.wait_for(wills.get(), 5)).payload == b"ONLINE"
    proc.kill()
    proc.wait()
    proc.stdout.close()
    will = await asyncio.wait_for(wills.get(), 5)
    assert will.payload == b"BROKEN"
    await watcher.disconnect()
    assert Will("t", b"x").retain
