"""The store-side ports of the live operations runtime: history, codes and alarms (issue 10 groundwork).

``LiveOperations`` (``orchestrator.operations.live``) stores the core's parcel events and carries out
its ``ReleaseCodes`` and ``Alarm`` commands through ports (``orchestrator.operations.ports``); these
are the real adapters over the store and the delivery flows (``orchestrator.api.delivery``)::

    history = StoreHistory(sessions, clock, personal, delivery, windows_end)
    codes = DeliveryCodes(delivery, indoor={r.serial for r in fleet.robots if r.kind.value != "cart"})
    alarms = AlarmLog(clock, capacity=200)
    live = LiveOperations(ops, day, clock, Ports(legs, codes, alarms, history))

**How each core event is stored** (``StoreHistory.append``, in order; one transaction per event, a
run of ``arrive`` events one transaction per cart stop):

===============  ==========================================================================================
event kind       store call
===============  ==========================================================================================
``load``         ``Delivery.load(tn, cart, compartment, window_end=windows_end(parcel's window))``: the
                 window parcel's pickup code and its held SMS (an office parcel gets no code there). If
                 the window is already over no code could be valid: a plain ``transition`` (logged), and
                 the parcel goes back with the cart (``Delivery.arrive`` announces no parcel without a
                 live code).
``arrive``       ``Delivery.arrive(cart, stop, window)`` once per (cart, stop, window) of the stored
                 parcels of a run of consecutive ``arrive`` events: the parcels wait at the stop, their
                 SMS are released, reminders scheduled.
``return``       ``Delivery.return_to_station(tn, reason)``: the messages not yet sent are cancelled.
``load_robot``   ``Delivery.load_robot(tn, robot, compartment, wait_until=...)``: the robot's code and
                 the held office SMS and call. ``wait_until`` is the later of the end of the parcel's
                 window and ``robot_code_s`` (1 h) from now: an indoor robot often loads after the cart's
                 window ended, and a code in a robot opens only while the parcel is in that robot, so a
                 generous validity costs nothing (the code dies with the hand-over or the ``fail``).
``receive``      nothing to write: the core only receives a parcel the store does not hold yet, and a
                 parcel can only be created by intake (it brings the personal data). A stored parcel
                 makes it a repeat; an unknown one is an error.
others           ``ParcelRepository.transition(tn, kind, at=event.at, **event.data)`` (``sort``,
                 ``roll``, ``unload``, ``hand_off``, ``deliver``, ``fail``, ``pick_up``). ``pick_up``
                 and ``deliver`` are normally repeats: the code typed on the screen (``Delivery.verify``,
                 ``record_pickup``) stored them first. Stored here they neither use the code nor cancel
                 a reminder or the office call (there is no flow for that in ``Delivery`` yet).
===============  ==========================================================================================

**Repeats.** An event whose ``sequence`` the stored parcel has already reached (``version >=
sequence``) was stored before: by a previous try of this append (it is retried after a failure), or by
the world getting there first (staff scanned the load, the cart API recorded the arrival and pickup).
It is skipped if the stored event with that sequence has the same kind and ``to_state``; otherwise the
core and the store disagree about the parcel and ``HistoryMismatch`` says how. The data are not
compared: the staff's scan knows the compartment better than the core (``"?"`` when a robot did not
say). An event that skips a version (the store behind by more than one) is a ``HistoryMismatch`` too.

**Agreement.** After each event the stored parcel's ``version`` must equal the event's ``sequence``;
otherwise ``HistoryMismatch`` names the parcel, the expected and the stored version. The runtime then
holds the event's commands, raises ``history_failed`` and tries again (``LiveOperations``).

**Atomicity** is per event (per cart stop for ``arrive``), not per ``append``: the ``Delivery`` flows
each run their own transaction. The runtime retries the whole list after a failure, and the events
stored by the failed try are repeats then, so the result is the same as all-or-nothing.

Times: the ``Delivery`` flows stamp their events with the clock's now, not the core's ``at`` (they
take no time); in live mode the two differ by the time between the core's decision and the store
write. The plain transitions keep ``event.at``.

``DeliveryCodes`` carries out ``ReleaseCodes``; ``AlarmLog`` keeps the last alarms for the console.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy.orm import Session, sessionmaker

from interfaces.clock import Clock
from orchestrator.api.delivery import BlockingRunner, Delivery, NoCodeToResend
from orchestrator.domain import DomainEvent, ParcelEvent
from orchestrator.store.domain_records import ParcelRecord
from orchestrator.store.domain_repositories import ParcelRepository, PersonalData
from orchestrator.store.errors import ConflictError

log = logging.getLogger("robopost.live_ports")

ROBOT_CODE_S = 3600.0
"""Least validity (seconds from now) of an indoor robot's code (see the module docstring)."""


class HistoryMismatch(ConflictError):
    """The core's parcel history and the store's disagree (a version or an event kind)."""


# --- History ---------------------------------------------------------------------------------------


class StoreHistory:
    """``HistoryPort`` over the store and the delivery flows (the mapping is in the module docstring).

    ``windows_end(window)`` gives a window's end in epoch seconds (``KeyError`` for an unknown
    window). ``blocking`` runs the plain store work off the event loop (the app's ``ThreadWork``;
    ``asyncio.to_thread`` by default); the ``Delivery`` flows use their own runner. ``robot_code_s``:
    see ``load_robot`` in the module docstring.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        personal: PersonalData,
        delivery: Delivery,
        windows_end: Callable[[str], float],
        *,
        robot_code_s: float = ROBOT_CODE_S,
        blocking: BlockingRunner = asyncio.to_thread,
    ) -> None:
        if not robot_code_s > 0:
            raise ValueError(f"robot_code_s must be > 0, got {robot_code_s}")
        self._sessions = sessions
        self._clock = clock
        self._personal = personal
        self._delivery = delivery
        self._windows_end = windows_end
        self._robot_code_s = robot_code_s
        self._blocking = blocking

    async def append(self, events: Sequence[DomainEvent]) -> None:
        """Store ``events`` in order (see the module docstring); raise on the first that fails."""
        k = 0
        while k < len(events):
            event = events[k]
            if event.kind == ParcelEvent.ARRIVE:
                run = [event]
                while k + len(run) < len(events) and events[k + len(run)].kind == ParcelEvent.ARRIVE:
                    run.append(events[k + len(run)])
                await self._arrive(run)
                k += len(run)
                continue
            await self._one(event)
            k += 1

    # --- one event ---------------------------------------------------------------------------------

    async def _one(self, event: DomainEvent) -> None:
        tn = event.entity_id
        record = await self._blocking(partial(self._get, tn, event))
        if record is None:
            return  # a repeat
        match event.kind:
            case ParcelEvent.LOAD:
                await self._load(record, event)
            case ParcelEvent.RETURN:
                reason = event.data.get("reason")
                await self._delivery.return_to_station(tn, None if reason is None else str(reason))
            case ParcelEvent.LOAD_ROBOT:
                window = record.parcel.window
                floor = self._clock.now() + self._robot_code_s
                wait_until = max(self._window_end(tn, window), floor) if window is not None else floor
                await self._delivery.load_robot(
                    tn,
                    _text(event, "robot"),
                    _text(event, "compartment"),
                    wait_until=wait_until,
                )
            case _:
                await self._blocking(partial(self._transition, event))
        await self._blocking(partial(self._check_version, event))

    async def _load(self, record: ParcelRecord, event: DomainEvent) -> None:
        tn, parcel = event.entity_id, record.parcel
        cart, compartment = _text(event, "cart"), _text(event, "compartment")
        if parcel.window is None:
            raise HistoryMismatch(f"parcel {tn!r} is loaded but has no window in the store")
        end = self._window_end(tn, parcel.window)
        if end > self._clock.now():
            await self._delivery.load(tn, cart, compartment, window_end=end)
            return
        log.warning(
            "parcel %s loaded onto %s after its window %s ended: stored without a pickup code",
            tn,
            cart,
            parcel.window,
        )
        await self._blocking(partial(self._transition, event))

    async def _arrive(self, run: list[DomainEvent]) -> None:
        """A run of ``arrive`` events: one ``Delivery.arrive`` per (cart, stop, window) of the stored
        parcels that are not repeats, then each parcel's version is checked."""
        groups: dict[tuple[str, str, str], list[DomainEvent]] = {}
        for event in run:
            record = await self._blocking(partial(self._get, event.entity_id, event))
            if record is None:
                continue
            parcel = record.parcel
            if parcel.cart is None or parcel.stop is None or parcel.window is None:
                raise HistoryMismatch(
                    f"parcel {event.entity_id!r} arrives but is {parcel.state.value} in the store "
                    f"(cart {parcel.cart}, stop {parcel.stop}, window {parcel.window})"
                )
            groups.setdefault((parcel.cart, parcel.stop, parcel.window), []).append(event)
        for (cart, stop, window), events in groups.items():
            arrival = await self._delivery.arrive(cart, stop, window)
            wanted = {e.entity_id for e in events}
            extra = sorted(p.tracking_number for p in arrival.parcels if p.tracking_number not in wanted)
            if extra:
                log.error(
                    "%s at %s in %s: the store also moved %s to the stop, which the core does not have "
                    "aboard; their next core event will not match the store",
                    cart,
                    stop,
                    window,
                    ", ".join(extra),
                )
            for event in events:
                await self._blocking(partial(self._check_version, event))

    # --- store work (in a thread) ----------------------------------------------------------------------

    def _repo(self, session: Session) -> ParcelRepository:
        return ParcelRepository(session, self._clock, self._personal)

    def _get(self, tn: str, event: DomainEvent) -> ParcelRecord | None:
        """The stored parcel, or ``None`` if the store holds ``event`` already (a repeat)."""
        with self._sessions.begin() as session:
            repo = self._repo(session)
            if event.kind == ParcelEvent.RECEIVE and not repo.search(tracking_number=tn):
                raise HistoryMismatch(
                    f"parcel {tn!r} is not in the store: only intake can create a parcel "
                    "(the core received it without its stored record)"
                )
            record = repo.get(tn)
            if record.parcel.version < event.sequence:
                if record.parcel.version != event.sequence - 1:
                    raise HistoryMismatch(
                        f"parcel {tn!r}: the core's {event.kind} is event {event.sequence}, "
                        f"but the store is at version {record.parcel.version} (expected {event.sequence - 1})"
                    )
                return record
            stored = next((e for e in repo.events(tn) if e.sequence == event.sequence), None)
        if stored is None or stored.kind != event.kind or stored.to_state != event.to_state:
            what = "nothing" if stored is None else f"{stored.kind} → {stored.to_state}"
            raise HistoryMismatch(
                f"parcel {tn!r}: the core's event {event.sequence} is {event.kind} → {event.to_state}, "
                f"the store's is {what}"
            )
        log.info("parcel %s: %s (event %d) is stored already", tn, event.kind, event.sequence)
        return None

    def _transition(self, event: DomainEvent) -> None:
        with self._sessions.begin() as session:
            self._repo(session).transition(event.entity_id, event.kind, at=event.at, **event.data)

    def _check_version(self, event: DomainEvent) -> None:
        with self._sessions.begin() as session:
            record = self._repo(session).get(event.entity_id)
        if record.parcel.version != event.sequence:
            raise HistoryMismatch(
                f"parcel {event.entity_id!r} after {event.kind}: expected version {event.sequence}, "
                f"the store has {record.parcel.version} ({record.state.value})"
            )

    def _window_end(self, tn: str, window: str) -> float:
        try:
            return float(self._windows_end(window))
        except KeyError:
            raise HistoryMismatch(f"parcel {tn!r}: window {window!r} is not a window of the day") from None


def _text(event: DomainEvent, name: str) -> str:
    value = event.data.get(name)
    if not isinstance(value, str):
        raise HistoryMismatch(
            f"parcel {event.entity_id!r}: the core's {event.kind} carries no {name} (data {dict(event.data)})"
        )
    return value


# --- Codes -----------------------------------------------------------------------------------------


class DeliveryCodes:
    """``CodePort`` over the delivery flows; ``indoor`` are the ids of the indoor robots (fleet file).

    - **An indoor robot at an office door**: ``Delivery.robot_at_door`` per parcel, the SMS now and
      the call ``call_after_s`` later. The robot's code and its messages were stored with the
      history's ``load_robot``, before this command. Releasing again is harmless (the outbox releases a
      held message once). A parcel no longer in the robot (delivered or failed meanwhile) has nothing
      to release: ``NoCodeToResend`` is logged and the other parcels still go out.
    - **A cart at a stop**: ``Delivery.arrive(robot, place, window)``. The history's ``arrive`` events
      (stored before this command is carried out) already called it, so normally it finds nothing
      ``LOADED`` and releases nothing: an arrival again changes nothing. It is kept so that the command
      alone is enough (e.g. a stop the history did not move, a re-sent command).
    """

    def __init__(self, delivery: Delivery, indoor: Collection[str]) -> None:
        self._delivery = delivery
        self._indoor = frozenset(indoor)

    async def release(
        self, robot: str, place: str, parcels: tuple[str, ...], window: str | None, until_epoch: float
    ) -> None:
        """Release the codes of ``parcels`` on ``robot`` at ``place``. ``until_epoch`` is not used:
        a code's validity was set when it was issued (window end, or the robot's ``wait_until``)."""
        if robot in self._indoor:
            for tn in parcels:
                try:
                    await self._delivery.robot_at_door(tn)
                except NoCodeToResend as exc:
                    log.warning("%s at %s: %s; nothing released for it", robot, place, exc)
            return
        if window is None:
            raise ValueError(f"codes at {place} on cart {robot}: the delivery window is unknown")
        await self._delivery.arrive(robot, place, window)


# --- Alarms ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggedAlarm:
    """One operator alarm: when (epoch seconds, the clock's), its short code and its sentence."""

    at: float
    kind: str
    text: str


class AlarmLog:
    """``AlarmPort`` as a bounded in-memory list (the console shows ``recent()``); also logged.

    Keeps the last ``capacity`` alarms (older ones are dropped, oldest first). Use it from the event
    loop; a restart forgets it (the log keeps every alarm).
    """

    def __init__(self, clock: Clock, capacity: int = 200) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._clock = clock
        self._alarms: deque[LoggedAlarm] = deque(maxlen=capacity)
        self.total = 0  # alarms raised since the start, including those dropped

    async def raise_alarm(self, kind: str, text: str) -> None:
        """Keep the alarm ``kind`` with ``text`` at the clock's now."""
        self._alarms.append(LoggedAlarm(self._clock.now(), kind, text))
        self.total += 1
        log.warning("alarm %s: %s", kind, text)

    def recent(self, limit: int | None = None) -> list[LoggedAlarm]:
        """The kept alarms, newest first (at most ``limit``)."""
        newest = list(reversed(self._alarms))
        return newest if limit is None else newest[: max(limit, 0)]
