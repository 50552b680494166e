"""Delivery application services: parcel transitions tied to pickup codes and notifications.

``Delivery`` (build one per request with ``Delivery.from_services(services)``) runs each flow in one
store transaction — the parcel's event, its pickup code and its messages are stored together or not
at all — and wakes the outbox worker once it has committed. Its methods are coroutines: the database
work runs in a thread (``blocking``), the cart screen's brute-force guard stays on the event loop.

Window delivery (a cart serves a stop in a delivery window)::

    load(parcel, cart, compartment, window_end)   sorted → loaded; a new 6-digit code, unique on the
                                                  cart in the window, stored only as keyed hashes; the
                                                  SMS with the code enqueued *held* (the code exists in
                                                  clear only now)
    arrive(cart, stop, window)                    loaded → at_stop for the cart's parcels of that stop
                                                  and window; their SMS released, a reminder
                                                  ``reminder_before_end_s`` before the window ends
    verify(screen, code, phone_tail)              the cart screen's online check (CodeGuard): the right
                                                  code opens the compartment once (at_stop → picked_up)
                                                  and cancels the reminder
    record_pickup(cart, event, ...)               a pickup the cart checked offline; idempotent on the
                                                  cart's event id
    resend_code(parcel) / resend_to_phone(...)    "resend my code": the old code is revoked, a new one
                                                  issued and sent (held again if the cart is not there)
    return_to_station(parcel, reason)             unclaimed: returned; messages not yet sent cancelled

Office delivery (the indoor robot's screen is checked the same way; its id is the "screen")::

    load_robot(parcel, robot, compartment, wait_until)   handed_off → in_robot; a code for the robot,
                                                         SMS and phone call enqueued held
    robot_at_door(parcel)                                the SMS now, the call ``call_after_s`` later
                                                         as the fallback; the right code → delivered
                                                         and the call is cancelled

Codes expire with the window (``expires_at`` = window end, or the robot's ``wait_until``) and open
once. Message references are ``p{parcel row id}/c{code id}``: a new code gets new messages, and the
old ones can be found again to cancel them.

Also here: ``CartBoard`` (what carts last reported: heartbeat, compartments; in memory), the daily
``RetentionJob`` (personal data purged ``retention_days`` after delivery; ``run_retention`` for an
admin's "purge now"), ``ThreadWork`` (the store work's threads, drained before the engine closes) and
``start_background`` (the outbox worker and the retention job as tasks of the app's lifespan).

Errors: the store's, the domain's and the security module's pass through (the HTTP layer maps them);
``NoCodeToResend`` (a ``ConflictError``) when a parcel waits for no pickup.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import contextvars
import hmac
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from interfaces.clock import Clock
from maps.model import Site
from orchestrator.domain import ParcelEvent, ParcelState
from orchestrator.notify.messages import (
    Notice,
    cart_at_stop,
    dedupe_key,
    office_delivery_call,
    pickup_cancels,
    pickup_code_resend,
    reminder_notice,
    robot_at_door,
    withdrawal_cancels,
)
from orchestrator.notify.outbox import Cipher, Outbox, OutboxStatus
from orchestrator.security.codes import (
    DAY_S,
    Challenge,
    CodeBook,
    CodeGuard,
    parse_code,
    parse_tail,
    phone_tail,
)
from orchestrator.security.errors import CodeSpaceExhausted
from orchestrator.store.domain_records import ParcelRecord, PickupCodeRecord
from orchestrator.store.domain_repositories import (
    MAX_LIMIT,
    AuditRepository,
    CodeAlreadyUsed,
    CodeExpired,
    CodeTaken,
    IdempotencyRepository,
    ParcelRepository,
    PersonalData,
    PickupCodeRepository,
    purge_personal_data,
)
from orchestrator.store.domain_tables import PickupCodeRow
from orchestrator.store.errors import ConflictError, NotFoundError, StoreError

if TYPE_CHECKING:
    from orchestrator.api.services import Services

T = TypeVar("T")
log = logging.getLogger("robopost.delivery")

CALL_AFTER_S = 300.0
"""Default wait between the office SMS and the fallback phone call."""

MAX_CODE_DRAWS = 32
"""Codes drawn for one parcel before giving up (each clash with a code on the cart is redrawn)."""

CLOCK_SKEW_S = 300.0
"""How far in the future a cart's event time may be (its clock may run ahead of ours)."""

RESEND_INTERVAL_S = 60.0
"""Shortest time between two "resend my code" for one parcel."""

MAX_RESENDS = 3
"""Most "resend my code" per parcel in a day (each sends an SMS to the recipient)."""

WRONG_CODE = "取件码不正确，请核对后重试。The pickup code is not right; please check it and try again."
"""The one answer to every wrong entry: it never says whether a code exists, is used or expired."""


class BlockingRunner(Protocol):
    """Runs a blocking function off the event loop (``asyncio.to_thread``)."""

    def __call__(self, func: Callable[[], T], /) -> Awaitable[T]: ...


class NoCodeToResend(ConflictError):
    """The parcel is not waiting for a pickup with a live code, so there is no code to resend."""


class ThreadWork:
    """``asyncio.to_thread`` that remembers the work in flight, so the app can wait for it on stopping.

    Cancelling a task that awaits ``asyncio.to_thread`` does not stop the thread: without ``drain`` the
    store's engine could be closed under a transaction still running. Here a cancelled caller stops
    waiting, but the work (once submitted) runs to its end and ``drain`` waits for it.

    ``threads`` gives the work its own pool of that many threads (``close`` shuts it down); ``None``
    uses the loop's default executor. One thread suits SQLite: its writers take turns anyway, and
    taking them here avoids SQLite's busy-wait, which sleeps up to 100 ms at a time.
    """

    def __init__(self, threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self._running: set[asyncio.Future[Any]] = set()
        self._pool = (
            concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="robopost-store")
            if threads is not None
            else None
        )

    async def __call__(self, func: Callable[[], T], /) -> T:
        """Run ``func`` in a thread (with the caller's context) and return its result."""
        loop = asyncio.get_running_loop()
        work: asyncio.Future[T] = loop.run_in_executor(
            self._pool, partial(contextvars.copy_context().run, func)
        )
        self._running.add(work)
        work.add_done_callback(_forget(self._running))
        return await asyncio.shield(work)

    @property
    def running(self) -> int:
        """How many calls are in a thread (or queued for one) now."""
        return len(self._running)

    async def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait (real time, at most ``timeout_s``) until no call is in a thread; whether that happened."""
        if not self._running:
            return True
        _done, pending = await asyncio.wait(set(self._running), timeout=timeout_s)
        return not pending

    def close(self) -> None:
        """Shut the own pool down (after ``drain``); later calls fail."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _forget(running: set[asyncio.Future[Any]]) -> Callable[[asyncio.Future[Any]], None]:
    def done(work: asyncio.Future[Any]) -> None:
        running.discard(work)
        if not work.cancelled():
            work.exception()  # retrieved: a caller that stopped waiting must not leave it unreported

    return done


# --- Results ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A pickup code just issued: ``code`` in clear exists only here (it is stored as hashes)."""

    tracking_number: str
    holder: str
    window: str
    compartment: str
    expires_at: datetime
    ref: str
    code: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Loaded:
    """A parcel loaded onto a cart; ``code`` is ``None`` for an office parcel (its code comes with the
    indoor robot)."""

    record: ParcelRecord
    code: IssuedCode | None


@dataclass(frozen=True, slots=True)
class ArrivedParcel:
    """A parcel now waiting at the stop, in ``compartment``."""

    tracking_number: str
    compartment: str


@dataclass(frozen=True, slots=True)
class Arrival:
    """What a cart's arrival did: parcels now at the stop, SMS released, reminders scheduled."""

    cart: str
    stop: str
    window: str
    parcels: tuple[ArrivedParcel, ...]
    released: int
    reminders: int


@dataclass(frozen=True, slots=True)
class Opened:
    """The right code: open ``compartment``; the parcel is now ``state`` (picked_up or delivered)."""

    tracking_number: str
    compartment: str
    window: str
    state: ParcelState


@dataclass(frozen=True, slots=True)
class Verification:
    """The answer to a code typed on a screen: ``opened``, or refused (``None``); ``challenge`` is what
    the screen must ask for next."""

    opened: Opened | None
    challenge: Challenge


@dataclass(frozen=True, slots=True)
class PickupOutcome:
    """A pickup event's result; ``replayed`` when the same event id was answered before."""

    event_id: str
    tracking_number: str
    state: ParcelState
    picked_up_at: datetime
    replayed: bool = False

    def to_json(self) -> str:
        """The stored answer (``replayed`` is not stored: it describes the request, not the pickup)."""
        return json.dumps(
            {
                "event_id": self.event_id,
                "parcel": self.tracking_number,
                "state": self.state.value,
                "picked_up_at": self.picked_up_at.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, body: str, *, replayed: bool) -> PickupOutcome:
        """The outcome stored by ``to_json``."""
        data = json.loads(body)
        return cls(
            event_id=data["event_id"],
            tracking_number=data["parcel"],
            state=ParcelState(data["state"]),
            picked_up_at=datetime.fromisoformat(data["picked_up_at"]),
            replayed=replayed,
        )


@dataclass(frozen=True, slots=True)
class CodeEntry:
    """One live code of a cart for offline checking: hashes only (see ``orchestrator.security.codes``)."""

    tracking_number: str
    compartment: str | None
    window: str
    stop: str | None
    state: ParcelState
    code_hash: str
    tail_hash: str | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CodeSync:
    """What a cart needs to check codes offline: its own key and the hashes of its live codes."""

    cart: str
    cart_key: bytes = field(repr=False)
    generated_at: datetime
    codes: tuple[CodeEntry, ...]

    @property
    def cart_key_b64(self) -> str:
        """The cart key as url-safe base64 without padding."""
        return base64.urlsafe_b64encode(self.cart_key).rstrip(b"=").decode("ascii")


# --- What carts report (in memory) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A cart's last heartbeat: battery (percent), state, position (site metres), when."""

    battery_percent: float
    state: str
    x: float | None
    y: float | None
    stop: str | None
    reported_at: datetime
    received_at: datetime


@dataclass(frozen=True, slots=True)
class CompartmentStatus:
    """One compartment's door and occupancy, as the cart last reported it."""

    id: str
    door_open: bool
    occupied: bool
    updated_at: datetime


@dataclass
class _Resends:
    times: list[float] = field(default_factory=list)


class CartBoard:
    """What each cart last reported (heartbeat, compartments), one lock per code screen, and the
    "resend my code" throttle. In memory: a restart forgets it and the carts report again.

    Bounded by the carts that can authenticate (``security.carts``) and their parcels. Use it from the
    event loop.
    """

    def __init__(self) -> None:
        self._heartbeats: dict[str, Heartbeat] = {}
        self._compartments: dict[str, dict[str, CompartmentStatus]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._resends: dict[str, _Resends] = {}

    def record_heartbeat(self, cart: str, heartbeat: Heartbeat) -> None:
        """Keep ``heartbeat`` as the cart's last."""
        self._heartbeats[cart] = heartbeat

    def heartbeat(self, cart: str) -> Heartbeat | None:
        """The cart's last heartbeat, if any."""
        return self._heartbeats.get(cart)

    def update_compartments(
        self, cart: str, statuses: Iterable[CompartmentStatus]
    ) -> list[CompartmentStatus]:
        """Merge the reported compartments into the cart's (later entries win); all of the cart's, by id."""
        known = self._compartments.setdefault(cart, {})
        for status in statuses:
            known[status.id] = status
        return [known[key] for key in sorted(known)]

    def compartments(self, cart: str) -> list[CompartmentStatus]:
        """The cart's compartments as last reported, by id."""
        known = self._compartments.get(cart, {})
        return [known[key] for key in sorted(known)]

    def snapshot(self) -> dict[str, tuple[Heartbeat | None, list[CompartmentStatus]]]:
        """Every cart that reported something: its last heartbeat and compartments (for the console)."""
        carts = sorted(set(self._heartbeats) | set(self._compartments))
        return {cart: (self._heartbeats.get(cart), self.compartments(cart)) for cart in carts}

    def screen_lock(self, screen: str) -> asyncio.Lock:
        """The lock serialising code checks on one screen (the guard counts each attempt in order)."""
        lock = self._locks.get(screen)
        if lock is None:
            lock = self._locks[screen] = asyncio.Lock()
        return lock

    def allow_resend(self, tracking_number: str, now: float) -> bool:
        """Whether a parcel may get another "resend my code" now; counts it when allowed."""
        entry = self._resends.setdefault(tracking_number, _Resends())
        entry.times = [t for t in entry.times if now - t < DAY_S]
        if len(entry.times) >= MAX_RESENDS or (entry.times and now - entry.times[-1] < RESEND_INTERVAL_S):
            return False
        entry.times.append(now)
        if len(self._resends) > 10_000:  # forget parcels idle for a day
            for key in [k for k, v in self._resends.items() if not v.times or now - v.times[-1] >= DAY_S]:
                del self._resends[key]
        return True


# --- The delivery flows --------------------------------------------------------------------------------


class Delivery:
    """Window and office delivery flows (module docstring); one transaction per call."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        personal: PersonalData,
        cipher: Cipher,
        codes: CodeBook,
        guard: CodeGuard,
        board: CartBoard,
        *,
        site: Site | None = None,
        rng: random.Random | None = None,
        reminder_before_end_s: float = 900.0,
        call_after_s: float = CALL_AFTER_S,
        wake: Callable[[], None] = lambda: None,
        blocking: BlockingRunner = asyncio.to_thread,
    ) -> None:
        if reminder_before_end_s < 0 or call_after_s < 0:
            raise ValueError("reminder_before_end_s and call_after_s must be >= 0")
        self._sessions = sessions
        self._clock = clock
        self._personal = personal
        self._cipher = cipher
        self._codes = codes
        self._guard = guard
        self._board = board
        self._site = site
        self._rng = rng or random.SystemRandom()
        self._reminder_before_end_s = reminder_before_end_s
        self._call_after_s = call_after_s
        self._wake = wake
        self._blocking = blocking

    @classmethod
    def from_services(cls, services: Services, **overrides: Any) -> Delivery:
        """The flows over the app's services (keyword ``overrides`` for tests: ``blocking``, ...)."""
        options: dict[str, Any] = {
            "site": services.site,
            "rng": services.rng,
            "reminder_before_end_s": services.settings.notify.reminder_before_end_s,
            "wake": services.outbox_worker.wake,
            "blocking": services.threads,
        }
        options.update(overrides)
        return cls(
            services.sessions,
            services.clock,
            services.personal,
            services.cipher,
            services.codes,
            services.guard,
            services.carts,
            **options,
        )

    # --- window delivery ---------------------------------------------------------------------------

    async def load(self, tracking_number: str, cart: str, compartment: str, *, window_end: float) -> Loaded:
        """Load a sorted parcel into ``cart``'s ``compartment``; a window parcel gets its code and its
        held SMS. ``window_end`` (epoch seconds) is when the parcel's window ends: the code expires
        then. ``ValueError`` if it is not in the future."""
        return await self._run(partial(self._load, tracking_number, cart, compartment, window_end))

    async def arrive(self, cart: str, stop: str, window: str) -> Arrival:
        """The cart reached ``stop`` in ``window``: its loaded parcels for that stop wait there now,
        their SMS go out, reminders are scheduled. Arriving again changes nothing."""
        return await self._run(partial(self._arrive, cart, stop, window))

    async def verify(self, screen: str, code: str, phone_tail: str | None = None) -> Verification:
        """Check a code typed on ``screen`` (a cart, or an indoor robot) against the brute-force guard.

        Raises ``Locked`` while entry is locked and ``InvalidCode`` (a ``ValueError``) for text that
        is not 6 digits (or a tail that is not 4): neither counts as a guess. When the screen asks for
        the phone tail and none is given, the answer is refused without counting a guess.
        """
        code = parse_code(code)
        tail = _tail(phone_tail)
        async with self._board.screen_lock(screen):
            challenge = self._guard.check(screen)
            if challenge is Challenge.CODE_AND_PHONE_TAIL and tail is None:
                return Verification(None, challenge)
            opened = await self._blocking(partial(self._open, screen, code, tail))
            if opened is None:
                self._guard.record_failure(screen)
            else:
                self._guard.record_success(screen)
        if opened is not None:
            self._wake()
        return Verification(opened, self._guard.status(screen).challenge)

    async def record_pickup(
        self,
        cart: str,
        event_id: str,
        fingerprint: str,
        tracking_number: str,
        compartment: str,
        code_hash: str,
        at: float | None = None,
    ) -> PickupOutcome:
        """A pickup the cart checked offline (the code's hash it matched, when): the code is used, the
        parcel picked up, its pending messages cancelled.

        Idempotent on ``(cart, event_id)``: the same event again gets the first answer
        (``replayed``); the same id with another request (``fingerprint``) is an
        ``IdempotencyConflict``. ``NotFoundError`` if the parcel is not on this cart, ``ConflictError``
        if the hash is not its code or the compartment is not its compartment, ``CodeExpired`` if it was
        picked up after its window, ``ValueError`` if ``at`` is more than ``CLOCK_SKEW_S`` ahead.
        """
        now = self._clock.now()
        when = now if at is None else at
        if when > now + CLOCK_SKEW_S:
            raise ValueError(f"pickup time {_utc(when).isoformat()} is in the future")
        work = partial(
            self._pickup, cart, event_id, fingerprint, tracking_number, compartment, code_hash, when
        )
        return await self._run(work)

    async def codes_for(self, cart: str, window: str | None = None) -> CodeSync:
        """The cart's live codes (of one ``window`` if given) as hashes, and the cart's key."""
        return await self._blocking(partial(self._sync, cart, window))

    async def resend_code(self, tracking_number: str) -> IssuedCode:
        """ "Resend my code": revoke the parcel's code, issue a new one and send it (or hold it until the
        cart or robot arrives). ``NoCodeToResend`` if the parcel waits for no pickup; ``CodeExpired``
        after its window."""
        return await self._run(partial(self._resend, tracking_number))

    async def resend_to_phone(self, cart: str, phone: str) -> int:
        """ "Resend my code" typed on a cart's screen: new codes for the parcels waiting at this cart for
        ``phone`` (throttled per parcel); how many were sent. The screen must not show the count."""
        now = self._clock.now()
        waiting = await self._blocking(partial(self._waiting_for_phone, cart, phone))
        sent = 0
        for tracking_number in waiting:
            if not self._board.allow_resend(tracking_number, now):
                continue
            with contextlib.suppress(NoCodeToResend, CodeExpired):
                await self.resend_code(tracking_number)
                sent += 1
        return sent

    async def return_to_station(self, tracking_number: str, reason: str | None = None) -> ParcelRecord:
        """An unclaimed or undeliverable parcel is back at the station: returned, and its messages not
        yet sent are cancelled (its code expires with the window)."""
        return await self._run(partial(self._return, tracking_number, reason))

    # --- office delivery ---------------------------------------------------------------------------

    async def load_robot(
        self, tracking_number: str, robot: str, compartment: str, *, wait_until: float
    ) -> IssuedCode:
        """An office parcel goes into an indoor robot's compartment: its code (for the robot's screen,
        valid until ``wait_until``), the SMS and the fallback call enqueued held."""
        return await self._run(partial(self._load_robot, tracking_number, robot, compartment, wait_until))

    async def robot_at_door(self, tracking_number: str) -> int:
        """The indoor robot is at the office: the SMS goes now, the call ``call_after_s`` later (unless
        the parcel is delivered first, or the call would come after the code expires). How many
        messages were released."""
        return await self._run(partial(self._at_door, tracking_number))

    # --- the transactions (run in a thread) ----------------------------------------------------------

    def _load(self, tracking_number: str, cart: str, compartment: str, window_end: float) -> Loaded:
        expires = _utc(window_end)
        if window_end <= self._clock.now():
            raise ValueError(f"window end {expires.isoformat()} is not in the future")
        with self._sessions.begin() as session:
            parcels = self._parcels(session)
            record, _ = parcels.transition(
                tracking_number, ParcelEvent.LOAD, cart=cart, compartment=compartment
            )
            parcel = record.parcel
            if parcel.office or parcel.window is None:
                return Loaded(record, None)
            phone = parcels.contact(tracking_number).phone
            issued = self._issue(session, record, cart, parcel.window, compartment, phone, expires)
            message = cart_at_stop(phone, issued.code, self._label(parcel.stop), expires, ref=issued.ref)
            self._outbox(session).enqueue(message, hold=True)
        return Loaded(record, issued)

    def _arrive(self, cart: str, stop: str, window: str) -> Arrival:
        now = self._clock.now()
        arrived: list[ArrivedParcel] = []
        released = reminders = 0
        with self._sessions.begin() as session:
            parcels, codes = self._parcels(session), PickupCodeRepository(session, self._clock)
            outbox = self._outbox(session)
            waiting = parcels.search(
                state=ParcelState.LOADED, cart=cart, stop=stop, window=window, limit=MAX_LIMIT
            )
            for record in waiting:
                if record.parcel.office:
                    continue
                tn = record.tracking_number
                parcels.transition(tn, ParcelEvent.ARRIVE)
                arrived.append(ArrivedParcel(tn, record.parcel.compartment or ""))
                code = codes.live_for_parcel(tn)
                if code is None or code.expires_at.timestamp() <= now:
                    continue  # no valid code: nothing to announce; it goes back with the cart
                ref = _ref(code)
                released += outbox.release([dedupe_key(Notice.CART_AT_STOP, ref)])
                reminder = reminder_notice(
                    parcels.contact(tn).phone, self._label(stop), code.expires_at, ref=ref,
                    now=_utc(now), reminder_before_end_s=self._reminder_before_end_s,
                )  # fmt: skip
                if reminder is not None:
                    outbox.enqueue(reminder.message, reminder.not_before)
                    reminders += 1
        return Arrival(cart, stop, window, tuple(arrived), released, reminders)

    def _open(self, screen: str, code: str, tail: str | None) -> Opened | None:
        """Redeem the code matching ``code`` on ``screen`` and hand the parcel over; ``None`` if none
        matches a parcel waiting there (unknown, used, expired, revoked, not there yet)."""
        now = self._clock.now()
        with self._sessions.begin() as session:
            codes = PickupCodeRepository(session, self._clock)
            hashes = {
                w: self._codes.code_hmac(screen, w, code, tail) for w in _live_windows(session, screen, now)
            }
            found = (codes.find(screen, window, hashed) for window, hashed in hashes.items())
            match = next(
                (c for c in found if c is not None and c.live and c.expires_at.timestamp() > now), None
            )
            if match is None or not _same(match.tail_hmac if tail else match.code_hmac, hashes[match.window]):
                return None
            parcels = self._parcels(session)
            record = parcels.get(match.tracking_number)
            event = _handover(record, screen)
            if event is None:
                return None
            try:
                codes.redeem(screen, match.window, hashes[match.window])
            except (CodeAlreadyUsed, CodeExpired, NotFoundError):
                return None  # another screen request used it a moment ago
            compartment = record.parcel.compartment or ""
            done, _ = parcels.transition(record.tracking_number, event)
            self._outbox(session).cancel(pickup_cancels(_ref(match)))
        return Opened(done.tracking_number, compartment, match.window, done.state)

    def _pickup(
        self,
        cart: str,
        event_id: str,
        fingerprint: str,
        tracking_number: str,
        compartment: str,
        code_hash: str,
        at: float,
    ) -> PickupOutcome:
        with self._sessions.begin() as session:
            answers = IdempotencyRepository(session, self._clock)
            stored = answers.get(cart, event_id, fingerprint)
            if stored is not None:
                return PickupOutcome.from_json(stored.body, replayed=True)
            parcels = self._parcels(session)
            record = parcels.get(tracking_number)
            parcel = record.parcel
            if parcel.cart != cart or parcel.window is None:
                raise NotFoundError(f"parcel {tracking_number!r} is not on cart {cart!r}")
            codes = PickupCodeRepository(session, self._clock)
            code = codes.find(cart, parcel.window, code_hash)
            if code is None or code.tracking_number != tracking_number:
                raise ConflictError(f"that code hash is not the pickup code of parcel {tracking_number!r}")
            if parcel.state is not ParcelState.PICKED_UP or code.used_at is None:
                if parcel.compartment != compartment:
                    raise ConflictError(f"parcel {tracking_number!r} is not in compartment {compartment!r}")
                codes.redeem(cart, parcel.window, code_hash, at=at)
                if parcel.state is ParcelState.LOADED:  # the arrival event is still on its way
                    parcels.transition(tracking_number, ParcelEvent.ARRIVE, at=at)
                record, _ = parcels.transition(tracking_number, ParcelEvent.PICK_UP, at=at)
                self._outbox(session).cancel(withdrawal_cancels(_ref(code)))
            finished = record.parcel.finished_at
            outcome = PickupOutcome(
                event_id, tracking_number, record.state, _utc(finished if finished is not None else at)
            )
            answers.put(cart, event_id, fingerprint, 200, outcome.to_json())
        return outcome

    def _sync(self, cart: str, window: str | None) -> CodeSync:
        now = self._clock.now()
        with self._sessions.begin() as session:
            live = PickupCodeRepository(session, self._clock).live_for_cart(cart, window)
            on_cart = {
                r.tracking_number: r
                for r in self._parcels(session).search(
                    state=(ParcelState.LOADED, ParcelState.AT_STOP), cart=cart, window=window, limit=MAX_LIMIT
                )
            }
        entries = tuple(
            CodeEntry(
                tracking_number=code.tracking_number,
                compartment=parcel.parcel.compartment,
                window=code.window,
                stop=parcel.parcel.stop,
                state=parcel.state,
                code_hash=code.code_hmac,
                tail_hash=code.tail_hmac,
                expires_at=code.expires_at,
            )
            for code in live
            if (parcel := on_cart.get(code.tracking_number)) is not None
        )
        return CodeSync(cart, self._codes.cart_key(cart), _utc(now), entries)

    def _resend(self, tracking_number: str) -> IssuedCode:
        now = self._clock.now()
        with self._sessions.begin() as session:
            parcels, outbox = self._parcels(session), self._outbox(session)
            record = parcels.get(tracking_number)
            parcel = record.parcel
            holder = parcel.robot if parcel.state is ParcelState.IN_ROBOT else parcel.cart
            waiting = parcel.state in (ParcelState.LOADED, ParcelState.AT_STOP, ParcelState.IN_ROBOT)
            old = PickupCodeRepository(session, self._clock).live_for_parcel(tracking_number)
            if not waiting or holder is None or parcel.window is None or old is None or old.cart != holder:
                raise NoCodeToResend(f"parcel {tracking_number!r} is not waiting for a pickup with a code")
            if old.expires_at.timestamp() <= now:
                raise CodeExpired(f"the pickup code of parcel {tracking_number!r} expired with its window")
            old_ref = _ref(old)
            door_key = dedupe_key(Notice.ROBOT_AT_DOOR, old_ref)
            at_door = parcel.office and _status(outbox, door_key) not in (None, OutboxStatus.HELD)
            outbox.cancel(withdrawal_cancels(old_ref))
            phone = parcels.contact(tracking_number).phone
            compartment = parcel.compartment or ""
            issued = self._issue(session, record, holder, parcel.window, compartment, phone, old.expires_at)
            if parcel.office and not at_door:
                self._hold_office_messages(outbox, phone, issued, self._place_label(record))
            elif parcel.state is ParcelState.LOADED:
                message = cart_at_stop(
                    phone, issued.code, self._label(parcel.stop), old.expires_at, ref=issued.ref
                )
                outbox.enqueue(message, hold=True)
            else:
                label = self._place_label(record) if parcel.office else self._label(parcel.stop)
                outbox.enqueue(pickup_code_resend(phone, issued.code, label, old.expires_at, ref=issued.ref))
                if not parcel.office:
                    reminder = reminder_notice(
                        phone, label, old.expires_at, ref=issued.ref, now=_utc(now),
                        reminder_before_end_s=self._reminder_before_end_s,
                    )  # fmt: skip
                    if reminder is not None:
                        outbox.enqueue(reminder.message, reminder.not_before)
        return issued

    def _waiting_for_phone(self, cart: str, phone: str) -> list[str]:
        with self._sessions.begin() as session:
            found = self._parcels(session).search(state=ParcelState.AT_STOP, cart=cart, phone=phone)
        return [r.tracking_number for r in found]

    def _return(self, tracking_number: str, reason: str | None) -> ParcelRecord:
        with self._sessions.begin() as session:
            code = PickupCodeRepository(session, self._clock).live_for_parcel(tracking_number)
            parcels = self._parcels(session)
            if reason is None:
                record, _ = parcels.transition(tracking_number, ParcelEvent.RETURN)
            else:
                record, _ = parcels.transition(tracking_number, ParcelEvent.RETURN, reason=reason)
            if code is not None:
                self._outbox(session).cancel(withdrawal_cancels(_ref(code)))
        return record

    def _load_robot(
        self, tracking_number: str, robot: str, compartment: str, wait_until: float
    ) -> IssuedCode:
        expires = _utc(wait_until)
        if wait_until <= self._clock.now():
            raise ValueError(f"wait_until {expires.isoformat()} is not in the future")
        with self._sessions.begin() as session:
            parcels = self._parcels(session)
            record, _ = parcels.transition(
                tracking_number, ParcelEvent.LOAD_ROBOT, robot=robot, compartment=compartment
            )
            window = record.parcel.window or "office"
            phone = parcels.contact(tracking_number).phone
            issued = self._issue(session, record, robot, window, compartment, phone, expires)
            self._hold_office_messages(self._outbox(session), phone, issued, self._place_label(record))
        return issued

    def _at_door(self, tracking_number: str) -> int:
        now = self._clock.now()
        with self._sessions.begin() as session:
            record = self._parcels(session).get(tracking_number)
            code = PickupCodeRepository(session, self._clock).live_for_parcel(tracking_number)
            if record.state is not ParcelState.IN_ROBOT or code is None:
                raise NoCodeToResend(f"parcel {tracking_number!r} is not in an indoor robot with a code")
            ref, outbox = _ref(code), self._outbox(session)
            released = outbox.release([dedupe_key(Notice.ROBOT_AT_DOOR, ref)])
            call_at = _utc(now + self._call_after_s)
            call = [dedupe_key(Notice.OFFICE_CALL, ref)]
            if call_at < code.expires_at:
                released += outbox.release(call, call_at)
            else:
                outbox.cancel(call)
        return released

    # --- helpers ---------------------------------------------------------------------------------------

    def _issue(
        self,
        session: Session,
        record: ParcelRecord,
        holder: str,
        window: str,
        compartment: str,
        phone: str,
        expires_at: datetime,
    ) -> IssuedCode:
        """Draw a code not used on ``holder`` in ``window`` and store its hashes (its predecessor is
        revoked); a clash with a code stored meanwhile (``CodeTaken``) is drawn again."""
        repo = PickupCodeRepository(session, self._clock)
        taken = set(repo.hashes_in_use(holder, window))
        tail = phone_tail(phone)
        for _ in range(MAX_CODE_DRAWS):
            code = self._codes.new_code(self._rng, frozenset())
            code_hash = self._codes.code_hmac(holder, window, code)
            if code_hash in taken:
                continue
            tail_hash = self._codes.code_hmac(holder, window, code, tail)
            try:
                stored = repo.issue(
                    record.tracking_number, holder, window, code_hash, expires_at, tail_hmac=tail_hash
                )
            except CodeTaken:
                taken.add(code_hash)
                continue
            return IssuedCode(
                record.tracking_number, holder, window, compartment, expires_at, _ref(stored), code
            )
        raise CodeSpaceExhausted(f"no free pickup code found on {holder!r} in window {window!r}")

    def _hold_office_messages(self, outbox: Outbox, phone: str, issued: IssuedCode, place: str) -> None:
        """The office SMS and the fallback call, held until the robot is at the door."""
        outbox.enqueue(robot_at_door(phone, issued.code, place, issued.expires_at, ref=issued.ref), hold=True)
        call = office_delivery_call(phone, issued.code, place, issued.expires_at, ref=issued.ref)
        outbox.enqueue(call, hold=True)

    def _parcels(self, session: Session) -> ParcelRepository:
        return ParcelRepository(session, self._clock, self._personal)

    def _outbox(self, session: Session) -> Outbox:
        return Outbox(session, self._cipher, self._clock)

    def _label(self, place: str | None) -> str:
        """How a stop or place is named in messages: its label on the campus map, else its id."""
        if place is None:
            return "-"
        found = self._site.places.get(place) if self._site is not None else None
        return (found.label if found is not None else None) or place

    def _place_label(self, record: ParcelRecord) -> str:
        destination = record.parcel.destination
        if destination.place is not None:
            return self._label(destination.place)
        return " ".join(p for p in (destination.building, destination.room) if p) or "-"

    async def _run(self, work: Callable[[], T]) -> T:
        """Run one transaction off the loop, then wake the outbox worker."""
        result = await self._blocking(work)
        self._wake()
        return result


def _handover(record: ParcelRecord, screen: str) -> ParcelEvent | None:
    """The event a right code on ``screen`` causes: pick-up at the stop, delivery from the robot."""
    parcel = record.parcel
    if parcel.state is ParcelState.AT_STOP and parcel.cart == screen:
        return ParcelEvent.PICK_UP
    if parcel.state is ParcelState.IN_ROBOT and parcel.robot == screen:
        return ParcelEvent.DELIVER
    return None


def _live_windows(session: Session, holder: str, now: float) -> list[str]:
    """The windows in which ``holder`` has live, unexpired codes (one or two, usually).

    A narrow read of the codes table, so a check looks up its hash per window instead of loading every
    live code of the cart (``PickupCodeRepository`` has no such query yet).
    """
    query = (
        select(PickupCodeRow.window_id)
        .where(
            PickupCodeRow.cart == holder,
            PickupCodeRow.used_at.is_(None),
            PickupCodeRow.revoked_at.is_(None),
            PickupCodeRow.expires_at > _utc(now),
        )
        .distinct()
        .order_by(PickupCodeRow.window_id)
    )
    try:
        return list(session.scalars(query).all())
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {exc}") from exc


def _ref(code: PickupCodeRecord) -> str:
    """The message reference of a code: ``p{parcel row id}/c{code id}``."""
    return f"p{code.parcel_id}/c{code.id}"


def _status(outbox: Outbox, key: str) -> OutboxStatus | None:
    try:
        return outbox.get_by_key(key).status
    except NotFoundError:
        return None


def _tail(text: str | None) -> str | None:
    """The 4-digit phone tail (``InvalidCode`` otherwise), or ``None``."""
    if text is None:
        return None
    return parse_tail(text)


def _same(stored: str | None, computed: str) -> bool:
    return stored is not None and hmac.compare_digest(stored, computed)


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


# --- Retention -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What a retention run erased: personal data of parcels and orders finished before ``cutoff``,
    outbox messages and stored idempotent answers created before it."""

    cutoff: datetime
    parcels: int
    orders: int
    outbox: int
    idempotency: int


def purge_expired(
    session: Session, clock: Clock, cipher: Cipher, retention_days: int, *, actor: str, role: str
) -> RetentionReport:
    """Erase personal data ``retention_days`` after delivery (and old messages, old idempotent answers)
    in the caller's transaction, and write the run to the audit log as ``actor``."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be >= 1, got {retention_days}")
    cutoff = _utc(clock.now()) - timedelta(days=retention_days)
    counts = purge_personal_data(session, clock, cutoff)
    outbox = Outbox(session, cipher, clock).purge(cutoff)
    answers = IdempotencyRepository(session, clock).purge(cutoff)
    report = RetentionReport(cutoff, counts.parcels, counts.orders, outbox, answers)
    AuditRepository(session, clock).append(
        actor=actor,
        role=role,
        action="retention_purge",
        entity="personal_data",
        entity_id=cutoff.isoformat(),
        reason=(
            f"retention {retention_days} d: {report.parcels} parcels, {report.orders} orders, "
            f"{report.outbox} messages, {report.idempotency} idempotent answers"
        ),
    )
    return report


class RetentionJob:
    """The retention purge, on demand (``run_once``, e.g. an admin's button) and daily (``run``)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        cipher: Cipher,
        retention_days: int,
        *,
        period_s: float = DAY_S,
        blocking: BlockingRunner = asyncio.to_thread,
    ) -> None:
        if retention_days < 1 or not period_s > 0:
            raise ValueError("retention_days must be >= 1 and period_s > 0")
        self._sessions = sessions
        self._clock = clock
        self._cipher = cipher
        self.retention_days = retention_days
        self._period_s = period_s
        self._blocking = blocking
        self.last: RetentionReport | None = None

    @classmethod
    def from_services(cls, services: Services, **options: Any) -> RetentionJob:
        """The job over the app's store with ``security.retention_days``."""
        options.setdefault("blocking", services.threads)
        return cls(
            services.sessions,
            services.clock,
            services.cipher,
            services.settings.security.retention_days,
            **options,
        )

    async def run_once(self, *, actor: str = "system", role: str = "system") -> RetentionReport:
        """Purge now (one transaction), audited as ``actor``/``role``."""
        report = await self._blocking(partial(self._purge, actor, role))
        self.last = report
        return report

    async def run(self) -> None:
        """Purge now and then every ``period_s`` of clock time until cancelled; failures are logged."""
        while True:
            try:
                report = await self.run_once()
                log.info("retention purge before %s: %s", report.cutoff.isoformat(), report)
            except StoreError as exc:
                log.error("retention purge failed: %s; next try in %.0f s", exc, self._period_s)
            await self._clock.sleep(self._period_s)

    def _purge(self, actor: str, role: str) -> RetentionReport:
        with self._sessions.begin() as session:
            return purge_expired(
                session, self._clock, self._cipher, self.retention_days, actor=actor, role=role
            )


async def run_retention(services: Services, *, actor: str, role: str) -> RetentionReport:
    """Run the retention purge now for an operator (the console's admin action); audited as ``actor``."""
    return await RetentionJob.from_services(services).run_once(actor=actor, role=role)


# --- Background tasks of the app -----------------------------------------------------------------------


class Background:
    """The app's background tasks (outbox worker, retention job); ``stop()`` ends them, waits for their
    database work still in a thread, and closes the notification provider's HTTP client."""

    def __init__(
        self,
        tasks: Mapping[str, asyncio.Task[None]],
        closers: Iterable[Callable[[], Awaitable[None]]],
        threads: ThreadWork | None = None,
    ) -> None:
        self.tasks = dict(tasks)
        self._closers = list(closers)
        self._threads = threads

    async def stop(self) -> None:
        """Cancel the tasks and wait for them and their threads; never raises (failures are logged)."""
        for task in self.tasks.values():
            task.cancel()
        for name, task in self.tasks.items():
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("background task %s failed", name)
        if self._threads is not None:
            if not await self._threads.drain():
                log.error("background database work still running after 30 s; stopping anyway")
            self._threads.close()
        for close in self._closers:
            try:
                await close()
            except Exception:
                log.exception("closing a background resource failed")


def start_background(services: Services) -> Background:
    """Start the outbox worker and the daily retention job on the running loop."""
    tasks = {
        "outbox-worker": asyncio.create_task(services.outbox_worker.run(), name="outbox-worker"),
        "retention": asyncio.create_task(RetentionJob.from_services(services).run(), name="retention"),
    }
    closers = [services.http_client.aclose] if services.http_client is not None else []
    return Background(tasks, closers, services.threads)
