"""QoS 1 publishes in a burst while acks come back (regression: a lock-order deadlock with paho)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from sim.mosquitto import MosquittoBroker


def test_qos1_burst_does_not_deadlock(mqtt_broker: MosquittoBroker) -> None:
    """Thousands of QoS 1 publishes, acks arriving meanwhile, then one awaited publish: all done.

    Run in a child process so that a deadlock (the loop thread stuck in a lock) fails the test by
    its time-out instead of hanging the suite.
    """
    script = textwrap.dedent(
        f"""
        import asyncio
        from interfaces.mqtt import MqttClient, MqttConfig

        async def main():
            client = MqttClient(MqttConfig(host="{mqtt_broker.host}", port={mqtt_broker.port}))
            await client.connect()
            for n in range(3000):
                await client.publish("burst/x", str(n), qos=1)
            await client.publish("burst/x", "last", qos=1, wait=True)
            await client.disconnect()
            print("done")

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0 and result.stdout.strip() == "done", result.stderr[-2000:]
