"""The console's live views and robot commands in the real app: the dispatch loop on, a real VDA 5050
cart agent (simulated base) on a real Mosquitto, one ``ScaledClock`` (``live_testkit``).

Parcels imported over the intake API are loaded and taken to the dorm's stop; the windows view shows
the cart's stop with its counts, the robot view its leg, route and compartments; pause and resume
reach the agent; a cancel ends the leg through the loop (the core frees the cart, which brings the
parcels back); a charge is refused while the cart is on a leg and sent once it is free; retained lift
and door states reach ``GET /facilities`` and the console stream. Roles and the audit log are checked
on the way. The cart's ``waitForPickup`` lasts two virtual hours, so it stands at the stop until the
test cancels the leg.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_testkit import FAST_HASHING, T0, add_users_to, console_settings, running_console
from fastapi import FastAPI
from live_testkit import CART, WAIT, LiveCampus, live_campus
from websockets.asyncio.client import ClientConnection, connect

from interfaces.clock import VirtualClock
from interfaces.door import DoorMode, DoorStateMsg, door_topic
from interfaces.lift import DoorState, LiftMode, LiftState, MotionState, lift_topic
from interfaces.mqtt import MqttClient, MqttConfig
from orchestrator.domain import ParcelState
from sim.mosquitto import MosquittoBroker

PASSWORD = "correct horse battery"
PHONE = "13812341234"


def _users(app: FastAPI) -> None:
    app.state.services.passwords = FAST_HASHING
    add_users_to(app)


@pytest.fixture
async def campus(tmp_path: Path, mqtt_broker: MosquittoBroker) -> AsyncIterator[LiveCampus]:
    async with live_campus(
        tmp_path, mqtt_broker, durations={"waitForPickup": 7200.0}, prepare=_users
    ) as live:
        yield live


async def _bearer(campus: LiveCampus, user: str) -> dict[str, str]:
    answer = await campus.client.post("/v1/console/login", json={"username": user, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def _cart_stop(windows: dict[str, Any], window: str) -> dict[str, Any]:
    [w] = [w for w in windows["windows"] if w["id"] == window]
    [cart] = [c for c in w["carts"] if c["cart"] == CART]
    [stop] = cart["stops"]
    return stop


async def _stop_state(campus: LiveCampus, headers: dict[str, str]) -> dict[str, Any]:
    answer = await campus.client.get("/v1/console/windows", headers=headers)
    assert answer.status_code == 200, answer.text
    return _cart_stop(answer.json(), "w1")


@pytest.mark.integration
async def test_windows_robot_detail_pause_resume_cancel_and_charge(campus: LiveCampus) -> None:
    """The whole drawer of one cart, from loading to the charger."""
    master, dispatch = campus.master, campus.dispatch
    viewer, operator, admin = [await _bearer(campus, u) for u in ("viewer", "operator", "admin")]
    await campus.until(lambda: master.view(CART).online and master.view(CART).last_node_id is not None)
    tns = [f"CL{i}" for i in range(3)]
    await campus.import_parcels(
        [
            {
                "tracking_number": tn,
                "recipient_name": "张三",
                "phone": "13812341234",
                "dorm": "DORM1",
                "size": "S",
            }
            for tn in tns
        ]
    )
    await campus.until(lambda: all(campus.parcel(tn) is ParcelState.AT_STOP for tn in tns))

    # the windows view: w1 has the cart's stop with the three parcels offered there
    stop = await _stop_state(campus, viewer)
    assert stop["state"] == "at_stop" and stop["parcels"] == 3
    assert stop["picked_up"] == 0 and stop["unclaimed"] == 0 and stop["label"]

    # the robot's drawer: its DWELL, the route it drove, the three S compartments it fills
    detail = await campus.client.get(f"/v1/console/robots/{CART}", headers=viewer)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["robot"]["serial"] == CART and body["robot"]["online"]
    assert body["leg"]["kind"] == "dwell" and body["leg"]["window"] == "w1"
    assert sorted(body["leg"]["parcels"]) == tns and body["leg"]["place"] == stop["stop"]
    assert body["route"] and all(len(p) == 2 for p in body["route"])
    filled = {c["number"]: c["parcel"] for c in body["compartments"] if c["parcel"] is not None}
    assert sorted(filled) == [1, 2, 3] and sorted(filled.values()) == tns
    assert len(body["compartments"]) == 50 and body["compartments"][0]["size"] == "S"
    assert body["compartments"][-1]["size"] == "L"
    assert body["safety"] == {"e_stop": None, "field_violation": body["robot"]["field_violation"]}
    missing = await campus.client.get("/v1/console/robots/nobody", headers=viewer)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"

    # a viewer may look but not act; a charge is refused while the cart is on its leg
    refused = await campus.client.post(f"/v1/console/robots/{CART}:pause", headers=viewer, json={})
    assert refused.status_code == 403
    busy = await campus.client.post(f"/v1/console/robots/{CART}:charge", headers=operator, json={})
    assert busy.status_code == 409 and "cancel it first" in busy.json()["detail"]

    # pause and resume reach the agent
    paused = await campus.client.post(
        f"/v1/console/robots/{CART}:pause", headers=operator, json={"reason": "student at the cart"}
    )
    assert paused.status_code == 200, paused.text
    assert paused.json() == {"robot": CART, "action": "startPause", "status": "FINISHED"}
    await campus.until(lambda: master.view(CART).paused is True)
    resumed = await campus.client.post(f"/v1/console/robots/{CART}:resume", headers=operator)
    assert resumed.status_code == 200, resumed.text
    await campus.until(lambda: master.view(CART).paused is False)

    # cancel: the leg ends through the loop, the core frees the cart, which brings the parcels back
    token = dispatch.running_leg(CART)
    assert token is not None
    cancelled = await campus.client.post(
        f"/v1/console/robots/{CART}:cancel", headers=operator, json={"reason": "road closed"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["action"] == "cancel" and cancelled.json()["status"] in (
        "CANCELLED",
        "CANCELLING",
    )
    await campus.until(lambda: all(campus.parcel(tn) is ParcelState.RETURNED for tn in tns))
    await campus.until(lambda: dispatch.running_leg(CART) is None and not master.view(CART).driving)
    live = dispatch.live
    assert live is not None
    await live.idle()
    kinds = [a.kind for a in dispatch.alarms.recent()]
    assert "leg_failed" in kinds
    assert not set(kinds) & {"core_error", "port_failed", "history_failed"}, dispatch.alarms.recent()
    stop = await _stop_state(campus, viewer)
    assert stop["state"] == "done" and stop["parcels"] == 3 and stop["unclaimed"] == 3
    again = await campus.client.post(f"/v1/console/robots/{CART}:cancel", headers=operator)
    assert again.status_code == 409

    # free now: the charge goes to the nearest charger and the cart starts charging there
    charge = await campus.client.post(f"/v1/console/robots/{CART}:charge", headers=operator)
    assert charge.status_code == 200, charge.text
    assert charge.json()["status"] == "CONFIRMED" and charge.json()["action"].startswith("charge:")
    await campus.until(lambda: master.view(CART).charging is True)

    # every command is in the audit log, with who and why
    audit = await campus.client.get("/v1/console/audit", headers=admin, params={"limit": 50})
    assert audit.status_code == 200, audit.text
    entries = [e for e in audit.json()["entries"] if e["entity"] == "robot"]
    got = {(e["action"], e["actor"], e["reason"]) for e in entries}
    assert ("robot.pause", "operator", "student at the cart") in got
    assert ("robot.cancel", "operator", "road closed") in got
    assert {e["action"] for e in entries} >= {"robot.pause", "robot.resume", "robot.cancel", "robot.charge"}


async def _next_of(ws: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        event = json.loads(await ws.recv())
        if event.get("type") == kind:
            return event  # type: ignore[no-any-return]


@pytest.mark.integration
async def test_facilities_follow_the_retained_states_and_stream_their_changes(
    campus: LiveCampus, mqtt_broker: MosquittoBroker
) -> None:
    """A lift and a door state published retained reach the stream and ``GET /facilities``."""
    viewer = await _bearer(campus, "viewer")
    token = viewer["Authorization"].removeprefix("Bearer ")
    lift = LiftState(
        lift_time=campus.clock.now(),
        building="ADM",
        lift_name="ADM-L1",
        available_floors=["1F", "2F"],
        current_floor="2F",
        door_state=DoorState.OPEN,
        motion_state=MotionState.STOPPED,
        current_mode=LiftMode.AGV,
        robot_id="indoor_1",
    )
    door = DoorStateMsg(
        door_time=campus.clock.now(), building="ADM", door_name="ADM-D1", current_mode=DoorMode.OPEN
    )
    mqtt = MqttClient(MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port))
    await mqtt.connect()
    try:
        async with connect(f"ws://{campus.host}/v1/console/stream?token={token}") as ws:
            snapshot = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert snapshot["type"] == "snapshot"
            await mqtt.publish(
                lift_topic("ADM", "ADM-L1", "state"), lift.model_dump_json(), qos=1, retain=True
            )
            lifted = await asyncio.wait_for(_next_of(ws, "lift"), WAIT)
            await mqtt.publish(
                door_topic("ADM", "ADM-D1", "state"), door.model_dump_json(), qos=1, retain=True
            )
            opened = await asyncio.wait_for(_next_of(ws, "door"), WAIT)
    finally:
        await mqtt.disconnect()
    expected_lift = {
        "building": "ADM", "lift": "ADM-L1", "floor": "2F", "door": "OPEN", "mode": "AGV",
        "session": "indoor_1", "motion": "STOPPED", "phase": "IDLE",
    }  # fmt: skip
    assert {k: lifted[k] for k in expected_lift} == expected_lift
    assert opened["building"] == "ADM" and opened["door"] == "ADM-D1" and opened["state"] == "OPEN"
    answer = await campus.client.get("/v1/console/facilities", headers=viewer)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["lifts"] == [expected_lift]
    assert body["doors"] == [{"building": "ADM", "door": "ADM-D1", "state": "OPEN"}]
    assert body["gates"] == []
    async with httpx.AsyncClient(base_url=f"http://{campus.host}") as fresh:  # no session cookie
        assert (await fresh.get("/v1/console/facilities")).status_code == 401

    # a fire recall of that lift is a critical alarm on the console, cleared when it is back
    alarms = await _lift_alarms_after(
        campus, mqtt_broker, lift.model_copy(update={"current_mode": LiftMode.FIRE})
    )
    assert [(a["kind"], a["severity"], a["subject"]) for a in alarms] == [
        ("lift_fault", "critical", "ADM/ADM-L1")
    ]
    assert "fire" in alarms[0]["message"]
    assert await _lift_alarms_after(campus, mqtt_broker, lift) == []


async def _lift_alarms_after(campus: LiveCampus, broker: MosquittoBroker, state: LiftState) -> list[Any]:
    """Publish ``state`` retained, wait until the console stream carries it, then the lift alarms."""
    viewer = await _bearer(campus, "viewer")
    token = viewer["Authorization"].removeprefix("Bearer ")
    mqtt = MqttClient(MqttConfig(host=broker.host, port=broker.port))
    await mqtt.connect()
    try:
        async with connect(f"ws://{campus.host}/v1/console/stream?token={token}") as ws:
            await asyncio.wait_for(ws.recv(), WAIT)  # the snapshot
            await mqtt.publish(
                lift_topic("ADM", "ADM-L1", "state"), state.model_dump_json(), qos=1, retain=True
            )
            while (await asyncio.wait_for(_next_of(ws, "lift"), WAIT))["mode"] != state.current_mode.value:
                pass
    finally:
        await mqtt.disconnect()
    alarms = (await campus.client.get("/v1/console/alarms", headers=viewer)).json()["alarms"]
    return [a for a in alarms if a["kind"] == "lift_fault"]


@pytest.mark.integration
async def test_the_views_need_a_login_and_show_the_live_day_before_any_parcel(campus: LiveCampus) -> None:
    """Without a login every route is 401; the windows view answers with today's four windows."""
    client: httpx.AsyncClient = campus.client
    for path in ("/v1/console/windows", f"/v1/console/robots/{CART}", "/v1/console/facilities"):
        assert (await client.get(path)).status_code == 401
    assert (await client.post(f"/v1/console/robots/{CART}:pause")).status_code == 401
    viewer = await _bearer(campus, "viewer")
    answer = await client.get("/v1/console/windows", headers=viewer)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["day"] == "2026-11-27" and body["live"] is True
    assert [w["id"] for w in body["windows"]] == ["w1", "w2", "w3", "w4"]
    assert body["windows"][0]["state"] == "upcoming"
    assert all(w["carts"] == [{"cart": CART, "stops": []}] for w in body["windows"])
    detail = await client.get(f"/v1/console/robots/{CART}", headers=viewer)
    assert detail.status_code == 200 and detail.json()["leg"] is None and detail.json()["route"] == []


async def test_without_the_loop_or_the_fleet_master_the_views_say_so(tmp_path: Path) -> None:
    """The app alone (no fleet master, no loop; 16:00 campus time): the windows are the settings', not
    live; a robot and
    the facilities need the fleet master (503); commands too."""
    settings = console_settings(f"sqlite:///{tmp_path / 'robopost.db'}", tmp_path)
    async with running_console(settings, VirtualClock(start=T0)) as console:
        viewer = await console.bearer("viewer")
        answer = await console.client.get("/v1/console/windows", headers=viewer)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["live"] is False and body["day"] == "2027-01-15"
        assert [(w["id"], w["state"], w["carts"]) for w in body["windows"]] == [
            ("w1", "closed", []), ("w2", "closed", []), ("w3", "upcoming", []), ("w4", "upcoming", []),
        ]  # fmt: skip
        operator = await console.bearer("operator")
        for path in ("/v1/console/robots/cart_1", "/v1/console/facilities"):
            assert (await console.client.get(path, headers=viewer)).status_code == 503
        for action in ("pause", "resume", "cancel", "charge"):
            sent = await console.client.post(f"/v1/console/robots/cart_1:{action}", headers=operator)
            assert sent.status_code == 503, sent.text
