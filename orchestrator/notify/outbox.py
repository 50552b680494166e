"""The persistent outbox: messages are written to the store first, then sent by a worker, with retries.

Writing (inside the caller's transaction, so a message is stored exactly when the state change that
calls for it is)::

    with sessions.begin() as session:
        ...                                               # e.g. parcel event "cart at stop"
        outbox = Outbox(session, cipher, clock)
        for notice in window_delivery_notices(...):
            outbox.enqueue(notice.message, notice.not_before)
    worker.wake()                                         # send now rather than at the next poll

A message that needs a secret only known earlier (the pickup code exists in clear only when it is
issued, at loading; the SMS goes when the cart reaches the stop) is enqueued *held* when the secret is
known (``enqueue(..., hold=True)``: stored encrypted, never sent) and ``release``d when it should go.

Sending: ``OutboxWorker.run()`` (a task of the composition root) calls ``run_once()`` whenever a
message falls due, when woken, and at least every ``poll_s``. ``run_once`` *claims* the due messages
(status ``sending``, attempts + 1, hidden for ``lease_s``), hands each to the ``Provider`` and records
the result:

    held ──release──▶ pending ──claim──▶ sending ──ok────────────────────────▶ sent
                         ▲                 │ └──failed for good or last attempt──▶ dead
                      enqueue              └──failed, may work later──▶ retry ──due──▶ sending
    held | pending | retry ──cancel──▶ cancelled          dead ──operator retry──▶ pending

After the ``n``-th failed attempt the message waits ``min(backoff_s * 2**(n-1), backoff_cap_s)``
seconds (no jitter: one worker per campus, and tests need the exact schedule), or longer if the
provider asked (``Retry-After``). With the defaults (6 attempts, 5 s) the tries start 0, 5, 15, 35,
75 and 155 s after the message fell due; then it is a dead letter.

Delivery is **at least once**. If the process dies after the provider accepted a message but before
``sent`` is recorded, the claim's lease runs out and the message is sent again, with the same
``dedupe_key`` (the webhook's ``id``), so the gateway can drop the repeat. A claim also counts as an
attempt, so a message that crashes the process every time still ends as a dead letter. On PostgreSQL
the claim skips rows other workers hold (``FOR UPDATE SKIP LOCKED``): two workers never send the same
message at the same time.

Personal data: the phone number and the text (which may carry a pickup code) are stored encrypted by
the ``Cipher`` given (``orchestrator.security``'s ``PersonalDataCipher`` in the service); only the
masked phone and the redacted text are stored in clear, and ``OutboxEntry`` carries only those.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Protocol, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from interfaces.clock import Clock
from orchestrator.notify.errors import OutboxEntryNotFoundError, OutboxStateError
from orchestrator.notify.messages import Message, MessageKind, Scheduled
from orchestrator.notify.providers import Provider, ProviderResult
from orchestrator.store.errors import StoreError, integrity_kind
from orchestrator.store.notify_tables import OutboxRow

T = TypeVar("T")

MIN_WAIT_S = 0.1
"""Shortest wait of ``OutboxWorker.run`` between rounds: entries due but held by another worker
(PostgreSQL skips locked rows) must not make it spin."""


class Cipher(Protocol):
    """Encrypts personal data for storage (``orchestrator.security.crypto.PersonalDataCipher``).

    ``context`` is bound to the ciphertext: decrypting needs the same one. The outbox uses the column
    and the entry's dedupe key, so a blob copied to another column or row does not decrypt.
    """

    def encrypt(self, text: str, context: str = "", /) -> bytes:
        """The ciphertext of ``text`` bound to ``context``."""
        ...

    def decrypt(self, data: bytes, context: str = "", /) -> str:
        """The text ``encrypt`` turned into ``data`` under ``context``; raises if that is not so."""
        ...


class BlockingRunner(Protocol):
    """Runs a blocking function without blocking the event loop (``asyncio.to_thread``)."""

    def __call__(self, func: Callable[[], T], /) -> Awaitable[T]: ...


class OutboxStatus(StrEnum):
    """Where an outbox entry is in its life (see the module docstring)."""

    HELD = "held"
    PENDING = "pending"
    SENDING = "sending"
    RETRY = "retry"
    SENT = "sent"
    DEAD = "dead"
    CANCELLED = "cancelled"


WAITING = (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.RETRY)
"""Statuses of entries the worker will still try (``sending`` once its lease has run out)."""

FINISHED = (OutboxStatus.SENT, OutboxStatus.DEAD, OutboxStatus.CANCELLED)
"""Statuses of entries the worker is done with."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An outbox entry as operators may see it: masked phone, redacted text, no personal data in clear."""

    id: int
    kind: MessageKind
    to_masked: str
    text_masked: str
    dedupe_key: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Claim:
    """A message claimed for sending: ``attempt`` is its number, checked again when the result is kept."""

    id: int
    attempt: int
    message: Message


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how late failed messages are tried again.

    ``max_attempts`` tries in all; after the ``n``-th failure wait ``min(backoff_s * 2**(n-1),
    backoff_cap_s)``, or the provider's ``retry_after_s`` if longer (also capped).
    """

    max_attempts: int = 6
    backoff_s: float = 5.0
    backoff_cap_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not self.backoff_s > 0:
            raise ValueError(f"backoff_s must be > 0, got {self.backoff_s}")
        if not self.backoff_cap_s >= self.backoff_s:
            raise ValueError(f"backoff_cap_s must be >= backoff_s, got {self.backoff_cap_s}")

    def delay(self, failures: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (``failures >= 1``)."""
        if failures < 1:
            raise ValueError(f"failures must be >= 1, got {failures}")
        backoff = self.backoff_s * 2.0 ** min(failures - 1, 62)
        wished = retry_after_s if retry_after_s is not None else 0.0
        return min(max(backoff, wished), self.backoff_cap_s)


@dataclass(frozen=True, slots=True)
class RunReport:
    """What one ``run_once`` did: messages claimed, and how many ended sent, waiting to retry, dead.

    ``lost`` counts results not recorded because another worker had claimed the message meanwhile.
    """

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    lost: int = 0


class Outbox:
    """The outbox table inside the caller's session (the caller commits); times from ``clock``."""

    def __init__(self, session: Session, cipher: Cipher, clock: Clock) -> None:
        self._session = session
        self._cipher = cipher
        self._clock = clock

    # --- writing ---------------------------------------------------------------------------------------

    def enqueue(
        self, message: Message, not_before: datetime | None = None, *, hold: bool = False
    ) -> OutboxEntry:
        """Store ``message`` to go out at ``not_before`` (default: now); idempotent on its dedupe key.

        With ``hold`` the message is kept (``held``) and not sent until ``release``. If an entry with
        the same ``dedupe_key`` exists (in any status) it is returned unchanged: the first message
        enqueued under a key wins.
        """
        now = _utc(self._clock)
        due = now if not_before is None else _aware(not_before)
        existing = self._by_key(message.dedupe_key)
        if existing is not None:
            return _entry(existing)
        row = OutboxRow(
            kind=message.kind.value,
            to_enc=self._cipher.encrypt(message.to_phone, _context("to", message.dedupe_key)),
            to_masked=message.to_masked,
            text_enc=self._cipher.encrypt(_sealed_text(message), _context("text", message.dedupe_key)),
            text_masked=message.redacted_text,
            dedupe_key=message.dedupe_key,
            status=(OutboxStatus.HELD if hold else OutboxStatus.PENDING).value,
            attempts=0,
            next_attempt_at=due,
            last_error=None,
            created_at=now,
            sent_at=None,
        )
        try:
            with self._session.begin_nested():
                self._session.add(row)
                self._session.flush()
        except IntegrityError as exc:  # another transaction enqueued the same key just now
            if integrity_kind(exc) != "unique" or (winner := self._by_key(message.dedupe_key)) is None:
                raise StoreError(f"outbox write refused by the database: {exc.orig}") from exc
            return _entry(winner)
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc}") from exc
        return _entry(row)

    def enqueue_all(self, notices: Iterable[Scheduled]) -> builtins.list[OutboxEntry]:
        """``enqueue`` each scheduled message (e.g. from ``window_delivery_notices``)."""
        return [self.enqueue(n.message, n.not_before) for n in notices]

    def release(self, dedupe_keys: Iterable[str], not_before: datetime | None = None) -> int:
        """Let the held entries with these keys go out at ``not_before`` (default: now); how many.

        Keys of entries that are not held (already released, sent, cancelled) or unknown are ignored,
        so releasing twice is harmless.
        """
        due = _utc(self._clock) if not_before is None else _aware(not_before)
        values = {"status": OutboxStatus.PENDING.value, "next_attempt_at": due}
        return self._set_status(dedupe_keys, (OutboxStatus.HELD,), values)

    def cancel(self, dedupe_keys: Iterable[str]) -> int:
        """Cancel the entries with these keys that have not gone out yet (held, pending, retry).

        Returns how many were cancelled. Unknown keys and entries already sent, dead or being sent are
        left alone (a message being sent cannot be called back).
        """
        waiting = (OutboxStatus.HELD, OutboxStatus.PENDING, OutboxStatus.RETRY)
        return self._set_status(dedupe_keys, waiting, {"status": OutboxStatus.CANCELLED.value})

    def _set_status(
        self, dedupe_keys: Iterable[str], current: tuple[OutboxStatus, ...], values: dict[str, object]
    ) -> int:
        """Change the entries with these keys whose status is one of ``current``; how many changed."""
        keys = list(dedupe_keys)
        if not keys:
            return 0
        statement = (
            update(OutboxRow)
            .where(OutboxRow.dedupe_key.in_(keys))
            .where(OutboxRow.status.in_([s.value for s in current]))
            .values(**values)
        )
        with _db():
            return int(self._session.execute(statement).rowcount)  # type: ignore[attr-defined]

    def retry(self, entry_id: int) -> OutboxEntry:
        """Send a dead letter (or a message waiting to retry) again now, with a fresh set of attempts.

        ``OutboxEntryNotFoundError`` if there is no such entry; ``OutboxStateError`` if it was sent,
        cancelled, or is already waiting or being sent.
        """
        row = self._row(entry_id, lock=True)
        if row.status not in (OutboxStatus.DEAD, OutboxStatus.RETRY):
            raise OutboxStateError(
                f"outbox entry {entry_id} is {row.status}: only dead or retrying entries can be retried"
            )
        with _db():
            row.status = OutboxStatus.PENDING.value
            row.attempts = 0
            row.next_attempt_at = _utc(self._clock)
            self._session.flush()
        return _entry(row)

    def purge(self, before: datetime) -> int:
        """Delete finished entries (sent, dead, cancelled) created before ``before``; how many went.

        The retention job calls it so that phone numbers do not outlive their use.
        """
        statement = (
            delete(OutboxRow)
            .where(OutboxRow.status.in_([s.value for s in FINISHED]))
            .where(OutboxRow.created_at < _aware(before))
        )
        with _db():
            return int(self._session.execute(statement).rowcount)  # type: ignore[attr-defined]

    # --- reading ---------------------------------------------------------------------------------------

    def get(self, entry_id: int) -> OutboxEntry:
        """The entry with this id; ``OutboxEntryNotFoundError`` if there is none."""
        return _entry(self._row(entry_id))

    def get_by_key(self, dedupe_key: str) -> OutboxEntry:
        """The entry with this dedupe key; ``OutboxEntryNotFoundError`` if there is none."""
        row = self._by_key(dedupe_key)
        if row is None:
            raise OutboxEntryNotFoundError(f"no outbox entry has dedupe key {dedupe_key!r}")
        return _entry(row)

    def list(
        self, *, status: OutboxStatus | str | None = None, limit: int = 100, before_id: int | None = None
    ) -> builtins.list[OutboxEntry]:
        """Entries newest first, optionally of one status; page on with ``before_id`` = the last id seen."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        query = select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
        if status is not None:
            query = query.where(OutboxRow.status == OutboxStatus(status).value)
        if before_id is not None:
            query = query.where(OutboxRow.id < before_id)
        with _db():
            rows = self._session.scalars(query).all()
        return [_entry(r) for r in rows]

    def dead_letters(self, *, limit: int = 100, before_id: int | None = None) -> builtins.list[OutboxEntry]:
        """Messages given up on, newest first, with their attempts and last error (for operators)."""
        return self.list(status=OutboxStatus.DEAD, limit=limit, before_id=before_id)

    def counts(self) -> dict[OutboxStatus, int]:
        """How many entries are in each status (every status present, zero when none)."""
        query = select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
        with _db():
            found = {OutboxStatus(status): int(n) for status, n in self._session.execute(query).all()}
        return {status: found.get(status, 0) for status in OutboxStatus}

    def next_due(self) -> datetime | None:
        """When the earliest waiting entry falls due (maybe in the past), or ``None`` if none waits."""
        query = select(func.min(OutboxRow.next_attempt_at)).where(
            OutboxRow.status.in_([s.value for s in WAITING])
        )
        with _db():
            due = self._session.scalars(query).one()
        return None if due is None else _from_db(due)

    # --- the worker's side -----------------------------------------------------------------------------

    def claim_due(self, *, limit: int, lease_s: float, max_attempts: int) -> builtins.list[Claim]:
        """Claim up to ``limit`` due messages (oldest due first) and decrypt them for sending.

        Each claimed entry becomes ``sending`` with one more attempt and is hidden for ``lease_s``. An
        entry whose lease ran out on its last attempt (the process died while sending it), or whose
        data cannot be decrypted, becomes a dead letter instead.
        """
        now = _utc(self._clock)
        query = (
            select(OutboxRow)
            .where(OutboxRow.status.in_([s.value for s in WAITING]))
            .where(OutboxRow.next_attempt_at <= now)
            .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claims: builtins.list[Claim] = []
        with _db():
            for row in self._session.scalars(query).all():
                claim = self._claim(row, now, lease_s, max_attempts)
                if claim is not None:
                    claims.append(claim)
            self._session.flush()
        return claims

    def record(self, claim: Claim, result: ProviderResult, policy: RetryPolicy) -> OutboxStatus | None:
        """Keep the provider's result for ``claim``; the entry's new status, or ``None`` if the claim
        was lost (its lease ran out and another worker claimed the entry again)."""
        row = self._row(claim.id, lock=True)
        if row.status != OutboxStatus.SENDING or row.attempts != claim.attempt:
            return None
        now = _utc(self._clock)
        with _db():
            if result.ok:
                row.status, row.sent_at = OutboxStatus.SENT.value, now
            elif result.permanent:
                row.status, row.last_error = OutboxStatus.DEAD.value, f"permanent failure: {result.detail}"
            elif row.attempts >= policy.max_attempts:
                row.status = OutboxStatus.DEAD.value
                row.last_error = f"{result.detail} (gave up after {row.attempts} attempts)"
            else:
                row.status, row.last_error = OutboxStatus.RETRY.value, result.detail
                delay = policy.delay(row.attempts, result.retry_after_s)
                row.next_attempt_at = now + timedelta(seconds=delay)
            self._session.flush()
        return OutboxStatus(row.status)

    def _claim(self, row: OutboxRow, now: datetime, lease_s: float, max_attempts: int) -> Claim | None:
        """Claim one due row, or make it a dead letter if it must not be tried again."""
        if row.status == OutboxStatus.SENDING and row.attempts >= max_attempts:
            row.status = OutboxStatus.DEAD.value
            row.last_error = f"attempt {row.attempts} of {max_attempts} never finished (process stopped?)"
            return None
        try:
            message = self._open(row)
        except Exception as exc:  # the cipher's own errors (wrong key, corrupt data): not worth retrying
            row.status = OutboxStatus.DEAD.value
            row.last_error = f"stored message cannot be decrypted: {type(exc).__name__}"
            return None
        row.status = OutboxStatus.SENDING.value
        row.attempts += 1
        row.next_attempt_at = now + timedelta(seconds=lease_s)
        return Claim(row.id, row.attempts, message)

    def _open(self, row: OutboxRow) -> Message:
        """The message stored in ``row``, decrypted."""
        sealed = json.loads(self._cipher.decrypt(row.text_enc, _context("text", row.dedupe_key)))
        return Message(
            MessageKind(row.kind),
            self._cipher.decrypt(row.to_enc, _context("to", row.dedupe_key)),
            sealed["text"],
            row.dedupe_key,
            tuple(sealed["secrets"]),
        )

    def _row(self, entry_id: int, *, lock: bool = False) -> OutboxRow:
        query = select(OutboxRow).where(OutboxRow.id == entry_id)
        if lock:
            query = query.with_for_update()
        with _db():
            row = self._session.scalars(query).one_or_none()
        if row is None:
            raise OutboxEntryNotFoundError(f"outbox entry {entry_id} does not exist")
        return row

    def _by_key(self, dedupe_key: str) -> OutboxRow | None:
        with _db():
            return self._session.scalars(
                select(OutboxRow).where(OutboxRow.dedupe_key == dedupe_key)
            ).one_or_none()


class OutboxWorker:
    """Sends what the outbox holds through ``provider``, retrying with backoff (module docstring).

    ``sessions`` opens the worker's own transactions; database work runs through ``blocking``
    (default ``asyncio.to_thread``; tests may run it inline). ``lease_s`` must exceed the provider's
    own timeout, or a slow send could be claimed (and sent) twice.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        provider: Provider,
        cipher: Cipher,
        clock: Clock,
        *,
        max_attempts: int = 6,
        backoff_s: float = 5.0,
        backoff_cap_s: float = 3600.0,
        lease_s: float = 120.0,
        batch_size: int = 50,
        concurrency: int = 8,
        poll_s: float = 2.0,
        blocking: BlockingRunner = asyncio.to_thread,
        logger: logging.Logger | None = None,
    ) -> None:
        for name, value in (("lease_s", lease_s), ("poll_s", poll_s)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name, count in (("batch_size", batch_size), ("concurrency", concurrency)):
            if count < 1:
                raise ValueError(f"{name} must be >= 1, got {count}")
        self.policy = RetryPolicy(max_attempts, backoff_s, backoff_cap_s)
        self._sessions = sessions
        self._provider = provider
        self._cipher = cipher
        self._clock = clock
        self._lease_s = lease_s
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._poll_s = poll_s
        self._blocking = blocking
        self._log = logger or logging.getLogger("robopost.notify")
        self._wake = asyncio.Event()
        self._db_turn = asyncio.Lock()

    # --- sending ---------------------------------------------------------------------------------------

    async def run_once(self) -> RunReport:
        """Claim the messages due now, send them (``concurrency`` at a time), record each result.

        Raises ``StoreError`` if the database fails; entries claimed and not recorded are sent again
        when their lease runs out.
        """
        claims = await self._database(self._claim)
        gate = asyncio.Semaphore(self._concurrency)
        outcomes = await asyncio.gather(*(self._deliver(c, gate) for c in claims), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise failures[0]
        statuses = [o for o in outcomes if not isinstance(o, BaseException)]
        return RunReport(
            claimed=len(claims),
            sent=statuses.count(OutboxStatus.SENT),
            retrying=statuses.count(OutboxStatus.RETRY),
            dead=statuses.count(OutboxStatus.DEAD),
            lost=statuses.count(None),
        )

    async def run(self) -> None:
        """Send messages as they fall due until cancelled.

        Waits on the clock until the next entry is due, ``poll_s`` at most (entries enqueued by other
        processes are seen then), or until ``wake()``. A database failure is logged and tried again
        after ``poll_s``.
        """
        while True:
            try:
                report = await self.run_once()
                if report.claimed >= self._batch_size:
                    continue  # more may be due right now
                delay = await self._database(self._idle_delay)
            except StoreError as exc:
                self._log.error("notification outbox: %s; trying again in %.0f s", exc, self._poll_s)
                delay = self._poll_s
            await self._wait(delay)

    def wake(self) -> None:
        """Make ``run()`` look for due messages now (call it after committing an enqueue)."""
        self._wake.set()

    # --- for callers without a transaction of their own, and for operators --------------------------------

    async def enqueue(self, message: Message, not_before: datetime | None = None) -> OutboxEntry:
        """``Outbox.enqueue`` in a transaction of its own, then ``wake()``."""
        entry = await self._database(partial(self._in_transaction, lambda o: o.enqueue(message, not_before)))
        self.wake()
        return entry

    async def dead_letters(self, *, limit: int = 100, before_id: int | None = None) -> list[OutboxEntry]:
        """``Outbox.dead_letters``: messages given up on, newest first."""
        return await self._database(
            partial(self._in_transaction, lambda o: o.dead_letters(limit=limit, before_id=before_id))
        )

    async def retry(self, entry_id: int) -> OutboxEntry:
        """``Outbox.retry`` (a dead letter goes out again now), then ``wake()``."""
        entry = await self._database(partial(self._in_transaction, lambda o: o.retry(entry_id)))
        self.wake()
        return entry

    async def release(self, dedupe_keys: Iterable[str], not_before: datetime | None = None) -> int:
        """``Outbox.release`` (held messages may go out), then ``wake()``."""
        keys = list(dedupe_keys)
        released = await self._database(partial(self._in_transaction, lambda o: o.release(keys, not_before)))
        self.wake()
        return released

    async def cancel(self, dedupe_keys: Iterable[str]) -> int:
        """``Outbox.cancel``: drop messages not sent yet (e.g. a reminder after the pickup)."""
        keys = list(dedupe_keys)
        return await self._database(partial(self._in_transaction, lambda o: o.cancel(keys)))

    async def counts(self) -> dict[OutboxStatus, int]:
        """``Outbox.counts``: entries per status (for metrics and the console)."""
        return await self._database(partial(self._in_transaction, Outbox.counts))

    # --- inside -----------------------------------------------------------------------------------------

    async def _deliver(self, claim: Claim, gate: asyncio.Semaphore) -> OutboxStatus | None:
        """Send one claimed message and record the result."""
        async with gate:
            try:
                result = await self._provider.send(claim.message)
            except Exception as exc:  # a provider bug: recorded on the entry and retried, not lost
                self._log.exception("notification provider raised on outbox entry %d", claim.id)
                result = ProviderResult.retry(f"provider raised {type(exc).__name__}: {exc}")
        status = await self._database(partial(self._record, claim, result))
        if status is OutboxStatus.DEAD:
            self._log.warning("outbox entry %d is a dead letter: %s", claim.id, result.detail)
        elif status is None:
            self._log.warning("outbox entry %d was claimed again before its result was kept", claim.id)
        return status

    async def _database(self, work: Callable[[], T]) -> T:
        """Run blocking database work through ``blocking``, one piece at a time.

        One at a time because SQLite allows one writer: two of our transactions that read and then
        write would make the second fail at once ("database is locked") rather than wait.
        """
        async with self._db_turn:
            return await self._blocking(work)

    def _claim(self) -> list[Claim]:
        return self._in_transaction(
            lambda o: o.claim_due(
                limit=self._batch_size, lease_s=self._lease_s, max_attempts=self.policy.max_attempts
            )
        )

    def _record(self, claim: Claim, result: ProviderResult) -> OutboxStatus | None:
        return self._in_transaction(lambda o: o.record(claim, result, self.policy))

    def _idle_delay(self) -> float:
        """Seconds until the next entry falls due, at most ``poll_s``."""
        due = self._in_transaction(Outbox.next_due)
        if due is None:
            return self._poll_s
        return min(max((due - _utc(self._clock)).total_seconds(), MIN_WAIT_S), self._poll_s)

    def _in_transaction(self, work: Callable[[Outbox], T]) -> T:
        """Run ``work`` on an ``Outbox`` in a transaction of its own (committed when it returns)."""
        with _db(), self._sessions.begin() as session:
            return work(Outbox(session, self._cipher, self._clock))

    async def _wait(self, delay: float) -> None:
        """Wait ``delay`` seconds of clock time, or less if ``wake()`` is called."""
        if not self._wake.is_set():
            sleeper = asyncio.ensure_future(self._clock.sleep(delay))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
        self._wake.clear()


@contextmanager
def _db() -> Iterator[None]:
    """Turn SQLAlchemy's errors into ``StoreError`` (ours pass through)."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {exc}") from exc


def _context(column: str, dedupe_key: str) -> str:
    """What an encrypted outbox value is bound to: its column and its entry."""
    return f"outbox.{column}/{dedupe_key}"


def _sealed_text(message: Message) -> str:
    """What ``text_enc`` holds: the text and its secrets, so a reloaded message still redacts."""
    return json.dumps({"text": message.text, "secrets": list(message.secrets)}, ensure_ascii=False)


def _utc(clock: Clock) -> datetime:
    """The clock's now as an aware UTC datetime."""
    return datetime.fromtimestamp(clock.now(), tz=UTC)


def _aware(when: datetime) -> datetime:
    """``when`` in UTC; ``ValueError`` for a naive datetime."""
    if when.tzinfo is None:
        raise ValueError(f"time {when.isoformat()} has no time zone")
    return when.astimezone(UTC)


def _from_db(value: datetime) -> datetime:
    """An aggregate read back without the column type (naive on SQLite) as aware UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _entry(row: OutboxRow) -> OutboxEntry:
    return OutboxEntry(
        id=row.id,
        kind=MessageKind(row.kind),
        to_masked=row.to_masked,
        text_masked=row.text_masked,
        dedupe_key=row.dedupe_key,
        status=OutboxStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )
