"""The partner API for the mini-program backend: signed requests, idempotent order creation, webhooks.

Routes (all under the partner's signature, see below)::

    POST /v1/orders                    a pickup or coffee order → 201 with the order: ``accepted`` (eta)
                                       or ``refused`` (reason), decided by the dispatcher at once
    GET  /v1/orders/{order_id}         the partner's own order (another partner's is a 404)
    POST /v1/orders/{order_id}:cancel  cancel it (200; again on a cancelled order: 200, unchanged;
                                       409 once the parcel is loaded or the order is final)

**Signatures.** Every request carries the four ``X-Robopost-*`` headers of
``orchestrator.security.signing`` (partner id, Unix timestamp, nonce, HMAC-SHA256 over method, path
with query, timestamp, nonce and the body's SHA-256, keyed with the partner's secret from
``security.partners``). Refused: unknown partner, missing or malformed header, bad signature → 401;
timestamp further than ``security.signature_max_skew_s`` from our clock → 401; a nonce used before
→ 409. Every retry needs a fresh nonce and timestamp (the nonce cache lives in memory: after a
restart an old request could pass the nonce check again, which the ``Idempotency-Key`` and the
unique ``ref`` make harmless).

**Times** are RFC 3339 / ISO 8601 strings with an offset (``2027-01-15T16:30:00+08:00``); numbers
(epoch seconds) and times without an offset are refused (422). Answers give times in UTC (``…Z``).

**Idempotency.** ``POST /v1/orders`` takes an ``Idempotency-Key`` header (1-128 printable ASCII
characters, per partner). The order, its ``created`` and ``accepted``/``refused`` events and the
answer (status and body) are written in one transaction before the answer is sent, so the same key
with the same request (method, path, body) returns the original answer byte for byte, also after a
crash and restart (``Idempotent-Replayed: true``); if the first attempt never committed, the retry is
served afresh, exactly once. The same key with a different request is a 422. Without a key, the
partner's ``ref`` (its own order id, unique per partner) still refuses a second order (409).

**Load.** Orders are decided one at a time (one plan); at most ``MAX_WAITING_ORDERS`` may wait
for their turn, more get a 429 with ``Retry-After: 1`` (a retry with the same key is safe).

**Dispatch.** The answer comes from ``services.dispatcher.insert(plan, snapshot, request, now)`` on the
app's ``PlanHolder`` (``app.state.plan_holder``: the current plan and snapshot, changed under its lock;
an accepted order's new plan replaces the held one after the commit). Until the fleet/dispatch loop
keeps it up to date, the holder starts with an empty plan and a snapshot of the site without robots,
so every order is refused "no capable robot online"; ``install_snapshot(app, snapshot)`` puts robots
in (tests, demo). The dispatch loop, when it comes, should change ``holder.snapshot``/``holder.plan``
under ``holder.lock``. Cancelling does not edit the held plan: a cancelled order keeps its legs (and
capacity) until the next re-plan from the store, so nothing is ever overbooked.

**Status webhooks** (``OrderWebhooks``): every change of a partner's order after its creation is
POSTed to the partner's callback URL as JSON, signed exactly like the partner's own requests (the same
four headers, keyed with the same secret, so the partner checks them with the same code), with
``Idempotency-Key: <order id>/<event sequence>``. The source is the order events table itself: each
event is stored in the same transaction as the state change, so nothing is lost. A delivery is
recorded in the idempotency table under client ``webhook:<partner>``; undelivered events younger
than ``horizon_s`` are (re)sent, at least once, in order of their ids, with exponential backoff; 2xx
= delivered, 408/429/5xx/transport errors = retry, other statuses and the last attempt = given up
(recorded, logged). Not the notify outbox: that one carries SMS and calls to phone numbers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import secrets
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, Body, Depends, FastAPI, Header, Path, Request, Response
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy import String, cast, exists, literal, select
from sqlalchemy.orm import Session, sessionmaker

from interfaces.clock import Clock
from maps.model import Place, PlaceKind, Site
from orchestrator.api.intake import PausePoint, install_pause_point
from orchestrator.api.problems import Problem, problem_responses
from orchestrator.api.services import Services, services_of
from orchestrator.dispatch.campus import (
    EMPTY_PLAN,
    Plan,
    RequestKind,
    Size,
    Snapshot,
)
from orchestrator.dispatch.campus import (
    Request as DispatchRequest,
)
from orchestrator.dispatch.insertion import Accepted, Decision, Refused
from orchestrator.domain import OrderEvent, OrderKind, OrderState
from orchestrator.security.masking import normalise_phone
from orchestrator.security.signing import (
    NONCE_HEADER,
    PARTNER_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from orchestrator.store.domain_records import OrderDraft, OrderRecord
from orchestrator.store.domain_repositories import IdempotencyRepository, OrderRepository
from orchestrator.store.domain_tables import IdempotencyKeyRow, OrderEventRow, OrderRow

log = logging.getLogger(__name__)

MAX_AHEAD_S = 14 * 86400.0
"""How far ahead an order's window may end."""

MAX_BEHIND_S = 86400.0
"""How far back an order's window may start (its end must still be ahead)."""

MAX_ORDER_BYTES = 64 * 1024
"""Largest order request body."""

MAX_WAITING_ORDERS = 100
"""Order requests that may wait for the dispatcher at once; more are refused with 429 and
``Retry-After`` (orders are decided one at a time, ~10 ms each: this bounds the wait to about a
second instead of letting a burst queue up without limit)."""

REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_HEADER = "Idempotency-Key"


# --- Wire models -----------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Text without control characters that encodes as UTF-8 (what both databases store)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError("must not hold control characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return text


def _iso_only(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError(
            "must be an RFC 3339 date-time string with an offset, e.g. 2027-01-15T16:30:00+08:00"
        )
    return value


Text = Annotated[str, AfterValidator(_clean)]
When = Annotated[AwareDatetime, BeforeValidator(_iso_only)]
Ref = Annotated[Text, Field(min_length=1, max_length=128, description="The partner's own id of the order.")]
PlaceName = Annotated[Text, Field(min_length=1, max_length=128)]
SizeName = Literal["S", "M", "L"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactIn(_Model):
    """Who the robot's arrival concerns: stored encrypted, shown masked."""

    name: Annotated[Text, Field(min_length=1, max_length=64)]
    phone: Annotated[Text, Field(min_length=1, max_length=32, description="A Chinese mobile number.")]


class PickupOrderIn(_Model):
    """A robot collects a parcel at a door (an office or room place) within ``[earliest, latest]``."""

    kind: Literal["pickup"]
    ref: Ref
    place: PlaceName
    earliest: When
    latest: When
    size: SizeName = "S"
    contact: ContactIn

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "pickup",
                    "ref": "mp-20270115-0001",
                    "place": "adm_201",
                    "earliest": "2027-01-15T16:10:00+08:00",
                    "latest": "2027-01-15T16:40:00+08:00",
                    "size": "S",
                    "contact": {"name": "张三", "phone": "13812341234"},
                }
            ]
        },
    )


class CoffeeOrderIn(_Model):
    """A robot collects at a shop (``origin``) and brings it to a door by ``deadline``."""

    kind: Literal["coffee"]
    ref: Ref
    origin: PlaceName
    place: PlaceName
    deadline: When
    earliest: When | None = Field(default=None, description="Not before (default: now).")
    size: SizeName = "S"
    contact: ContactIn

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "coffee",
                    "ref": "mp-20270115-0002",
                    "origin": "adm_reception",
                    "place": "adm_305",
                    "deadline": "2027-01-15T16:30:00+08:00",
                    "contact": {"name": "李四", "phone": "13912345678"},
                }
            ]
        },
    )


OrderIn = Annotated[PickupOrderIn | CoffeeOrderIn, Field(discriminator="kind")]


class CancelIn(_Model):
    """Why the partner cancels (optional)."""

    reason: Annotated[Text, Field(min_length=1, max_length=200)] | None = None


class ContactOut(BaseModel):
    """The contact, masked (``张*``, ``138****1234``); empty once purged."""

    name: str
    phone: str


class OrderOut(BaseModel):
    """An order as the partner sees it; times in UTC."""

    id: str
    ref: str
    kind: Literal["pickup", "coffee"]
    state: OrderState
    place: str
    origin: str | None
    earliest: datetime
    latest: datetime
    size: SizeName
    eta: datetime | None = Field(description="Promised time at the door (accepted orders).")
    robot: str | None
    reason: str | None = Field(description="Why it was refused, cancelled or failed.")
    contact: ContactOut
    created_at: datetime
    updated_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "ord_3f1c9a2b7e4d4c0e9a1b2c3d4e5f6a7b",
                    "ref": "mp-20270115-0001",
                    "kind": "pickup",
                    "state": "accepted",
                    "place": "adm_201",
                    "origin": None,
                    "earliest": "2027-01-15T08:10:00Z",
                    "latest": "2027-01-15T08:40:00Z",
                    "size": "S",
                    "eta": "2027-01-15T08:10:00Z",
                    "robot": None,
                    "reason": None,
                    "contact": {"name": "张*", "phone": "138****1234"},
                    "created_at": "2027-01-15T08:00:00Z",
                    "updated_at": "2027-01-15T08:00:00Z",
                }
            ]
        }
    )

    @classmethod
    def of(cls, record: OrderRecord) -> OrderOut:
        """The partner's view of a stored order."""
        order = record.order
        return cls(
            id=order.id,
            ref=order.partner_ref,
            kind="pickup" if order.kind is OrderKind.PICKUP else "coffee",
            state=order.state,
            place=order.place,
            origin=order.origin,
            earliest=_utc(order.earliest_at),
            latest=_utc(order.latest_at),
            size=_size_name(order.size.value),
            eta=_utc(order.eta) if order.eta is not None else None,
            robot=order.robot,
            reason=order.reason,
            contact=ContactOut(name=record.contact.name, phone=record.contact.phone),
            created_at=record.created_at.astimezone(UTC),
            updated_at=record.updated_at.astimezone(UTC),
        )


def _size_name(value: str) -> SizeName:
    if value == "M":
        return "M"
    return "L" if value == "L" else "S"


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)


# --- Signatures ------------------------------------------------------------------------------------

SIGNATURE_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": PARTNER_HEADER,
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "Partner id (a key of security.partners).",
    },
    {
        "name": TIMESTAMP_HEADER,
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
        "description": "Unix time in whole seconds.",
    },
    {
        "name": NONCE_HEADER,
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._~-]{8,128}$"},
        "description": "A fresh random string per request.",
    },
    {
        "name": SIGNATURE_HEADER,
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "description": "Hex HMAC-SHA256 of METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nhex(sha256(body)).",
    },
]


def path_with_query(request: Request) -> str:
    """The request's path and query exactly as sent (what the signature covers)."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode("utf-8")
    query: bytes = request.scope.get("query_string", b"")
    path = raw.decode("latin-1")
    return f"{path}?{query.decode('latin-1')}" if query else path


async def signed_partner(request: Request) -> str:
    """FastAPI dependency: the partner id of a correctly signed request (else 401/409/429 problems).

    Runs in the event loop (the verifier's nonce cache is not thread-safe) and reads the raw body,
    which Starlette keeps for the route.
    """
    services: Services = services_of(request)
    body = await request.body()
    if len(body) > MAX_ORDER_BYTES:
        raise Problem(
            413, f"the body is larger than {MAX_ORDER_BYTES} bytes", type_="urn:robopost:payload-too-large"
        )
    return services.verifier.verify_headers(request.method, path_with_query(request), request.headers, body)


# --- The plan the dispatcher inserts into -----------------------------------------------------------


@dataclass
class PlanHolder:
    """The current plan and snapshot of the campus; read and replaced only under ``lock``.

    ``queue`` lines order requests up in the event loop, so that a request waiting for its turn waits
    there and does not hold a thread of the pool other work needs. ``orders_created`` counts the
    orders this process wrote (for the test pause).
    """

    snapshot: Snapshot
    plan: Plan = EMPTY_PLAN
    lock: threading.Lock = field(default_factory=threading.Lock)
    queue: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0
    orders_created: int = 0


def empty_snapshot(site: Site) -> Snapshot:
    """A snapshot of ``site`` with no robots, windows or parcels (every request is refused)."""
    stations = sorted(p.name for p in site.places.values() if p.kind is PlaceKind.STATION)
    return Snapshot(robots=(), windows=(), parcels=(), station=stations[0] if stations else "post_station")


def plan_holder(app: FastAPI) -> PlanHolder:
    """The app's ``PlanHolder`` (``app.state.plan_holder``), made empty on first use."""
    holder: PlanHolder | None = getattr(app.state, "plan_holder", None)
    if holder is None:
        holder = PlanHolder(empty_snapshot(app.state.services.site))
        app.state.plan_holder = holder
    return holder


def install_snapshot(app: FastAPI, snapshot: Snapshot, plan: Plan = EMPTY_PLAN) -> PlanHolder:
    """Make ``snapshot`` (and ``plan``) what orders are dispatched against; may be called before start."""
    holder = PlanHolder(snapshot, plan)
    app.state.plan_holder = holder
    return holder


# --- Creating, reading, cancelling ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer as stored for replays: status, JSON body, whether it is a replay."""

    status: int
    body: str
    replayed: bool = False

    def response(self) -> Response:
        headers = {REPLAYED_HEADER: "true"} if self.replayed else None
        return Response(self.body, status_code=self.status, media_type="application/json", headers=headers)


def request_hash(method: str, path: str, body: bytes) -> str:
    """The fingerprint an ``Idempotency-Key`` is bound to: method, path and body."""
    return hashlib.sha256(f"{method.upper()}\n{path}\n".encode() + body).hexdigest()


def draft_of(order: PickupOrderIn | CoffeeOrderIn, partner: str, site: Site, now: float) -> OrderDraft:
    """The store's draft of a partner order; ``Problem`` 422 for unknown places or unusable times."""
    _door(site, order.place)
    if isinstance(order, PickupOrderIn):
        earliest, latest, origin = order.earliest.timestamp(), order.latest.timestamp(), None
    else:
        _known(site, order.origin, "origin")
        latest = order.deadline.timestamp()
        earliest = order.earliest.timestamp() if order.earliest is not None else min(now, latest)
        origin = order.origin
    if not (now - MAX_BEHIND_S <= earliest and latest <= now + MAX_AHEAD_S):
        raise _invalid(
            f"an order's window must lie within a day back and {MAX_AHEAD_S / 86400:.0f} days ahead"
        )
    try:
        normalise_phone(order.contact.phone)
    except ValueError as exc:
        raise _invalid(f"contact.phone: {exc}") from None
    return OrderDraft(
        partner=partner,
        partner_ref=order.ref,
        kind=OrderKind(order.kind),
        place=order.place,
        earliest_at=earliest,
        latest_at=latest,
        size=order.size,
        origin=origin,
        contact_name=order.contact.name.strip(),
        contact_phone=order.contact.phone,
    )


def _door(site: Site, name: str) -> None:
    place = _known(site, name, "place")
    if place.kind not in (PlaceKind.OFFICE, PlaceKind.ROOM):
        raise _invalid(f"place {name!r} is not a door (an office or room)")


def _known(site: Site, name: str, what: str) -> Place:
    place = site.places.get(name)
    if place is None:
        raise _invalid(f"{what} {name[:60]!r} is not a place of the campus map")
    return place


def _invalid(detail: str) -> Problem:
    return Problem(422, detail, type_="urn:robopost:invalid-request")


def create_order(
    services: Services,
    holder: PlanHolder,
    draft: OrderDraft,
    key: str | None,
    fingerprint: str,
    pause: PausePoint | None = None,
) -> Answer:
    """Store the order with its answer from the dispatcher, in one transaction (blocking).

    With ``key``, a stored answer for it is returned instead (``IdempotencyConflict`` for another
    request). The held plan changes only after the commit.
    """
    with holder.lock:
        decision: Decision | None = None
        with services.sessions.begin() as session:
            idempotency = IdempotencyRepository(session, services.clock)
            if key is not None:
                stored = idempotency.get(draft.partner, key, fingerprint)
                if stored is not None:
                    return Answer(stored.status, stored.body, replayed=True)
            orders = OrderRepository(session, services.clock, services.personal)
            creation = orders.create(draft, idempotency_key=key)
            if not creation.created:  # the stored answer was purged; the order is still there
                return Answer(200, OrderOut.of(creation.record).model_dump_json(), replayed=True)
            decision = _decide(services, holder, creation.record)
            if isinstance(decision, Accepted):
                record, _ = orders.transition(creation.record.id, OrderEvent.ACCEPT, eta=decision.eta_s)
            else:
                record, _ = orders.transition(creation.record.id, OrderEvent.REFUSE, reason=decision.reason)
            answer = Answer(201, OrderOut.of(record).model_dump_json())
            if key is not None:
                idempotency.put(draft.partner, key, fingerprint, answer.status, answer.body)
            holder.orders_created += 1
            if pause is not None:
                pause.reached("order", holder.orders_created)
        if isinstance(decision, Accepted):
            holder.plan = decision.plan
        if pause is not None:
            pause.reached("order-committed", holder.orders_created)
        return answer


def _decide(services: Services, holder: PlanHolder, record: OrderRecord) -> Decision:
    """The dispatcher's answer for a new order; a dispatcher failure refuses the order (and is logged)."""
    order = record.order
    request = DispatchRequest(
        id=order.id,
        kind=RequestKind(order.kind.value),
        place=order.place,
        earliest_s=order.earliest_at,
        latest_s=order.latest_at,
        size=Size[order.size.value],
        origin=order.origin,
        created_s=order.created_at,
    )
    try:
        return services.dispatcher.insert(holder.plan, holder.snapshot, request, order.created_at)
    except Exception:  # the partner gets a refusal with a reason; operators get the traceback
        log.exception("the dispatcher failed on order %s", order.id)
        return Refused(order.id, "the dispatcher could not place the order; try again later")


def read_order(services: Services, partner: str, order_id: str) -> str:
    """The partner's order as JSON (``NotFoundError`` if it is not theirs)."""
    with services.sessions.begin() as session:
        record = OrderRepository(session, services.clock, services.personal).get(order_id, partner=partner)
        return OrderOut.of(record).model_dump_json()


def cancel_order(services: Services, partner: str, order_id: str, reason: str | None) -> str:
    """Cancel the partner's order (a cancelled one stays as it is); the order as JSON.

    ``NotFoundError`` if it is not theirs, ``IllegalTransition`` once loaded or final.
    """
    with services.sessions.begin() as session:
        orders = OrderRepository(session, services.clock, services.personal)
        record = orders.get(order_id, partner=partner)
        if record.state is not OrderState.CANCELLED:
            if reason is None:
                record, _ = orders.transition(order_id, OrderEvent.CANCEL)
            else:
                record, _ = orders.transition(order_id, OrderEvent.CANCEL, reason=reason)
        return OrderOut.of(record).model_dump_json()


def _wake_webhooks(request: Request) -> None:
    webhooks: OrderWebhooks | None = getattr(request.app.state, "order_webhooks", None)
    if webhooks is not None:
        webhooks.wake()


# --- Router ----------------------------------------------------------------------------------------

OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes retries safe: the same key and request get the original answer.",
    ),
]


def _signed() -> dict[str, Any]:
    """The OpenAPI extras of a signed route (a fresh copy per route: FastAPI merges into it)."""
    return {"parameters": [dict(p) for p in SIGNATURE_PARAMETERS]}


def partner_router(env: Mapping[str, str] | None = None) -> APIRouter:
    """The partner routes. ``env`` (default ``os.environ``) is read for the crash tests' pause only."""
    import os

    router = APIRouter(tags=["partner"])
    environment = os.environ if env is None else env

    @router.post(
        "/v1/orders",
        status_code=201,
        response_model=OrderOut,
        summary="Order a pickup from a door or a coffee to a door",
        description="Answers at once: state accepted with an eta, or refused with a reason.",
        responses={
            200: {
                "description": "Replay of an order whose original answer is no longer stored",
                "model": OrderOut,
            },
            **problem_responses(401, 409, 413, 422, 429),
        },
        openapi_extra=_signed(),
    )
    async def post_order(
        request: Request,
        order: Annotated[PickupOrderIn | CoffeeOrderIn, Body(discriminator="kind")],
        partner: Annotated[str, Depends(signed_partner)],
        services: Annotated[Services, Depends(services_of)],
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        install_pause_point(request.app.state, environment)
        draft = draft_of(order, partner, services.site, services.clock.now())
        fingerprint = request_hash(request.method, request.url.path, await request.body())
        holder = plan_holder(request.app)
        pause: PausePoint | None = request.app.state.pause_point
        if holder.waiting >= MAX_WAITING_ORDERS:
            raise Problem(
                429,
                "too many orders are waiting for the dispatcher; retry shortly with the same Idempotency-Key",
                type_="urn:robopost:busy",
                headers={"Retry-After": "1"},
            )
        holder.waiting += 1
        try:
            async with holder.queue:  # one order at a time: the dispatcher inserts into one plan
                answer = await asyncio.to_thread(
                    create_order, services, holder, draft, idempotency_key, fingerprint, pause
                )
        finally:
            holder.waiting -= 1
        if not answer.replayed:
            _wake_webhooks(request)
        return answer.response()

    @router.get(
        "/v1/orders/{order_id}",
        response_model=OrderOut,
        summary="One of the partner's orders",
        responses=problem_responses(401, 404, 409, 413, 422, 429),
        openapi_extra=_signed(),
    )
    async def get_order(
        order_id: OrderId,
        partner: Annotated[str, Depends(signed_partner)],
        services: Annotated[Services, Depends(services_of)],
    ) -> Response:
        body = await asyncio.to_thread(read_order, services, partner, order_id)
        return Response(body, media_type="application/json")

    @router.post(
        "/v1/orders/{order_id}:cancel",
        response_model=OrderOut,
        summary="Cancel one of the partner's orders (before anything is loaded)",
        responses=problem_responses(401, 404, 409, 413, 422, 429),
        openapi_extra=_signed(),
    )
    async def cancel(
        request: Request,
        order_id: OrderId,
        partner: Annotated[str, Depends(signed_partner)],
        services: Annotated[Services, Depends(services_of)],
        body: CancelIn | None = None,
    ) -> Response:
        reason = body.reason if body is not None else None
        text = await asyncio.to_thread(cancel_order, services, partner, order_id, reason)
        _wake_webhooks(request)
        return Response(text, media_type="application/json")

    return router


# --- Status webhooks -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """One order event to tell a partner about: its key (``<order id>/<sequence>``) and JSON body."""

    key: str
    partner: str
    body: bytes


@dataclass(frozen=True, slots=True)
class WebhookReport:
    """What one ``deliver_due`` did."""

    due: int = 0
    delivered: int = 0
    retrying: int = 0
    given_up: int = 0


WEBHOOK_CLIENT_PREFIX = "webhook:"
"""Deliveries are recorded in the idempotency table under client ``webhook:<partner>``."""


class OrderWebhooks:
    """Sends partners their orders' state changes (see the module docstring), at least once.

    ``callbacks`` maps a partner id to its callback URL, ``partner_secrets`` to its signing secret
    (``security.partners``). ``client`` is the caller's ``httpx.AsyncClient``. The lifespan runs
    ``run()`` as a task; routes call ``wake()`` after committing a change.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        partner_secrets: Mapping[str, str],
        callbacks: Mapping[str, str],
        client: httpx.AsyncClient,
        *,
        max_attempts: int = 8,
        backoff_s: float = 5.0,
        backoff_cap_s: float = 600.0,
        horizon_s: float = 86400.0,
        batch_size: int = 100,
        concurrency: int = 8,
        poll_s: float = 2.0,
        timeout_s: float = 10.0,
        blocking: Callable[[Callable[[], Any]], Awaitable[Any]] = asyncio.to_thread,
    ) -> None:
        for partner, url in callbacks.items():
            if partner not in partner_secrets:
                raise ValueError(f"partner {partner!r} has a callback URL but no secret to sign with")
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
                raise ValueError(f"callback of partner {partner!r} must be an http(s) URL, got {url!r}")
        if max_attempts < 1 or batch_size < 1 or concurrency < 1:
            raise ValueError("max_attempts, batch_size and concurrency must be >= 1")
        if not (
            backoff_s > 0 and backoff_cap_s >= backoff_s and horizon_s > 0 and poll_s > 0 and timeout_s > 0
        ):
            raise ValueError(
                "backoff_s, horizon_s, poll_s, timeout_s must be > 0 and backoff_cap_s >= backoff_s"
            )
        self._sessions = sessions
        self._clock = clock
        self._secrets = dict(partner_secrets)
        self._callbacks = dict(callbacks)
        self._client = client
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._backoff_cap_s = backoff_cap_s
        self._horizon_s = horizon_s
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._poll_s = poll_s
        self._timeout_s = timeout_s
        self._blocking = blocking
        self._attempts: dict[str, int] = {}
        self._not_before: dict[str, float] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for new events now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver events as they come until cancelled (a database failure waits ``poll_s``)."""
        while True:
            try:
                report = await self.deliver_due()
                if report.due >= self._batch_size:
                    continue
            except Exception:  # keep the loop alive; the next round tries again
                log.exception("order webhooks: round failed")
            await self._wait(self._poll_s)

    async def deliver_due(self) -> WebhookReport:
        """Send every undelivered event that is due, record the results; what happened."""
        if not self._callbacks:
            return WebhookReport()
        due = await self._blocking(self._due)
        gate = asyncio.Semaphore(self._concurrency)
        outcomes = await asyncio.gather(*(self._deliver(d, gate) for d in due))
        return WebhookReport(
            due=len(due),
            delivered=outcomes.count("delivered"),
            retrying=outcomes.count("retry"),
            given_up=outcomes.count("given_up"),
        )

    def _due(self) -> list[Delivery]:
        now = self._clock.now()
        client = literal(WEBHOOK_CLIENT_PREFIX, String) + OrderRow.partner
        key = OrderEventRow.order_id + literal("/", String) + cast(OrderEventRow.sequence, String)
        delivered = exists().where(
            IdempotencyKeyRow.client == client, IdempotencyKeyRow.idempotency_key == key
        )
        query = (
            select(OrderEventRow, OrderRow.partner, OrderRow.partner_ref)
            .join(OrderRow, OrderRow.id == OrderEventRow.order_id)
            .where(
                OrderRow.partner.in_(sorted(self._callbacks)),
                OrderEventRow.kind != OrderEvent.CREATE.value,
                OrderEventRow.at >= datetime.fromtimestamp(now - self._horizon_s, tz=UTC),
                ~delivered,
            )
            .order_by(OrderEventRow.id)
            .limit(self._batch_size + len(self._not_before))
        )
        with self._sessions.begin() as session:
            rows = session.execute(query).all()
        due: list[Delivery] = []
        for event, partner, ref in rows:
            delivery = Delivery(f"{event.order_id}/{event.sequence}", partner, _webhook_body(event, ref))
            if self._not_before.get(delivery.key, -math.inf) <= now and len(due) < self._batch_size:
                due.append(delivery)
        return due

    async def _deliver(self, delivery: Delivery, gate: asyncio.Semaphore) -> str:
        async with gate:
            status, detail, retry = await self._post(delivery)
        attempt = self._attempts.get(delivery.key, 0) + 1
        if retry and attempt < self._max_attempts:
            self._attempts[delivery.key] = attempt
            delay = min(self._backoff_s * 2.0 ** (attempt - 1), self._backoff_cap_s)
            self._not_before[delivery.key] = self._clock.now() + delay
            return "retry"
        outcome = "delivered" if not retry and 200 <= status < 300 else "given_up"
        if outcome == "given_up":
            log.warning("order webhook %s to %s given up: %s", delivery.key, delivery.partner, detail)
        await self._blocking(lambda: self._record(delivery, status, outcome, detail))
        self._attempts.pop(delivery.key, None)
        self._not_before.pop(delivery.key, None)
        return outcome

    async def _post(self, delivery: Delivery) -> tuple[int, str, bool]:
        """(status or 0, detail, whether to retry)."""
        url = self._callbacks[delivery.partner]
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        timestamp = str(int(self._clock.now()))
        nonce = secrets.token_hex(16)
        headers = {
            "Content-Type": "application/json",
            PARTNER_HEADER: delivery.partner,
            TIMESTAMP_HEADER: timestamp,
            NONCE_HEADER: nonce,
            SIGNATURE_HEADER: sign(
                self._secrets[delivery.partner], "POST", target, timestamp, nonce, delivery.body
            ),
            IDEMPOTENCY_HEADER: delivery.key,
        }
        try:
            response = await self._client.post(
                url, content=delivery.body, headers=headers, timeout=self._timeout_s
            )
        except httpx.HTTPError as exc:
            return 0, f"{type(exc).__name__}: {exc}"[:300], True
        status = response.status_code
        return status, f"HTTP {status}", status in (408, 429) or status >= 500

    def _record(self, delivery: Delivery, status: int, outcome: str, detail: str) -> None:
        body = json.dumps({"outcome": outcome, "detail": detail}, ensure_ascii=False)
        fingerprint = hashlib.sha256(delivery.body).hexdigest()
        with self._sessions.begin() as session:
            IdempotencyRepository(session, self._clock).put(
                WEBHOOK_CLIENT_PREFIX + delivery.partner, delivery.key, fingerprint, status, body
            )

    async def _wait(self, delay: float) -> None:
        if not self._wake.is_set():
            sleeper = asyncio.ensure_future(self._clock.sleep(delay))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
        self._wake.clear()


def _webhook_body(event: OrderEventRow, ref: str) -> bytes:
    """The JSON a partner receives for one event of its order (deterministic: the same on a resend)."""
    data = json.loads(event.data)
    eta = data.get("eta")
    payload = {
        "id": f"{event.order_id}/{event.sequence}",
        "order": event.order_id,
        "ref": ref,
        "event": event.kind,
        "state": event.to_state,
        "previous": event.from_state,
        "sequence": event.sequence,
        "at": _iso(event.at.timestamp()),
        "eta": _iso(float(eta)) if isinstance(eta, int | float) else None,
        "robot": data.get("robot"),
        "reason": data.get("reason"),
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _iso(at: float) -> str:
    return _utc(at).isoformat().replace("+00:00", "Z")


__all__ = [
    "IDEMPOTENCY_HEADER",
    "REPLAYED_HEADER",
    "Answer",
    "CoffeeOrderIn",
    "ContactIn",
    "OrderIn",
    "OrderOut",
    "OrderWebhooks",
    "PickupOrderIn",
    "PlanHolder",
    "WebhookReport",
    "cancel_order",
    "create_order",
    "draft_of",
    "empty_snapshot",
    "install_snapshot",
    "partner_router",
    "plan_holder",
    "read_order",
    "request_hash",
    "signed_partner",
]
