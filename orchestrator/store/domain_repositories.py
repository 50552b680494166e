"""Repositories of the orchestrator's domain: parcels, orders, tasks, pickup codes, users, audit, idempotency.

Like ``orchestrator.store.repositories`` they work inside the caller's session, so one transaction can
span several of them, and each write runs in a savepoint (an error leaves the session usable)::

    with factory.begin() as session:                       # commits at the end, rolls back on error
        parcels = ParcelRepository(session, clock, personal_data)
        record, event = parcels.transition("SF1001", ParcelEvent.LOAD, cart="cart-01", compartment="7")
    fleet.open_compartment(...)                            # act only after the commit

**Every event is written before it is acted on**: a transition writes the entity's new state and its
``DomainEvent`` in the same savepoint, so both are stored or neither is; the caller acts after its
transaction commits. Concurrent writers are caught by the entity's ``version`` (``StaleEntity``).

Personal data comes in clear only through ``ParcelIntake``/``OrderDraft``; it is stored encrypted
(``PersonalData.cipher``, bound to the row by its context), masked, and as a lookup hash of the phone.
``contact()`` decrypts for the system (e.g. to send an SMS); ``reveal_contact()`` decrypts for a person
and writes the audit entry in the same transaction.

Errors (besides the domain's ``IllegalTransition`` and ``InvalidData``, which pass through)::

    StoreError
    ├── NotFoundError
    │   └── PersonalDataGone      the personal data was purged (retention) or never given
    └── ConflictError
        ├── StaleEntity           another writer changed the entity since it was read
        ├── IdempotencyConflict   the same Idempotency-Key came with a different request
        ├── CodeTaken             the code's hash is already used on that cart in that window
        ├── CodeAlreadyUsed       the pickup code was used before (one use only)
        └── CodeExpired           the pickup code's window is over
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from interfaces.clock import Clock
from orchestrator.domain import (
    Destination,
    DomainError,
    DomainEvent,
    EntityKind,
    InvalidData,
    JsonScalar,
    Order,
    OrderEvent,
    OrderKind,
    OrderState,
    Parcel,
    ParcelEvent,
    ParcelState,
    SizeClass,
    Task,
    TaskEvent,
    TaskState,
    check_tracking_number,
    create_order,
    plan_task,
    receive_parcel,
    transition,
)
from orchestrator.domain import task_id as default_task_id
from orchestrator.store.domain_records import (
    AuditRecord,
    Contact,
    ImportOutcome,
    ImportStatus,
    MaskedContact,
    OrderCreation,
    OrderDraft,
    OrderRecord,
    ParcelIntake,
    ParcelRecord,
    PickupCodeRecord,
    PurgeCounts,
    StoredResponse,
    TaskRecord,
    UserRecord,
    UserRole,
)
from orchestrator.store.domain_tables import (
    AuditRow,
    IdempotencyKeyRow,
    OrderEventRow,
    OrderRow,
    ParcelEventRow,
    ParcelRow,
    PickupCodeRow,
    TaskEventRow,
    TaskRow,
    UserRow,
)
from orchestrator.store.errors import ConflictError, NotFoundError, StoreError, integrity_kind

MAX_PERSON_NAME = 64
"""Longest recipient or contact name accepted."""

DEFAULT_LIMIT = 100
"""How many records a search returns unless asked otherwise."""

MAX_LIMIT = 1000
"""The most records one search returns."""

_IN_CHUNK = 500
"""Keys per ``IN (...)`` query (well below every backend's parameter limit)."""


class PersonalDataGone(NotFoundError):
    """The personal data asked for was purged (retention) or never given."""


class StaleEntity(ConflictError):
    """Another writer changed the entity since it was read; read it again and retry."""


class IdempotencyConflict(ConflictError):
    """The same ``Idempotency-Key`` was used with a different request."""


class CodeTaken(ConflictError):
    """The code's hash is already used on that cart in that window: draw another code."""


class CodeAlreadyUsed(ConflictError):
    """The pickup code was already used; a code opens a compartment once."""


class CodeExpired(ConflictError):
    """The pickup code's delivery window is over."""


class Cipher(Protocol):
    """Encrypts and decrypts personal data (``orchestrator.security.crypto.PersonalDataCipher``).

    ``context`` is bound to the blob (authenticated): decrypting with another context fails.
    """

    def encrypt(self, text: str, context: str = "") -> bytes:
        """The encrypted blob of ``text``."""
        ...

    def decrypt(self, blob: bytes, context: str = "") -> str:
        """The text in ``blob``."""
        ...


@dataclass(frozen=True)
class PersonalData:
    """How the store protects names and phones: a cipher, the phone lookup hash and the two masks.

    ``phone_hmac`` normalises and hashes a phone (raising ``ValueError`` for one it cannot read);
    with ``orchestrator.security``::

        cipher = PersonalDataCipher(keys)
        PersonalData(cipher, cipher.hmac_phone, mask_name, mask_phone)
    """

    cipher: Cipher
    phone_hmac: Callable[[str], str]
    mask_name: Callable[[str], str]
    mask_phone: Callable[[str], str]


def new_order_id() -> str:
    """A fresh random order id (``ord_`` and 32 hex digits); unguessable, so ids leak nothing."""
    return f"ord_{uuid.uuid4().hex}"


# --- Parcels ---------------------------------------------------------------------------------------


class ParcelRepository:
    """Import parcels, move them through their states (with events), find them, read their history."""

    def __init__(self, session: Session, clock: Clock, personal_data: PersonalData) -> None:
        self._session = session
        self._clock = clock
        self._pd = personal_data

    def import_rows(self, rows: Sequence[ParcelIntake]) -> list[ImportOutcome]:
        """Receive every well-formed row whose tracking number is new; one outcome per row, in order.

        Idempotent on the tracking number: a number already stored, or earlier in the batch, is a
        ``DUPLICATE`` (the stored parcel is kept as it is; ``reason`` says "already imported" or
        "repeats row N"); a malformed row is ``REFUSED`` with the reason. New parcels are written
        with their ``receive`` events, all in one savepoint.
        """
        now = self._clock.now()
        outcomes: list[ImportOutcome | None] = [None] * len(rows)
        fresh: dict[str, tuple[int, ParcelRow, DomainEvent]] = {}
        for index, intake in enumerate(rows):
            try:
                row, event = self._new_row(intake, now)
            except (DomainError, ValueError) as exc:
                tn = str(intake.tracking_number)
                outcomes[index] = ImportOutcome(index, tn, ImportStatus.REFUSED, None, str(exc))
                continue
            fresh.setdefault(row.tracking_number, (index, row, event))
        stored = self._ids_of(fresh)
        new = {tn: item for tn, item in fresh.items() if tn not in stored}
        try:
            self._insert(new.values())
        except ConflictError:  # another writer imported some of them meanwhile: one by one, afresh
            for tn, (index, _, _) in list(new.items()):
                try:
                    self._insert([(index, *self._new_row(rows[index], now))])
                except ConflictError:
                    del new[tn]
            stored = self._ids_of(fresh)
        ids = stored | self._ids_of(new)
        for index, intake in enumerate(rows):
            if outcomes[index] is not None:
                continue
            tn = intake.tracking_number
            first = fresh[tn][0]
            if tn in new and first == index:
                outcomes[index] = ImportOutcome(index, tn, ImportStatus.CREATED, ids[tn])
            else:
                why = f"repeats row {first}" if tn in new else "already imported"
                outcomes[index] = ImportOutcome(index, tn, ImportStatus.DUPLICATE, ids.get(tn), why)
        return [o for o in outcomes if o is not None]

    def get(self, tracking_number: str) -> ParcelRecord:
        """The parcel with this tracking number; ``NotFoundError`` if there is none."""
        return _parcel_record(self._row(tracking_number))

    def get_by_id(self, parcel_id: int) -> ParcelRecord:
        """The parcel with this row id; ``NotFoundError`` if there is none."""
        with _db_errors():
            row = self._session.get(ParcelRow, parcel_id)
        if row is None:
            raise NotFoundError(f"parcel {parcel_id} does not exist")
        return _parcel_record(row)

    def search(
        self,
        *,
        state: ParcelState | str | Collection[ParcelState | str] | None = None,
        window: str | None = None,
        stop: str | None = None,
        cart: str | None = None,
        tracking_number: str | None = None,
        phone: str | None = None,
        after_id: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> builtins.list[ParcelRecord]:
        """Parcels matching every filter given, by row id (``after_id`` pages on), at most ``limit``.

        ``phone`` is a phone number in clear; it is matched through its lookup hash (``ValueError`` if
        it cannot be read as a phone number).
        """
        query = select(ParcelRow).order_by(ParcelRow.id).limit(_limit(limit))
        query = _where_state(query, ParcelRow.state, state, ParcelState)
        filters: list[ColumnElement[bool]] = []
        for column, value in (
            (ParcelRow.window_id, window),
            (ParcelRow.stop, stop),
            (ParcelRow.cart, cart),
            (ParcelRow.tracking_number, tracking_number),
        ):
            if value is not None:
                filters.append(column == value)
        if phone is not None:
            filters.append(ParcelRow.phone_hmac == self._pd.phone_hmac(phone))
        if after_id is not None:
            filters.append(ParcelRow.id > after_id)
        with _db_errors():
            rows = self._session.scalars(query.where(*filters)).all()
        return [_parcel_record(r) for r in rows]

    def transition(
        self, tracking_number: str, event: ParcelEvent | str, *, at: float | None = None, **data: JsonScalar
    ) -> tuple[ParcelRecord, DomainEvent]:
        """Apply a domain transition and store the new state with its event, atomically.

        ``at`` (epoch seconds) defaults to the clock's now. Raises ``NotFoundError``, the domain's
        ``IllegalTransition``/``InvalidData``, or ``StaleEntity`` if another writer got there first.
        """
        row = self._row(tracking_number, lock=True)
        new, domain_event = transition(_parcel(row), event, self._at(at), **data)
        with _write(self._session, conflict=f"parcel {tracking_number!r} changed meanwhile"):
            _set_parcel(row, new)
            row.updated_at = _dt(domain_event.at)
            self._session.add(_event_row(ParcelEventRow, domain_event, parcel_id=row.id))
        return _parcel_record(row), domain_event

    def events(self, tracking_number: str) -> builtins.list[DomainEvent]:
        """The parcel's history, oldest first; ``NotFoundError`` if there is no such parcel."""
        row = self._row(tracking_number)
        query = (
            select(ParcelEventRow).where(ParcelEventRow.parcel_id == row.id).order_by(ParcelEventRow.sequence)
        )
        with _db_errors():
            rows = self._session.scalars(query).all()
        return [_domain_event(EntityKind.PARCEL, tracking_number, r) for r in rows]

    def contact(self, tracking_number: str) -> Contact:
        """The recipient's name and phone in clear, for the system (e.g. the SMS); not audited.

        Raises ``PersonalDataGone`` once purged. Never use it to show data to a person: use
        ``reveal_contact``.
        """
        row = self._row(tracking_number)
        return _decrypt(self._pd.cipher, f"parcel {tracking_number!r}", _parcel_context(tracking_number),
                        row.recipient_name_enc, row.recipient_phone_enc)  # fmt: skip

    def reveal_contact(self, tracking_number: str, *, actor: str, role: str, reason: str) -> Contact:
        """The recipient's data in clear for ``actor``, written to the audit log with ``reason``.

        The caller checks that the role may unmask; this writes the audit entry in the same
        transaction (if the transaction fails, nothing is shown). ``ValueError`` for a blank reason.
        """
        contact = self.contact(tracking_number)
        AuditRepository(self._session, self._clock).append(
            actor=actor, role=role, action="unmask", entity="parcel", entity_id=tracking_number, reason=reason
        )
        return contact

    def _new_row(self, intake: ParcelIntake, now: float) -> tuple[ParcelRow, DomainEvent]:
        """A new parcel row and its ``receive`` event; raises for a malformed row."""
        check_tracking_number(intake.tracking_number)
        destination = Destination(intake.building, intake.room, intake.dorm, intake.place)
        parcel, event = receive_parcel(intake.tracking_number, intake.size, destination, now)
        name, phone = _person_name(intake.recipient_name, "recipient"), intake.recipient_phone
        lookup = self._pd.phone_hmac(phone)  # also refuses a phone it cannot read
        context = _parcel_context(parcel.tracking_number)
        row = ParcelRow(
            tracking_number=parcel.tracking_number,
            recipient_name_enc=self._pd.cipher.encrypt(name, context + "/name"),
            recipient_phone_enc=self._pd.cipher.encrypt(phone, context + "/phone"),
            name_masked=self._pd.mask_name(name),
            phone_masked=self._pd.mask_phone(phone),
            phone_hmac=lookup,
            created_at=_dt(now),
            updated_at=_dt(now),
        )
        _set_parcel(row, parcel)
        return row, event

    def _ids_of(self, tracking_numbers: Iterable[str]) -> dict[str, int]:
        """Row ids of the stored parcels among ``tracking_numbers``."""
        wanted = list(tracking_numbers)
        found: dict[str, int] = {}
        with _db_errors():
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                query = select(ParcelRow.tracking_number, ParcelRow.id).where(
                    ParcelRow.tracking_number.in_(chunk)
                )
                found.update({tn: pid for tn, pid in self._session.execute(query)})
        return found

    def _insert(self, items: Iterable[tuple[int, ParcelRow, DomainEvent]]) -> None:
        """Insert parcels and their receive events in one savepoint."""
        items = list(items)
        if not items:
            return
        with _write(self._session, conflict="a parcel with one of these tracking numbers already exists"):
            self._session.add_all([row for _, row, _ in items])
            self._session.flush()
            self._session.add_all([_event_row(ParcelEventRow, ev, parcel_id=row.id) for _, row, ev in items])

    def _row(self, tracking_number: str, *, lock: bool = False) -> ParcelRow:
        query = select(ParcelRow).where(ParcelRow.tracking_number == tracking_number)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        with _db_errors():
            row = self._session.scalars(query).one_or_none()
        if row is None:
            raise NotFoundError(f"parcel {tracking_number!r} does not exist")
        return row

    def _at(self, at: float | None) -> float:
        return self._clock.now() if at is None else at


# --- Orders ----------------------------------------------------------------------------------------


class OrderRepository:
    """Create mini-program orders (idempotently), move them through their states, find them."""

    def __init__(
        self,
        session: Session,
        clock: Clock,
        personal_data: PersonalData,
        *,
        new_id: Callable[[], str] = new_order_id,
    ) -> None:
        self._session = session
        self._clock = clock
        self._pd = personal_data
        self._new_id = new_id

    def create(self, draft: OrderDraft, *, idempotency_key: str | None = None) -> OrderCreation:
        """Store a new order in state ``created`` with its event, or return the one made for this key.

        With ``idempotency_key``, a second call with the same partner and key returns the stored
        order (``created=False``) — ``IdempotencyConflict`` if it was for another ``partner_ref``.
        ``ConflictError`` if the partner already has an order with this ``partner_ref`` (made without
        this key); the domain's ``InvalidData`` (or ``ValueError`` for an unreadable phone) for bad data.
        """
        if idempotency_key is not None:
            _require_text("idempotency key", idempotency_key)
            existing = self._by(
                OrderRow.partner == draft.partner, OrderRow.idempotency_key == idempotency_key
            )
            if existing is not None:
                if existing.partner_ref != draft.partner_ref:
                    raise IdempotencyConflict(
                        f"idempotency key {idempotency_key!r} was used for order ref {existing.partner_ref!r}"
                    )
                return OrderCreation(_order_record(existing), created=False)
        taken = self._by(OrderRow.partner == draft.partner, OrderRow.partner_ref == draft.partner_ref)
        if taken is not None:
            raise ConflictError(
                f"partner {draft.partner!r} already has an order with ref {draft.partner_ref!r}"
            )
        now = self._clock.now()
        order, event = create_order(
            self._new_id(), draft.partner, draft.partner_ref, draft.kind, draft.place,
            draft.earliest_at, draft.latest_at, now, size=draft.size, origin=draft.origin,
        )  # fmt: skip
        row = self._new_row(order, draft, idempotency_key, now)
        with _write(
            self._session, conflict=f"order ref {draft.partner_ref!r} or its idempotency key is taken"
        ):
            self._session.add(row)
            self._session.flush()
            self._session.add(_event_row(OrderEventRow, event, order_id=row.id))
        return OrderCreation(_order_record(row), created=True, event=event)

    def get(self, order_id: str, *, partner: str | None = None) -> OrderRecord:
        """The order with this id; ``NotFoundError`` if there is none (or it is another ``partner``'s)."""
        return _order_record(self._row(order_id, partner=partner))

    def find_by_ref(self, partner: str, partner_ref: str) -> OrderRecord | None:
        """The partner's order with this ref of theirs, if any."""
        row = self._by(OrderRow.partner == partner, OrderRow.partner_ref == partner_ref)
        return _order_record(row) if row is not None else None

    def search(
        self,
        *,
        partner: str | None = None,
        state: OrderState | str | Collection[OrderState | str] | None = None,
        kind: OrderKind | str | None = None,
        robot: str | None = None,
        phone: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> builtins.list[OrderRecord]:
        """Orders matching every filter given, oldest first, at most ``limit``; ``phone`` in clear."""
        query = select(OrderRow).order_by(OrderRow.created_at, OrderRow.id).limit(_limit(limit))
        query = _where_state(query, OrderRow.state, state, OrderState)
        filters: list[ColumnElement[bool]] = []
        if partner is not None:
            filters.append(OrderRow.partner == partner)
        if kind is not None:
            filters.append(OrderRow.kind == OrderKind(kind).value)
        if robot is not None:
            filters.append(OrderRow.robot == robot)
        if phone is not None:
            filters.append(OrderRow.phone_hmac == self._pd.phone_hmac(phone))
        with _db_errors():
            rows = self._session.scalars(query.where(*filters)).all()
        return [_order_record(r) for r in rows]

    def transition(
        self, order_id: str, event: OrderEvent | str, *, at: float | None = None, **data: JsonScalar
    ) -> tuple[OrderRecord, DomainEvent]:
        """Apply a domain transition and store the new state with its event, atomically.

        Raises ``NotFoundError``, ``IllegalTransition`` (e.g. cancelling a loaded order),
        ``InvalidData`` or ``StaleEntity``.
        """
        row = self._row(order_id, lock=True)
        new, domain_event = transition(_order(row), event, self._clock.now() if at is None else at, **data)
        with _write(self._session, conflict=f"order {order_id!r} changed meanwhile"):
            _set_order(row, new)
            row.updated_at = _dt(domain_event.at)
            self._session.add(_event_row(OrderEventRow, domain_event, order_id=row.id))
        return _order_record(row), domain_event

    def events(self, order_id: str) -> builtins.list[DomainEvent]:
        """The order's history, oldest first; ``NotFoundError`` if there is no such order."""
        self._row(order_id)
        query = (
            select(OrderEventRow).where(OrderEventRow.order_id == order_id).order_by(OrderEventRow.sequence)
        )
        with _db_errors():
            rows = self._session.scalars(query).all()
        return [_domain_event(EntityKind.ORDER, order_id, r) for r in rows]

    def contact(self, order_id: str) -> Contact:
        """The contact's name and phone in clear, for the system; ``PersonalDataGone`` if purged or none."""
        row = self._row(order_id)
        return _decrypt(self._pd.cipher, f"order {order_id!r}", _order_context(order_id),
                        row.contact_name_enc, row.contact_phone_enc)  # fmt: skip

    def reveal_contact(self, order_id: str, *, actor: str, role: str, reason: str) -> Contact:
        """The contact's data in clear for ``actor``, written to the audit log with ``reason``."""
        contact = self.contact(order_id)
        AuditRepository(self._session, self._clock).append(
            actor=actor, role=role, action="unmask", entity="order", entity_id=order_id, reason=reason
        )
        return contact

    def _new_row(self, order: Order, draft: OrderDraft, idempotency_key: str | None, now: float) -> OrderRow:
        context = _order_context(order.id)
        name = _person_name(draft.contact_name, "contact") if draft.contact_name is not None else None
        phone = draft.contact_phone
        row = OrderRow(
            id=order.id,
            partner=order.partner,
            partner_ref=order.partner_ref,
            idempotency_key=idempotency_key,
            kind=order.kind.value,
            place=order.place,
            origin=order.origin,
            earliest_at=_dt(order.earliest_at),
            latest_at=_dt(order.latest_at),
            size=order.size.value,
            phone_hmac=self._pd.phone_hmac(phone) if phone is not None else None,
            contact_name_enc=self._pd.cipher.encrypt(name, context + "/name") if name is not None else None,
            contact_phone_enc=self._pd.cipher.encrypt(phone, context + "/phone")
            if phone is not None
            else None,
            name_masked=self._pd.mask_name(name) if name is not None else "",
            phone_masked=self._pd.mask_phone(phone) if phone is not None else "",
            created_at=_dt(now),
            updated_at=_dt(now),
        )
        _set_order(row, order)
        return row

    def _by(self, *where: ColumnElement[bool]) -> OrderRow | None:
        with _db_errors():
            return self._session.scalars(select(OrderRow).where(*where)).one_or_none()

    def _row(self, order_id: str, *, partner: str | None = None, lock: bool = False) -> OrderRow:
        query = select(OrderRow).where(OrderRow.id == order_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        with _db_errors():
            row = self._session.scalars(query).one_or_none()
        if row is None or (partner is not None and row.partner != partner):
            raise NotFoundError(f"order {order_id!r} does not exist")
        return row


# --- Tasks -----------------------------------------------------------------------------------------


class TaskRepository:
    """Store the legs of robots' plans as tasks and move them through their states."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def plan(
        self,
        robot: str,
        sequence: int,
        kind: str,
        place: str,
        *,
        window: str | None = None,
        parcels: Iterable[str] = (),
        orders: Iterable[str] = (),
        start_at: float | None = None,
        end_at: float | None = None,
        task_id: str | None = None,
    ) -> tuple[TaskRecord, DomainEvent]:
        """Store a planned task (id ``"{robot}/{sequence}"`` unless given) with its ``plan`` event.

        ``ConflictError`` if the robot already has a task with this sequence; ``InvalidData`` for bad data.
        """
        now = self._clock.now()
        ident = task_id if task_id is not None else default_task_id(robot, sequence)
        task, event = plan_task(
            ident, robot, sequence, kind, place, now,
            window=window, parcels=parcels, orders=orders, start_at=start_at, end_at=end_at,
        )  # fmt: skip
        row = TaskRow(
            id=task.id,
            robot=task.robot,
            sequence=task.sequence,
            kind=task.kind,
            place=task.place,
            window_id=task.window,
            parcels=json.dumps(list(task.parcels)),
            orders=json.dumps(list(task.orders)),
            start_at=_dt_or_none(task.start_at),
            end_at=_dt_or_none(task.end_at),
            created_at=_dt(now),
            updated_at=_dt(now),
        )
        _set_task(row, task)
        with _write(self._session, conflict=f"robot {robot!r} already has task {sequence} ({ident!r})"):
            self._session.add(row)
            self._session.flush()
            self._session.add(_event_row(TaskEventRow, event, task_id=row.id))
        return _task_record(row), event

    def next_sequence(self, robot: str) -> int:
        """The sequence number after the robot's highest (0 for a robot without tasks)."""
        with _db_errors():
            top = self._session.scalar(select(func.max(TaskRow.sequence)).where(TaskRow.robot == robot))
        return 0 if top is None else top + 1

    def get(self, task_id: str) -> TaskRecord:
        """The task with this id; ``NotFoundError`` if there is none."""
        return _task_record(self._row(task_id))

    def list(
        self,
        *,
        robot: str | None = None,
        state: TaskState | str | Collection[TaskState | str] | None = None,
        limit: int = MAX_LIMIT,
    ) -> builtins.list[TaskRecord]:
        """Tasks (of one robot, in some states) by robot and sequence, at most ``limit``."""
        query = select(TaskRow).order_by(TaskRow.robot, TaskRow.sequence).limit(_limit(limit))
        query = _where_state(query, TaskRow.state, state, TaskState)
        if robot is not None:
            query = query.where(TaskRow.robot == robot)
        with _db_errors():
            rows = self._session.scalars(query).all()
        return [_task_record(r) for r in rows]

    def transition(
        self, task_id: str, event: TaskEvent | str, *, at: float | None = None, **data: JsonScalar
    ) -> tuple[TaskRecord, DomainEvent]:
        """Apply a domain transition and store the new state with its event, atomically."""
        row = self._row(task_id, lock=True)
        new, domain_event = transition(_task(row), event, self._clock.now() if at is None else at, **data)
        with _write(self._session, conflict=f"task {task_id!r} changed meanwhile"):
            _set_task(row, new)
            row.updated_at = _dt(domain_event.at)
            self._session.add(_event_row(TaskEventRow, domain_event, task_id=row.id))
        return _task_record(row), domain_event

    def events(self, task_id: str) -> builtins.list[DomainEvent]:
        """The task's history, oldest first."""
        self._row(task_id)
        query = select(TaskEventRow).where(TaskEventRow.task_id == task_id).order_by(TaskEventRow.sequence)
        with _db_errors():
            rows = self._session.scalars(query).all()
        return [_domain_event(EntityKind.TASK, task_id, r) for r in rows]

    def _row(self, task_id: str, *, lock: bool = False) -> TaskRow:
        query = select(TaskRow).where(TaskRow.id == task_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        with _db_errors():
            row = self._session.scalars(query).one_or_none()
        if row is None:
            raise NotFoundError(f"task {task_id!r} does not exist")
        return row


# --- Audit, idempotency, users ---------------------------------------------------------------------


class AuditRepository:
    """Append to and read the audit log (who did what to which entity, when and why)."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def append(
        self, *, actor: str, role: str, action: str, entity: str, entity_id: str, reason: str = ""
    ) -> AuditRecord:
        """Write one entry at the clock's now. Unmasking needs a reason: ``ValueError`` if it is blank."""
        _require_text("audit actor", actor)
        _require_text("audit action", action)
        if action == "unmask":
            _require_text("the reason for unmasking personal data", reason)
        row = AuditRow(
            actor=actor,
            role=role,
            action=action,
            entity=entity,
            entity_id=entity_id,
            reason=reason,
            at=_dt(self._clock.now()),
        )
        with _write(self._session, conflict="audit entry conflicts"):
            self._session.add(row)
        return _audit_record(row)

    def list(
        self,
        *,
        entity: str | None = None,
        entity_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        before_id: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> builtins.list[AuditRecord]:
        """Entries matching every filter given, newest first (``before_id`` pages back), at most ``limit``."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(_limit(limit))
        for column, value in (
            (AuditRow.entity, entity),
            (AuditRow.entity_id, entity_id),
            (AuditRow.actor, actor),
            (AuditRow.action, action),
        ):
            if value is not None:
                query = query.where(column == value)
        if before_id is not None:
            query = query.where(AuditRow.id < before_id)
        with _db_errors():
            rows = self._session.scalars(query).all()
        return [_audit_record(r) for r in rows]


class IdempotencyRepository:
    """Stored answers to requests made with an ``Idempotency-Key``, per client (partner or cart).

    Check with ``get`` first; do the work and ``put`` the answer in the same transaction, so a crash
    leaves neither the work nor the answer, and a retry after a commit gets the stored answer.
    """

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def get(self, client: str, key: str, request_hash: str) -> StoredResponse | None:
        """The stored answer for ``(client, key)``, or ``None``; ``IdempotencyConflict`` if the key was
        used with another request (a different ``request_hash``)."""
        row = self._row(client, key)
        if row is None:
            return None
        if row.request_hash != request_hash:
            raise IdempotencyConflict(f"idempotency key {key!r} was already used with a different request")
        return _stored_response(row)

    def put(
        self,
        client: str,
        key: str,
        request_hash: str,
        status: int,
        body: str,
        *,
        media_type: str = "application/json",
    ) -> StoredResponse:
        """Store the answer to ``(client, key)``; if one is stored already for the same request it is
        kept and returned (first answer wins), for another request ``IdempotencyConflict``."""
        _require_text("idempotency key", key)
        existing = self.get(client, key, request_hash)
        if existing is not None:
            return existing
        row = IdempotencyKeyRow(
            client=client,
            idempotency_key=key,
            request_hash=request_hash,
            status=status,
            media_type=media_type,
            body=body,
            created_at=_dt(self._clock.now()),
        )
        try:
            with _write(self._session, conflict=f"idempotency key {key!r} was stored meanwhile"):
                self._session.add(row)
        except ConflictError:
            stored = self.get(client, key, request_hash)
            if stored is None:
                raise
            return stored
        return _stored_response(row)

    def purge(self, older_than: datetime) -> int:
        """Delete stored answers created before ``older_than``; how many were deleted."""
        with _db_errors():
            result = self._session.execute(
                delete(IdempotencyKeyRow).where(IdempotencyKeyRow.created_at < older_than)
            )
        return _rowcount(result)

    def _row(self, client: str, key: str) -> IdempotencyKeyRow | None:
        query = select(IdempotencyKeyRow).where(
            IdempotencyKeyRow.client == client, IdempotencyKeyRow.idempotency_key == key
        )
        with _db_errors():
            return self._session.scalars(query).one_or_none()


class UserRepository:
    """Console users: add, read, list, change (password hashes come from ``orchestrator.security``)."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def add(
        self, username: str, password_hash: str, role: UserRole | str, *, enabled: bool = True
    ) -> UserRecord:
        """Store a user; ``ConflictError`` if the username is taken, ``ValueError`` for an unknown role."""
        _require_text("username", username)
        _require_text("password hash", password_hash)
        now = _dt(self._clock.now())
        row = UserRow(
            username=username,
            password_hash=password_hash,
            role=UserRole(role).value,
            enabled=enabled,
            created_at=now,
            updated_at=now,
        )
        with _write(self._session, conflict=f"username {username!r} is already taken"):
            self._session.add(row)
        return _user_record(row)

    def get(self, user_id: int) -> UserRecord:
        """The user with this id; ``NotFoundError`` if there is none."""
        with _db_errors():
            row = self._session.get(UserRow, user_id)
        if row is None:
            raise NotFoundError(f"user {user_id} does not exist")
        return _user_record(row)

    def get_by_username(self, username: str) -> UserRecord:
        """The user with this name; ``NotFoundError`` if there is none."""
        with _db_errors():
            row = self._session.scalars(select(UserRow).where(UserRow.username == username)).one_or_none()
        if row is None:
            raise NotFoundError(f"user {username!r} does not exist")
        return _user_record(row)

    def list(self) -> builtins.list[UserRecord]:
        """Every user, oldest first."""
        with _db_errors():
            rows = self._session.scalars(select(UserRow).order_by(UserRow.id)).all()
        return [_user_record(r) for r in rows]

    def update(
        self,
        user_id: int,
        *,
        password_hash: str | None = None,
        role: UserRole | str | None = None,
        enabled: bool | None = None,
    ) -> UserRecord:
        """Change the fields given (``None`` keeps a field)."""
        with _db_errors():
            row = self._session.get(UserRow, user_id)
        if row is None:
            raise NotFoundError(f"user {user_id} does not exist")
        with _write(self._session, conflict="user update conflicts"):
            if password_hash is not None:
                _require_text("password hash", password_hash)
                row.password_hash = password_hash
            if role is not None:
                row.role = UserRole(role).value
            if enabled is not None:
                row.enabled = enabled
            row.updated_at = _dt(self._clock.now())
        return _user_record(row)


# --- Pickup codes ----------------------------------------------------------------------------------


class PickupCodeRepository:
    """Pickup codes as keyed hashes: issue (unique per cart and window), sync, redeem once."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def issue(
        self,
        tracking_number: str,
        cart: str,
        window: str,
        code_hmac: str,
        expires_at: datetime,
        *,
        tail_hmac: str | None = None,
    ) -> PickupCodeRecord:
        """Store the parcel's code for ``cart`` in ``window``; its earlier live codes are revoked (resend).

        ``CodeTaken`` if another code on that cart in that window has the same hash (draw again);
        ``NotFoundError`` if the parcel does not exist.
        """
        _require_text("code hash", code_hmac)
        parcel_id = self._parcel_id(tracking_number)
        now = _dt(self._clock.now())
        row = PickupCodeRow(
            parcel_id=parcel_id,
            cart=cart,
            window_id=window,
            code_hmac=code_hmac,
            tail_hmac=tail_hmac,
            expires_at=expires_at,
            created_at=now,
        )
        try:
            with _write(self._session, conflict="code taken"):
                self._session.execute(
                    update(PickupCodeRow)
                    .where(PickupCodeRow.parcel_id == parcel_id, *_live())
                    .values(revoked_at=now)
                )
                self._session.add(row)
        except ConflictError as exc:
            raise CodeTaken(f"that code is already taken on cart {cart!r} in window {window!r}") from exc
        return _code_record(row, tracking_number)

    def hashes_in_use(self, cart: str, window: str) -> frozenset[str]:
        """Every code hash stored for ``cart`` in ``window`` (live, used or revoked): a new code must
        hash to none of them."""
        query = select(PickupCodeRow.code_hmac).where(
            PickupCodeRow.cart == cart, PickupCodeRow.window_id == window
        )
        with _db_errors():
            return frozenset(self._session.scalars(query).all())

    def find(self, cart: str, window: str, code_hmac: str) -> PickupCodeRecord | None:
        """The code on ``cart`` in ``window`` whose code hash (or step-up hash) is ``code_hmac``, if any."""
        row = self._find(cart, window, code_hmac)
        return self._record(row) if row is not None else None

    def live_for_cart(self, cart: str, window: str | None = None) -> builtins.list[PickupCodeRecord]:
        """The cart's live, unexpired codes (of one window if given): what it syncs for offline checks."""
        now = _dt(self._clock.now())
        query = (
            select(PickupCodeRow, ParcelRow.tracking_number)
            .join(ParcelRow, ParcelRow.id == PickupCodeRow.parcel_id)
            .where(PickupCodeRow.cart == cart, PickupCodeRow.expires_at > now, *_live())
            .order_by(PickupCodeRow.id)
        )
        if window is not None:
            query = query.where(PickupCodeRow.window_id == window)
        with _db_errors():
            rows = self._session.execute(query).all()
        return [_code_record(row, tn) for row, tn in rows]

    def live_for_parcel(self, tracking_number: str) -> PickupCodeRecord | None:
        """The parcel's live code (the newest), if it has one."""
        query = (
            select(PickupCodeRow)
            .where(PickupCodeRow.parcel_id == self._parcel_id(tracking_number), *_live())
            .order_by(PickupCodeRow.id.desc())
            .limit(1)
        )
        with _db_errors():
            row = self._session.scalars(query).one_or_none()
        return _code_record(row, tracking_number) if row is not None else None

    def redeem(self, cart: str, window: str, code_hmac: str, *, at: float | None = None) -> PickupCodeRecord:
        """Mark the matching code used, once: a single atomic update, so two redeemers never both win.

        ``code_hmac`` may be the code hash or the step-up hash. Raises ``CodeAlreadyUsed`` on a second
        use, ``CodeExpired`` after ``expires_at``, ``NotFoundError`` when no live code matches.
        """
        when = _dt(self._clock.now() if at is None else at)
        matches = (
            PickupCodeRow.cart == cart,
            PickupCodeRow.window_id == window,
            or_(PickupCodeRow.code_hmac == code_hmac, PickupCodeRow.tail_hmac == code_hmac),
        )
        with _db_errors():
            result = self._session.execute(
                update(PickupCodeRow)
                .where(*matches, *_live(), PickupCodeRow.expires_at > when)
                .values(used_at=when)
            )
        row = self._find(cart, window, code_hmac)
        if _rowcount(result) == 1 and row is not None:
            return self._record(row)
        if row is None or row.revoked_at is not None:
            raise NotFoundError(f"no live pickup code matches on cart {cart!r} in window {window!r}")
        if row.used_at is not None:
            raise CodeAlreadyUsed(f"this pickup code on cart {cart!r} was already used")
        raise CodeExpired(f"this pickup code on cart {cart!r} expired with window {window!r}")

    def _find(self, cart: str, window: str, code_hmac: str) -> PickupCodeRow | None:
        query = (
            select(PickupCodeRow)
            .where(
                PickupCodeRow.cart == cart,
                PickupCodeRow.window_id == window,
                or_(PickupCodeRow.code_hmac == code_hmac, PickupCodeRow.tail_hmac == code_hmac),
            )
            .order_by(PickupCodeRow.id.desc())
            .limit(1)
            .execution_options(populate_existing=True)
        )
        with _db_errors():
            return self._session.scalars(query).one_or_none()

    def _record(self, row: PickupCodeRow) -> PickupCodeRecord:
        with _db_errors():
            tn = self._session.scalar(select(ParcelRow.tracking_number).where(ParcelRow.id == row.parcel_id))
        return _code_record(row, tn or "")

    def _parcel_id(self, tracking_number: str) -> int:
        with _db_errors():
            parcel_id = self._session.scalar(
                select(ParcelRow.id).where(ParcelRow.tracking_number == tracking_number)
            )
        if parcel_id is None:
            raise NotFoundError(f"parcel {tracking_number!r} does not exist")
        return parcel_id


# --- Retention -------------------------------------------------------------------------------------


def purge_personal_data(session: Session, clock: Clock, older_than: datetime) -> PurgeCounts:
    """Erase the personal data of parcels delivered and orders finished before ``older_than`` (aware).

    Blanks the encrypted name and phone, the phone lookup hash and the masked copies, and sets
    ``personal_data_purged_at`` to the clock's now; rows already purged are left alone. Parcels that
    never reached a final state (still at the station) keep their data. Returns how many were purged.
    """
    now = _dt(clock.now())
    blank = {"phone_hmac": None, "name_masked": "", "phone_masked": "", "personal_data_purged_at": now}
    with _db_errors():
        parcels = session.execute(
            update(ParcelRow)
            .where(ParcelRow.delivered_at < older_than, ParcelRow.personal_data_purged_at.is_(None))
            .values(recipient_name_enc=None, recipient_phone_enc=None, **blank)
        )
        orders = session.execute(
            update(OrderRow)
            .where(OrderRow.finished_at < older_than, OrderRow.personal_data_purged_at.is_(None))
            .values(contact_name_enc=None, contact_phone_enc=None, **blank)
        )
    return PurgeCounts(parcels=_rowcount(parcels), orders=_rowcount(orders))


# --- Helpers ---------------------------------------------------------------------------------------

_Row = TypeVar("_Row", ParcelEventRow, OrderEventRow, TaskEventRow)
_Query = TypeVar("_Query", bound=Select[Any])


@contextmanager
def _write(session: Session, *, conflict: str) -> Iterator[None]:
    """Run the block in a savepoint and flush it, turning database errors into the store's."""
    try:
        with session.begin_nested():
            yield
            session.flush()
    except StaleDataError as exc:
        raise StaleEntity(conflict) from exc
    except IntegrityError as exc:
        kind = integrity_kind(exc)
        if kind == "unique":
            raise ConflictError(conflict) from exc
        if kind == "foreign_key":
            raise NotFoundError("a referenced row does not exist") from exc
        raise StoreError(f"write refused by the database: {exc.orig}") from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {exc}") from exc


@contextmanager
def _db_errors() -> Iterator[None]:
    """Turn database errors raised by a read or a bulk statement into ``StoreError``."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {exc}") from exc


def _rowcount(result: object) -> int:
    """Rows a bulk UPDATE/DELETE touched."""
    count = getattr(result, "rowcount", 0)
    return int(count) if isinstance(count, int) else 0


def _live() -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """A code that is neither used nor revoked."""
    return PickupCodeRow.used_at.is_(None), PickupCodeRow.revoked_at.is_(None)


def _where_state(query: _Query, column: Any, state: str | Collection[str] | None, states: Any) -> _Query:
    """Filter on one state or any of several (``ValueError`` for one that ``states`` does not know)."""
    if state is None:
        return query
    if isinstance(state, str):
        return query.where(column == states(state).value)
    return query.where(column.in_([states(s).value for s in state]))


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be within 1..{MAX_LIMIT}, got {limit}")
    return limit


def _require_text(what: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must not be empty")


def _person_name(name: str | None, who: str) -> str:
    """A recipient's or contact's name, trimmed; ``InvalidData`` if blank or too long."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidData(f"the {who}'s name must not be empty")
    name = name.strip()
    if len(name) > MAX_PERSON_NAME:
        raise InvalidData(f"the {who}'s name is longer than {MAX_PERSON_NAME} characters")
    return name


def _dt(at: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(at, tz=UTC)


def _dt_or_none(at: float | None) -> datetime | None:
    return _dt(at) if at is not None else None


def _ts(at: datetime) -> float:
    return at.timestamp()


def _ts_or_none(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


def _parcel_context(tracking_number: str) -> str:
    """Encryption context binding a blob to its parcel (a blob moved to another row fails to decrypt)."""
    return f"parcel/{tracking_number}"


def _order_context(order_id: str) -> str:
    return f"order/{order_id}"


def _decrypt(
    cipher: Cipher, what: str, context: str, name_enc: bytes | None, phone_enc: bytes | None
) -> Contact:
    if name_enc is None and phone_enc is None:
        raise PersonalDataGone(f"the personal data of {what} was purged or never given")
    name = cipher.decrypt(name_enc, context + "/name") if name_enc is not None else ""
    phone = cipher.decrypt(phone_enc, context + "/phone") if phone_enc is not None else ""
    return Contact(name=name, phone=phone)


def _event_row(table: type[_Row], event: DomainEvent, **owner: Any) -> _Row:
    """The row storing ``event`` (``owner``: the parcel, order or task it belongs to)."""
    return table(
        sequence=event.sequence,
        kind=event.kind,
        from_state=event.from_state,
        to_state=event.to_state,
        at=_dt(event.at),
        data=json.dumps(dict(event.data), ensure_ascii=False, sort_keys=True),
        **owner,
    )


def _domain_event(
    entity: EntityKind, entity_id: str, row: ParcelEventRow | OrderEventRow | TaskEventRow
) -> DomainEvent:
    data: Mapping[str, JsonScalar] = json.loads(row.data)
    return DomainEvent(
        entity=entity,
        entity_id=entity_id,
        kind=row.kind,
        from_state=row.from_state,
        to_state=row.to_state,
        at=_ts(row.at),
        sequence=row.sequence,
        data=data,
    )


def _set_parcel(row: ParcelRow, parcel: Parcel) -> None:
    """Copy the entity's fields onto its row."""
    row.size = parcel.size.value
    row.building = parcel.destination.building
    row.room = parcel.destination.room
    row.dorm = parcel.destination.dorm
    row.place = parcel.destination.place
    row.office = parcel.office
    row.state = parcel.state.value
    row.window_id = parcel.window
    row.stop = parcel.stop
    row.cart = parcel.cart
    row.compartment = parcel.compartment
    row.robot = parcel.robot
    row.rolled = parcel.rolled
    row.reason = parcel.reason
    row.delivered_at = _dt_or_none(parcel.finished_at)
    row.version = parcel.version


def _parcel(row: ParcelRow) -> Parcel:
    return Parcel(
        tracking_number=row.tracking_number,
        size=SizeClass(row.size),
        destination=Destination(building=row.building, room=row.room, dorm=row.dorm, place=row.place),
        received_at=_ts(row.created_at),
        state=ParcelState(row.state),
        office=row.office,
        window=row.window_id,
        stop=row.stop,
        cart=row.cart,
        compartment=row.compartment,
        robot=row.robot,
        rolled=row.rolled,
        reason=row.reason,
        finished_at=_ts_or_none(row.delivered_at),
        version=row.version,
    )


def _parcel_record(row: ParcelRow) -> ParcelRecord:
    return ParcelRecord(
        id=row.id,
        parcel=_parcel(row),
        recipient=MaskedContact(name=row.name_masked, phone=row.phone_masked),
        created_at=row.created_at,
        updated_at=row.updated_at,
        delivered_at=row.delivered_at,
        personal_data_purged_at=row.personal_data_purged_at,
    )


def _set_order(row: OrderRow, order: Order) -> None:
    row.state = order.state.value
    row.eta = _dt_or_none(order.eta)
    row.robot = order.robot
    row.reason = order.reason
    row.finished_at = _dt_or_none(order.finished_at)
    row.version = order.version


def _order(row: OrderRow) -> Order:
    return Order(
        id=row.id,
        partner=row.partner,
        partner_ref=row.partner_ref,
        kind=OrderKind(row.kind),
        place=row.place,
        earliest_at=_ts(row.earliest_at),
        latest_at=_ts(row.latest_at),
        created_at=_ts(row.created_at),
        size=SizeClass(row.size),
        origin=row.origin,
        state=OrderState(row.state),
        eta=_ts_or_none(row.eta),
        robot=row.robot,
        reason=row.reason,
        finished_at=_ts_or_none(row.finished_at),
        version=row.version,
    )


def _order_record(row: OrderRow) -> OrderRecord:
    return OrderRecord(
        order=_order(row),
        idempotency_key=row.idempotency_key,
        contact=MaskedContact(name=row.name_masked, phone=row.phone_masked),
        created_at=row.created_at,
        updated_at=row.updated_at,
        personal_data_purged_at=row.personal_data_purged_at,
    )


def _set_task(row: TaskRow, task: Task) -> None:
    row.state = task.state.value
    row.reason = task.reason
    row.finished_at = _dt_or_none(task.finished_at)
    row.version = task.version


def _task(row: TaskRow) -> Task:
    return Task(
        id=row.id,
        robot=row.robot,
        sequence=row.sequence,
        kind=row.kind,
        place=row.place,
        created_at=_ts(row.created_at),
        window=row.window_id,
        parcels=tuple(json.loads(row.parcels)),
        orders=tuple(json.loads(row.orders)),
        start_at=_ts_or_none(row.start_at),
        end_at=_ts_or_none(row.end_at),
        state=TaskState(row.state),
        reason=row.reason,
        finished_at=_ts_or_none(row.finished_at),
        version=row.version,
    )


def _task_record(row: TaskRow) -> TaskRecord:
    return TaskRecord(task=_task(row), updated_at=row.updated_at)


def _stored_response(row: IdempotencyKeyRow) -> StoredResponse:
    return StoredResponse(
        client=row.client,
        key=row.idempotency_key,
        request_hash=row.request_hash,
        status=row.status,
        media_type=row.media_type,
        body=row.body,
        created_at=row.created_at,
    )


def _audit_record(row: AuditRow) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        actor=row.actor,
        role=row.role,
        action=row.action,
        entity=row.entity,
        entity_id=row.entity_id,
        reason=row.reason,
        at=row.at,
    )


def _user_record(row: UserRow) -> UserRecord:
    return UserRecord(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash,
        role=UserRole(row.role),
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _code_record(row: PickupCodeRow, tracking_number: str) -> PickupCodeRecord:
    return PickupCodeRecord(
        id=row.id,
        parcel_id=row.parcel_id,
        tracking_number=tracking_number,
        cart=row.cart,
        window=row.window_id,
        code_hmac=row.code_hmac,
        tail_hmac=row.tail_hmac,
        expires_at=row.expires_at,
        created_at=row.created_at,
        used_at=row.used_at,
        revoked_at=row.revoked_at,
    )
