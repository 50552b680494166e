"""What the domain repositories take and hand out: frozen values, detached from any session.

Records wrap the pure domain entity (``record.parcel``, ``record.order``, ``record.task``: times in
epoch seconds) and add what only the store knows (row id, masked personal data, aware UTC datetimes).
Personal data in clear appears only in ``ParcelIntake``/``OrderDraft`` (going in) and ``Contact``
(coming out of an audited unmasking); records carry the masked copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from orchestrator.domain import (
    DomainEvent,
    Order,
    OrderKind,
    OrderState,
    Parcel,
    ParcelState,
    SizeClass,
    Task,
    TaskState,
)


class ImportStatus(StrEnum):
    """What became of one row of a parcel import."""

    CREATED = "created"  # a new parcel, received now
    DUPLICATE = "duplicate"  # the tracking number is already stored (or earlier in the batch): kept as is
    REFUSED = "refused"  # the row is malformed (``reason`` says why); nothing stored


class UserRole(StrEnum):
    """Console roles, each allowed what the one before is, and more."""

    VIEWER = "viewer"  # sees masked data
    OPERATOR = "operator"  # acts on parcels/orders; may unmask with a reason (audited)
    ADMIN = "admin"  # manages users and settings


@dataclass(frozen=True, slots=True)
class ParcelIntake:
    """One row from the station's sorting system (personal data in clear, encrypted on import).

    A destination is a ``dorm`` or a ``building`` (with a ``room`` if known); ``place`` is the campus
    map place it resolves to, if the caller resolved it.
    """

    tracking_number: str
    size: SizeClass | str
    recipient_name: str
    recipient_phone: str
    building: str | None = None
    room: str | None = None
    dorm: str | None = None
    place: str | None = None


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """The fate of row ``index`` (0-based) of an import; ``parcel_id`` of the stored parcel unless refused."""

    index: int
    tracking_number: str
    status: ImportStatus
    parcel_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class MaskedContact:
    """A person's name and phone as every response shows them (``张*``, ``138****1234``); both are
    empty once the personal data was purged (or when none was given)."""

    name: str
    phone: str


@dataclass(frozen=True, slots=True)
class Contact:
    """A person's name and phone in clear: only from an unmasking (audited) or for sending an SMS."""

    name: str
    phone: str

    def __repr__(self) -> str:  # never print personal data by accident
        return "Contact(<personal data>)"


@dataclass(frozen=True, slots=True)
class ParcelRecord:
    """A stored parcel: the domain entity, its row id, the masked recipient and store timestamps."""

    id: int
    parcel: Parcel
    recipient: MaskedContact
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    personal_data_purged_at: datetime | None

    @property
    def tracking_number(self) -> str:
        """The parcel's tracking number (its key)."""
        return self.parcel.tracking_number

    @property
    def state(self) -> ParcelState:
        """The parcel's current state."""
        return self.parcel.state


@dataclass(frozen=True, slots=True)
class OrderDraft:
    """A new mini-program order as the partner sends it (times in epoch seconds; contact optional)."""

    partner: str
    partner_ref: str
    kind: OrderKind | str
    place: str
    earliest_at: float
    latest_at: float
    size: SizeClass | str = SizeClass.S
    origin: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """A stored order: the domain entity, its idempotency key, the masked contact and timestamps."""

    order: Order
    idempotency_key: str | None
    contact: MaskedContact
    created_at: datetime
    updated_at: datetime
    personal_data_purged_at: datetime | None

    @property
    def id(self) -> str:
        """The order id (ours, given to the partner)."""
        return self.order.id

    @property
    def state(self) -> OrderState:
        """The order's current state."""
        return self.order.state


@dataclass(frozen=True, slots=True)
class OrderCreation:
    """What ``OrderRepository.create`` did: ``created`` is false when the order already existed for
    this idempotency key (then ``event`` is ``None`` and ``record`` is the order as it is now)."""

    record: OrderRecord
    created: bool
    event: DomainEvent | None = None


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A stored task: the domain entity and store timestamps."""

    task: Task
    updated_at: datetime

    @property
    def id(self) -> str:
        """The task id."""
        return self.task.id

    @property
    def state(self) -> TaskState:
        """The task's current state."""
        return self.task.state


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The answer given to a client's request with an ``Idempotency-Key``: replay it on a retry."""

    client: str
    key: str
    request_hash: str
    status: int
    media_type: str
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit entry: ``actor`` (with ``role``) did ``action`` to ``entity`` ``entity_id`` at ``at``."""

    id: int
    actor: str
    role: str
    action: str
    entity: str
    entity_id: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A console user; ``password_hash`` is an argon2 PHC string (never a password)."""

    id: int
    username: str
    password_hash: str
    role: UserRole
    enabled: bool
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:
        return f"UserRecord(id={self.id}, username={self.username!r}, role={self.role.value!r})"


@dataclass(frozen=True, slots=True)
class PickupCodeRecord:
    """A parcel's pickup code on ``cart`` in ``window``: its keyed hashes only.

    ``code_hmac`` hashes the code alone, ``tail_hmac`` (if issued) the code with the recipient's phone
    tail (the step-up check of ``orchestrator.security.codes``). ``live`` codes are neither used nor
    revoked; a live code also has to be unexpired to open a compartment.
    """

    id: int
    parcel_id: int
    tracking_number: str
    cart: str
    window: str
    code_hmac: str
    tail_hmac: str | None
    expires_at: datetime
    created_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None

    @property
    def live(self) -> bool:
        """Neither used nor replaced by a newer code."""
        return self.used_at is None and self.revoked_at is None


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    """How many parcels and orders had their personal data purged."""

    parcels: int
    orders: int
