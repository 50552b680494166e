"""The cart's side of the VDA 5050 agent: ``CartDriver`` runs the locker actions and reports the alarms.

``CartDriver(base, cart)`` is a ``RobotDriver`` for a delivery cart. Motion and every other action go to
``base`` (the ROS 2 or simulated driver); the two locker actions go to the ``CartService``:

* ``openCompartment`` (compartment) → ``open_compartment(n)``: SENT → SUCCESS (FINISHED: the lock was
  pulsed); BOARD_DOWN → RETRY (the agent asks again after its ``retry_delay``, then FAILED);
  UNKNOWN_COMPARTMENT or REFUSED → IMPOSSIBLE (FAILED). Each with a ``resultDescription``.
* ``waitForPickup`` (compartment, timeoutS; stop, window) → ``wait_for_pickup(n, timeoutS)``: taken →
  SUCCESS (FINISHED); timed out → FAILED with ``resultDescription`` "timeout: ..." and no
  ``actionFailed`` error.

Why a parcel not taken is FAILED but not an error: VDA 5050 ends an action that did not achieve its
purpose FAILED (``actionStatus``), and the order then ends with that action FAILED, which is how
master control learns which parcels stay on board. Students not turning up is the normal course of a
delivery window, not a fault of the cart: an ``actionFailed`` error (an operator alarm on the console)
for each unclaimed parcel would drown the real alarms, so the outcome says ``report_error=False``. The
description starts with ``timeout`` as ``interfaces.vda5050.actions`` promises. A ``waitForPickup`` for
a compartment whose parcel was already taken FINISHES at once; one for a compartment with no parcel on
the cart's code sheet (never loaded, or codes never synced) FAILS at once: nobody could open it.

Arrival at a stop. The cart's codes open only at the stop they were issued for, and the orchestrator
sends the parcels' SMS when the cart reports its arrival (``CartService.arrive(stop, window)``, queued
as an ``arrival`` event). Map node ids are not stop ids (``dorm1-stop`` vs ``stop_dorm_1``) and the
window is nowhere in an order, so the dwell's ``waitForPickup`` actions carry two more parameters,
``stop`` and ``window`` (text, both or neither; ``read_action`` ignores keys it does not know, so this
is compatible with the declared parameters). The first such action at a node makes the cart arrive
(once per stop and window); the next drive (``navigate``) makes it depart, so no code opens on the
way. A ``waitForPickup`` without them waits at whatever stop the cart is at.

Alarms. Each ``CartAlarm`` kind becomes one VDA 5050 error type, reported as a ``Condition`` in the
readouts for as long as the alarm lasts (the agent turns conditions into ``state.errors``; the console
turns those into operator alarms, one per robot and error type):

==================  ===================  =======  ==============================================
alarm kind          errorType            level    why this level
==================  ===================  =======  ==============================================
``door_left_open``  cartDoorLeftOpen     WARNING  the cart can go on; staff or the student close it
``lock_jammed``     cartLockJammed       WARNING  one compartment is stuck; the others work
``door_forced``     cartDoorForced       WARNING  a door opened without a code (possible theft)
``board_offline``   cartBoardOffline     FATAL    no compartment opens and no door is watched: the
                                                  cart cannot deliver at all until someone fixes
                                                  the board or its cable (VDA 5050: FATAL needs
                                                  a person); it may still drive home
``code_lockout``    cartCodeLockout      WARNING  code entry closed after wrong codes; it reopens
``event_rejected``  cartEventRejected    WARNING  an event the orchestrator refused (kept on disk)
==================  ===================  =======  ==============================================

Several alarms of one kind (two doors left open) make one error whose description lists each and
whose ``errorReferences`` name each ``compartment``. A new readout goes out whenever the alarms change
(``CartService.changes()``), so the errors appear and disappear with the alarms.

The ``CartService`` is shared with the kiosk page: whoever composes the cart starts and stops it;
``CartDriver.start()``/``stop()`` start and stop only ``base`` and the driver's own watchers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import ValidationError

from interfaces.vda5050 import ActionParams, ActionType, ErrorLevel, OpenCompartment, WaitForPickup
from robots.agent.driver import ActionOutcome, Condition, DriverResult, Pose, Readout, RobotDriver
from robots.agent.readout_feed import ReadoutFeed, ReadoutStream
from robots.agent.safety import (
    AcknowledgeCallback,
    AcknowledgeDriver,
    DiagnosticsDriver,
    SpeedLimitDriver,
    VelocityDriver,
)
from robots.cart.locker.model import OpenResult
from robots.cart.service import AlarmKind, CartAlarm, CartService
from robots.safety import DiagnosticArray

ALARM_ERRORS: Mapping[AlarmKind, tuple[str, ErrorLevel]] = MappingProxyType(
    {
        "door_left_open": ("cartDoorLeftOpen", ErrorLevel.WARNING),
        "lock_jammed": ("cartLockJammed", ErrorLevel.WARNING),
        "door_forced": ("cartDoorForced", ErrorLevel.WARNING),
        "board_offline": ("cartBoardOffline", ErrorLevel.FATAL),
        "code_lockout": ("cartCodeLockout", ErrorLevel.WARNING),
        "event_rejected": ("cartEventRejected", ErrorLevel.WARNING),
    }
)
"""The VDA 5050 ``errorType`` and ``errorLevel`` of each cart alarm kind (see the module docstring)."""

STOP_PARAMETER = "stop"
WINDOW_PARAMETER = "window"
"""The ``waitForPickup`` parameters that make the cart arrive at a stop for a delivery window."""

_COMPARTMENT_TROUBLE: Mapping[str, str] = MappingProxyType(
    {
        "door_left_open": "door left open",
        "lock_jammed": "lock did not release",
        "door_forced": "door opened without a code",
    }
)

_P = TypeVar("_P", bound=ActionParams)


class CartDriver:
    """A ``RobotDriver`` for a delivery cart: ``base`` drives, ``cart`` does the lockers (module doc)."""

    def __init__(self, base: RobotDriver, cart: CartService, *, logger: logging.Logger | None = None) -> None:
        self.base = base
        self.cart = cart
        self._log = logger or logging.getLogger(f"robopost.cart.{cart.cart}.agent")
        self._feed = ReadoutFeed()
        self._conditions = alarm_conditions(cart.alarms())
        self._tasks: list[asyncio.Task[None]] = []
        self._warned_velocity = False

    # --- RobotDriver ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start ``base`` and follow its readouts and the cart's alarms (the cart service runs already)."""
        base_readouts = self.base.readouts()
        await self.base.start()
        self._conditions = alarm_conditions(self.cart.alarms())
        self._tasks = [
            asyncio.create_task(self._follow_base(base_readouts), name="cart-driver-base"),
            asyncio.create_task(self._follow_alarms(), name="cart-driver-alarms"),
        ]
        self._feed.publish(self.readout())

    async def stop(self) -> None:
        """Stop following, then stop ``base`` (the cart service is its owner's to stop)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.base.stop()

    async def navigate(self, goal: Pose, *, max_speed: float | None = None) -> DriverResult:
        """Leave the stop (no code opens on the way), then drive with ``base``."""
        if self.cart.stop_id is not None:
            self._log.info("departing from stop %s (window %s)", self.cart.stop_id, self.cart.window)
            self.cart.depart()
        return await self.base.navigate(goal, max_speed=max_speed)

    async def run_action(
        self, action_type: str, parameters: Mapping[str, Any]
    ) -> DriverResult | ActionOutcome:
        """``openCompartment`` and ``waitForPickup`` on the cart; every other action on ``base``."""
        if action_type == ActionType.OPEN_COMPARTMENT:
            return await self._open_compartment(parameters)
        if action_type == ActionType.WAIT_FOR_PICKUP:
            return await self._wait_for_pickup(parameters)
        return await self.base.run_action(action_type, parameters)

    def readout(self) -> Readout:
        """The base's latest readout with the cart's alarms as conditions."""
        return self._merge(self.base.readout())

    def readouts(self) -> ReadoutStream:
        """Every readout from now on: each of the base's, and one more whenever the cart's alarms change."""
        return self._feed.subscribe()

    # --- what the safety layer drives (robots.agent.safety): passed to the base -----------------------

    def send_velocity(self, vx: float, omega: float) -> None:
        """A velocity for the base (teleop, and the zero velocity of a stop); ignored, with a warning
        the first time, by a base without velocity control."""
        if isinstance(self.base, VelocityDriver):
            self.base.send_velocity(vx, omega)
        elif not self._warned_velocity:
            self._warned_velocity = True
            self._log.warning("the cart's base takes no velocity commands: teleop cannot drive it")

    def publish_diagnostics(self, array: DiagnosticArray) -> None:
        """The safety supervisor's diagnostics, published by the base if it can."""
        if isinstance(self.base, DiagnosticsDriver):
            self.base.publish_diagnostics(array)

    def limit_speed(self, limit: float | None) -> None:
        """The supervisor's speed limit (m/s; None: none) for a base that can cap its own drives."""
        if isinstance(self.base, SpeedLimitDriver):
            self.base.limit_speed(limit)

    def on_acknowledge(self, callback: AcknowledgeCallback | None) -> None:
        """The reset key at the vehicle: registered with a base that has one (``RosDriver``'s service)."""
        if isinstance(self.base, AcknowledgeDriver):
            self.base.on_acknowledge(callback)

    @property
    def top_speed(self) -> float | None:
        """The base's top speed (m/s), if it says."""
        top = getattr(self.base, "top_speed", None)
        return float(top) if isinstance(top, int | float) else None

    # --- actions -------------------------------------------------------------------------------------

    async def _open_compartment(self, parameters: Mapping[str, Any]) -> ActionOutcome:
        params = _read(OpenCompartment, parameters)
        if isinstance(params, ActionOutcome):
            return params
        n = params.compartment
        result = await self.cart.open_compartment(n)
        if result is OpenResult.SENT:
            return ActionOutcome(DriverResult.SUCCESS, f"compartment {n} unlocked")
        if result is OpenResult.BOARD_DOWN:
            return ActionOutcome(DriverResult.RETRY, f"compartment {n}: the locker board does not answer")
        if result is OpenResult.UNKNOWN_COMPARTMENT:
            return ActionOutcome(DriverResult.IMPOSSIBLE, f"this cart has no compartment {n}")
        return ActionOutcome(DriverResult.IMPOSSIBLE, f"compartment {n}: the locker board refused to open it")

    async def _wait_for_pickup(self, parameters: Mapping[str, Any]) -> ActionOutcome:
        params = _read(WaitForPickup, parameters)
        if isinstance(params, ActionOutcome):
            return params
        stop = _stop_and_window(parameters)
        if isinstance(stop, ActionOutcome):
            return stop
        if stop is not None:
            self._arrive(*stop)
        n, timeout_s = params.compartment, params.timeout_s
        ready = self._pickup_ready(n)
        if ready is not None:
            return ready
        if await self.cart.wait_for_pickup(n, timeout_s):
            return ActionOutcome(DriverResult.SUCCESS, f"parcel in compartment {n} taken")
        return ActionOutcome(
            DriverResult.IMPOSSIBLE,
            f"timeout: parcel in compartment {n} not taken within {timeout_s:g} s",
            report_error=False,
        )

    def _arrive(self, stop: str, window: str) -> None:
        """Tell the cart it serves ``stop`` in ``window`` (once: other actions at the node find it there)."""
        if (self.cart.stop_id, self.cart.window) != (stop, window):
            self._log.info("arrived at stop %s for window %s", stop, window)
            self.cart.arrive(stop, window)

    def _pickup_ready(self, n: int) -> ActionOutcome | None:
        """The outcome at once when there is nothing to wait for in compartment ``n``, else None."""
        checker = self.cart.checker
        if checker.entry_for(str(n)) is not None:
            return None
        sheet = checker.sheet
        if sheet is not None and any(e.compartment == str(n) for e in sheet.entries):
            return ActionOutcome(DriverResult.SUCCESS, f"parcel in compartment {n} already taken")
        why = "the cart has no pickup codes yet" if sheet is None else "no parcel on the code sheet"
        return ActionOutcome(DriverResult.IMPOSSIBLE, f"compartment {n}: {why}, nobody can open it")

    # --- readouts ------------------------------------------------------------------------------------

    def _merge(self, readout: Readout) -> Readout:
        if not self._conditions:
            return readout
        return replace(readout, conditions=(*readout.conditions, *self._conditions))

    async def _follow_base(self, readouts: AsyncIterator[Readout]) -> None:
        async for readout in readouts:
            self._feed.publish(self._merge(readout))

    async def _follow_alarms(self) -> None:
        async for view in self.cart.changes():
            conditions = alarm_conditions(view.alarms)
            if conditions != self._conditions:
                self._conditions = conditions
                self._feed.publish(self.readout())


def alarm_conditions(alarms: Iterable[CartAlarm]) -> tuple[Condition, ...]:
    """The cart's alarms as readout conditions: one per error type, in order of the oldest alarm."""
    by_type: dict[str, list[CartAlarm]] = {}
    for alarm in alarms:
        by_type.setdefault(ALARM_ERRORS[alarm.kind][0], []).append(alarm)
    conditions = []
    for error_type, group in by_type.items():
        conditions.append(
            Condition(
                error_type=error_type,
                description="; ".join(_describe(a) for a in group),
                level=ALARM_ERRORS[group[0].kind][1],
                references=tuple(
                    ("compartment", str(a.compartment)) for a in group if a.compartment is not None
                ),
            )
        )
    return tuple(conditions)


def _describe(alarm: CartAlarm) -> str:
    """One alarm for an operator, in English, with the time it began (UTC)."""
    since = datetime.fromtimestamp(alarm.since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    trouble = _COMPARTMENT_TROUBLE.get(alarm.kind)
    if alarm.compartment is not None and trouble is not None:
        return f"compartment {alarm.compartment}: {trouble} since {since}"
    return f"{alarm.message.en.rstrip('.')} (since {since})"


def _read(model: type[_P], parameters: Mapping[str, Any]) -> _P | ActionOutcome:
    """The typed parameters, or an IMPOSSIBLE outcome naming the first bad one."""
    try:
        return model.model_validate(dict(parameters), strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "parameters"
        return ActionOutcome(
            DriverResult.IMPOSSIBLE, f"{model.action_type.value}: parameter {where}: {first['msg']}"
        )


def _stop_and_window(parameters: Mapping[str, Any]) -> tuple[str, str] | ActionOutcome | None:
    """``(stop, window)`` when both are given, None when neither is, IMPOSSIBLE otherwise."""
    stop, window = parameters.get(STOP_PARAMETER), parameters.get(WINDOW_PARAMETER)
    if stop is None and window is None:
        return None
    if isinstance(stop, str) and stop and isinstance(window, str) and window:
        return stop, window
    return ActionOutcome(
        DriverResult.IMPOSSIBLE,
        f"waitForPickup: parameters {STOP_PARAMETER!r} and {WINDOW_PARAMETER!r} go together, as text",
    )


__all__ = ["ALARM_ERRORS", "STOP_PARAMETER", "WINDOW_PARAMETER", "CartDriver", "alarm_conditions"]
