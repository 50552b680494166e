"""What the locker board reports and answers: shared by the driver, the cart service and the simulator.

Compartments are numbered from 1 (the label on the door); the orchestrator names them by the same
number as text (``"7"``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class BoardHealth(StrEnum):
    """How the link to the board is."""

    STARTING = "starting"
    """No reply yet since the driver started."""
    OK = "ok"
    """The board answers."""
    NO_REPLY = "no_reply"
    """The port is open but the board has not answered (or only with garbage) for ``offline_after_s``."""
    LINK_DOWN = "link_down"
    """The serial port is gone (adapter unplugged, cable pulled): reopened every ``reconnect_s``."""


class OpenResult(StrEnum):
    """The answer to "open compartment N"."""

    SENT = "sent"
    """The board confirmed the lock pulse (the door should now spring open)."""
    UNKNOWN_COMPARTMENT = "unknown_compartment"
    """No such compartment on this board."""
    BOARD_DOWN = "board_down"
    """The port is gone or the board did not answer: try again when it is back."""
    REFUSED = "refused"
    """The board answered with a Modbus exception."""


@dataclass(frozen=True, slots=True)
class CompartmentInputs:
    """One compartment's sensors: the door-closed switch and the occupancy sensor."""

    door_closed: bool
    occupied: bool


@dataclass(frozen=True, slots=True)
class BoardSnapshot:
    """The board as last read. ``compartments`` is empty until the first good read."""

    time: float
    health: BoardHealth
    compartments: Mapping[int, CompartmentInputs] = field(default_factory=dict)
    detail: str = ""
    """One sentence on the link's trouble (empty when ``OK``)."""
    boots: int | None = None
    """The board's boot counter (changes when the board resets)."""
    resets_seen: int = 0
    """Board resets the driver noticed since it started."""


class LockerPort(Protocol):
    """The locker board as the cart service sees it (``robots.cart.locker.LockerDriver``)."""

    async def start(self) -> None:
        """Open the port and start polling (returns at once; a missing port is retried)."""

    async def stop(self) -> None:
        """Stop polling and close the port."""

    async def open(self, compartment: int) -> OpenResult:
        """Pulse compartment ``compartment``'s lock."""

    def snapshot(self) -> BoardSnapshot:
        """The latest snapshot."""

    def snapshots(self) -> AsyncIterator[BoardSnapshot]:
        """Every new snapshot from now on (on every change, and at least every ``report_s``)."""
