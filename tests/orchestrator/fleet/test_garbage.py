"""Garbage on every topic the master reads is logged and dropped; the master goes on working."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

import pytest
from fake_robot import FakeRobot, StateWaiter, next_event
from vda5050_samples import sample_factsheet

from interfaces.clock import VirtualClock
from interfaces.vda5050 import HeaderFactory, to_bytes, to_json
from orchestrator.fleet import FactsheetReceived, FleetMaster

MakeRobot = Callable[..., Awaitable[FakeRobot]]


async def test_garbage_is_dropped_and_the_master_goes_on(
    master: FleetMaster,
    make_robot: MakeRobot,
    seen: StateWaiter,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not JSON, wrong types, a wrong protocol version, oversized payloads, unknown robots and a
    manufacturer that does not match are each dropped with a counted reason and a log line; valid
    messages after them are taken in as usual."""
    caplog.set_level(logging.WARNING, logger="robopost.fleet")
    robot = await make_robot("r1")
    good = json.loads(to_bytes(robot.state()))
    wrong_types = {**good, "driving": "yes", "batteryState": {"batteryCharge": "full"}}
    old_version = {**good, "version": "3.0.0"}
    huge = {**good, "information": [{"infoType": "x" * 300_000, "infoLevel": "INFO"}]}
    garbage = [
        ("robopost/v2/acme/r1/state", b"\x00\xffnot json"),
        ("robopost/v2/acme/r1/state", b"{}"),
        ("robopost/v2/acme/r1/state", json.dumps(wrong_types).encode()),
        ("robopost/v2/acme/r1/state", json.dumps(old_version).encode()),
        ("robopost/v2/acme/r1/state", json.dumps(huge).encode()),
        ("robopost/v2/acme/r9/state", json.dumps(good).encode()),  # not in the fleet
        ("robopost/v2/evil/r1/state", json.dumps(good).encode()),  # r1 is acme's
        ("robopost/v2/acme/r1/connection", b'{"connectionState": "MAYBE"}'),
        ("robopost/v2/acme/r1/visualization", b"[1, 2, 3]"),
        ("robopost/v2/acme/r1/factsheet", b"x" * (2 * 1024 * 1024)),
    ]
    for topic, payload in garbage:
        await robot.send("state", payload, topic=topic)
    await robot.send("visualization", json.dumps({"agvPosition": {**good["agvPosition"], "x": 7.5}}).encode())
    factsheet = sample_factsheet(HeaderFactory("acme", "r1", clock=clock))
    with master.subscribe() as events:
        await robot.publish_factsheet(factsheet)
        robot.battery = 33.0
        await robot.publish_state()
        await seen.wait("r1", 1)
        await next_event(events, FactsheetReceived)
    assert master.dropped == {
        "bad state": 4 + 1,
        "unknown robot": 2,
        "bad connection": 1,
        "bad visualization": 1,
        "bad factsheet": 1,
    }
    view = master.view("r1")
    assert view.battery_charge == 33.0 and view.states_received == 1 and view.factsheet == "robopost-cart"
    assert master.received["visualization"] == 1
    logged = caplog.text
    assert "not JSON" in logged and "exceeds the limit" in logged and "not a robot of this fleet" in logged
    assert "protocol version '3.0.0'" in logged
    assert to_json(factsheet)  # the good one really was valid


async def test_a_failing_handler_does_not_stop_ingestion(
    master: FleetMaster, make_robot: MakeRobot, seen: StateWaiter, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected error while taking a message in is logged and counted; the next one is taken in."""
    robot = await make_robot("r1")
    failures = iter([True])

    def fails_once(_serial: str, _digest: object, _at: float) -> None:
        if next(failures, False):
            raise RuntimeError("bug in a listener")

    master.add_state_listener(fails_once)
    await robot.publish_state()
    await robot.publish_state()
    await seen.wait("r1", 2)
    assert master.dropped["internal error"] == 1
    assert "bug in a listener" in caplog.text
