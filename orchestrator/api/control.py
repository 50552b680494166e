"""The console's control routes (issue 9): e-stop, release, acknowledge, stop all, operating modes,
building release, remote driving, and the fire alarm of the elevator bridge.

=======  ===============================================  =========  ==================================
method   path                                             role       instant action sent
=======  ===============================================  =========  ==================================
GET      /v1/console/safety                               viewer     (stop all, alarms, building stops)
POST     /v1/console/robots/{serial}:estop                operator   ``safetyStop`` kind operator
POST     /v1/console/robots/{serial}:release              operator   ``safetyRelease`` kind operator
POST     /v1/console/robots/{serial}:acknowledge          operator   ``safetyAcknowledge``
POST     /v1/console/robots/{serial}:mode                 operator   ``setOperatingMode`` {mode}
POST     /v1/console/robots/{serial}:mode-confirm         operator   ``confirmOperatingMode``
POST     /v1/console/robots/{serial}:mode-cancel          operator   ``cancelOperatingMode``
POST     /v1/console/fleet:stop-all                       operator   ``safetyStop`` kind fleet, each
POST     /v1/console/fleet:release-all                    operator   ``safetyRelease`` kind fleet, each
POST     /v1/console/buildings/{building}:release         operator   ``safetyRelease`` kind building
WS       /v1/console/robots/{serial}/teleop               operator   ``.../teleop`` messages (QoS 0)
=======  ===============================================  =========  ==================================

Every POST takes an optional JSON body ``{"reason": "..."}`` (``:mode`` also ``{"mode": ...}``), is
written to the audit log (who, role, ``robot.estop`` etc., the robot, the reason) before the action is
sent, and CSRF applies as on every mutating console route. The ``operator`` and ``role`` parameters of
the action are the authenticated session's user and role — never taken from the body.

Answers of the one-robot routes: 200 ``{"robot", "action", "action_id", "status": "FINISHED",
"result"}`` once the robot reports the action FINISHED; 409 problem+json with the robot's reason if it
reports FAILED, or at once, without sending, if the robot is not online; 504 if it does not answer
within ``safety.action_timeout_s``; 404 for a robot not in the fleet; 503 without the fleet master.
``fleet:stop-all`` / ``:release-all`` send to every robot that is online and answer each one's outcome
(``FINISHED``, ``FAILED``, ``TIMEOUT``); "stop all" stays
active (``orchestrator.fleet.safety.FleetSafety``) until released: a robot that comes online while it
is active gets it again, and so do robots that were offline when it was given. The same holds for a
building's alarm and building stop. The fleet stop and the building stops are written to the store
(``standing_stops``) before they are sent and read back when the orchestrator starts, so they survive
a restart (if the write fails the stop is still sent, and the failure is logged).

Fire alarm: this router's lifespan subscribes to every lift state of the elevator bridge
(``interfaces.lift``); a building is on fire while any of its lifts reports ``currentMode`` FIRE. The
robots in the building (``safety.robots_in``: their map id is one of its floors, or their last node is
in it) get ``buildingAlarm`` and, with policy ``stop`` (``settings.safety``), ``safetyStop`` kind
building; when FIRE ends they get ``buildingAlarm(active=false)`` and stay stopped until an operator
posts ``buildings/{building}:release``.

Remote driving. The browser opens the WebSocket (``?token=`` or the session cookie, same origin, role
operator) and sends ``{"vx": m/s, "omega": rad/s, "seq": its own number}`` text frames. The orchestrator
drops commands faster than ``safety.teleop_max_hz`` (orchestrator clock), stamps ``seq`` (0, 1, 2, ...
per WebSocket), ``sentAt`` (orchestrator clock), ``session`` (one id per WebSocket), ``operator`` (the
user) and ``source`` controlCentre, and publishes at QoS 0, never retained. Each frame gets an answer:
``{"type": "ack", "seq": <browser seq>, "robot_seq": n, "sent_at": t}``, ``{"type": "dropped", "seq",
"reason": "rate limited"}`` or ``{"type": "error", "detail"}`` for a malformed frame (the socket stays
open). When the socket closes, a zero-velocity command is sent (the robot's dead-man would stop it
300 ms later anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Path, Request, WebSocket
from pydantic import BaseModel, ConfigDict, Field
from starlette.websockets import WebSocketDisconnect

from interfaces.lift import LiftMode
from interfaces.mqtt import MqttError
from interfaces.teleop import TeleopCommand, teleop_to_json
from interfaces.vda5050 import Topic, TopicKind
from interfaces.vda5050.actions import (
    ActionParams,
    CancelOperatingMode,
    ConfirmOperatingMode,
    SafetyAcknowledge,
    SafetyRelease,
    SafetyStop,
    SetOperatingMode,
    StopKind,
)
from interfaces.vda5050.state import OperatingMode
from orchestrator.api.operators import (
    CLOSE_POLICY,
    CLOSE_UNAUTHORIZED,
    PROBLEMS_BODY,
    TEXT_PATTERN,
    Operator,
    OperatorRole,
    Viewer,
    same_origin,
    stream_operator,
)
from orchestrator.api.problems import Problem, problem_responses
from orchestrator.api.services import Services, services_of
from orchestrator.facilities.states import lift_states
from orchestrator.fleet.errors import ActionNotConfirmedError, UnknownRobotError
from orchestrator.fleet.events import LinkChanged
from orchestrator.fleet.master import FleetMaster
from orchestrator.fleet.persistence import load_standing_stops, save_standing_stops
from orchestrator.fleet.picture import Link
from orchestrator.fleet.safety import Acting, FirePolicy, FleetSafety, Send, building_of_view, robots_in
from orchestrator.settings import Settings
from orchestrator.store import StoreError
from orchestrator.store.domain_repositories import AuditRepository

CLOSE_FORBIDDEN = 4403
CLOSE_UNKNOWN_ROBOT = 4404
TELEOP_MAX_FRAME = 1024
"""Bytes: a teleop frame is a few numbers."""

_log = logging.getLogger("robopost.control")


@dataclass
class ControlState:
    """What the control router keeps on ``app.state.control``."""

    safety: FleetSafety
    action_timeout_s: float = 3.0
    teleop_max_hz: float = 20.0
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


def control_state(app: FastAPI) -> ControlState:
    """The control router's state (its lifespan must be running)."""
    state: ControlState = app.state.control
    return state


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ControlRequest(_Model):
    """Why (for the audit log)."""

    reason: str = Field(default="", max_length=500)


class ModeRequest(ControlRequest):
    """The operating mode to switch to."""

    mode: OperatingMode


class Outcome(_Model):
    """What a robot made of one instant action."""

    robot: str
    action: str
    action_id: str
    status: str
    result: str = ""


class FleetOutcome(_Model):
    """Stop all / release all: whether it is active now and each online robot's outcome."""

    stop_all: bool
    robots: list[Outcome]


class SafetyView(_Model):
    """The fleet's standing stops."""

    stop_all: bool
    stop_all_by: str | None
    fire_alarms: list[str]
    building_stops: list[str]


# --- sending and waiting ---------------------------------------------------------------------------


def _master(app: FastAPI) -> FleetMaster:
    master: FleetMaster | None = getattr(app.state, "fleet", None)
    if master is None:
        raise Problem(503, "the fleet master is not running (fleet.enabled is false)")
    return master


def _acting(who: Operator) -> Acting:
    return Acting(who.username, who.role.value)


def _audit(services: Services, who: Operator, action: str, entity: str, entity_id: str, reason: str) -> None:
    with services.sessions.begin() as session:
        AuditRepository(session, services.clock).append(
            actor=who.username, role=who.role.value, action=action, entity=entity, entity_id=entity_id,
            reason=reason,
        )  # fmt: skip


async def _outcome(master: FleetMaster, robot: str, params: ActionParams, timeout: float) -> Outcome:
    """Send one instant action and wait for its end; status TIMEOUT when the robot does not answer."""
    handle = await master.instant_action(robot, params)
    base = {"robot": robot, "action": params.action_type.value, "action_id": handle.action_id}
    try:
        ended = await asyncio.wait_for(asyncio.shield(handle.done), timeout)
    except (TimeoutError, ActionNotConfirmedError):
        return Outcome(**base, status="TIMEOUT")
    return Outcome(**base, status=ended.status, result=ended.result)


async def _act(
    request: Request, who: Operator, robot: str, params: ActionParams, what: str, reason: str
) -> Outcome:
    """Audit, send, wait: 200 outcome, 404, 409 (FAILED), 504 (no answer)."""
    master = _master(request.app)
    try:
        view = master.view(robot)
    except UnknownRobotError:
        raise Problem(404, f"robot {robot!r} is not in the fleet") from None
    if not view.online:
        raise Problem(409, f"robot {robot} is {view.link.value}: nothing was sent (it cannot answer)")
    await asyncio.to_thread(_audit, services_of(request), who, what, "robot", robot, reason)
    state = control_state(request.app)
    outcome = await _outcome(master, robot, params, state.action_timeout_s)
    if outcome.status == "FAILED":
        raise Problem(409, f"robot {robot} refused {outcome.action}: {outcome.result or 'no reason given'}")
    if outcome.status == "TIMEOUT":
        raise Problem(
            504, f"robot {robot} did not answer {outcome.action} within {state.action_timeout_s:g} s"
        )
    return outcome


async def _send_all(master: FleetMaster, sends: Sequence[Send], timeout: float) -> list[Outcome]:
    return list(await asyncio.gather(*(_outcome(master, r, p, timeout) for r, p in sends)))


def _online(master: FleetMaster) -> list[str]:
    return [v.serial for v in master.views() if v.online]


def _fire_and_forget(master: FleetMaster, sends: Sequence[Send]) -> None:
    """Send actions without waiting for their outcome (the master resends until reported)."""
    for robot, params in sends:
        task = asyncio.get_running_loop().create_task(master.instant_action(robot, params))
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("control: sending a safety action failed", exc_info=task.exception())


# --- the lifespan: re-send on reconnection, the fire alarm feed ---------------------------------------


async def _resend_on_online(app: FastAPI, master: FleetMaster, safety: FleetSafety) -> None:
    with master.subscribe() as events:
        async for event in events:
            if isinstance(event, LinkChanged) and event.link is Link.ONLINE:
                building = building_of_view(app.state.site, master.view(event.robot))
                _fire_and_forget(master, safety.on_robot_online(event.robot, building))


async def _watch_fire(app: FastAPI, master: FleetMaster, safety: FleetSafety) -> None:
    async for building, lift, state in lift_states(master.mqtt, logger=_log):
        fire = state.current_mode is LiftMode.FIRE
        inside = robots_in(app.state.site, master.views(), building)
        before = safety.standing()
        sends = safety.on_lift_state(building, lift, fire, inside)
        if safety.standing() != before:
            await _keep_standing(app, safety)
        if sends:
            _log.warning("control: fire alarm of %s %s", building, "on" if fire else "off")
        _fire_and_forget(master, sends)


async def _keep_standing(app: FastAPI, safety: FleetSafety) -> None:
    """Write the standing stops to the store (logged, never raised: the stop goes out regardless)."""
    services: Services = app.state.services
    try:
        now = services.clock.now()
        await asyncio.to_thread(save_standing_stops, services.sessions, safety.standing(), now)
    except StoreError as exc:
        _log.error("control: the standing stops were not saved (they are still sent): %s", exc)


def _lifespan() -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        conf = settings.safety
        safety = FleetSafety(
            policies={b: FirePolicy(p) for b, p in conf.fire_policies.items()},
            default_policy=FirePolicy(conf.fire_policy),
        )
        services: Services = app.state.services
        safety.restore(await asyncio.to_thread(load_standing_stops, services.sessions))
        if safety.standing():
            _log.warning("control: standing stops kept from the last run: %s", ", ".join(safety.standing()))
        state = ControlState(safety, conf.action_timeout_s, conf.teleop_max_hz)
        app.state.control = state
        master: FleetMaster | None = getattr(app.state, "fleet", None)
        if master is not None:
            state.tasks.append(asyncio.create_task(_resend_on_online(app, master, safety)))
            state.tasks.append(asyncio.create_task(_watch_fire(app, master, safety)))
        try:
            yield
        finally:
            for task in state.tasks:
                task.cancel()
            await asyncio.gather(*state.tasks, return_exceptions=True)

    return lifespan


# --- the routes ------------------------------------------------------------------------------------------

Serial = Annotated[str, Path(max_length=128, pattern=TEXT_PATTERN)]
Reason = Annotated[ControlRequest | None, Body()]
_ONE = problem_responses(*PROBLEMS_BODY, 404, 409, 503, 504)


def control_router() -> APIRouter:
    """The control routes (see the module docstring)."""
    router = APIRouter(prefix="/v1/console", tags=["console", "control"], lifespan=_lifespan())
    _robot_routes(router)
    _fleet_routes(router)
    _teleop_route(router)
    return router


def _why(body: ControlRequest | None) -> str:
    return body.reason if body is not None else ""


def _robot_routes(router: APIRouter) -> None:
    @router.post("/robots/{serial}:estop", response_model=Outcome, responses=_ONE)
    async def estop(serial: Serial, who: OperatorRole, request: Request, body: Reason = None) -> Outcome:
        """Stop the robot at once (``safetyStop`` kind operator); latched until released."""
        a = _acting(who)
        params = SafetyStop(kind=StopKind.OPERATOR, operator=a.operator, role=a.role)
        return await _act(request, who, serial, params, "robot.estop", _why(body))

    @router.post("/robots/{serial}:release", response_model=Outcome, responses=_ONE)
    async def release(serial: Serial, who: OperatorRole, request: Request, body: Reason = None) -> Outcome:
        """Release the operator's e-stop of the robot (``safetyRelease`` kind operator)."""
        a = _acting(who)
        params = SafetyRelease(kind=StopKind.OPERATOR, operator=a.operator, role=a.role)
        return await _act(request, who, serial, params, "robot.release", _why(body))

    @router.post("/robots/{serial}:acknowledge", response_model=Outcome, responses=_ONE)
    async def acknowledge(
        serial: Serial, who: OperatorRole, request: Request, body: Reason = None
    ) -> Outcome:
        """Acknowledge the robot's latched protective stops remotely (``safetyAcknowledge``)."""
        a = _acting(who)
        params = SafetyAcknowledge(operator=a.operator, role=a.role)
        return await _act(request, who, serial, params, "robot.acknowledge", _why(body))

    @router.post("/robots/{serial}:mode", response_model=Outcome, responses=_ONE)
    async def mode(
        serial: Serial, who: OperatorRole, request: Request, body: Annotated[ModeRequest, Body()]
    ) -> Outcome:
        """Ask the robot to switch its operating mode (``setOperatingMode``; the handover then needs
        ``:mode-confirm``)."""
        params = SetOperatingMode(mode=body.mode)
        why = f"{body.mode.value}: {body.reason}" if body.reason else body.mode.value
        return await _act(request, who, serial, params, "robot.mode", why)

    @router.post("/robots/{serial}:mode-confirm", response_model=Outcome, responses=_ONE)
    async def mode_confirm(
        serial: Serial, who: OperatorRole, request: Request, body: Reason = None
    ) -> Outcome:
        """Confirm the robot's pending mode switch (``confirmOperatingMode``)."""
        a = _acting(who)
        params = ConfirmOperatingMode(operator=a.operator, role=a.role)
        return await _act(request, who, serial, params, "robot.mode_confirm", _why(body))

    @router.post("/robots/{serial}:mode-cancel", response_model=Outcome, responses=_ONE)
    async def mode_cancel(
        serial: Serial, who: OperatorRole, request: Request, body: Reason = None
    ) -> Outcome:
        """Withdraw the robot's pending mode switch (``cancelOperatingMode``)."""
        a = _acting(who)
        params = CancelOperatingMode(operator=a.operator, role=a.role)
        return await _act(request, who, serial, params, "robot.mode_cancel", _why(body))


def _fleet_routes(router: APIRouter) -> None:
    @router.get("/safety", response_model=SafetyView, responses=problem_responses(401, 403, 422))
    async def safety_view(_who: Viewer, request: Request) -> SafetyView:
        """The fleet's standing stops: stop all, buildings on fire alarm, building stops."""
        safety = control_state(request.app).safety
        by = safety.stop_all_by
        return SafetyView(
            stop_all=by is not None,
            stop_all_by=by.operator if by is not None else None,
            fire_alarms=sorted(safety.alarms),
            building_stops=sorted(safety.building_stops),
        )

    @router.post("/fleet:stop-all", response_model=FleetOutcome, responses=_ONE)
    async def stop_all(who: OperatorRole, request: Request, body: Reason = None) -> FleetOutcome:
        """Stop every robot (``safetyStop`` kind fleet); stays active until ``fleet:release-all``."""
        master = _master(request.app)
        state = control_state(request.app)
        await asyncio.to_thread(_audit, services_of(request), who, "fleet.stop_all", "fleet", "*", _why(body))
        sends = state.safety.stop_all(_online(master), _acting(who))
        await _keep_standing(request.app, state.safety)
        outcomes = await _send_all(master, sends, state.action_timeout_s)
        return FleetOutcome(stop_all=True, robots=outcomes)

    @router.post("/fleet:release-all", response_model=FleetOutcome, responses=_ONE)
    async def release_all(who: OperatorRole, request: Request, body: Reason = None) -> FleetOutcome:
        """Release the fleet stop of every robot (``safetyRelease`` kind fleet)."""
        master = _master(request.app)
        state = control_state(request.app)
        await asyncio.to_thread(
            _audit, services_of(request), who, "fleet.release_all", "fleet", "*", _why(body)
        )
        sends = state.safety.release_all(_online(master), _acting(who))
        await _keep_standing(request.app, state.safety)
        outcomes = await _send_all(master, sends, state.action_timeout_s)
        return FleetOutcome(stop_all=False, robots=outcomes)

    @router.post("/buildings/{building}:release", response_model=FleetOutcome, responses=_ONE)
    async def release_building(
        building: Serial, who: OperatorRole, request: Request, body: Reason = None
    ) -> FleetOutcome:
        """Release the building stop of a building whose fire alarm is over (409 while it is on); sent
        to every online robot (one that left the building may still hold it)."""
        master = _master(request.app)
        state = control_state(request.app)
        try:
            sends = state.safety.release_building(building, _online(master), _acting(who))
        except ValueError as exc:
            raise Problem(409, str(exc)) from None
        await asyncio.to_thread(
            _audit, services_of(request), who, "building.release", "building", building, _why(body)
        )
        await _keep_standing(request.app, state.safety)
        outcomes = await _send_all(master, sends, state.action_timeout_s)
        return FleetOutcome(stop_all=state.safety.stop_all_active, robots=outcomes)


# --- remote driving --------------------------------------------------------------------------------------


def _teleop_topic(master: FleetMaster, serial: str) -> str:
    robot = master.fleet.robot(serial)
    return str(
        Topic(
            interface=master.fleet.interface,
            major_version=robot.major_version,
            manufacturer=robot.manufacturer,
            serial_number=robot.serial,
            kind=TopicKind.TELEOP,
        )
    )


def _read_frame(text: str) -> tuple[Any, float, float]:
    """(browser seq, vx, omega) of a browser frame; ``ValueError`` with a short reason."""
    if len(text) > TELEOP_MAX_FRAME:
        raise ValueError(f"frame too long (at most {TELEOP_MAX_FRAME} bytes)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("send a JSON object {vx, omega, seq}")
    values = []
    for name in ("vx", "omega"):
        value = data.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        values.append(float(value))
    seq = data.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
        raise ValueError(f"seq must be an integer, got {seq!r}")
    return seq, values[0], values[1]


class _Driver:
    """One teleop WebSocket: stamps and publishes the commands of one operator for one robot."""

    def __init__(self, master: FleetMaster, serial: str, who: Operator, clock: Any, max_hz: float) -> None:
        self.master = master
        self.topic = _teleop_topic(master, serial)
        self.who = who
        self.clock = clock
        self.session = uuid.uuid4().hex
        self.seq = 0
        self.min_gap = 1.0 / max_hz
        self.last: float | None = None

    async def publish(self, vx: float, omega: float) -> TeleopCommand:
        command = TeleopCommand(
            seq=self.seq, vx=vx, omega=omega, sent_at=self.clock.now(), session=self.session,
            operator=self.who.username,
        )  # fmt: skip
        self.seq += 1
        await self.master.mqtt.publish(self.topic, json.dumps(teleop_to_json(command)), qos=0, retain=False)
        return command

    async def handle(self, text: str) -> dict[str, Any]:
        try:
            browser_seq, vx, omega = _read_frame(text)
        except ValueError as exc:
            return {"type": "error", "detail": str(exc)}
        now = self.clock.monotonic()
        if self.last is not None and now - self.last < self.min_gap:
            return {"type": "dropped", "seq": browser_seq, "reason": "rate limited"}
        self.last = now
        try:
            command = await self.publish(vx, omega)
        except MqttError as exc:
            return {"type": "error", "seq": browser_seq, "detail": f"not sent: {exc}"}
        return {"type": "ack", "seq": browser_seq, "robot_seq": command.seq, "sent_at": command.sent_at}


def _teleop_route(router: APIRouter) -> None:
    @router.websocket("/robots/{serial}/teleop")
    async def teleop(websocket: WebSocket, serial: str, token: str | None = None) -> None:
        """Drive a robot remotely (see the module docstring)."""
        if not same_origin(websocket):
            await websocket.close(code=CLOSE_POLICY, reason="cross-origin teleop refused")
            return
        who = await stream_operator(websocket, token)
        if who is None:
            await websocket.close(code=CLOSE_UNAUTHORIZED, reason="log in first")
            return
        if not who.may("operator"):
            await websocket.close(code=CLOSE_FORBIDDEN, reason="driving needs the operator role")
            return
        master: FleetMaster | None = getattr(websocket.app.state, "fleet", None)
        if master is None or serial not in master.picture.robots:
            await websocket.close(code=CLOSE_UNKNOWN_ROBOT, reason=f"no robot {serial!r} in the fleet")
            return
        services: Services = websocket.app.state.services
        state = control_state(websocket.app)
        driver = _Driver(master, serial, who, services.clock, state.teleop_max_hz)
        await asyncio.to_thread(_audit, services, who, "robot.teleop", "robot", serial, driver.session)
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if services.clock.now() >= who.expires_at.timestamp():
                    await websocket.close(code=CLOSE_FORBIDDEN, reason="the session ended")
                    break
                text = message.get("text")
                answer = (
                    await driver.handle(text)
                    if isinstance(text, str)
                    else {"type": "error", "detail": "send JSON text frames"}
                )
                await websocket.send_json(answer)
        except WebSocketDisconnect:
            pass
        finally:
            with contextlib.suppress(MqttError):
                await driver.publish(0.0, 0.0)
