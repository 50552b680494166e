"""The console API for operators: login, roles, users, fleet snapshot and stream, search, unmasking,
alarms, outbox and audit.

Authentication. ``POST /v1/console/login`` checks the argon2 password hash (off the event loop; an
unknown user name costs the same through ``dummy_verify``) and opens a session: the answer carries a
bearer token and a CSRF token, and sets two cookies, the session token (``robopost_session``: HttpOnly,
SameSite=Strict) and the CSRF token (``robopost_csrf``, readable by the page). The store keeps only the
token's SHA-256 (``console_sessions``), which ends after ``security.session_ttl_s`` or at logout. A
request authenticates with ``Authorization: Bearer <token>`` or with the session cookie; a
cookie-authenticated request that changes something (not GET/HEAD/OPTIONS) also needs
``X-CSRF-Token`` (signed double submit, ``orchestrator.security.tokens``). An account is locked for
15 minutes after 10 failed logins within 15 minutes; a locked account, an unknown name, a disabled
user and a wrong password all get the same 401.

Roles: viewer < operator < admin (``require_role(min_role)`` is the dependency other routers use;
``current_operator(request)`` gives the ``Operator`` of any role). A viewer never sees personal data
in clear: every response carries the masked copies; only ``POST ...:reveal`` shows a name and phone,
to an operator or admin who gives a reason, and writes the audit entry in the same transaction.

=======  ===============================================  =========  ==================================
method   path                                             role       what
=======  ===============================================  =========  ==================================
POST     /v1/console/login                                —          open a session (token + cookies)
POST     /v1/console/logout                               viewer     end this session
GET      /v1/console/me                                   viewer     who am I, until when, CSRF token
GET      /v1/console/users                                admin      every console user
POST     /v1/console/users                                admin      add a user
PATCH    /v1/console/users/{user_id}                      admin      change role, password, enabled
GET      /v1/console/fleet                                viewer     fleet snapshot
WS       /v1/console/stream                               viewer     snapshot, then changes (``?token=``)
GET      /v1/console/parcels                              viewer     search (masked)
GET      /v1/console/parcels/{tracking_number}            viewer     one parcel and its history
POST     /v1/console/parcels/{tracking_number}:reveal     operator   recipient in clear (audited)
GET      /v1/console/orders                               viewer     search (masked)
GET      /v1/console/orders/{order_id}                    viewer     one order and its history
POST     /v1/console/orders/{order_id}:reveal             operator   contact in clear (audited)
GET      /v1/console/alarms                               viewer     robots offline/erroring, dead
                                                                     letters, failed/returned parcels
POST     /v1/console/alarms/{alarm_id}:ack                operator   acknowledge (audited)
GET      /v1/console/outbox                               viewer     notification outbox (masked)
POST     /v1/console/outbox/{entry_id}:retry              operator   send a dead letter again (audited)
GET      /v1/console/audit                                admin      the audit log, newest first
=======  ===============================================  =========  ==================================

The stream. ``EventHub`` fans events out to every open WebSocket; anything may ``publish`` to it
(thread-safe), e.g. ``console_hub(app).publish({"type": "parcel", ...})`` or, after a commit,
``publish_domain_events(app, events)``. The fleet master's events and robot states (at most one per
robot per second) are forwarded by this router's lifespan. A client that falls too far behind is
closed with code 1013 and reconnects (getting a fresh snapshot).

Admin bootstrap without the API: ``create_user``, ``set_password`` and ``list_users`` work on the
settings' database directly (the ``robopost user`` command).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query, Request, Response, WebSocket
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect, WebSocketState

from interfaces.clock import Clock, RealClock
from orchestrator.api.live_operations import operations_of
from orchestrator.api.live_ports import LoggedAlarm
from orchestrator.api.problems import Problem, problem_responses
from orchestrator.api.services import Services, services_of
from orchestrator.domain import DomainEvent, OrderKind, OrderState, ParcelState, SizeClass
from orchestrator.domain.order import FINAL_ORDER_STATES
from orchestrator.fleet import FleetMaster
from orchestrator.fleet.errors import UnknownRobotError
from orchestrator.fleet.events import FleetEvent
from orchestrator.fleet.picture import Link, RobotView
from orchestrator.notify import Outbox, OutboxEntry, OutboxStatus
from orchestrator.security.errors import PasswordHashError
from orchestrator.security.passwords import PasswordHashing, default_hashing
from orchestrator.security.tokens import check_csrf, csrf_token, new_token, token_hash
from orchestrator.settings import Settings
from orchestrator.store import (
    NotFoundError,
    RobotRecord,
    RobotRepository,
    make_engine,
    session_factory,
    upgrade,
)
from orchestrator.store.console_tables import AlarmAckRow, ConsoleSessionRow
from orchestrator.store.domain_records import (
    AuditRecord,
    MaskedContact,
    OrderRecord,
    ParcelRecord,
    UserRecord,
    UserRole,
)
from orchestrator.store.domain_repositories import (
    MAX_LIMIT,
    AuditRepository,
    OrderRepository,
    ParcelRepository,
    UserRepository,
)
from orchestrator.store.domain_tables import UserRow

log = logging.getLogger(__name__)

SESSION_COOKIE = "robopost_session"
CSRF_COOKIE = "robopost_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

LOCK_AFTER_FAILURES = 10
"""Failed logins of one account within ``LOCK_S`` that lock it."""

LOCK_S = 15 * 60.0
"""How long an account stays locked, and the window its failures are counted in."""

NEUTRAL_LOGIN_ERROR = "unknown user name or wrong password"
"""The one answer to every failed login (unknown, disabled, locked, wrong password)."""

ROLE_RANK = {UserRole.VIEWER: 0, UserRole.OPERATOR: 1, UserRole.ADMIN: 2}
"""Each role may do what the ones ranked below it may."""

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
MIN_PASSWORD = 8
MAX_PASSWORD = 256
MAX_ID = 2**31 - 1
"""Largest row id accepted in a path or query (every backend's INTEGER holds it)."""

TEXT_PATTERN = r"^[^\x00-\x1f\x7f]+$"
"""Free text in a query: no control characters (PostgreSQL refuses NUL)."""

TRACKING_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
ORDER_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
ALARM_ID_MAX = 160
ROBOT_UPDATE_INTERVAL_S = 1.0
"""A robot's state is forwarded to the stream at most this often."""

STREAM_QUEUE = 1000
"""Events a stream may fall behind before it is closed (code 1013)."""

CLOSE_UNAUTHORIZED = 4401
CLOSE_SESSION_ENDED = 4403
CLOSE_TOO_SLOW = 1013
CLOSE_POLICY = 1008

_BEARER = HTTPBearer(auto_error=False, description="the token from POST /v1/console/login")
_COOKIE = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="the session cookie")

PROBLEMS_AUTH = (401, 403, 422)
"""Problem responses of every authenticated route."""

PROBLEMS_BODY = (400, *PROBLEMS_AUTH)
"""... and of those that read a JSON body (400: not even readable as text)."""


# --- Operators, sessions and roles ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operator:
    """The console user behind a request: who, which role, which session, how they authenticated."""

    user_id: int
    username: str
    role: UserRole
    session_id: int
    expires_at: datetime
    via: Literal["bearer", "cookie"]
    csrf_token: str = field(repr=False)

    def may(self, role: UserRole | str) -> bool:
        """Whether this operator's role is ``role`` or above."""
        return ROLE_RANK[self.role] >= ROLE_RANK[UserRole(role)]


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A session just opened: the token (given once, to the client) and when it ends."""

    token: str = field(repr=False)
    session_id: int
    expires_at: datetime
    user: UserRecord


class ConsoleSessions:
    """Console sessions in the store, inside the caller's session (only token hashes are kept)."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def open(self, user_id: int, token: str, ttl_s: float) -> ConsoleSessionRow:
        """Store a new session for ``token``, ending ``ttl_s`` from now; drops sessions already over."""
        now = _utc(self._clock.now())
        self._session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at <= now))
        row = ConsoleSessionRow(
            token_hash=token_hash(token),
            user_id=user_id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
            revoked_at=None,
        )
        self._session.add(row)
        self._session.flush()
        return row

    def find(self, token: str) -> tuple[int, datetime, UserRecord] | None:
        """(session id, end, user) of a live session of an enabled user for ``token``, else ``None``."""
        now = _utc(self._clock.now())
        query = (
            select(ConsoleSessionRow.id, ConsoleSessionRow.expires_at, UserRow.id)
            .join(UserRow, UserRow.id == ConsoleSessionRow.user_id)
            .where(
                ConsoleSessionRow.token_hash == token_hash(token),
                ConsoleSessionRow.expires_at > now,
                ConsoleSessionRow.revoked_at.is_(None),
                UserRow.enabled.is_(True),
            )
        )
        found = self._session.execute(query).one_or_none()
        if found is None:
            return None
        session_id, expires_at, user_id = found
        user = UserRepository(self._session, self._clock).get(user_id)
        return session_id, _aware(expires_at), user

    def revoke(self, session_id: int) -> None:
        """End one session now."""
        self._session.execute(
            update(ConsoleSessionRow)
            .where(ConsoleSessionRow.id == session_id, ConsoleSessionRow.revoked_at.is_(None))
            .values(revoked_at=_utc(self._clock.now()))
        )

    def revoke_user(self, user_id: int) -> list[int]:
        """End every live session of a user; the ids of the sessions ended."""
        ids = list(
            self._session.scalars(
                select(ConsoleSessionRow.id).where(
                    ConsoleSessionRow.user_id == user_id, ConsoleSessionRow.revoked_at.is_(None)
                )
            )
        )
        if ids:
            self._session.execute(
                update(ConsoleSessionRow)
                .where(ConsoleSessionRow.id.in_(ids))
                .values(revoked_at=_utc(self._clock.now()))
            )
        return ids


class LoginThrottle:
    """Locks an account for ``lock_s`` after ``failures`` failed logins within ``lock_s`` (in memory).

    Keys are case-folded user names, known or not (so the lock reveals nothing). At most
    ``max_accounts`` failure counts are kept (the stalest are forgotten beyond that); a lock is never
    forgotten before it runs out. Thread-safe.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        failures: int = LOCK_AFTER_FAILURES,
        lock_s: float = LOCK_S,
        max_accounts: int = 10_000,
    ) -> None:
        self._clock = clock
        self._failures = failures
        self._lock_s = lock_s
        self._max = max_accounts
        self._seen: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._mutex = threading.Lock()

    def locked(self, username: str) -> bool:
        """Whether the account is locked now."""
        key, now = username.casefold(), self._clock.now()
        with self._mutex:
            until = self._locked_until.get(key)
            if until is not None and until <= now:
                del self._locked_until[key]
                until = None
            return until is not None

    def failed(self, username: str) -> bool:
        """Count a failed login; whether the account is locked by it."""
        key, now = username.casefold(), self._clock.now()
        with self._mutex:
            times = self._seen.setdefault(key, deque())
            times.append(now)
            while times and times[0] <= now - self._lock_s:
                times.popleft()
            if len(times) >= self._failures:
                self._locked_until[key] = now + self._lock_s
                times.clear()
            self._bound()
            return key in self._locked_until

    def succeeded(self, username: str) -> None:
        """A good login forgets the account's failures."""
        with self._mutex:
            self._seen.pop(username.casefold(), None)

    def _bound(self) -> None:
        """Forget the oldest failure counts beyond ``max_accounts``; locks only once over."""
        while len(self._seen) > self._max:
            self._seen.pop(next(iter(self._seen)))
        if len(self._locked_until) > self._max:
            now = self._clock.now()
            for key in [k for k, until in self._locked_until.items() if until <= now]:
                del self._locked_until[key]


# --- The event hub (WebSocket stream) ---------------------------------------------------------------


class Subscription:
    """One stream's queue of events; closed when the client leaves, falls behind, or its session ends."""

    def __init__(self, hub: EventHub, maxsize: int, session_id: int | None) -> None:
        self.session_id = session_id
        self.close_code: int | None = None
        self._hub = hub
        self._maxsize = maxsize
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()  # bounded by ``offer``

    def offer(self, event: dict[str, Any]) -> None:
        """Queue an event; a stream ``maxsize`` events behind is ended with ``CLOSE_TOO_SLOW`` (it
        keeps the events it holds, in order, then ends)."""
        if self.close_code is not None:
            return
        if self._queue.qsize() >= self._maxsize:
            self.end(CLOSE_TOO_SLOW)
            return
        self._queue.put_nowait(event)

    def end(self, code: int) -> None:
        """Stop the stream with a WebSocket close code (after the events already queued)."""
        if self.close_code is None:
            self.close_code = code
            self._queue.put_nowait(None)

    async def get(self) -> dict[str, Any] | None:
        """The next event, or ``None`` once the stream was ended (``close_code`` says why)."""
        if self.close_code is not None and self._queue.empty():
            return None
        return await self._queue.get()

    def close(self) -> None:
        """Leave the hub."""
        self._hub.unsubscribe(self)


class EventHub:
    """Broadcasts console events (JSON objects with a ``type``) to every open stream.

    ``publish`` may be called from any thread; delivery happens on the hub's event loop. Each event
    gets a ``seq`` (1, 2, 3, … per hub) and, unless given, ``at`` (ISO 8601 UTC, from the clock).
    """

    def __init__(self, clock: Clock, loop: asyncio.AbstractEventLoop, *, maxsize: int = STREAM_QUEUE) -> None:
        self._clock = clock
        self._loop = loop
        self._maxsize = maxsize
        self._subs: list[Subscription] = []
        self._seq = itertools.count(1)
        self.last_seq = 0

    def subscribe(self, *, session_id: int | None = None) -> Subscription:
        """A new stream receiving every event published from now on (call on the hub's loop)."""
        sub = Subscription(self, self._maxsize, session_id)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub`` (no error if it already left)."""
        if sub in self._subs:
            self._subs.remove(sub)

    @property
    def subscribers(self) -> int:
        """How many streams are open."""
        return len(self._subs)

    def publish(self, event: Mapping[str, Any]) -> None:
        """Send ``event`` to every stream (from any thread); ``ValueError`` if it has no ``type``."""
        if not isinstance(event.get("type"), str):
            raise ValueError("a console event needs a 'type' string")
        message = dict(event)
        if self._on_loop():
            self._deliver(message)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._deliver, message)

    def end_sessions(self, session_ids: Iterable[int]) -> None:
        """Close the streams of these sessions (logout, user disabled); from any thread."""
        ids = frozenset(session_ids)
        if not ids:
            return
        if self._on_loop():
            self._end(ids, CLOSE_SESSION_ENDED)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._end, ids, CLOSE_SESSION_ENDED)

    def close_all(self, code: int = 1001) -> None:
        """End every stream (shutdown)."""
        for sub in list(self._subs):
            sub.end(code)
        self._subs.clear()

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _deliver(self, message: dict[str, Any]) -> None:
        self.last_seq = next(self._seq)
        message["seq"] = self.last_seq
        message.setdefault("at", _iso(self._clock.now()))
        for sub in list(self._subs):
            sub.offer(message)

    def _end(self, ids: frozenset[int], code: int) -> None:
        for sub in list(self._subs):
            if sub.session_id in ids:
                sub.end(code)


@dataclass
class ConsoleState:
    """What the console router keeps per app (``app.state.console``), made by its lifespan."""

    hub: EventHub
    throttle: LoginThrottle
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def console_state(app: FastAPI) -> ConsoleState:
    """The console's state of a started app; ``RuntimeError`` if the app was not started."""
    state: ConsoleState | None = getattr(app.state, "console", None)
    if state is None:
        raise RuntimeError("the console is not running: start the app (its lifespan) first")
    return state


def console_hub(app: FastAPI) -> EventHub:
    """The app's event hub, to ``publish`` console events to."""
    return console_state(app).hub


def domain_event_json(event: DomainEvent) -> dict[str, Any]:
    """A domain event as a console event: ``{"type": "parcel"|"order"|"task", "id", "kind", ...}``."""
    return {
        "type": event.entity.value,
        "id": event.entity_id,
        "kind": event.kind,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "sequence": event.sequence,
        "at": _iso(event.at),
        "data": dict(event.data),
    }


def publish_domain_events(app: FastAPI, events: Iterable[DomainEvent | None]) -> None:
    """Publish committed domain events to the console stream (nothing if the console is not running)."""
    state: ConsoleState | None = getattr(app.state, "console", None)
    if state is None:
        return
    for event in events:
        if event is not None:
            state.hub.publish(domain_event_json(event))


# --- Request and response models --------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(_Model):
    """User name and password."""

    username: str = Field(min_length=1, max_length=64, examples=["alice"])
    password: str = Field(min_length=1, max_length=MAX_PASSWORD, examples=["correct horse battery"])


class UserView(_Model):
    """A console user (never the password hash)."""

    id: int
    username: str
    role: UserRole
    enabled: bool
    created_at: datetime
    updated_at: datetime


class LoginAnswer(_Model):
    """A new session: send ``token`` as a bearer token, or use the cookies and ``csrf_token``."""

    token: str
    token_type: Literal["bearer"] = "bearer"
    csrf_token: str
    expires_at: datetime
    user: UserView


class Me(_Model):
    """The operator behind the request."""

    user: UserView
    auth: Literal["bearer", "cookie"]
    expires_at: datetime
    csrf_token: str


class UserCreate(_Model):
    """A new console user."""

    username: str = Field(pattern=USERNAME_PATTERN, examples=["bob"])
    password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD, examples=["a long passphrase"])
    role: UserRole = UserRole.VIEWER


class UserChange(_Model):
    """What to change about a user; fields left out stay as they are."""

    role: UserRole | None = None
    enabled: bool | None = None
    password: str | None = Field(default=None, min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)


class UserList(_Model):
    """Every console user, oldest first."""

    users: list[UserView]


class PositionView(_Model):
    """Where a robot is on map ``map_id`` (metres, radians)."""

    x: float
    y: float
    theta: float
    map_id: str


class RobotErrorModel(_Model):
    """An error a robot reports."""

    type: str
    level: str
    description: str


class FleetRobot(_Model):
    """One robot: link, last state summary, position, errors (times in ISO 8601 UTC)."""

    serial: str
    manufacturer: str
    kind: str
    profile: str
    name: str
    link: Link
    online: bool
    link_since: str | None = None
    state_at: str | None = None
    received_at: str | None = None
    age_s: float | None = None
    order_id: str | None = None
    order_update_id: int | None = None
    last_node_id: str | None = None
    last_node_sequence_id: int | None = None
    driving: bool | None = None
    paused: bool | None = None
    battery_charge: float | None = None
    charging: bool | None = None
    operating_mode: str | None = None
    errors: list[RobotErrorModel] = Field(default_factory=list)
    position: PositionView | None = None
    factsheet: str | None = None
    states_received: int = 0
    e_stop: str | None = None
    """``safetyState.eStop`` while it is not NONE: AUTOACK, MANUAL (acknowledged at the robot), REMOTE."""
    field_violation: bool | None = None


class FleetSnapshot(_Model):
    """The fleet now: live from the fleet master (``fleet``) or as last stored (``store``)."""

    source: Literal["fleet", "store"]
    at: str
    robots: list[FleetRobot]
    online: int


class DestinationView(_Model):
    """Where a parcel goes."""

    building: str | None
    room: str | None
    dorm: str | None
    place: str | None


class MaskedPerson(_Model):
    """A person as every response shows them: ``张*``, ``138****1234`` (empty once purged)."""

    name: str
    phone: str


class ParcelView(_Model):
    """A parcel with its recipient masked."""

    tracking_number: str
    state: ParcelState
    size: SizeClass
    destination: DestinationView
    office: bool
    window: str | None
    stop: str | None
    cart: str | None
    compartment: str | None
    robot: str | None
    rolled: int
    reason: str | None
    recipient: MaskedPerson
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    personal_data_purged: bool


class ParcelPage(_Model):
    """Parcels matching a search; ``next_after_id`` pages on (``None`` on the last page)."""

    parcels: list[ParcelView]
    next_after_id: int | None


class EventView(_Model):
    """One state change in an entity's history."""

    sequence: int
    kind: str
    from_state: str | None
    to_state: str
    at: datetime
    data: dict[str, str | int | float | bool | None]


class ParcelDetail(_Model):
    """A parcel and its history, oldest first."""

    parcel: ParcelView
    events: list[EventView]


class OrderView(_Model):
    """A mini-program order with its contact masked."""

    id: str
    partner: str
    partner_ref: str
    kind: OrderKind
    place: str
    origin: str | None
    size: SizeClass
    state: OrderState
    earliest_at: datetime
    latest_at: datetime
    eta: datetime | None
    robot: str | None
    reason: str | None
    contact: MaskedPerson
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    personal_data_purged: bool


class OrderList(_Model):
    """Orders matching a search, oldest first."""

    orders: list[OrderView]


class OrderDetail(_Model):
    """An order and its history, oldest first."""

    order: OrderView
    events: list[EventView]


class RevealRequest(_Model):
    """Why the personal data is needed (written to the audit log)."""

    reason: str = Field(min_length=3, max_length=500, examples=["recipient called: parcel not in locker"])

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        text = " ".join(value.split())
        if len(text) < 3 or not text.isprintable():
            raise ValueError("give a reason of at least 3 printable characters")
        return text


class RevealedContact(_Model):
    """A person's name and phone in clear (the unmasking is in the audit log)."""

    entity: Literal["parcel", "order"]
    id: str
    name: str
    phone: str


AlarmKind = Literal[
    "robot_offline",
    "robot_error",
    "notification_dead",
    "parcel_failed",
    "parcel_returned",
    "operations",
    "lift_fault",
    "order_late",
]
Severity = Literal["critical", "warning", "info"]


class AlarmView(_Model):
    """Something an operator should look at; ``acked`` once someone acknowledged it."""

    id: str
    kind: AlarmKind
    severity: Severity
    subject: str
    message: str
    since: datetime | None
    acked: bool
    acked_by: str | None
    acked_at: datetime | None
    acked_note: str | None = None


class AlarmList(_Model):
    """The alarms now, most severe first."""

    alarms: list[AlarmView]


class AckRequest(_Model):
    """An optional note for the acknowledgement."""

    note: str = Field(default="", max_length=500)


class OutboxEntryView(_Model):
    """A notification in the outbox: masked phone, redacted text."""

    id: int
    kind: str
    to_masked: str
    text_masked: str
    dedupe_key: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class OutboxPage(_Model):
    """Outbox entries newest first; ``next_before_id`` pages on."""

    entries: list[OutboxEntryView]
    next_before_id: int | None


class AuditEntryView(_Model):
    """One audit entry: who did what to which entity, when and why."""

    id: int
    actor: str
    role: str
    action: str
    entity: str
    entity_id: str
    reason: str
    at: datetime


class AuditPage(_Model):
    """Audit entries newest first; ``next_before_id`` pages on."""

    entries: list[AuditEntryView]
    next_before_id: int | None


# --- Authentication ---------------------------------------------------------------------------------


def _presented_token(conn: HTTPConnection) -> tuple[str | None, Literal["bearer", "cookie"]]:
    """The session token of a request: the bearer token if any, else the session cookie."""
    header = conn.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return (value.strip() or None) if scheme.lower() == "bearer" else None, "bearer"
    return conn.cookies.get(SESSION_COOKIE) or None, "cookie"


def _csrf_key(services: Services) -> bytes:
    return services.keys.subkey("csrf")


def _lookup(services: Services, token: str, via: Literal["bearer", "cookie"]) -> Operator | None:
    """The operator of a live session for ``token`` (blocking: run in a thread)."""
    if len(token) > 256:
        return None
    with services.sessions.begin() as session:
        found = ConsoleSessions(session, services.clock).find(token)
    if found is None:
        return None
    session_id, expires_at, user = found
    return Operator(
        user_id=user.id,
        username=user.username,
        role=user.role,
        session_id=session_id,
        expires_at=expires_at,
        via=via,
        csrf_token=csrf_token(token, _csrf_key(services)),
    )


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def current_operator(request: Request) -> Operator:
    """The operator behind ``request``, any role (cached on ``request.state``).

    401 without a live session; 403 for a cookie-authenticated unsafe request without the right
    ``X-CSRF-Token``.
    """
    cached: Operator | None = getattr(request.state, "operator", None)
    if cached is not None:
        return cached
    token, via = _presented_token(request)
    if token is None:
        raise _unauthorized("log in first: send the bearer token or the session cookie")
    services = services_of(request)
    operator = await asyncio.to_thread(_lookup, services, token, via)
    if operator is None:
        raise _unauthorized("the session is unknown, expired or ended: log in again")
    unsafe = via == "cookie" and request.method not in SAFE_METHODS
    if unsafe and not check_csrf(token, _csrf_key(services), request.headers.get(CSRF_HEADER)):
        raise Problem(403, f"a request authenticated by cookie needs the {CSRF_HEADER} header")
    request.state.operator = operator
    return operator


def require_role(min_role: UserRole | str) -> Callable[..., Awaitable[Operator]]:
    """A FastAPI dependency: the request's ``Operator`` if their role is ``min_role`` or above, else
    401 (not logged in) or 403 (role too low). Use as ``Depends(require_role("operator"))``."""
    needed = UserRole(min_role)

    async def dependency(
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
        _cookie: Annotated[str | None, Depends(_COOKIE)],
    ) -> Operator:
        operator = await current_operator(request)
        if not operator.may(needed):
            raise Problem(403, f"this needs the {needed.value} role or higher; you are {operator.role.value}")
        return operator

    return dependency


NameQuery = Annotated[str | None, Query(max_length=128, pattern=TEXT_PATTERN)]
TrackingQuery = Annotated[str | None, Query(alias="tracking", pattern=TRACKING_PATTERN)]
PhoneQuery = Annotated[
    str | None, Query(max_length=32, pattern=TEXT_PATTERN, description="in clear; matched by its hash")
]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
TrackingPath = Annotated[str, Path(pattern=TRACKING_PATTERN)]
OrderPath = Annotated[str, Path(pattern=ORDER_ID_PATTERN)]
Viewer = Annotated[Operator, Depends(require_role(UserRole.VIEWER))]
OperatorRole = Annotated[Operator, Depends(require_role(UserRole.OPERATOR))]
Admin = Annotated[Operator, Depends(require_role(UserRole.ADMIN))]
ServicesDep = Annotated[Services, Depends(services_of)]


# --- Login and users --------------------------------------------------------------------------------


def check_username(username: str) -> str:
    """``username`` if acceptable (letters, digits, ``._@-``, at most 64), else ``ValueError``."""
    if not isinstance(username, str) or not re.fullmatch(USERNAME_PATTERN, username):
        raise ValueError(
            "a user name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    return username


def check_password(password: str) -> str:
    """``password`` if acceptable (``MIN_PASSWORD``..``MAX_PASSWORD`` characters), else ``ValueError``."""
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def _verify(hashing: PasswordHashing, user: UserRecord | None, password: str) -> bool:
    """Check a password as slowly for an unknown user as for a known one."""
    if user is None:
        return hashing.dummy_verify(password)
    try:
        return hashing.verify(user.password_hash, password)
    except PasswordHashError:
        log.error("user %s has an unusable password hash; reset it with robopost user passwd", user.id)
        return False


def _login(services: Services, throttle: LoginThrottle, username: str, password: str) -> OpenedSession:
    """Check the credentials and open a session (blocking: argon2 and the store)."""
    clock, hashing = services.clock, services.passwords
    if throttle.locked(username):
        hashing.dummy_verify(password)
        raise _unauthorized(NEUTRAL_LOGIN_ERROR)
    with services.sessions.begin() as session:
        try:
            user: UserRecord | None = UserRepository(session, clock).get_by_username(username)
        except NotFoundError:
            user = None
    if not _verify(hashing, user, password) or user is None or not user.enabled:
        if throttle.failed(username):
            log.warning("console login locked for %.0f s after repeated failures", LOCK_S)
        raise _unauthorized(NEUTRAL_LOGIN_ERROR)
    throttle.succeeded(username)
    token = new_token()
    with services.sessions.begin() as session:
        users = UserRepository(session, clock)
        if _needs_rehash(hashing, user.password_hash):
            user = users.update(user.id, password_hash=hashing.hash(password))
        row = ConsoleSessions(session, clock).open(user.id, token, services.settings.security.session_ttl_s)
        AuditRepository(session, clock).append(
            actor=user.username, role=user.role.value, action="login", entity="user", entity_id=str(user.id)
        )
        return OpenedSession(token=token, session_id=row.id, expires_at=_aware(row.expires_at), user=user)


def _needs_rehash(hashing: PasswordHashing, stored: str) -> bool:
    try:
        return hashing.needs_rehash(stored)
    except PasswordHashError:
        return False


def _set_cookies(
    request: Request, response: Response, opened: OpenedSession, csrf: str, ttl_s: float
) -> None:
    secure = request.url.scheme == "https"
    common: dict[str, Any] = {"max_age": int(ttl_s), "path": "/", "samesite": "strict", "secure": secure}
    response.set_cookie(SESSION_COOKIE, opened.token, httponly=True, **common)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **common)


def _user_view(user: UserRecord) -> UserView:
    return UserView(
        id=user.id,
        username=user.username,
        role=user.role,
        enabled=user.enabled,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def _audit(session: Session, clock: Clock, who: Operator, action: str, entity: str, entity_id: str,
           reason: str = "") -> None:  # fmt: skip
    AuditRepository(session, clock).append(
        actor=who.username,
        role=who.role.value,
        action=action,
        entity=entity,
        entity_id=entity_id,
        reason=reason,
    )


def _enabled_admins(users: UserRepository) -> set[int]:
    return {u.id for u in users.list() if u.role is UserRole.ADMIN and u.enabled}


def _change_user(
    services: Services, who: Operator, user_id: int, change: UserChange
) -> tuple[UserRecord, list[int]]:
    """Apply a change to a user; (the user now, sessions ended). Keeps at least one enabled admin."""
    clock = services.clock
    with services.sessions.begin() as session:
        users = UserRepository(session, clock)
        before = users.get(user_id)
        stays_admin = (change.role or before.role) is UserRole.ADMIN and (
            change.enabled if change.enabled is not None else before.enabled
        )
        if not stays_admin and _enabled_admins(users) == {user_id}:
            raise Problem(409, "this is the last enabled admin: make another admin first")
        password_hash = services.passwords.hash(change.password) if change.password is not None else None
        after = users.update(user_id, password_hash=password_hash, role=change.role, enabled=change.enabled)
        ended: list[int] = []
        if password_hash is not None or after.enabled is False or after.role is not before.role:
            ended = ConsoleSessions(session, clock).revoke_user(user_id)
        what = [name for name in ("role", "enabled", "password") if getattr(change, name) is not None]
        _audit(session, clock, who, "user.change", "user", str(user_id), reason=", ".join(what))
    return after, ended


# --- Fleet --------------------------------------------------------------------------------------------


def _fleet_of(app: FastAPI) -> FleetMaster | None:
    master: FleetMaster | None = getattr(app.state, "fleet", None)
    return master


def _robot_view(view: RobotView) -> FleetRobot:
    return FleetRobot.model_validate(view.to_json())


def _stored_fleet(app: FastAPI, services: Services) -> list[FleetRobot]:
    """The robots registered at this site with their last stored snapshots (blocking)."""
    from orchestrator.fleet.persistence import SnapshotStore

    site_id: int = app.state.site_record.id
    with services.sessions.begin() as session:
        robots = RobotRepository(session, services.clock).list(site_id=site_id)
    snapshots = SnapshotStore(app.state.engine, site_id, services.clock).read()
    return [_stored_robot(robot, snapshots.get(robot.id)) for robot in robots]


def _stored_robot(robot: RobotRecord, snap: Mapping[str, Any] | None) -> FleetRobot:
    base = FleetRobot(
        serial=robot.serial_number,
        manufacturer=robot.manufacturer,
        kind=robot.kind.value,
        profile=robot.profile,
        name=robot.display_name,
        link=Link.UNKNOWN,
        online=False,
    )
    if snap is None:
        return base
    position = None
    if snap.get("x") is not None and snap.get("y") is not None:
        position = PositionView(
            x=snap["x"], y=snap["y"], theta=snap.get("theta") or 0.0, map_id=snap.get("map_id") or ""
        )
    errors = _stored_errors(snap.get("errors"))
    link = snap.get("link") or Link.UNKNOWN.value
    return base.model_copy(
        update={
            "link": Link(link) if link in Link.__members__ else Link.UNKNOWN,
            "link_since": _iso_dt(snap.get("link_since")),
            "state_at": _iso_dt(snap.get("state_at")),
            "received_at": _iso_dt(snap.get("received_at")),
            "order_id": snap.get("order_id"),
            "order_update_id": snap.get("order_update_id"),
            "last_node_id": snap.get("last_node_id"),
            "driving": snap.get("driving"),
            "paused": snap.get("paused"),
            "battery_charge": snap.get("battery_charge"),
            "charging": snap.get("charging"),
            "operating_mode": snap.get("operating_mode"),
            "errors": errors,
            "position": position,
        }
    )


def _stored_errors(text: object) -> list[RobotErrorModel]:
    import json

    try:
        items = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    return [
        RobotErrorModel(
            type=str(e.get("type", "")),
            level=str(e.get("level", "")),
            description=str(e.get("description", "")),
        )
        for e in items
        if isinstance(e, dict)
    ]


async def fleet_snapshot(app: FastAPI) -> FleetSnapshot:
    """The fleet now: the fleet master's picture, or the robots known to the store."""
    services: Services = app.state.services
    master = _fleet_of(app)
    if master is not None:
        robots = [_robot_view(v) for v in master.views()]
        source: Literal["fleet", "store"] = "fleet"
    else:
        robots = await asyncio.to_thread(_stored_fleet, app, services)
        source = "store"
    online = sum(1 for r in robots if r.online)
    return FleetSnapshot(source=source, at=_iso(services.clock.now()), robots=robots, online=online)


def _fleet_event_json(event: FleetEvent, master: FleetMaster) -> dict[str, Any]:
    """A fleet event as a console event (``fleet.link_changed``, ``fleet.order_ended``, ...)."""
    data = {k: (v.value if isinstance(v, Enum) else v) for k, v in asdict(event).items()}
    data["at"] = _iso(event.at)
    name = type(event).__name__
    kind = "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))
    message: dict[str, Any] = {"type": f"fleet.{kind}", **data}
    with contextlib.suppress(UnknownRobotError):
        message["view"] = master.view(event.robot).to_json()
    return message


async def _forward_fleet(master: FleetMaster, hub: EventHub, clock: Clock) -> None:
    """Forward the fleet master's events, and each robot's state at most once a second, to the hub."""
    last: dict[str, float] = {}

    def on_state(serial: str, _digest: object, _at: float) -> None:
        mono = clock.monotonic()
        if mono - last.get(serial, float("-inf")) < ROBOT_UPDATE_INTERVAL_S:
            return
        last[serial] = mono
        with contextlib.suppress(UnknownRobotError):
            hub.publish({"type": "fleet.robot", "robot": serial, "view": master.view(serial).to_json()})

    remove = master.add_state_listener(on_state)
    try:
        with master.subscribe() as events:
            async for event in events:
                hub.publish(_fleet_event_json(event, master))
    finally:
        remove()


# --- Search views -------------------------------------------------------------------------------------


def _masked(contact: MaskedContact) -> MaskedPerson:
    return MaskedPerson(name=contact.name, phone=contact.phone)


def _parcel_view(record: ParcelRecord) -> ParcelView:
    p = record.parcel
    return ParcelView(
        tracking_number=p.tracking_number,
        state=p.state,
        size=p.size,
        destination=DestinationView(
            building=p.destination.building,
            room=p.destination.room,
            dorm=p.destination.dorm,
            place=p.destination.place,
        ),
        office=p.office,
        window=p.window,
        stop=p.stop,
        cart=p.cart,
        compartment=p.compartment,
        robot=p.robot,
        rolled=p.rolled,
        reason=p.reason,
        recipient=_masked(record.recipient),
        created_at=record.created_at,
        updated_at=record.updated_at,
        delivered_at=record.delivered_at,
        personal_data_purged=record.personal_data_purged_at is not None,
    )


def _order_view(record: OrderRecord) -> OrderView:
    o = record.order
    return OrderView(
        id=o.id,
        partner=o.partner,
        partner_ref=o.partner_ref,
        kind=o.kind,
        place=o.place,
        origin=o.origin,
        size=o.size,
        state=o.state,
        earliest_at=_dt(o.earliest_at),
        latest_at=_dt(o.latest_at),
        eta=_dt(o.eta) if o.eta is not None else None,
        robot=o.robot,
        reason=o.reason,
        contact=_masked(record.contact),
        created_at=record.created_at,
        updated_at=record.updated_at,
        finished_at=_dt(o.finished_at) if o.finished_at is not None else None,
        personal_data_purged=record.personal_data_purged_at is not None,
    )


def _event_view(event: DomainEvent) -> EventView:
    return EventView(
        sequence=event.sequence,
        kind=event.kind,
        from_state=event.from_state,
        to_state=event.to_state,
        at=_dt(event.at),
        data=dict(event.data),
    )


def _outbox_view(entry: OutboxEntry) -> OutboxEntryView:
    return OutboxEntryView(
        id=entry.id,
        kind=entry.kind.value,
        to_masked=entry.to_masked,
        text_masked=entry.text_masked,
        dedupe_key=entry.dedupe_key,
        status=entry.status,
        attempts=entry.attempts,
        next_attempt_at=entry.next_attempt_at,
        last_error=entry.last_error,
        created_at=entry.created_at,
        sent_at=entry.sent_at,
    )


def _audit_view(entry: AuditRecord) -> AuditEntryView:
    return AuditEntryView(
        id=entry.id,
        actor=entry.actor,
        role=entry.role,
        action=entry.action,
        entity=entry.entity,
        entity_id=entry.entity_id,
        reason=entry.reason,
        at=entry.at,
    )


def _phone_filter(phone: str | None) -> str | None:
    """A phone query as given, refusing one that cannot be a phone number with a 422."""
    if phone is None:
        return None
    from orchestrator.security.masking import normalise_phone

    try:
        return normalise_phone(phone)
    except ValueError as exc:
        raise Problem(422, f"phone: {exc}") from None


# --- Alarms -------------------------------------------------------------------------------------------


_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class Alarm:
    """A derived alarm (before its acknowledgement is looked up)."""

    id: str
    kind: AlarmKind
    severity: Severity
    subject: str
    message: str
    since: datetime | None


def alarm_id(*parts: object) -> str:
    """A stable alarm id from its parts (hashed when it would be longer than ``ALARM_ID_MAX``)."""
    text = ":".join(str(p) for p in parts)
    if len(text) <= ALARM_ID_MAX:
        return text
    return f"{parts[0]}:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:40]}"


def _robot_alarms(views: Sequence[RobotView]) -> list[Alarm]:
    alarms: list[Alarm] = []
    for v in views:
        if v.link is not Link.ONLINE:
            severity: Severity = "critical" if v.link is Link.CONNECTIONBROKEN else "warning"
            alarms.append(Alarm(
                alarm_id("robot", v.serial, v.link.value, int(v.link_since or 0)), "robot_offline", severity,
                v.serial, f"robot {v.name or v.serial} is {v.link.value.lower()}",
                _dt(v.link_since) if v.link_since is not None else None,
            ))  # fmt: skip
        for e in v.errors:
            if e.level.upper() in ("FATAL", "WARNING"):
                severity = "critical" if e.level.upper() == "FATAL" else "warning"
                alarms.append(Alarm(
                    alarm_id("robot-error", v.serial, e.type), "robot_error", severity, v.serial,
                    f"robot {v.name or v.serial} reports {e.type}: {e.description}"[:500],
                    _dt(v.state_at) if v.state_at is not None else None,
                ))  # fmt: skip
    return alarms


def _operations_alarms(logged: Sequence[LoggedAlarm]) -> list[Alarm]:
    """The live dispatch loop's alarms (a robot failed, a plan kept, a port that failed, ...)."""
    severities: dict[str, Severity] = {"robot_failed": "critical", "port_failed": "critical"}
    return [
        Alarm(
            alarm_id("operations", a.kind, f"{a.at:.3f}"), "operations", severities.get(a.kind, "warning"),
            a.kind, a.text[:500], _dt(a.at),
        )
        for a in logged
    ]  # fmt: skip


_LIFT_FAULTS: Mapping[str, Severity] = {"FIRE": "critical", "EMERGENCY": "critical", "OFFLINE": "warning"}


def _lift_alarms(live: Any) -> list[Alarm]:
    """Lifts out of service, from the elevator bridges' retained states the console follows
    (``console_live``: fire recall, emergency stop, the controller offline): robots avoid them."""
    if live is None:
        return []
    alarms: list[Alarm] = []
    for lift in list(live.lifts.values()):
        severity = _LIFT_FAULTS.get(lift.mode)
        if severity is not None:
            alarms.append(Alarm(
                alarm_id("lift", lift.building, lift.lift, lift.mode), "lift_fault", severity,
                f"{lift.building}/{lift.lift}",
                f"lift {lift.lift} of {lift.building} is {lift.mode.lower()} at floor {lift.floor or '?'}",
                None,
            ))  # fmt: skip
    return alarms


def _late_orders(session: Session, services: Services) -> list[Alarm]:
    """Orders still open after the end of their promised time window (``latest_at``)."""
    now = services.clock.now()
    open_states = [s for s in OrderState if s not in FINAL_ORDER_STATES]
    found = OrderRepository(session, services.clock, services.personal).search(
        state=open_states, limit=MAX_LIMIT
    )
    return [
        Alarm(
            alarm_id("order-late", r.order.id), "order_late", "warning", r.order.id,
            f"order {r.order.id} ({r.order.kind.value}) is {r.order.state.value} "
            f"{(now - r.order.latest_at) / 60:.0f} min after its promised window",
            _dt(r.order.latest_at),
        )
        for r in found
        if now > r.order.latest_at
    ]  # fmt: skip


def _store_alarms(services: Services) -> list[Alarm]:
    """Dead letters, failed or returned parcels, late orders (blocking)."""
    alarms: list[Alarm] = []
    with services.sessions.begin() as session:
        alarms.extend(_late_orders(session, services))
        for entry in Outbox(session, services.cipher, services.clock).dead_letters(limit=MAX_LIMIT):
            alarms.append(Alarm(
                alarm_id("outbox", entry.id), "notification_dead", "warning", f"outbox/{entry.id}",
                f"{entry.kind.value} to {entry.to_masked} given up after {entry.attempts} attempts"
                + (f": {entry.last_error}" if entry.last_error else ""),
                entry.created_at,
            ))  # fmt: skip
        parcels = ParcelRepository(session, services.clock, services.personal).search(
            state=[ParcelState.FAILED, ParcelState.RETURNED], limit=MAX_LIMIT
        )
        for record in parcels:
            p = record.parcel
            failed = p.state is ParcelState.FAILED
            alarms.append(Alarm(
                alarm_id("parcel", p.tracking_number, p.state.value, p.version),
                "parcel_failed" if failed else "parcel_returned", "warning" if failed else "info",
                p.tracking_number,
                f"parcel {p.tracking_number} {'failed' if failed else 'was returned'}"
                + (f": {p.reason}" if p.reason else ""),
                record.updated_at,
            ))  # fmt: skip
    return alarms


def _with_acks(services: Services, alarms: list[Alarm]) -> list[AlarmView]:
    ids = [a.id for a in alarms]
    acks: dict[str, AlarmAckRow] = {}
    with services.sessions.begin() as session:
        for start in range(0, len(ids), 500):
            rows = session.scalars(
                select(AlarmAckRow).where(AlarmAckRow.alarm_id.in_(ids[start : start + 500]))
            )
            acks.update({row.alarm_id: row for row in rows})
    views = []
    for a in alarms:
        ack = acks.get(a.id)
        views.append(AlarmView(
            id=a.id, kind=a.kind, severity=a.severity, subject=a.subject, message=a.message, since=a.since,
            acked=ack is not None, acked_by=ack.actor if ack else None,
            acked_at=_aware(ack.acked_at) if ack else None, acked_note=(ack.note or None) if ack else None,
        ))  # fmt: skip
    views.sort(key=lambda v: (v.acked, _SEVERITY_RANK[v.severity], v.id))
    return views


async def current_alarms(app: FastAPI) -> list[AlarmView]:
    """Every alarm now, with its acknowledgement (robots from the fleet master, the rest from the store)."""
    services: Services = app.state.services
    master = _fleet_of(app)
    robots = _robot_alarms(master.views()) if master is not None else []
    operations = operations_of(app)
    if operations is not None:
        robots += _operations_alarms(operations.alarms.recent())
    robots += _lift_alarms(getattr(app.state, "console_live", None))

    def rest() -> list[AlarmView]:
        return _with_acks(services, robots + _store_alarms(services))

    return await asyncio.to_thread(rest)


def _ack(services: Services, who: Operator, alarm: AlarmView, note: str) -> AlarmView:
    with services.sessions.begin() as session:
        row = session.get(AlarmAckRow, alarm.id)
        if row is None:
            row = AlarmAckRow(
                alarm_id=alarm.id, actor=who.username, note=note, acked_at=_utc(services.clock.now())
            )
            session.add(row)
            session.flush()
            _audit(session, services.clock, who, "ack", "alarm", alarm.id, reason=note)
        return alarm.model_copy(
            update={
                "acked": True,
                "acked_by": row.actor,
                "acked_at": _aware(row.acked_at),
                "acked_note": row.note or None,
            }
        )


def _retry(services: Services, who: Operator, entry_id: int) -> OutboxEntry:
    """Put an outbox entry back to pending and audit it (blocking)."""
    with services.sessions.begin() as session:
        entry = Outbox(session, services.cipher, services.clock).retry(entry_id)
        _audit(session, services.clock, who, "retry", "outbox", str(entry_id))
    return entry


# --- The stream -----------------------------------------------------------------------------------------


def same_origin(websocket: WebSocket) -> bool:
    """A browser's WebSocket must come from a page of this host (cross-site WebSocket hijacking)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == (websocket.headers.get("host") or "").lower()


async def stream_operator(websocket: WebSocket, token: str | None) -> Operator | None:
    """The operator a WebSocket speaks for: ``?token=`` (bearer) or the session cookie; None if neither
    names a live session (the caller closes the socket)."""
    services: Services = websocket.app.state.services
    presented: str | None
    via: Literal["bearer", "cookie"]
    if token:
        presented, via = token, "bearer"
    else:
        presented, via = websocket.cookies.get(SESSION_COOKIE) or None, "cookie"
    if presented is None:
        return None
    return await asyncio.to_thread(_lookup, services, presented, via)


async def _pump(websocket: WebSocket, sub: Subscription, until: datetime, clock: Clock) -> int:
    """Send the hub's events until the client leaves, the stream ends, or the session expires; the
    close code (0 when the client left)."""

    async def client_gone() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return

    async def session_over() -> None:
        await clock.sleep(max(0.0, until.timestamp() - clock.now()))

    async def send() -> int:
        while True:
            event = await sub.get()
            if event is None:
                return sub.close_code or 1000
            await websocket.send_json(event)

    tasks = {
        asyncio.create_task(client_gone()): "gone",
        asyncio.create_task(session_over()): "expired",
        asyncio.create_task(send()): "ended",
    }
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    first = next(iter(done))
    if tasks[first] == "gone" or first.exception() is not None:
        return 0
    return CLOSE_SESSION_ENDED if tasks[first] == "expired" else int(first.result() or 1000)


async def _serve_stream(websocket: WebSocket, token: str | None) -> None:
    if not same_origin(websocket):
        await websocket.close(code=CLOSE_POLICY, reason="cross-origin stream refused")
        return
    operator = await stream_operator(websocket, token)
    if operator is None:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="log in first")
        return
    app: FastAPI = websocket.app
    hub = console_hub(app)
    sub = hub.subscribe(session_id=operator.session_id)  # before the snapshot: no change is lost
    try:
        await websocket.accept()
        fleet = await fleet_snapshot(app)
        alarms = await current_alarms(app)
        await websocket.send_json({
            "type": "snapshot", "seq": hub.last_seq, "at": fleet.at, "fleet": fleet.model_dump(mode="json"),
            "alarms": [a.model_dump(mode="json") for a in alarms],
        })  # fmt: skip
        code = await _pump(websocket, sub, operator.expires_at, app.state.services.clock)
        if code and websocket.application_state is WebSocketState.CONNECTED:
            await websocket.close(code=code)
    except WebSocketDisconnect:
        pass
    finally:
        sub.close()


# --- The router -------------------------------------------------------------------------------------------


def _lifespan() -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """The console's lifespan: its ``ConsoleState`` on ``app.state.console``; forwards fleet events."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services: Services = app.state.services
        state = ConsoleState(
            hub=EventHub(services.clock, asyncio.get_running_loop()), throttle=LoginThrottle(services.clock)
        )
        app.state.console = state
        master = _fleet_of(app)
        if master is not None:
            state.tasks.append(asyncio.create_task(_forward_fleet(master, state.hub, services.clock)))
        try:
            yield
        finally:
            state.hub.close_all()
            for task in state.tasks:
                task.cancel()
            await asyncio.gather(*state.tasks, return_exceptions=True)

    return lifespan


def operators_router() -> APIRouter:
    """The console API (see the module docstring for the routes)."""
    router = APIRouter(prefix="/v1/console", tags=["console"], lifespan=_lifespan())
    _auth_routes(router)
    _user_routes(router)
    _fleet_routes(router)
    _search_routes(router)
    _alarm_routes(router)
    _outbox_routes(router)
    return router


def _auth_routes(router: APIRouter) -> None:
    @router.post("/login", response_model=LoginAnswer, responses=problem_responses(400, 401, 422))
    async def login(body: LoginRequest, request: Request, response: Response) -> LoginAnswer:
        """Open a session: a bearer token, and the session and CSRF cookies (the same 401 for every
        failure; an account is locked for 15 minutes after 10 failures)."""
        services = services_of(request)
        throttle = console_state(request.app).throttle
        opened = await asyncio.to_thread(_login, services, throttle, body.username, body.password)
        csrf = csrf_token(opened.token, _csrf_key(services))
        _set_cookies(request, response, opened, csrf, services.settings.security.session_ttl_s)
        response.headers["Cache-Control"] = "no-store"
        return LoginAnswer(
            token=opened.token, csrf_token=csrf, expires_at=opened.expires_at, user=_user_view(opened.user)
        )

    @router.post(
        "/logout", status_code=204, response_class=Response, responses=problem_responses(*PROBLEMS_AUTH)
    )
    def logout(who: Viewer, services: ServicesDep, request: Request) -> Response:
        """End this session (its token stops working; its streams close); clears the cookies."""
        with services.sessions.begin() as session:
            ConsoleSessions(session, services.clock).revoke(who.session_id)
            _audit(session, services.clock, who, "logout", "user", str(who.user_id))
        console_hub(request.app).end_sessions([who.session_id])
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    @router.get("/me", response_model=Me, responses=problem_responses(*PROBLEMS_AUTH))
    def me(who: Viewer, services: ServicesDep) -> Me:
        """The operator behind the request, how they authenticated, until when, and their CSRF token."""
        with services.sessions.begin() as session:
            user = UserRepository(session, services.clock).get(who.user_id)
        return Me(user=_user_view(user), auth=who.via, expires_at=who.expires_at, csrf_token=who.csrf_token)


def _user_routes(router: APIRouter) -> None:
    @router.get("/users", response_model=UserList, responses=problem_responses(*PROBLEMS_AUTH))
    def list_users_route(who: Admin, services: ServicesDep) -> UserList:
        """Every console user, oldest first."""
        with services.sessions.begin() as session:
            users = UserRepository(session, services.clock).list()
        return UserList(users=[_user_view(u) for u in users])

    @router.post(
        "/users", status_code=201, response_model=UserView, responses=problem_responses(*PROBLEMS_BODY, 409)
    )
    def add_user(body: UserCreate, who: Admin, services: ServicesDep) -> UserView:
        """Add a console user (409 if the name is taken)."""
        password_hash = services.passwords.hash(body.password)
        with services.sessions.begin() as session:
            user = UserRepository(session, services.clock).add(body.username, password_hash, body.role)
            _audit(session, services.clock, who, "user.create", "user", str(user.id), reason=body.role.value)
        return _user_view(user)

    @router.patch(
        "/users/{user_id}", response_model=UserView, responses=problem_responses(*PROBLEMS_BODY, 404, 409)
    )
    def change_user(
        user_id: Annotated[int, Path(ge=1, le=MAX_ID)],
        body: UserChange,
        who: Admin,
        services: ServicesDep,
        request: Request,
    ) -> UserView:
        """Change a user's role, password or enabled flag; ends their sessions when any of these
        changes. The last enabled admin cannot be demoted or disabled (409)."""
        user, ended = _change_user(services, who, user_id, body)
        console_hub(request.app).end_sessions(ended)
        return _user_view(user)


def _fleet_routes(router: APIRouter) -> None:
    @router.get("/fleet", response_model=FleetSnapshot, responses=problem_responses(*PROBLEMS_AUTH))
    async def fleet(who: Viewer, request: Request) -> FleetSnapshot:
        """Every robot now: live from the fleet master when it runs, else as last stored."""
        return await fleet_snapshot(request.app)

    @router.websocket("/stream")
    async def stream(
        websocket: WebSocket,
        token: Annotated[str | None, Query(max_length=256, description="the session token")] = None,
    ) -> None:
        """WebSocket: a ``snapshot`` message (fleet and alarms), then every change as it happens."""
        await _serve_stream(websocket, token)


def _search_routes(router: APIRouter) -> None:
    @router.get("/parcels", response_model=ParcelPage, responses=problem_responses(*PROBLEMS_AUTH))
    def parcels(
        who: Viewer,
        services: ServicesDep,
        state: Annotated[list[ParcelState] | None, Query()] = None,
        window: NameQuery = None,
        stop: NameQuery = None,
        cart: NameQuery = None,
        tracking: TrackingQuery = None,
        phone: PhoneQuery = None,
        after_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
        limit: LimitQuery = 100,
    ) -> ParcelPage:
        """Parcels matching every filter given (recipients masked), by id; ``after_id`` pages on."""
        with services.sessions.begin() as session:
            found = ParcelRepository(session, services.clock, services.personal).search(
                state=state or None, window=window, stop=stop, cart=cart, tracking_number=tracking,
                phone=_phone_filter(phone), after_id=after_id, limit=limit,
            )  # fmt: skip
        next_after = found[-1].id if len(found) == limit else None
        return ParcelPage(parcels=[_parcel_view(r) for r in found], next_after_id=next_after)

    @router.get(
        "/parcels/{tracking_number}",
        response_model=ParcelDetail,
        responses=problem_responses(*PROBLEMS_AUTH, 404),
    )
    def parcel(tracking_number: TrackingPath, who: Viewer, services: ServicesDep) -> ParcelDetail:
        """One parcel (recipient masked) and its history."""
        with services.sessions.begin() as session:
            repo = ParcelRepository(session, services.clock, services.personal)
            record, events = repo.get(tracking_number), repo.events(tracking_number)
        return ParcelDetail(parcel=_parcel_view(record), events=[_event_view(e) for e in events])

    @router.post(
        "/parcels/{tracking_number}:reveal",
        response_model=RevealedContact,
        responses=problem_responses(*PROBLEMS_BODY, 404),
    )
    def reveal_parcel(
        tracking_number: TrackingPath,
        body: RevealRequest,
        who: OperatorRole,
        services: ServicesDep,
        response: Response,
    ) -> RevealedContact:
        """The recipient's name and phone in clear, for an operator or admin giving a reason; the
        unmasking is written to the audit log (404 once the personal data was purged)."""
        with services.sessions.begin() as session:
            contact = ParcelRepository(session, services.clock, services.personal).reveal_contact(
                tracking_number, actor=who.username, role=who.role.value, reason=body.reason
            )
        response.headers["Cache-Control"] = "no-store"
        return RevealedContact(entity="parcel", id=tracking_number, name=contact.name, phone=contact.phone)

    @router.get("/orders", response_model=OrderList, responses=problem_responses(*PROBLEMS_AUTH))
    def orders(
        who: Viewer,
        services: ServicesDep,
        state: Annotated[list[OrderState] | None, Query()] = None,
        kind: Annotated[OrderKind | None, Query()] = None,
        partner: Annotated[str | None, Query(max_length=64, pattern=TEXT_PATTERN)] = None,
        robot: NameQuery = None,
        phone: PhoneQuery = None,
        limit: LimitQuery = 100,
    ) -> OrderList:
        """Orders matching every filter given (contacts masked), oldest first."""
        with services.sessions.begin() as session:
            found = OrderRepository(session, services.clock, services.personal).search(
                partner=partner,
                state=state or None,
                kind=kind,
                robot=robot,
                phone=_phone_filter(phone),
                limit=limit,
            )
        return OrderList(orders=[_order_view(r) for r in found])

    @router.get(
        "/orders/{order_id}", response_model=OrderDetail, responses=problem_responses(*PROBLEMS_AUTH, 404)
    )
    def order(order_id: OrderPath, who: Viewer, services: ServicesDep) -> OrderDetail:
        """One order (contact masked) and its history."""
        with services.sessions.begin() as session:
            repo = OrderRepository(session, services.clock, services.personal)
            record, events = repo.get(order_id), repo.events(order_id)
        return OrderDetail(order=_order_view(record), events=[_event_view(e) for e in events])

    @router.post(
        "/orders/{order_id}:reveal",
        response_model=RevealedContact,
        responses=problem_responses(*PROBLEMS_BODY, 404),
    )
    def reveal_order(
        order_id: OrderPath,
        body: RevealRequest,
        who: OperatorRole,
        services: ServicesDep,
        response: Response,
    ) -> RevealedContact:
        """The contact's name and phone in clear, for an operator or admin giving a reason (audited)."""
        with services.sessions.begin() as session:
            contact = OrderRepository(session, services.clock, services.personal).reveal_contact(
                order_id, actor=who.username, role=who.role.value, reason=body.reason
            )
        response.headers["Cache-Control"] = "no-store"
        return RevealedContact(entity="order", id=order_id, name=contact.name, phone=contact.phone)


def _alarm_routes(router: APIRouter) -> None:
    @router.get("/alarms", response_model=AlarmList, responses=problem_responses(*PROBLEMS_AUTH))
    async def alarms(
        who: Viewer,
        request: Request,
        acked: Annotated[
            bool | None, Query(description="only acknowledged (true) or open (false) ones")
        ] = None,
    ) -> AlarmList:
        """Robots offline or reporting errors, dead notifications, failed or returned parcels."""
        found = await current_alarms(request.app)
        return AlarmList(alarms=[a for a in found if acked is None or a.acked == acked])

    @router.post(
        "/alarms/{alarm_id}:ack", response_model=AlarmView, responses=problem_responses(*PROBLEMS_BODY, 404)
    )
    async def ack_alarm(
        alarm_id: Annotated[str, Path(max_length=ALARM_ID_MAX, pattern=TEXT_PATTERN)],
        who: OperatorRole,
        request: Request,
        body: Annotated[AckRequest | None, Body()] = None,
    ) -> AlarmView:
        """Acknowledge a current alarm (audited; acknowledging again keeps the first)."""
        services = services_of(request)
        alarm = next((a for a in await current_alarms(request.app) if a.id == alarm_id), None)
        if alarm is None:
            raise Problem(404, f"no current alarm has id {alarm_id!r}")
        acked = await asyncio.to_thread(_ack, services, who, alarm, body.note if body else "")
        console_hub(request.app).publish({"type": "alarm.acked", "alarm": acked.model_dump(mode="json")})
        return acked


def _outbox_routes(router: APIRouter) -> None:
    @router.get("/outbox", response_model=OutboxPage, responses=problem_responses(*PROBLEMS_AUTH))
    def outbox(
        who: Viewer,
        services: ServicesDep,
        status: Annotated[OutboxStatus | None, Query()] = None,
        before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    ) -> OutboxPage:
        """Notifications newest first (phones masked, texts redacted), e.g. ``?status=dead``."""
        with services.sessions.begin() as session:
            entries = Outbox(session, services.cipher, services.clock).list(
                status=status, limit=limit, before_id=before_id
            )
        next_before = entries[-1].id if len(entries) == limit else None
        return OutboxPage(entries=[_outbox_view(e) for e in entries], next_before_id=next_before)

    @router.post(
        "/outbox/{entry_id}:retry",
        response_model=OutboxEntryView,
        responses=problem_responses(*PROBLEMS_AUTH, 404, 409),
    )
    async def retry(
        entry_id: Annotated[int, Path(ge=1, le=MAX_ID)],
        who: OperatorRole,
        services: ServicesDep,
        request: Request,
    ) -> OutboxEntryView:
        """Send a dead (or retrying) notification again now, with fresh attempts (audited; 409 for
        one already sent, cancelled or on its way)."""
        entry = await asyncio.to_thread(_retry, services, who, entry_id)
        services.outbox_worker.wake()  # on the loop: the worker's event is not thread-safe
        view = _outbox_view(entry)
        console_hub(request.app).publish({"type": "outbox.retried", "entry": view.model_dump(mode="json")})
        return view

    @router.get("/audit", response_model=AuditPage, responses=problem_responses(*PROBLEMS_AUTH))
    def audit(
        who: Admin,
        services: ServicesDep,
        entity: Annotated[str | None, Query(max_length=32, pattern=TEXT_PATTERN)] = None,
        entity_id: Annotated[str | None, Query(max_length=160, pattern=TEXT_PATTERN)] = None,
        actor: Annotated[str | None, Query(max_length=64, pattern=TEXT_PATTERN)] = None,
        action: Annotated[str | None, Query(max_length=64, pattern=TEXT_PATTERN)] = None,
        before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    ) -> AuditPage:
        """The audit log newest first (unmaskings, logins, user changes, acknowledgements, retries)."""
        with services.sessions.begin() as session:
            entries = AuditRepository(session, services.clock).list(
                entity=entity,
                entity_id=entity_id,
                actor=actor,
                action=action,
                before_id=before_id,
                limit=limit,
            )
        next_before = entries[-1].id if len(entries) == limit else None
        return AuditPage(entries=[_audit_view(e) for e in entries], next_before_id=next_before)


# --- Admin bootstrap (the ``robopost user`` command) -----------------------------------------------------


def _store_work(settings: Settings, clock: Clock | None, work: Callable[[Session, Clock], Any]) -> Any:
    """Run ``work`` in one transaction on the settings' database, migrated first."""
    engine = make_engine(settings.database.url)
    try:
        upgrade(engine)
        with session_factory(engine).begin() as session:
            return work(session, clock or RealClock())
    finally:
        engine.dispose()


def create_user(
    settings: Settings,
    username: str,
    password: str,
    role: UserRole | str = UserRole.ADMIN,
    *,
    clock: Clock | None = None,
    hashing: PasswordHashing | None = None,
) -> UserRecord:
    """Add a console user straight to the settings' database (migrating it first); the first admin
    is made this way. ``ValueError`` for a bad name, password or role; ``ConflictError`` if the name
    is taken."""
    check_username(username)
    check_password(password)
    role = UserRole(role)
    password_hash = (hashing or default_hashing()).hash(password)

    def work(session: Session, clk: Clock) -> UserRecord:
        return UserRepository(session, clk).add(username, password_hash, role)

    user: UserRecord = _store_work(settings, clock, work)
    return user


def set_password(
    settings: Settings,
    username: str,
    password: str,
    *,
    clock: Clock | None = None,
    hashing: PasswordHashing | None = None,
) -> UserRecord:
    """Give a user a new password (and enable them), ending their sessions. ``NotFoundError`` if
    there is no such user, ``ValueError`` for a bad password."""
    check_password(password)
    password_hash = (hashing or default_hashing()).hash(password)

    def work(session: Session, clk: Clock) -> UserRecord:
        users = UserRepository(session, clk)
        user = users.update(users.get_by_username(username).id, password_hash=password_hash, enabled=True)
        ConsoleSessions(session, clk).revoke_user(user.id)
        return user

    user: UserRecord = _store_work(settings, clock, work)
    return user


def list_users(settings: Settings, *, clock: Clock | None = None) -> list[UserRecord]:
    """Every console user of the settings' database, oldest first."""
    users: list[UserRecord] = _store_work(settings, clock, lambda s, c: UserRepository(s, c).list())
    return users


# --- Helpers -----------------------------------------------------------------------------------------------


def _utc(at: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(at, tz=UTC)


_dt = _utc


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_dt(value: object) -> str | None:
    if not isinstance(value, datetime):
        return None
    return _iso(_aware(value).timestamp())


__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "ConsoleSessions",
    "EventHub",
    "LoginThrottle",
    "Operator",
    "console_hub",
    "create_user",
    "current_operator",
    "domain_event_json",
    "list_users",
    "operators_router",
    "publish_domain_events",
    "require_role",
    "set_password",
]
