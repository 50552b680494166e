"""Operating modes and their handover: who drives the vehicle, and how control changes hands.

Pure: time comes as arguments (seconds of any one clock; the agent uses ``Clock.monotonic()``).

**Modes** and their VDA 5050 ``operatingMode`` (§6.10.6):

=================  =============================================  ===============  ================
mode               who drives                                     ``operatingMode``  takes orders
=================  =============================================  ===============  ================
``AUTOMATIC``      the autonomy, on the fleet master's orders     AUTOMATIC        yes
``SEMIAUTOMATIC``  one control-centre operator, remotely          SEMIAUTOMATIC    no
                   ("parallel driving" over ``.../teleop``)
``MANUAL``         a person at the vehicle with the handheld      MANUAL           no
                   (on-site remote control)
=================  =============================================  ===============  ================

Why parallel driving is SEMIAUTOMATIC: VDA 5050 tells its modes apart by *who is in control*. In
MANUAL "master control is not in control" and a person at the vehicle drives — our on-site handheld.
In SEMIAUTOMATIC master control stays in control while a human sets the motion; remote driving comes
through master control (console → orchestrator → ``teleop``), so the fleet master keeps the robot.
Where we differ from the letter of the standard: in SEMIAUTOMATIC the operator also steers (the
standard's example keeps steering automatic), and the robot takes **no orders** — the agent rejects
them and the fleet master must treat any mode but AUTOMATIC as unavailable for dispatch
(``available_for_orders``). SERVICE and TEACHIN are never reported.

**Handover** is an explicit state machine: a *request* by one party, then a *confirmation* by the
party that receives control, within ``confirm_timeout`` seconds (else the request lapses). One request
may be pending at a time. Who may request and who confirms (only people with an acting role —
operator or admin — ever do; ``SYSTEM`` and viewers never):

==============================  =======================================  =========================
switch                          may request                              confirms (receives)
==============================  =======================================  =========================
AUTOMATIC → SEMIAUTOMATIC       control centre                           control centre: the
                                                                         confirming operator drives
AUTOMATIC → MANUAL              on site, control centre                  on site
SEMIAUTOMATIC → AUTOMATIC       the driving operator or an admin         control centre
SEMIAUTOMATIC → MANUAL          on site; the driving operator or admin   on site
MANUAL → AUTOMATIC              on site                                  control centre
MANUAL → SEMIAUTOMATIC          on site                                  control centre: the
                                                                         confirming operator drives
==============================  =======================================  =========================

Two principles give that table. *Local beats remote*: the person at the vehicle may always take it
over (IEC 60204-1 gives the local control station priority), and the control centre never takes it
away from them — out of MANUAL only the on-site party may ask. *Nobody steals a remote drive*: out of
SEMIAUTOMATIC the control centre's request must come from the operator driving or an admin.

**Preconditions**, checked at the request and again at the confirmation:

* the vehicle stands: ``|measured speed| <= standstill_speed`` (a mode switch while moving is refused;
  control never changes hands mid-motion);
* into AUTOMATIC only without a latched stop (no handing an unresolved emergency to the autonomy) and
  with a localized robot. Into MANUAL and SEMIAUTOMATIC a latch does not block: a person taking over
  is how most emergencies are resolved, and the supervisor keeps the vehicle stopped until the latch
  is cleared anyway.

A refused confirmation leaves the request pending (the vehicle may stop in time); ``tick`` lapses it.
Every refusal carries a ``Refusal`` code and a sentence.

**Orders.** ``Switch.clears_orders`` is true when the agent must drop the running order: on leaving
AUTOMATIC (a person drives now; the dispatcher re-plans) and on entering or leaving MANUAL, which
VDA 5050 §6.10.6 requires.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from interfaces.vda5050 import OperatingMode
from robots.safety.parties import Party, PartyKind, Role
from robots.safety.supervisor import SafetyDecision


class Mode(StrEnum):
    """Who drives (module docstring); values are the VDA 5050 ``operatingMode`` names."""

    AUTOMATIC = "AUTOMATIC"
    SEMIAUTOMATIC = "SEMIAUTOMATIC"
    MANUAL = "MANUAL"

    @property
    def operating_mode(self) -> OperatingMode:
        """The VDA 5050 ``operatingMode`` reported in ``state``."""
        return OperatingMode(self.value)

    @property
    def holder(self) -> PartyKind:
        """The kind of party in control in this mode (the receiver of a switch into it)."""
        return PartyKind.ON_SITE if self is Mode.MANUAL else PartyKind.CONTROL_CENTRE

    @property
    def description(self) -> str:
        """What the mode means, in words."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Mode.AUTOMATIC: "autonomous",
    Mode.SEMIAUTOMATIC: "remote parallel driving from the control centre",
    Mode.MANUAL: "on-site remote control",
}

_REQUESTERS: dict[tuple[Mode, Mode], frozenset[PartyKind]] = {
    (Mode.AUTOMATIC, Mode.SEMIAUTOMATIC): frozenset({PartyKind.CONTROL_CENTRE}),
    (Mode.AUTOMATIC, Mode.MANUAL): frozenset({PartyKind.ON_SITE, PartyKind.CONTROL_CENTRE}),
    (Mode.SEMIAUTOMATIC, Mode.AUTOMATIC): frozenset({PartyKind.CONTROL_CENTRE}),
    (Mode.SEMIAUTOMATIC, Mode.MANUAL): frozenset({PartyKind.ON_SITE, PartyKind.CONTROL_CENTRE}),
    (Mode.MANUAL, Mode.AUTOMATIC): frozenset({PartyKind.ON_SITE}),
    (Mode.MANUAL, Mode.SEMIAUTOMATIC): frozenset({PartyKind.ON_SITE}),
}
"""Who may request each switch (module docstring's table)."""


class Refusal(StrEnum):
    """Why a request, confirmation or cancellation was refused."""

    NOT_AUTHORISED = "notAuthorised"
    ALREADY_IN_MODE = "alreadyInMode"
    REQUEST_PENDING = "requestPending"
    NO_REQUEST = "noRequest"
    NOT_RECEIVER = "notReceiver"
    MOVING = "moving"
    STOP_PENDING = "stopPending"
    NOT_LOCALIZED = "notLocalized"
    LAPSED = "lapsed"


@dataclass(frozen=True, slots=True)
class ModeConfig:
    """The initial mode, how long a request waits for its confirmation (s), the standstill speed (m/s)."""

    initial: Mode = Mode.AUTOMATIC
    confirm_timeout: float = 30.0
    standstill_speed: float = 0.05

    def __post_init__(self) -> None:
        if not (math.isfinite(self.confirm_timeout) and self.confirm_timeout > 0.0):
            raise ValueError(f"ModeConfig.confirm_timeout must be > 0 s, got {self.confirm_timeout!r}")
        if not (math.isfinite(self.standstill_speed) and self.standstill_speed >= 0.0):
            raise ValueError(f"ModeConfig.standstill_speed must be >= 0 m/s, got {self.standstill_speed!r}")


@dataclass(frozen=True, slots=True)
class VehicleStatus:
    """What the preconditions look at: measured speed (m/s), a latched stop, localization."""

    measured_speed: float
    stop_latched: bool = False
    localized: bool = True

    @classmethod
    def of(
        cls, decision: SafetyDecision | None, measured_speed: float, *, localized: bool = True
    ) -> VehicleStatus:
        """The status from the supervisor's latest decision (None: nothing latched known yet)."""
        latched = decision is not None and bool(decision.latches)
        return cls(measured_speed, latched, localized)


@dataclass(frozen=True, slots=True)
class ModeRequest:
    """A pending switch: from, to, who asked, when, and when it lapses."""

    from_mode: Mode
    to_mode: Mode
    by: Party
    at: float
    expires: float


@dataclass(frozen=True, slots=True)
class Switch:
    """A completed handover; ``clears_orders`` tells the agent to drop the running order."""

    from_mode: Mode
    to_mode: Mode
    requested_by: Party
    confirmed_by: Party
    at: float
    clears_orders: bool


@dataclass(frozen=True, slots=True)
class ModeAnswer:
    """The outcome of a request, confirmation, cancellation or lapse."""

    ok: bool
    mode: Mode
    message: str
    refusal: Refusal | None = None
    pending: ModeRequest | None = None
    switch: Switch | None = None


class ModeController:
    """The operating mode and its handover state machine (module docstring)."""

    def __init__(self, config: ModeConfig | None = None) -> None:
        self.config = config or ModeConfig()
        self._mode = self.config.initial
        self._controller: Party | None = None
        self._pending: ModeRequest | None = None
        self.history: list[Switch] = []

    @property
    def mode(self) -> Mode:
        """The mode now."""
        return self._mode

    @property
    def operating_mode(self) -> OperatingMode:
        """VDA 5050 ``operatingMode`` for ``state``."""
        return self._mode.operating_mode

    @property
    def controller(self) -> Party | None:
        """Who drives: the confirming party of the switch into MANUAL/SEMIAUTOMATIC; None in AUTOMATIC."""
        return self._controller

    @property
    def pending(self) -> ModeRequest | None:
        """The request waiting for its confirmation, if any."""
        return self._pending

    @property
    def available_for_orders(self) -> bool:
        """True in AUTOMATIC with no handover pending: the dispatcher may give this robot work."""
        return self._mode is Mode.AUTOMATIC and self._pending is None

    @property
    def unavailable_reason(self) -> str | None:
        """Why the robot takes no orders now (None when it does)."""
        if self._mode is not Mode.AUTOMATIC:
            return f"in {self._mode.value} mode ({self._mode.description})"
        if self._pending is not None:
            return f"handover to {self._pending.to_mode.value} pending"
        return None

    # --- the state machine ----------------------------------------------------------------------------

    def request(self, target: Mode, by: Party, now: float, status: VehicleStatus) -> ModeAnswer:
        """Ask to switch to ``target``; on success the request waits for the receiver's confirmation."""
        self.tick(now)
        if target is self._mode:
            return self._refuse(Refusal.ALREADY_IN_MODE, f"already in {target.value}")
        if self._pending is not None:
            return self._refuse(
                Refusal.REQUEST_PENDING,
                f"a request to {self._pending.to_mode.value} by {self._pending.by} is pending",
            )
        refusal = self._requester_refusal(target, by) or self._precondition_refusal(target, status)
        if refusal is not None:
            return self._refuse(*refusal)
        self._pending = ModeRequest(self._mode, target, by, now, now + self.config.confirm_timeout)
        receiver = _party_name(target.holder)
        return self._answer(f"switch to {target.value} requested by {by}; awaiting {receiver}")

    def confirm(self, by: Party, now: float, status: VehicleStatus) -> ModeAnswer:
        """Confirm the pending request as the receiving party; on success the mode changes now."""
        lapsed = self.tick(now)
        if lapsed is not None:
            return lapsed
        request = self._pending
        if request is None:
            return self._refuse(Refusal.NO_REQUEST, "no switch is pending")
        if not by.may_act or by.kind is not request.to_mode.holder:
            return self._refuse(
                Refusal.NOT_RECEIVER,
                f"{by} may not confirm: {_party_name(request.to_mode.holder)} receives control",
            )
        precondition = self._precondition_refusal(request.to_mode, status)
        if precondition is not None:
            return self._refuse(*precondition)
        return self._switch(request, by, now)

    def cancel(self, by: Party, now: float) -> ModeAnswer:
        """Withdraw (the requester) or decline (the receiving side) the pending request."""
        self.tick(now)
        request = self._pending
        if request is None:
            return self._refuse(Refusal.NO_REQUEST, "no switch is pending")
        is_requester = by.kind is request.by.kind and by.who == request.by.who
        if not by.may_act or not (is_requester or by.kind is request.to_mode.holder):
            return self._refuse(Refusal.NOT_AUTHORISED, f"{by} may not cancel the request")
        self._pending = None
        return self._answer(f"switch to {request.to_mode.value} cancelled by {by}")

    def tick(self, now: float) -> ModeAnswer | None:
        """Lapse the pending request once its time is up; returns the lapse (for the log), else None."""
        request = self._pending
        if request is None or now <= request.expires:
            return None
        self._pending = None
        return self._refuse(
            Refusal.LAPSED,
            f"switch to {request.to_mode.value} lapsed: "
            f"not confirmed within {self.config.confirm_timeout:g} s",
        )

    # --- rules ----------------------------------------------------------------------------------------

    def _requester_refusal(self, target: Mode, by: Party) -> tuple[Refusal, str] | None:
        if not by.may_act:
            return Refusal.NOT_AUTHORISED, f"{by} may not switch modes"
        if by.kind not in _REQUESTERS[(self._mode, target)]:
            return Refusal.NOT_AUTHORISED, (
                f"{_party_name(by.kind)} may not request {self._mode.value} → {target.value}"
            )
        driver = self._controller
        if (
            self._mode is Mode.SEMIAUTOMATIC
            and by.kind is PartyKind.CONTROL_CENTRE
            and by.role is not Role.ADMIN
            and (driver is None or driver.who != by.who)
        ):
            return (
                Refusal.NOT_AUTHORISED,
                "only the driving operator or an admin may hand over a remote drive",
            )
        return None

    def _precondition_refusal(self, target: Mode, status: VehicleStatus) -> tuple[Refusal, str] | None:
        speed = abs(status.measured_speed)
        if not speed <= self.config.standstill_speed:  # NaN counts as moving
            return Refusal.MOVING, f"the vehicle is moving ({speed:.2f} m/s): stop it first"
        if target is Mode.AUTOMATIC and status.stop_latched:
            return Refusal.STOP_PENDING, "a latched stop must be cleared before the autonomy takes over"
        if target is Mode.AUTOMATIC and not status.localized:
            return Refusal.NOT_LOCALIZED, "the robot is not localized: the autonomy cannot take over"
        return None

    def _switch(self, request: ModeRequest, by: Party, now: float) -> ModeAnswer:
        before, after = request.from_mode, request.to_mode
        clears = before is Mode.AUTOMATIC or Mode.MANUAL in (before, after)
        switch = Switch(before, after, request.by, by, now, clears)
        self._mode = after
        self._controller = None if after is Mode.AUTOMATIC else by
        self._pending = None
        self.history.append(switch)
        return ModeAnswer(
            True, after, f"switched {before.value} → {after.value} ({by} in control)", switch=switch
        )

    def _refuse(self, refusal: Refusal, message: str) -> ModeAnswer:
        return ModeAnswer(False, self._mode, message, refusal, self._pending)

    def _answer(self, message: str) -> ModeAnswer:
        return ModeAnswer(True, self._mode, message, pending=self._pending)


def _party_name(kind: PartyKind) -> str:
    return {PartyKind.ON_SITE: "the on-site party", PartyKind.CONTROL_CENTRE: "the control centre"}.get(
        kind, "the system"
    )
