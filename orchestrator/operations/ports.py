"""The outside world as the live operations runtime sees it: four ports (``typing.Protocol`` s).

``LiveOperations`` (``orchestrator.operations.live``) carries the core's commands out through these,
so it runs without MQTT, a database or an SMS gateway in tests (fake ports that record calls) and the
app plugs in the real adapters:

==============  ==================================================================================
port            real adapter (app wiring)
==============  ==================================================================================
``legs``        the leg executor: a dispatch ``Leg`` → ``fleet.legs.LegPlanner`` stages → VDA 5050
                orders over ``FleetMaster`` and lift sessions; it reports back by
                ``LiveOperations.submit(LegArrived | LegFinished | LegFailed | RobotFailed ...)``
``codes``       the pickup-code service: issue/sync the codes of ``parcels`` on the cart and queue
                the SMS (notify outbox) valid until ``until_epoch``
``alarms``      the console's alarm stream (and the log)
``history``     the store's append-only parcel history (``DomainEvent`` s, ``at`` in epoch seconds)
==============  ==================================================================================

Rules for adapters: every method is a coroutine that returns promptly. The runtime awaits each call
before the next command, in the core's order, so a port must not wait for a robot to drive or a
student to come: it hands the work to its own task and reports back with ``submit``. A port that
raises is logged and turned into an ``Alarm`` (kind ``port_failed``); the runtime goes on.
``history.append`` raising is different: the commands of that event are held back until the
history is stored (DESIGN.md §5), see ``LiveOperations``.

Times: ``until_epoch`` and ``DomainEvent.at`` are epoch seconds (the runtime converts from the core's
service-day seconds); a ``Leg``'s own times stay in the core's seconds (``ServiceDay.epoch`` converts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from orchestrator.dispatch.campus import Leg
from orchestrator.domain.events import DomainEvent


class LegPort(Protocol):
    """Executes legs on robots (live: the VDA 5050 leg executor)."""

    async def start(self, token: int, leg: Leg) -> None:
        """Start ``leg`` on ``leg.robot`` under ``token``; report ``LegArrived``/``LegFinished``/
        ``LegFailed`` with that token later. A resend of the same token must be harmless."""
        ...

    async def cancel(self, robot: str, token: int) -> None:
        """Stop leg ``token`` of ``robot``; the robot then reports ``LegFailed`` (nothing moved)."""
        ...


class CodePort(Protocol):
    """Releases pickup codes to recipients (live: code sync to the cart + SMS through the outbox)."""

    async def release(
        self, robot: str, place: str, parcels: tuple[str, ...], window: str | None, until_epoch: float
    ) -> None:
        """The recipients of ``parcels`` (tracking numbers, on ``robot`` at ``place``) get their codes,
        valid until ``until_epoch``; ``window`` is the delivery window of the leg (None if unknown)."""
        ...


class AlarmPort(Protocol):
    """Operator alarms (live: the console's alarm stream)."""

    async def raise_alarm(self, kind: str, text: str) -> None:
        """Show ``text`` (one sentence) under the short code ``kind``."""
        ...


class HistoryPort(Protocol):
    """The append-only history of parcel state changes (live: the store)."""

    async def append(self, events: Sequence[DomainEvent]) -> None:
        """Store ``events`` (in order, ``at`` in epoch seconds) durably, each atomically; raise if not (a
        retry of the same list must be harmless: events already stored are repeats).

        Give the core the stored records (``ParcelsArrived.stored``) and its events continue each
        parcel's stored sequence; an event the store already holds (same entity, sequence and kind:
        a resend after a failed append) is a repeat, not a conflict.
        """
        ...


@dataclass(frozen=True)
class Ports:
    """The four ports of ``LiveOperations``."""

    legs: LegPort
    codes: CodePort
    alarms: AlarmPort
    history: HistoryPort
