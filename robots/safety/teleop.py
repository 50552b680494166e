"""The teleoperation gate: which remote-driving commands count, and the velocity to publish each tick.

Pure: times are arguments. A command's ``sent_at`` is the sender's wall clock (epoch seconds, the
console's ``Clock.now()``); the gate compares it with the robot's wall clock (``wall_now``) for the
age check only. Everything else — the rate limit and the dead man — runs on the robot's monotonic
clock (``mono_now``), so a wall-clock jump can neither keep a dead stream alive nor kill a live one.

**Admission** (``offer``), in this order; the first failing rule drops the command with a ``Drop``:

1. ``INVALID``         a velocity or time that is not finite;
2. ``NOT_IN_CONTROL``  the mode is AUTOMATIC (teleop never drives an autonomous robot);
3. ``WRONG_SENDER``    in MANUAL only on-site commands (the handheld) count; in SEMIAUTOMATIC only
                       control-centre commands from the operator in control (``ControlView.controller``);
4. ``STALE``           older than ``max_age + clock_allowance`` by the robot's wall clock;
   ``FROM_FUTURE``     sent more than ``clock_allowance`` after the robot's now (a wrong clock);
5. ``OLD_SESSION``     a session the gate has already left (see below);
6. ``DUPLICATE``       the sequence number of the last command of the session again;
   ``OUT_OF_ORDER``    a lower one (a late packet must never undo a newer command);
7. ``RATE_LIMITED``    more than ``burst`` commands faster than ``max_rate`` per second (token
                       bucket); its sequence number still counts as seen.

**Sessions.** A console numbers its commands from 0 when it (re)connects and sends a new ``session``
id; a fresh command of a new session starts it (numbers start over) and retires the old one, whose
late packets are then dropped. Sessions are optional (all commands with ``session=""`` are one).

**Output** (``tick``, once per control period): zero while no command counts; the latest accepted
command otherwise, until the **dead man** fires — no accepted command for ``deadman_timeout``
(300 ms) ⇒ zero, and the command is forgotten (a new one is needed to move again). With ticks every
``P`` seconds, the output is zero at the first tick at or after ``last accepted + deadman_timeout``,
i.e. within 300 ms + P of the last command. The command is then capped, keeping its direction:

* by the mode's top speed (``manual_max_speed`` on the handheld, ``remote_max_speed`` remotely);
* by the zone at the robot's position (``zone_cap(x, y)``, None: no cap there; position unknown:
  ``unknown_zone_cap``);
* by the safety supervisor's ``speed_limit``, always last: nothing the gate or a sender does can
  exceed it, and a limit of 0 gives exactly zero (turning on the spot included);
* by ``max_omega`` for the turn rate.

``clamp_velocity`` does the capping (scales ``vx`` and ``omega`` together so the path's curvature is
kept); the agent uses the same function to cap navigation's velocity in AUTOMATIC.

**Mode changes.** When the mode or the party in control changes the gate drops the current command
(zero until the new controller sends); sequence bookkeeping is kept, so old packets stay dropped.

**Wire format** of ``.../teleop`` (JSON object; ``teleop_from_json``/``teleop_to_json``)::

    {"seq": 41, "vx": 0.8, "omega": -0.2, "sentAt": 1714564800.125,
     "session": "c0f3…", "operator": "alice", "source": "controlCentre"}

``seq`` int >= 0, ``vx`` m/s forward, ``omega`` rad/s counter-clockwise, ``sentAt`` epoch seconds;
``session``, ``operator`` and ``source`` (``controlCentre`` | ``onSite``) are optional.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from interfaces.teleop import Party, PartyKind, TeleopCommand
from robots.safety.modes import Mode

ZoneCap = Callable[[float, float], float | None]
"""The speed cap (m/s) of the zone at map position ``(x, y)``; None where no zone caps speed."""


class ControlView(Protocol):
    """Who is in control now (``ModeController`` is one)."""

    @property
    def mode(self) -> Mode: ...

    @property
    def controller(self) -> Party | None: ...


class Drop(StrEnum):
    """Why a command did not count (module docstring, in the order the rules run)."""

    INVALID = "invalid"
    NOT_IN_CONTROL = "notInControl"
    WRONG_SENDER = "wrongSender"
    STALE = "stale"
    FROM_FUTURE = "fromFuture"
    OLD_SESSION = "oldSession"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "outOfOrder"
    RATE_LIMITED = "rateLimited"


class TeleopStatus(StrEnum):
    """What the published velocity is."""

    DRIVING = "driving"  # the latest command, within every cap
    CAPPED = "capped"  # the latest command, scaled down by a cap
    NO_COMMAND = "noCommand"  # nothing accepted since the mode began or since the dead man fired
    DEADMAN = "deadman"  # the dead man fired at this tick
    NOT_IN_CONTROL = "notInControl"  # AUTOMATIC: teleop publishes nothing


@dataclass(frozen=True, slots=True)
class Admission:
    """The gate's answer to a command: accepted, or dropped and why."""

    accepted: bool
    drop: Drop | None = None


@dataclass(frozen=True, slots=True)
class TeleopOutput:
    """The velocity to publish now; ``publish`` is False in AUTOMATIC (navigation drives).

    ``cap`` is the lowest cap applied (m/s); ``seq`` the command it comes from (None: zero).
    """

    vx: float
    omega: float
    publish: bool
    status: TeleopStatus
    cap: float
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class TeleopConfig:
    """Seconds, m/s, rad/s, commands per second (module docstring)."""

    deadman_timeout: float = 0.3
    max_age: float = 0.3
    clock_allowance: float = 0.1
    max_rate: float = 50.0
    burst: int = 10
    manual_max_speed: float = 1.0
    remote_max_speed: float = 1.2
    unknown_zone_cap: float = 0.5
    max_omega: float = 1.0
    retired_sessions: int = 16

    def __post_init__(self) -> None:
        for name in ("deadman_timeout", "max_age", "max_rate", "manual_max_speed", "remote_max_speed"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"TeleopConfig.{name} must be a finite number > 0, got {value!r}")
        for name in ("clock_allowance", "unknown_zone_cap", "max_omega"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"TeleopConfig.{name} must be a finite number >= 0, got {value!r}")
        for name in ("burst", "retired_sessions"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TeleopConfig.{name} must be an int >= 1, got {value!r}")


def clamp_velocity(
    vx: float, omega: float, speed_limit: float, max_omega: float | None = None
) -> tuple[float, float]:
    """``(vx, omega)`` scaled by one factor so ``|vx| <= speed_limit`` (and ``|omega| <= max_omega``).

    The direction (the ratio ``omega / vx``, i.e. the path's curvature) is kept. A limit of 0, or
    anything not finite, gives exactly ``(0.0, 0.0)``.
    """
    if not all(math.isfinite(v) for v in (vx, omega, speed_limit)) or speed_limit <= 0.0:
        return 0.0, 0.0
    scale = 1.0
    if abs(vx) > speed_limit:
        scale = speed_limit / abs(vx)
    if max_omega is not None and abs(omega) * scale > max_omega:
        scale = max_omega / abs(omega)
    out_vx, out_omega = vx * scale, omega * scale
    if abs(out_vx) > speed_limit:  # rounding of the division: never above the limit
        out_vx = math.copysign(speed_limit, out_vx)
    if max_omega is not None and abs(out_omega) > max_omega:
        out_omega = math.copysign(max_omega, out_omega)
    return out_vx + 0.0, out_omega + 0.0


class TeleopGate:
    """Admits teleop commands and gives the velocity to publish at each tick (module docstring)."""

    def __init__(
        self, control: ControlView, config: TeleopConfig | None = None, *, zone_cap: ZoneCap | None = None
    ) -> None:
        self.config = config or TeleopConfig()
        self._control = control
        self._zone_cap = zone_cap
        self._seen_control: tuple[Mode, Party | None] = (control.mode, control.controller)
        self._command: TeleopCommand | None = None
        self._accepted_at = -math.inf
        self._session: str | None = None
        self._last_seq: int | None = None
        self._retired: OrderedDict[str, None] = OrderedDict()
        self._tokens = float(self.config.burst)
        self._refilled_at: float | None = None
        self.drops: dict[Drop, int] = dict.fromkeys(Drop, 0)

    @property
    def requested(self) -> tuple[float, float]:
        """The velocity of the command in force, uncapped ((0, 0) when none): the supervisor's commanded."""
        command = self._command
        return (0.0, 0.0) if command is None else (command.vx, command.omega)

    def reset(self) -> None:
        """Forget the command in force (zero until the next one); sequence bookkeeping stays."""
        self._command = None
        self._accepted_at = -math.inf

    def offer(self, command: TeleopCommand, *, wall_now: float, mono_now: float) -> Admission:
        """Admit or drop ``command`` received now (module docstring: the rules, in order)."""
        self._follow_control()
        drop = self._check(command, wall_now)
        if drop is None:
            drop = self._sequence(command)
        if drop is None and not self._take_token(mono_now):
            drop = Drop.RATE_LIMITED
        if drop is not None:
            self.drops[drop] += 1
            return Admission(False, drop)
        self._command = command
        self._accepted_at = mono_now
        return Admission(True)

    def tick(
        self, mono_now: float, *, speed_limit: float, position: tuple[float, float] | None = None
    ) -> TeleopOutput:
        """The velocity to publish at ``mono_now`` under the supervisor's ``speed_limit`` (m/s)."""
        self._follow_control()
        mode = self._control.mode
        if mode is Mode.AUTOMATIC:
            return TeleopOutput(0.0, 0.0, False, TeleopStatus.NOT_IN_CONTROL, 0.0)
        command = self._command
        if command is None:
            return TeleopOutput(0.0, 0.0, True, TeleopStatus.NO_COMMAND, 0.0)
        if mono_now - self._accepted_at >= self.config.deadman_timeout:
            self.reset()
            return TeleopOutput(0.0, 0.0, True, TeleopStatus.DEADMAN, 0.0)
        cap = min(self._mode_cap(mode), self._zone(position), max(0.0, speed_limit))
        vx, omega = clamp_velocity(command.vx, command.omega, cap, self.config.max_omega)
        capped = (vx, omega) != (command.vx, command.omega)
        status = TeleopStatus.CAPPED if capped else TeleopStatus.DRIVING
        return TeleopOutput(vx, omega, True, status, cap, command.seq)

    # --- rules ------------------------------------------------------------------------------------------

    def _check(self, command: TeleopCommand, wall_now: float) -> Drop | None:
        """Rules 1-4: values, mode, sender, age."""
        cfg = self.config
        if not all(math.isfinite(v) for v in (command.vx, command.omega, command.sent_at, wall_now)):
            return Drop.INVALID
        mode, controller = self._control.mode, self._control.controller
        if mode is Mode.AUTOMATIC:
            return Drop.NOT_IN_CONTROL
        if mode is Mode.MANUAL and command.source is not PartyKind.ON_SITE:
            return Drop.WRONG_SENDER
        if mode is Mode.SEMIAUTOMATIC and (
            command.source is not PartyKind.CONTROL_CENTRE
            or controller is None
            or command.operator != controller.who
        ):
            return Drop.WRONG_SENDER
        age = wall_now - command.sent_at
        if age > cfg.max_age + cfg.clock_allowance:
            return Drop.STALE
        if -age > cfg.clock_allowance:
            return Drop.FROM_FUTURE
        return None

    def _sequence(self, command: TeleopCommand) -> Drop | None:
        """Rules 5-6: sessions and sequence numbers (a new session starts numbering over)."""
        if command.session != self._session:
            if command.session in self._retired:
                return Drop.OLD_SESSION
            if self._session is not None:
                self._retired[self._session] = None
                while len(self._retired) > self.config.retired_sessions:
                    self._retired.popitem(last=False)
            self._session, self._last_seq = command.session, None
        last = self._last_seq
        if last is not None and command.seq == last:
            return Drop.DUPLICATE
        if last is not None and command.seq < last:
            return Drop.OUT_OF_ORDER
        self._last_seq = command.seq
        return None

    def _take_token(self, mono_now: float) -> bool:
        """Rule 7: a token bucket of ``burst`` tokens refilled at ``max_rate`` per second."""
        cfg = self.config
        if self._refilled_at is not None:
            elapsed = max(0.0, mono_now - self._refilled_at)
            self._tokens = min(float(cfg.burst), self._tokens + elapsed * cfg.max_rate)
        self._refilled_at = mono_now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _follow_control(self) -> None:
        """Drop the command in force when the mode or the party in control changed."""
        now = (self._control.mode, self._control.controller)
        if now != self._seen_control:
            self._seen_control = now
            self.reset()

    def _mode_cap(self, mode: Mode) -> float:
        return self.config.manual_max_speed if mode is Mode.MANUAL else self.config.remote_max_speed

    def _zone(self, position: tuple[float, float] | None) -> float:
        if self._zone_cap is None:
            return math.inf
        if position is None:
            return self.config.unknown_zone_cap
        cap = self._zone_cap(*position)
        return math.inf if cap is None else max(0.0, cap)
