"""The console's control routes against the real app served by uvicorn, a real Mosquitto, the real
fleet master and a fake VDA 5050 robot that answers instant actions: e-stop, release, acknowledge,
modes, stop all (re-sent on reconnection), the fire alarm of a lift, and remote driving over the
WebSocket (published to MQTT, stamped by the orchestrator)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from console_testkit import PASSWORD, T0, add_users_to, console_settings, serving, start_app
from fake_robot import SAMPLE_FLEET, FakeRobot, StateWaiter
from fastapi import FastAPI
from vda5050_samples import OfficialSchemas
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from interfaces.clock import VirtualClock
from interfaces.lift import LiftMode, LiftState, lift_topic
from interfaces.mqtt import MqttClient, MqttConfig
from interfaces.vda5050 import ActionState, ActionStatus, AgvPosition, EStop, InstantActions
from maps.io import save_site
from maps.model import Site
from orchestrator.api.control import control_state
from orchestrator.api.operators import CSRF_HEADER
from orchestrator.fleet.digest import StateDigest
from orchestrator.fleet.master import FleetMaster
from orchestrator.fleet.safety import robot_available
from orchestrator.settings import CampusSettings, FleetSettings, MqttSettings, Settings
from orchestrator.store.domain_repositories import AuditRepository
from sim.mosquitto import MosquittoBroker

TIMEOUT = 5.0
pytestmark = pytest.mark.integration


@dataclass
class Responder:
    """Answers the fake robot's instant actions: FINISHED, FAILED with ``reason``, or not at all."""

    robot: FakeRobot
    mode: str = "finish"
    reason: str = ""
    received: asyncio.Queue[InstantActions] = field(default_factory=asyncio.Queue)

    async def run(self) -> None:
        while True:
            message = await self.robot.instant_in.get()
            self.received.put_nowait(message)
            if self.mode == "silent":
                continue
            for action in message.actions:
                status = ActionStatus.FINISHED if self.mode == "finish" else ActionStatus.FAILED
                self.robot.action_states[action.action_id] = ActionState(
                    action_id=action.action_id,
                    action_type=action.action_type,
                    action_status=status,
                    result_description=self.reason or None,
                )
            await self.robot.publish_state()

    async def next(self, action_type: str | None = None) -> dict[str, Any]:
        """The next action received (of ``action_type``), as {type, params}."""
        while True:
            message = await asyncio.wait_for(self.received.get(), TIMEOUT)
            action = message.actions[0]
            params = {p.key: p.value for p in action.action_parameters or []}
            if action_type is None or action.action_type == action_type:
                return {"type": action.action_type, "params": params}


@dataclass
class Rig:
    """The served app, a client, the robot r1 and its responder."""

    app: FastAPI
    host: str
    client: httpx.AsyncClient
    robot: FakeRobot
    responder: Responder
    clock: VirtualClock
    broker: MosquittoBroker

    @property
    def master(self) -> FleetMaster:
        master: FleetMaster = self.app.state.fleet
        return master

    async def bearer(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(username)}"}

    async def token(self, username: str) -> str:
        login = await self.client.post("/v1/console/login", json={"username": username, "password": PASSWORD})
        assert login.status_code == 200, login.text
        token: str = login.json()["token"]
        return token

    def audit(self) -> list[tuple[str, str, str, str, str]]:
        services = self.app.state.services
        with services.sessions.begin() as session:
            page = AuditRepository(session, services.clock).list(limit=100)
            entries = getattr(page, "entries", page)
            return [(e.actor, e.role, e.action, e.entity_id, e.reason) for e in entries]


def _settings(tmp_path: Path, site: Site, broker: MosquittoBroker) -> Settings:
    """Console settings with the fleet master on ``broker`` and the sample fleet, SQLite in ``tmp_path``."""
    campus, _ = save_site(site, tmp_path / "small.yaml")
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(SAMPLE_FLEET), encoding="utf-8")
    return console_settings(f"sqlite:///{tmp_path / 'robopost.db'}", tmp_path).model_copy(
        update={
            "campus": CampusSettings(map=campus),
            "mqtt": MqttSettings(port=broker.port, embedded=False),
            "fleet": FleetSettings(enabled=True, config=fleet_file),
        }
    )


@pytest.fixture
async def rig(
    tmp_path: Path, small_site: Site, mqtt_broker: MosquittoBroker, shared_data: Path
) -> AsyncIterator[Rig]:
    """The app with the fleet master on a real Mosquitto; robot r1 online and answering."""
    clock = VirtualClock(start=T0)
    settings = _settings(tmp_path, small_site, mqtt_broker)
    app = start_app(settings, clock)
    robot = FakeRobot(mqtt_broker, "r1", clock, OfficialSchemas(shared_data))
    responder = Responder(robot)
    async with serving(app) as host, httpx.AsyncClient(base_url=f"http://{host}") as client:
        assert (await client.get("/healthz")).status_code == 200  # the lifespan is up
        await asyncio.to_thread(add_users_to, app, ["viewer", "operator", "admin"])
        waiter = StateWaiter(app.state.fleet)
        await robot.start()
        await robot.publish_state()
        await waiter.wait("r1", 1)
        task = asyncio.create_task(responder.run())
        try:
            yield Rig(app, host, client, robot, responder, clock, mqtt_broker)
        finally:
            task.cancel()
            await robot.close()


async def test_estop_sends_safety_stop_stamped_from_the_session(rig: Rig) -> None:
    """An operator's e-stop sends safetyStop kind operator with the session's user and role, answers
    the robot's FINISHED, and is audited with the reason."""
    response = await rig.client.post(
        "/v1/console/robots/r1:estop",
        json={"reason": "person on the path"},
        headers=await rig.bearer("operator"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["robot"] == "r1" and body["action"] == "safetyStop" and body["status"] == "FINISHED"
    sent = await rig.responder.next("safetyStop")
    assert sent["params"] == {"kind": "operator", "operator": "operator", "role": "operator"}
    audit = await asyncio.to_thread(rig.audit)
    assert ("operator", "operator", "robot.estop", "r1", "person on the path") in audit


async def test_the_body_cannot_choose_who_acts(rig: Rig) -> None:
    """A body naming an operator or a role is refused (422): they come from the session only; an admin's
    release is stamped with the admin's name and role."""
    headers = await rig.bearer("operator")
    forged = await rig.client.post(
        "/v1/console/robots/r1:release", json={"operator": "mallory", "role": "admin"}, headers=headers
    )
    assert forged.status_code == 422
    response = await rig.client.post("/v1/console/robots/r1:release", headers=await rig.bearer("admin"))
    assert response.status_code == 200, response.text
    sent = await rig.responder.next("safetyRelease")
    assert sent["params"] == {"kind": "operator", "operator": "admin", "role": "admin"}


async def test_a_viewer_is_refused_and_nothing_is_sent(rig: Rig) -> None:
    """A viewer gets 403 on every control route; no safety action is sent and nothing is audited."""
    headers = await rig.bearer("viewer")
    for path in ("robots/r1:estop", "robots/r1:release", "robots/r1:acknowledge", "fleet:stop-all"):
        response = await rig.client.post(f"/v1/console/{path}", headers=headers)
        assert response.status_code == 403, path
    received = [rig.responder.received.get_nowait() for _ in range(rig.responder.received.qsize())]
    assert {m.actions[0].action_type for m in received} <= {"factsheetRequest"}  # asked when it came online
    assert not [a for a in await asyncio.to_thread(rig.audit) if a[2].startswith(("robot.", "fleet."))]


async def test_cookie_sessions_need_the_csrf_header(rig: Rig) -> None:
    """Authenticated by the session cookie, an e-stop without X-CSRF-Token is 403; with it, it works."""
    login = await rig.client.post("/v1/console/login", json={"username": "operator", "password": PASSWORD})
    csrf = login.json()["csrf_token"]
    without = await rig.client.post("/v1/console/robots/r1:acknowledge")
    assert without.status_code == 403
    with_header = await rig.client.post("/v1/console/robots/r1:acknowledge", headers={CSRF_HEADER: csrf})
    assert with_header.status_code == 200, with_header.text
    sent = await rig.responder.next("safetyAcknowledge")
    assert sent["params"] == {"operator": "operator", "role": "operator"}


async def test_failed_is_409_with_the_robots_reason(rig: Rig) -> None:
    """A robot that reports the action FAILED makes the route answer 409 problem+json with its reason."""
    rig.responder.mode, rig.responder.reason = "fail", "vehicle is moving"
    response = await rig.client.post(
        "/v1/console/robots/r1:mode", json={"mode": "MANUAL"}, headers=await rig.bearer("operator")
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "vehicle is moving" in response.json()["detail"]
    sent = await rig.responder.next("setOperatingMode")
    assert sent["params"] == {"mode": "MANUAL"}


async def test_no_answer_is_504_and_unknown_robot_404(rig: Rig) -> None:
    """A robot that never reports the action gives 504 after the timeout; an unknown serial 404; a
    robot that is offline 409 at once; a mode that does not exist 422."""
    rig.responder.mode = "silent"
    control_state(rig.app).action_timeout_s = 0.3
    headers = await rig.bearer("operator")
    response = await rig.client.post("/v1/console/robots/r1:mode-confirm", headers=headers)
    assert response.status_code == 504
    assert "did not answer confirmOperatingMode" in response.json()["detail"]
    unknown = await rig.client.post("/v1/console/robots/zz9:estop", headers=headers)
    assert unknown.status_code == 404
    offline = await rig.client.post("/v1/console/robots/r2:estop", headers=headers)
    assert offline.status_code == 409 and "r2 is UNKNOWN" in offline.json()["detail"]
    bad = await rig.client.post("/v1/console/robots/r1:mode", json={"mode": "TURBO"}, headers=headers)
    assert bad.status_code == 422


async def test_mode_confirm_and_cancel_are_stamped(rig: Rig) -> None:
    """:mode-confirm and :mode-cancel send confirmOperatingMode / cancelOperatingMode with the session's
    user and role."""
    headers = await rig.bearer("operator")
    for path, action in (("mode-confirm", "confirmOperatingMode"), ("mode-cancel", "cancelOperatingMode")):
        response = await rig.client.post(f"/v1/console/robots/r1:{path}", headers=headers)
        assert response.status_code == 200 and response.json()["action"] == action
        sent = await rig.responder.next(action)
        assert sent["params"] == {"operator": "operator", "role": "operator"}


async def test_stop_all_stays_active_and_is_sent_again_on_reconnection(rig: Rig) -> None:
    """Stop all sends safetyStop kind fleet to the online robot, is shown as active, is sent again when
    the robot reconnects, and release all ends it."""
    headers = await rig.bearer("operator")
    response = await rig.client.post("/v1/console/fleet:stop-all", json={"reason": "drill"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["stop_all"] is True
    assert [(r["robot"], r["status"]) for r in response.json()["robots"]] == [("r1", "FINISHED")]
    assert (await rig.responder.next("safetyStop"))["params"]["kind"] == "fleet"
    view = (await rig.client.get("/v1/console/safety", headers=headers)).json()
    assert view["stop_all"] is True and view["stop_all_by"] == "operator"
    await rig.robot.stop()  # OFFLINE, then back
    await rig.robot.start()
    again = await rig.responder.next("safetyStop")
    assert again["params"] == {"kind": "fleet", "operator": "operator", "role": "operator"}
    released = await rig.client.post("/v1/console/fleet:release-all", headers=headers)
    assert released.status_code == 200 and released.json()["stop_all"] is False
    assert (await rig.responder.next("safetyRelease"))["params"]["kind"] == "fleet"
    assert (await rig.client.get("/v1/console/safety", headers=headers)).json()["stop_all"] is False


async def test_stop_all_survives_an_orchestrator_restart(
    tmp_path: Path, small_site: Site, mqtt_broker: MosquittoBroker, shared_data: Path
) -> None:
    """Stop all is written to the store: the next orchestrator on the same database shows it active,
    sends it again to the robot when it reconnects, and the release clears it for good."""
    clock = VirtualClock(start=T0)
    settings = _settings(tmp_path, small_site, mqtt_broker)
    robot = FakeRobot(mqtt_broker, "r1", clock, OfficialSchemas(shared_data))
    responder = Responder(robot)
    task = asyncio.create_task(responder.run())

    async def login(client: httpx.AsyncClient) -> dict[str, str]:
        assert (await client.get("/healthz")).status_code == 200  # the lifespan is up
        answer = await client.post("/v1/console/login", json={"username": "operator", "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    try:
        first = start_app(settings, clock)
        async with serving(first) as host, httpx.AsyncClient(base_url=f"http://{host}") as client:
            assert (await client.get("/healthz")).status_code == 200
            await asyncio.to_thread(add_users_to, first, ["operator"])
            waiter = StateWaiter(first.state.fleet)
            await robot.start()
            await robot.publish_state()
            await waiter.wait("r1", 1)
            stopped = await client.post("/v1/console/fleet:stop-all", headers=await login(client))
            assert stopped.status_code == 200, stopped.text
            assert (await responder.next("safetyStop"))["params"]["kind"] == "fleet"
        second = start_app(settings, clock)
        async with serving(second) as host, httpx.AsyncClient(base_url=f"http://{host}") as client:
            headers = await login(client)
            view = (await client.get("/v1/console/safety", headers=headers)).json()
            assert view["stop_all"] is True and view["stop_all_by"] == "operator"
            await robot.stop()
            await robot.start()
            again = await responder.next("safetyStop")
            assert again["params"] == {"kind": "fleet", "operator": "operator", "role": "operator"}
            released = await client.post("/v1/console/fleet:release-all", headers=headers)
            assert released.status_code == 200, released.text
        third = start_app(settings, clock)
        async with serving(third) as host, httpx.AsyncClient(base_url=f"http://{host}") as client:
            view = (await client.get("/v1/console/safety", headers=await login(client))).json()
            assert view["stop_all"] is False
    finally:
        task.cancel()
        await robot.close()


async def test_a_robots_e_stop_is_in_the_fleet_picture_and_makes_it_unavailable(rig: Rig) -> None:
    """The robot's ``safetyState.eStop`` reaches the fleet picture (and its JSON); such a robot is not
    available for orders until it reports NONE again."""
    waiter = StateWaiter(rig.master)
    rig.robot.e_stop = EStop.MANUAL
    await rig.robot.publish_state()
    await waiter.until("r1", lambda digest: _e_stop_of(digest) is EStop.MANUAL)
    view = rig.master.view("r1")
    assert view.e_stop == "MANUAL" and view.to_json()["e_stop"] == "MANUAL"
    assert not robot_available(view)
    rig.robot.e_stop = EStop.NONE
    await rig.robot.publish_state()
    await waiter.until("r1", lambda digest: _e_stop_of(digest) is EStop.NONE)
    assert rig.master.view("r1").e_stop is None and robot_available(rig.master.view("r1"))


def _e_stop_of(digest: StateDigest) -> EStop | None:
    return digest.safety_state.e_stop if digest.safety_state is not None else None


async def _lift_state(rig: Rig, mode: LiftMode) -> None:
    client = MqttClient(MqttConfig(host=rig.broker.host, port=rig.broker.port))
    await client.connect()
    state = LiftState(
        lift_time=T0, building="H", lift_name="LA", available_floors=["H1", "H3"], current_mode=mode
    )
    await client.publish(
        lift_topic("H", "LA", "state"), state.model_dump_json(by_alias=True), qos=1, retain=True, wait=True
    )
    await client.disconnect()


async def test_fire_alarm_stops_the_robots_in_the_building_until_released(rig: Rig) -> None:
    """A lift of building H in mode FIRE sends buildingAlarm and a building stop (role system) to the
    robot on a floor of H; FIRE ending sends buildingAlarm off; the release is refused while the alarm
    is on and sent as safetyRelease kind building afterwards."""
    waiter = StateWaiter(rig.master)
    rig.robot.position = AgvPosition(x=1.0, y=1.0, theta=0.0, map_id="H1", position_initialized=True)
    await rig.robot.publish_state()
    await waiter.wait("r1", 1)
    headers = await rig.bearer("operator")
    await _lift_state(rig, LiftMode.FIRE)
    alarm = await rig.responder.next("buildingAlarm")
    assert alarm["params"] == {"building": "H", "active": True}
    stop = await rig.responder.next("safetyStop")
    assert stop["params"] == {"kind": "building", "building": "H", "operator": "system", "role": "system"}
    refused = await rig.client.post("/v1/console/buildings/H:release", headers=headers)
    assert refused.status_code == 409
    await _lift_state(rig, LiftMode.AGV)
    off = await rig.responder.next("buildingAlarm")
    assert off["params"] == {"building": "H", "active": False}
    released = await rig.client.post("/v1/console/buildings/H:release", headers=headers)
    assert released.status_code == 200, released.text
    release = await rig.responder.next("safetyRelease")
    assert release["params"] == {
        "kind": "building",
        "building": "H",
        "operator": "operator",
        "role": "operator",
    }


# --- remote driving ---------------------------------------------------------------------------------


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return frame


async def test_teleop_publishes_stamped_commands_at_qos0(rig: Rig) -> None:
    """Commands from the WebSocket reach r1's teleop topic at QoS 0, not retained, stamped with the
    orchestrator's seq, clock, session and the operator; too fast is dropped, garbage gets an error frame
    and the socket stays open; closing the socket sends a zero command."""
    listener = MqttClient(MqttConfig(host=rig.broker.host, port=rig.broker.port))
    await listener.connect()
    sub = listener.subscribe(str(rig.robot.topic.sibling("teleop")), qos=1)
    await sub.wait_granted()
    token = await rig.token("operator")
    async with connect(f"ws://{rig.host}/v1/console/robots/r1/teleop?token={token}") as ws:
        await ws.send(json.dumps({"vx": 0.5, "omega": 0.1, "seq": 7}))
        ack = await _recv(ws)
        assert ack == {"type": "ack", "seq": 7, "robot_seq": 0, "sent_at": T0}
        message = await asyncio.wait_for(sub.get(), TIMEOUT)
        assert message.qos == 0 and message.retain is False
        payload = message.json()
        assert payload["seq"] == 0 and payload["vx"] == 0.5 and payload["omega"] == 0.1
        assert payload["sentAt"] == T0 and payload["operator"] == "operator"
        assert payload["source"] == "controlCentre" and len(payload["session"]) >= 16
        await ws.send(json.dumps({"vx": 0.6, "omega": 0.0, "seq": 8}))
        assert await _recv(ws) == {"type": "dropped", "seq": 8, "reason": "rate limited"}
        for garbage in ("nope", "[1]", json.dumps({"vx": "fast", "omega": 0}), json.dumps({"vx": 1})):
            await ws.send(garbage)
            assert (await _recv(ws))["type"] == "error"
        await ws.send(b"\x00\x01")
        assert (await _recv(ws))["type"] == "error"
        rig.clock.advance(0.1)
        await ws.send(json.dumps({"vx": 0.2, "omega": -0.3, "seq": 9}))
        assert (await _recv(ws))["robot_seq"] == 1
        second = (await asyncio.wait_for(sub.get(), TIMEOUT)).json()
        assert second["seq"] == 1 and second["session"] == payload["session"]
    last = (await asyncio.wait_for(sub.get(), TIMEOUT)).json()
    assert last["seq"] == 2 and last["vx"] == 0.0 and last["omega"] == 0.0
    await listener.disconnect()


async def test_teleop_refuses_viewers_and_unknown_robots(rig: Rig) -> None:
    """A viewer's teleop socket is refused (HTTP 403), as is one without a token and one for a robot
    that is not in the fleet."""
    viewer = await rig.token("viewer")
    operator = await rig.token("operator")
    for url in (
        f"ws://{rig.host}/v1/console/robots/r1/teleop?token={viewer}",
        f"ws://{rig.host}/v1/console/robots/r1/teleop",
        f"ws://{rig.host}/v1/console/robots/zz9/teleop?token={operator}",
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url):
                pass
        assert refused.value.response.status_code == 403, url
