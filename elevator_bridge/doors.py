"""Doors and gates of one building: the bridge's pure logic for them (no I/O; time from a ``Clock``).

A door opens when a requester asks (``OPEN``) and stays open while it keeps asking — each request holds
it for ``hold_s`` more, up to ``hold_max_s`` in all per requester (then that requester's requests are
ignored until it sends ``CLOSED``) — and closes by itself ``auto_close_s`` after the last hold ended.
A ``CLOSED`` request ends the requester's hold. The equipment is a relay (an IoT switch) without
position sensors, so the reported mode follows the commands and the door's travel times: MOVING for
``open_s`` / ``close_s`` after a command, then OPEN / CLOSED.

A gate is a door that opens only for a requester showing a credential it knows (compared in constant
time; the configuration may hold ``sha256:<hex>`` digests instead of the secrets). Every decision is
kept for the gate's state so the requester learns whether, and why, it was refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from interfaces.clock import Clock
from interfaces.door import DoorMode, DoorRequest, DoorStateMsg
from interfaces.gate import GateDecision, GateRequest, GateStateMsg

SHA256_PREFIX = "sha256:"


@dataclass(frozen=True, slots=True)
class DoorSettings:
    """One door or gate (times in seconds); ``iot`` is the equipment's endpoint name."""

    name: str
    iot: str | None = None
    open_s: float = 3.0
    close_s: float = 3.0
    hold_s: float = 5.0
    hold_max_s: float = 60.0
    auto_close_s: float = 5.0
    credentials: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("open_s", "close_s", "hold_s", "hold_max_s", "auto_close_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"door {self.name}: {name} must be >= 0")
        if self.hold_s <= 0 or self.hold_max_s <= 0:
            raise ValueError(f"door {self.name}: hold_s and hold_max_s must be > 0")


@dataclass(frozen=True, slots=True)
class DoorCommand:
    """Open or close one door's relay."""

    door: str
    iot: str | None
    open: bool


@dataclass(slots=True)
class _Hold:
    since: float
    last: float


class Door:
    """A door: holds, auto-close, and the commanded/travel-time state."""

    def __init__(self, building: str, settings: DoorSettings, clock: Clock) -> None:
        self.building = building
        self.settings = settings
        self._clock = clock
        self._holds: dict[str, _Hold] = {}
        self._spent: set[str] = set()  # requesters that used up hold_max_s
        self._open = False
        self._moved_at = -float("inf")
        self._released_at: float | None = None
        self._commands: list[DoorCommand] = []

    @property
    def name(self) -> str:
        return self.settings.name

    def request(self, requester: str, mode: DoorMode) -> None:
        """``OPEN`` (start or renew a hold) or ``CLOSED`` (end it); other modes are ignored."""
        now = self._clock.now()
        if mode is DoorMode.OPEN and requester not in self._spent:
            hold = self._holds.get(requester)
            if hold is None:
                self._holds[requester] = _Hold(now, now)
            else:
                hold.last = now
        elif mode is DoorMode.CLOSED:
            self._spent.discard(requester)
            if self._holds.pop(requester, None) is not None:
                self._released_at = now
        self.tick()

    def tick(self) -> None:
        """Let time pass: expire holds, close after the auto-close time, move."""
        now = self._clock.now()
        for requester, hold in list(self._holds.items()):
            if now - hold.since > self.settings.hold_max_s:
                self._spent.add(requester)
            if now - hold.last > self.settings.hold_s or requester in self._spent:
                del self._holds[requester]
                self._released_at = now
        want = bool(self._holds) or (
            self._released_at is not None and now - self._released_at < self.settings.auto_close_s
        )
        if want != self._open:
            self._open, self._moved_at = want, now
            self._commands.append(DoorCommand(self.name, self.settings.iot, want))

    def take_commands(self) -> list[DoorCommand]:
        """The relay commands decided since the last call."""
        commands, self._commands = self._commands, []
        return commands

    @property
    def mode(self) -> DoorMode:
        """OPEN / CLOSED once the door had time to get there, MOVING before."""
        travel = self.settings.open_s if self._open else self.settings.close_s
        if self._clock.now() - self._moved_at < travel:
            return DoorMode.MOVING
        return DoorMode.OPEN if self._open else DoorMode.CLOSED

    @property
    def holders(self) -> list[str]:
        return sorted(self._holds)

    def state(self) -> DoorStateMsg:
        """The state to publish now."""
        return DoorStateMsg(
            door_time=self._clock.now(),
            building=self.building,
            door_name=self.name,
            current_mode=self.mode,
            holders=self.holders,
        )

    def handle(self, req: DoorRequest) -> None:
        """Take a door request message."""
        self.request(req.requester_id, req.requested_mode)


class Gate:
    """A door that opens only for known credentials; it remembers its recent decisions."""

    def __init__(self, building: str, settings: DoorSettings, clock: Clock, remembered: int = 16) -> None:
        self.door = Door(building, settings, clock)
        self._clock = clock
        self._remembered = remembered
        self._decisions: list[GateDecision] = []

    @property
    def name(self) -> str:
        return self.door.name

    @property
    def settings(self) -> DoorSettings:
        return self.door.settings

    def tick(self) -> None:
        """Let time pass (see ``Door.tick``)."""
        self.door.tick()

    def take_commands(self) -> list[DoorCommand]:
        """The relay commands decided since the last call."""
        return self.door.take_commands()

    def handle(self, req: GateRequest) -> GateDecision:
        """Check the credential; open (hold) for a known one, release on CLOSED; record the decision."""
        if req.requested_mode is DoorMode.CLOSED:
            decision = self._decide(req, True)
            self.door.request(req.requester_id, DoorMode.CLOSED)
        elif req.requested_mode is not DoorMode.OPEN:
            decision = self._decide(req, False, f"{req.requested_mode} cannot be requested")
        elif not self.knows(req.requester_id, req.credential):
            decision = self._decide(req, False, "credential refused")
        else:
            decision = self._decide(req, True)
            self.door.request(req.requester_id, DoorMode.OPEN)
        return decision

    def knows(self, requester: str, credential: str) -> bool:
        """Whether ``credential`` is the one configured for ``requester`` (constant-time compare)."""
        expected = self.settings.credentials.get(requester)
        if expected is None or not credential:
            return False
        if expected.startswith(SHA256_PREFIX):
            digest = hashlib.sha256(credential.encode()).hexdigest()
            return hmac.compare_digest(digest, expected[len(SHA256_PREFIX) :].lower())
        return hmac.compare_digest(credential.encode(), expected.encode())

    def state(self) -> GateStateMsg:
        """The state to publish now, with the recent decisions (newest first)."""
        return GateStateMsg(
            gate_time=self._clock.now(),
            building=self.door.building,
            gate_name=self.name,
            current_mode=self.door.mode,
            holders=self.door.holders,
            decisions=list(self._decisions),
        )

    def _decide(self, req: GateRequest, accepted: bool, reason: str = "") -> GateDecision:
        """Record a decision, one per request id (a repeated request replaces it), newest first."""
        decision = GateDecision(
            request_id=req.request_id,
            requester_id=req.requester_id,
            accepted=accepted,
            reason=reason,
            time=self._clock.now(),
        )
        kept = [d for d in self._decisions if d.request_id != req.request_id]
        self._decisions = [decision, *kept][: self._remembered]
        return decision


def credential_digest(secret: str) -> str:
    """``sha256:<hex>`` of a credential, to put in a configuration file instead of the secret."""
    return SHA256_PREFIX + hashlib.sha256(secret.encode()).hexdigest()
