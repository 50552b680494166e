"""The actions robopost uses: VDA 5050's predefined ones and our own custom types.

Our extra needs travel as custom ``actionType`` values, never as changes to the standard messages
(DESIGN.md §3). Each action type has a typed parameter model; ``make_action(params)`` builds the
``Action`` (unique id, default blocking type) and ``read_action(action)`` turns a received one back
into its typed parameters, raising ``ActionError`` with a one-line reason.

========================  ========  ===============  ==============================================
actionType                blocking  scopes           parameters (JSON key: type)
========================  ========  ===============  ==============================================
``pick`` (std)            HARD      NODE             lhd, stationType, stationName, loadType,
                                                     loadId, side: str; height, depth: number —
                                                     all optional (VDA 5050 §6.8.2)
``drop`` (std)            HARD      NODE             as ``pick``
``startPause`` (std)      HARD      INSTANT          —
``stopPause`` (std)       HARD      INSTANT          —
``cancelOrder`` (std)     NONE      INSTANT          —
``initPosition`` (std)    HARD      INSTANT, NODE    x, y, theta: number; mapId, lastNodeId: str
``stateRequest`` (std)    NONE      INSTANT          —
``factsheetRequest``      NONE      INSTANT          —
``openCompartment``       SOFT      INSTANT, NODE    compartment: int (≥ 0)
``waitForPickup``         SOFT      NODE             compartment: int; timeoutS: number (> 0);
                                                     stop, window: str (optional, both or neither)
``handoff``               HARD      NODE             role: "giver" | "taker"; peerSerialNumber: str;
                                                     compartments: int array (non-empty)
``enterLift``             HARD      INSTANT, NODE    building, lift, floor, sessionId: str; x, y,
                                                     theta: number, mapId: str (optional pose)
``exitLift``              HARD      INSTANT, NODE    building, lift, floor: str; x, y, theta: number,
                                                     mapId: str (optional pose)
``setOperatingMode``      HARD      INSTANT          mode: AUTOMATIC | SEMIAUTOMATIC | MANUAL |
                                                     SERVICE | TEACHIN
``confirmOperatingMode``  HARD      INSTANT          operator, role: str
``cancelOperatingMode``   NONE      INSTANT          operator, role: str
``safetyStop``            NONE      INSTANT          kind: operator | fleet | building; building: str
                                                     (exactly for kind building); operator, role
``safetyRelease``         NONE      INSTANT          as ``safetyStop``
``safetyAcknowledge``     NONE      INSTANT          operator, role: str
``buildingAlarm``         NONE      INSTANT          building: str; active: bool
========================  ========  ===============  ==============================================

Meaning of the custom actions:

- ``openCompartment``: unlock one locker compartment (the robot stands still; SOFT so several can be
  opened together).
- ``waitForPickup``: keep standing at the node until the compartment's parcel is taken or ``timeoutS``
  passes (FAILED with a ``resultDescription`` starting "timeout:" then: the parcel stays on board,
  which is no fault). ``stop`` and ``window`` tell a cart which stop and delivery window it serves
  there: its pickup codes for that stop open from the first such action until it drives on.
- ``handoff``: transfer parcels between two robots at a handoff point; the ``giver`` opens its
  ``compartments``, the ``taker`` (``peerSerialNumber`` names the other robot) receives them.
- ``enterLift`` / ``exitLift``: drive into / out of a lift inside the lift session ``sessionId``; the
  node's ``mapId`` after ``exitLift`` is the arrival floor's map. The optional pose (``x``, ``y``,
  ``theta``, ``mapId``) says where to drive, for a robot that knows no lifts of its own (a plain ROS
  navigation stack): for ``enterLift`` the cabin's centre on the boarding floor's map, heading into
  the cabin; for ``exitLift`` the exit landing on the arrival floor's map, heading out of the cabin.
  ``x``, ``y`` and ``theta`` come together or not at all; ``mapId`` only with them (absent: the map
  the robot is on). Without a pose the robot must know its lifts itself (a vendor's lift
  integration), so older senders stay valid.
- ``setOperatingMode``: switch the robot's operating mode (reported back in ``state.operatingMode``).
- ``confirmOperatingMode`` / ``cancelOperatingMode``: the receiving party confirms (or the requester
  withdraws) a pending mode switch (``robots.safety.modes``: handover needs a confirmation).
- ``safetyStop`` / ``safetyRelease``: a remote stop (an operator's e-stop, "stop all", a building
  emergency) latched on the robot's safety supervisor until released from the control centre;
  ``safetyAcknowledge`` acknowledges latched stops remotely where that is allowed (a bumper hit).
  ``operator``/``role`` are stamped by the orchestrator from the console session.
- ``buildingAlarm``: a building's fire alarm on (the robots there stop) or off (their stop becomes
  releasable; an operator still releases it).

Parameter values are read strictly (an int is not a bool, a string is not a number); unknown extra
parameter keys are ignored so vendors may add their own.
"""

from __future__ import annotations

import json
import types
import typing
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from interfaces.vda5050.errors import ActionError
from interfaces.vda5050.factsheet import ActionScope, AgvAction, AgvActionParameter, ValueDataType
from interfaces.vda5050.order import Action, ActionParameter, BlockingType, ParameterValue
from interfaces.vda5050.state import OperatingMode


class ActionType(StrEnum):
    """Every ``actionType`` robopost sends or executes."""

    PICK = "pick"
    DROP = "drop"
    START_PAUSE = "startPause"
    STOP_PAUSE = "stopPause"
    CANCEL_ORDER = "cancelOrder"
    INIT_POSITION = "initPosition"
    STATE_REQUEST = "stateRequest"
    FACTSHEET_REQUEST = "factsheetRequest"
    OPEN_COMPARTMENT = "openCompartment"
    WAIT_FOR_PICKUP = "waitForPickup"
    HANDOFF = "handoff"
    ENTER_LIFT = "enterLift"
    EXIT_LIFT = "exitLift"
    SET_OPERATING_MODE = "setOperatingMode"
    CONFIRM_OPERATING_MODE = "confirmOperatingMode"
    CANCEL_OPERATING_MODE = "cancelOperatingMode"
    SAFETY_STOP = "safetyStop"
    SAFETY_RELEASE = "safetyRelease"
    SAFETY_ACKNOWLEDGE = "safetyAcknowledge"
    BUILDING_ALARM = "buildingAlarm"
    START_CHARGING = "startCharging"
    STOP_CHARGING = "stopCharging"


class StopKind(StrEnum):
    """Who stops a robot remotely (``safetyStop``/``safetyRelease``): latched until released."""

    OPERATOR = "operator"
    """An operator's e-stop for this robot."""
    FLEET = "fleet"
    """"Stop all" from the console."""
    BUILDING = "building"
    """A building emergency (fire alarm): the robots in or bound for ``building`` stop."""


class HandoffRole(StrEnum):
    """Which side of a robot-to-robot handoff this robot plays."""

    GIVER = "giver"
    TAKER = "taker"


_H, _S, _N = BlockingType.HARD, BlockingType.SOFT, BlockingType.NONE
DEFAULT_BLOCKING: Mapping[ActionType, BlockingType] = MappingProxyType(
    {
        ActionType.PICK: _H,
        ActionType.DROP: _H,
        ActionType.START_PAUSE: _H,
        ActionType.STOP_PAUSE: _H,
        ActionType.CANCEL_ORDER: _N,
        ActionType.INIT_POSITION: _H,
        ActionType.STATE_REQUEST: _N,
        ActionType.FACTSHEET_REQUEST: _N,
        ActionType.OPEN_COMPARTMENT: _S,
        ActionType.WAIT_FOR_PICKUP: _S,
        ActionType.HANDOFF: _H,
        ActionType.ENTER_LIFT: _H,
        ActionType.EXIT_LIFT: _H,
        ActionType.SET_OPERATING_MODE: _H,
        ActionType.CONFIRM_OPERATING_MODE: _H,
        ActionType.CANCEL_OPERATING_MODE: _N,
        ActionType.SAFETY_STOP: _N,
        ActionType.SAFETY_RELEASE: _N,
        ActionType.SAFETY_ACKNOWLEDGE: _N,
        ActionType.BUILDING_ALARM: _N,
        ActionType.START_CHARGING: _H,
        ActionType.STOP_CHARGING: _H,
    }
)
"""The blocking type ``make_action`` uses when none is given."""

_I, _NO = ActionScope.INSTANT, ActionScope.NODE
ACTION_SCOPES: Mapping[ActionType, tuple[ActionScope, ...]] = MappingProxyType(
    {
        ActionType.PICK: (_NO,),
        ActionType.DROP: (_NO,),
        ActionType.START_PAUSE: (_I,),
        ActionType.STOP_PAUSE: (_I,),
        ActionType.CANCEL_ORDER: (_I,),
        ActionType.INIT_POSITION: (_I, _NO),
        ActionType.STATE_REQUEST: (_I,),
        ActionType.FACTSHEET_REQUEST: (_I,),
        ActionType.OPEN_COMPARTMENT: (_I, _NO),
        ActionType.WAIT_FOR_PICKUP: (_NO,),
        ActionType.HANDOFF: (_NO,),
        ActionType.ENTER_LIFT: (_I, _NO),  # instant: the orchestrator's lift protocol (fleet.executor)
        ActionType.EXIT_LIFT: (_I, _NO),
        ActionType.SET_OPERATING_MODE: (_I,),
        ActionType.CONFIRM_OPERATING_MODE: (_I,),
        ActionType.CANCEL_OPERATING_MODE: (_I,),
        ActionType.SAFETY_STOP: (_I,),
        ActionType.SAFETY_RELEASE: (_I,),
        ActionType.SAFETY_ACKNOWLEDGE: (_I,),
        ActionType.BUILDING_ALARM: (_I,),
        ActionType.START_CHARGING: (_I, _NO),
        ActionType.STOP_CHARGING: (_I, _NO),
    }
)
"""Where each action may appear (declared in our factsheet)."""


class ActionParams(BaseModel):
    """Typed parameters of one action type; subclasses set ``action_type``."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
        frozen=True,
        allow_inf_nan=False,
    )
    action_type: ClassVar[ActionType]


class _LoadHandling(ActionParams):
    """Parameters of ``pick`` and ``drop`` (VDA 5050 §6.8.2), all optional."""

    lhd: str | None = None
    station_type: str | None = None
    station_name: str | None = None
    load_type: str | None = None
    load_id: str | None = None
    height: float | None = None
    depth: float | None = None
    side: str | None = None


class Pick(_LoadHandling):
    """Take a load at the node."""

    action_type = ActionType.PICK


class Drop(_LoadHandling):
    """Put a load down at the node."""

    action_type = ActionType.DROP


class StartPause(ActionParams):
    """Pause the current order (stop driving and actions that can pause)."""

    action_type = ActionType.START_PAUSE


class StopPause(ActionParams):
    """Resume after ``startPause``."""

    action_type = ActionType.STOP_PAUSE


class StartCharging(ActionParams):
    """Start charging at the charger the robot stands on (VDA 5050 predefined)."""

    action_type = ActionType.START_CHARGING


class StopCharging(ActionParams):
    """Stop charging (VDA 5050 predefined)."""

    action_type = ActionType.STOP_CHARGING


class CancelOrder(ActionParams):
    """Cancel the current order; pending actions end FAILED."""

    action_type = ActionType.CANCEL_ORDER


class StateRequest(ActionParams):
    """Ask for a ``state`` message now."""

    action_type = ActionType.STATE_REQUEST


class FactsheetRequest(ActionParams):
    """Ask for a ``factsheet`` message now."""

    action_type = ActionType.FACTSHEET_REQUEST


class InitPosition(ActionParams):
    """Set the robot's pose and last node (VDA 5050 §6.8.2)."""

    action_type = ActionType.INIT_POSITION
    x: float
    y: float
    theta: float
    map_id: str
    last_node_id: str


class OpenCompartment(ActionParams):
    """Unlock one locker compartment."""

    action_type = ActionType.OPEN_COMPARTMENT
    compartment: int = Field(ge=0)


class WaitForPickup(ActionParams):
    """Stand still until the compartment is emptied or ``timeout_s`` passes."""

    action_type = ActionType.WAIT_FOR_PICKUP
    compartment: int = Field(ge=0)
    timeout_s: float = Field(gt=0)
    stop: str | None = Field(default=None, min_length=1)
    window: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _stop_with_window(self) -> WaitForPickup:
        if (self.stop is None) != (self.window is None):
            raise ValueError("waitForPickup: give stop and window together, or neither")
        return self


class Handoff(ActionParams):
    """Hand parcels to (``giver``) or take them from (``taker``) the robot ``peer_serial_number``."""

    action_type = ActionType.HANDOFF
    role: HandoffRole
    peer_serial_number: str = Field(min_length=1)
    compartments: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)


class _LiftMove(ActionParams):
    """Parameters shared by ``enterLift`` and ``exitLift``: which lift, which floor, and optionally the
    pose to drive to (``x``, ``y``, ``theta`` together; ``map_id`` only with them)."""

    building: str
    lift: str
    floor: str
    x: float | None = None
    y: float | None = None
    theta: float | None = None
    map_id: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _whole_pose_or_none(self) -> _LiftMove:
        given = [v is not None for v in (self.x, self.y, self.theta)]
        if any(given) and not all(given):
            raise ValueError(f"{self.action_type.value}: give x, y and theta together, or none of them")
        if self.map_id is not None and not all(given):
            raise ValueError(f"{self.action_type.value}: mapId needs a pose (x, y, theta)")
        return self

    @property
    def has_pose(self) -> bool:
        """Whether the sender said where to drive (else the robot must know the lift itself)."""
        return self.x is not None


class EnterLift(_LiftMove):
    """Drive into the lift of ``building`` inside lift session ``session_id``; ``floor`` is where it is.
    Optional ``x``, ``y``, ``theta``, ``mapId``: the cabin's pose on that floor's map."""

    action_type = ActionType.ENTER_LIFT
    session_id: str


class ExitLift(_LiftMove):
    """Drive out of the lift at ``floor``. Optional ``x``, ``y``, ``theta``, ``mapId``: the exit
    landing's pose on that floor's map."""

    action_type = ActionType.EXIT_LIFT


class SetOperatingMode(ActionParams):
    """Switch the operating mode."""

    action_type = ActionType.SET_OPERATING_MODE
    mode: OperatingMode


class _Acting(ActionParams):
    """Who acts, stamped by the orchestrator from the authenticated console session (never taken from
    the browser): ``operator`` (user name) and ``role`` (viewer, operator, admin; ``system`` for the
    orchestrator's own rules)."""

    operator: str = Field(default="", max_length=128)
    role: str = Field(default="operator", pattern=r"^(viewer|operator|admin|system)$")


class ConfirmOperatingMode(_Acting):
    """Confirm the pending operating-mode switch (the receiving party takes over)."""

    action_type = ActionType.CONFIRM_OPERATING_MODE


class CancelOperatingMode(_Acting):
    """Withdraw the pending operating-mode switch."""

    action_type = ActionType.CANCEL_OPERATING_MODE


class SafetyStop(_Acting):
    """Stop at once and stay stopped until released (``kind`` says whose stop; ``building`` for kind
    ``building``)."""

    action_type = ActionType.SAFETY_STOP
    kind: StopKind
    building: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _building_stop_names_its_building(self) -> SafetyStop:
        if (self.kind is StopKind.BUILDING) != (self.building is not None):
            raise ValueError(f"{self.action_type.value}: give building exactly when kind is 'building'")
        return self


class SafetyRelease(SafetyStop):
    """Release a remote stop of ``kind`` (from the control centre only)."""

    action_type = ActionType.SAFETY_RELEASE


class SafetyAcknowledge(_Acting):
    """Acknowledge latched protective stops remotely (e.g. a bumper hit, once the contact has ended)."""

    action_type = ActionType.SAFETY_ACKNOWLEDGE


class BuildingAlarm(ActionParams):
    """A building's fire alarm went on or off (from the elevator bridge); on means a building stop."""

    action_type = ActionType.BUILDING_ALARM
    building: str = Field(min_length=1)
    active: bool


PARAMS_OF: Mapping[ActionType, type[ActionParams]] = MappingProxyType(
    {
        cls.action_type: cls
        for cls in (
            Pick,
            Drop,
            StartPause,
            StopPause,
            CancelOrder,
            InitPosition,
            StateRequest,
            FactsheetRequest,
            OpenCompartment,
            WaitForPickup,
            Handoff,
            EnterLift,
            ExitLift,
            SetOperatingMode,
            ConfirmOperatingMode,
            CancelOperatingMode,
            SafetyStop,
            SafetyRelease,
            SafetyAcknowledge,
            BuildingAlarm,
            StartCharging,
            StopCharging,
        )
    }
)
"""The parameter model of each action type."""


def new_action_id() -> str:
    """A fresh unique action id (a UUID4, as VDA 5050 suggests)."""
    return str(uuid.uuid4())


def make_action(
    params: ActionParams,
    *,
    action_id: str | None = None,
    blocking_type: BlockingType | None = None,
    description: str | None = None,
) -> Action:
    """The ``Action`` carrying ``params``: a new UUID id and the type's default blocking unless given."""
    values = params.model_dump(mode="json", exclude_none=True, by_alias=True)
    return Action(
        action_type=params.action_type.value,
        action_id=action_id if action_id is not None else new_action_id(),
        blocking_type=blocking_type if blocking_type is not None else DEFAULT_BLOCKING[params.action_type],
        action_description=description,
        action_parameters=[ActionParameter(key=k, value=v) for k, v in values.items()] or None,
    )


def action_parameters(action: Action) -> dict[str, ParameterValue]:
    """The action's parameters as ``{key: value}``; ``ActionError`` if a key appears twice."""
    result: dict[str, ParameterValue] = {}
    for parameter in action.action_parameters or []:
        if parameter.key in result:
            raise ActionError(f"action {action.action_id}: parameter {parameter.key!r} given twice")
        result[parameter.key] = parameter.value
    return result


def read_action(action: Action) -> ActionParams:
    """The typed parameters of a received action; ``ActionError`` for unknown types or bad parameters."""
    try:
        model = PARAMS_OF[ActionType(action.action_type)]
    except ValueError:
        raise ActionError(f"action {action.action_id}: unknown actionType {action.action_type!r}") from None
    raw = json.dumps(action_parameters(action))
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "parameters"
        raise ActionError(
            f"action {action.action_id} ({action.action_type}): parameter {where}: {first['msg']}"
        ) from None


def duplicate_action_ids(actions: Iterable[Action]) -> list[str]:
    """The action ids used more than once (VDA 5050 wants them unique), sorted."""
    counts = Counter(action.action_id for action in actions)
    return sorted(action_id for action_id, n in counts.items() if n > 1)


def agv_actions(types_: Iterable[ActionType] = tuple(ActionType)) -> list[AgvAction]:
    """Factsheet ``agvActions`` entries declaring the given action types, their scopes and parameters."""
    return [
        AgvAction(
            action_type=kind.value,
            action_scopes=list(ACTION_SCOPES[kind]),
            action_description=(PARAMS_OF[kind].__doc__ or "").strip() or None,
            action_parameters=_declared_parameters(PARAMS_OF[kind]) or None,
        )
        for kind in types_
    ]


def _declared_parameters(model: type[ActionParams]) -> list[AgvActionParameter]:
    """One factsheet parameter declaration per field of ``model``."""
    return [
        AgvActionParameter(
            key=field.alias or name,
            value_data_type=_data_type(field.annotation),
            is_optional=not field.is_required(),
        )
        for name, field in model.model_fields.items()
    ]


def _data_type(annotation: Any) -> ValueDataType:
    """The factsheet data type of a parameter field's annotation (``X | None`` as ``X``)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        origin = typing.get_origin(annotation)
    if origin is list:
        return ValueDataType.ARRAY
    if annotation is bool:
        return ValueDataType.BOOL
    if annotation is int:
        return ValueDataType.INTEGER
    if annotation is float:
        return ValueDataType.NUMBER
    return ValueDataType.STRING
