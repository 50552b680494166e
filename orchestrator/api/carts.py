"""The cart API: pickup-code hash sync, code verification, pickup events, compartment status,
heartbeat and arrival at a stop (per-cart tokens).

Every route is ``/v1/carts/{cart}/...`` and needs ``Authorization: Bearer <token>``, the cart's token
from ``security.carts``; a token opens only its own cart's routes (401 otherwise, the same answer for
an unknown cart and a wrong token). An indoor robot's screen uses the same routes under its robot id.

::

    GET  /v1/carts/{cart}/codes?window=     hashes of the cart's live codes and the cart's key, for
                                            checking codes offline (never a code in clear)
    GET  /v1/carts/{cart}/screen            what the code screen must ask for now; its lock
    POST /v1/carts/{cart}/codes:verify      online check of a typed code: open compartment N (200),
                                            refused (403, one neutral message for every wrong
                                            answer), locked (423 with Retry-After)
    POST /v1/carts/{cart}/codes:resend      "resend my code" by phone number (202, neutral)
    POST /v1/carts/{cart}/pickups           a pickup checked offline; idempotent on ``event_id``
    PUT  /v1/carts/{cart}/compartments      doors open/closed, occupied or not
    POST /v1/carts/{cart}/heartbeat         battery, state, position
    POST /v1/carts/{cart}/stops:arrive      the cart reached its stop in a window: parcels wait there,
                                            their SMS go out

Routes are thin: they authenticate, validate and call ``orchestrator.api.delivery.Delivery``; errors
are problem+json (``orchestrator.api.problems``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from interfaces.pickup_codes import CODE_FORMATS
from orchestrator.api.delivery import (
    WRONG_CODE,
    CodeSync,
    CompartmentStatus,
    Delivery,
    Heartbeat,
    PickupOutcome,
)
from orchestrator.api.live_operations import operations_of
from orchestrator.api.problems import Problem, problem_response, problem_responses, status_of
from orchestrator.api.services import Services, services_of
from orchestrator.domain import ParcelState
from orchestrator.security import InvalidCode, InvalidPhone, Locked, check_cart_token

NAME = 128
"""Longest cart, window, stop, compartment id or event id."""

_bearer = HTTPBearer(auto_error=False, description="The cart's API token (`security.carts`).")
_T0 = "2027-01-15T08:00:00Z"

CartId = Annotated[str, Path(min_length=1, max_length=NAME, description="The cart (or indoor robot) id.")]
Name = Annotated[str, Field(min_length=1, max_length=NAME, pattern=r"^\S(.*\S)?$")]
HashHex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="Hex HMAC-SHA256.")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- Code sync ---------------------------------------------------------------------------------------


class CodeEntryOut(_Model):
    """One live pickup code of the cart, as hashes."""

    parcel: str = Field(description="Tracking number.")
    compartment: str | None
    window: str
    stop: str | None
    state: Literal["loaded", "at_stop"] = Field(description="Only `at_stop` parcels may be opened.")
    code_hash: HashHex = Field(description="HMAC of the code alone (see `formats.code`).")
    tail_hash: HashHex | None = Field(description="HMAC of the code and the phone's last 4 digits.")
    expires_at: datetime = Field(description="The code opens nothing after this (end of the window).")


class CodeSyncOut(_Model):
    """What the cart needs to check codes offline: its key, the message formats, the hashes."""

    cart: str
    algorithm: Literal["HMAC-SHA256"] = "HMAC-SHA256"
    cart_key: str = Field(description="This cart's 32-byte key, url-safe base64 without padding.")
    formats: dict[str, str] = Field(description="The hashed messages, fields in braces, lines split by \\n.")
    generated_at: datetime
    codes: list[CodeEntryOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "cart": "cart_1",
                    "algorithm": "HMAC-SHA256",
                    "cart_key": "q2m3cD1fJ0lO9iBvL6Fh7o0m1Xh4u0cS9y3mGmJvYpE",
                    "formats": {
                        "code": "robopost/code/v1\\n{cart}\\n{window}\\n{code}",
                        "code+phone_tail": (
                            "robopost/code+tail/v1\\n{cart}\\n{window}\\n{code}\\n{phone_tail}"
                        ),
                    },
                    "generated_at": _T0,
                    "codes": [
                        {
                            "parcel": "SF1001",
                            "compartment": "7",
                            "window": "w-0800",
                            "stop": "stop_dorm_1",
                            "state": "at_stop",
                            "code_hash": "5d1f" + "0" * 60,
                            "tail_hash": "9a2b" + "0" * 60,
                            "expires_at": "2027-01-15T09:00:00Z",
                        }
                    ],
                }
            ]
        }
    )


# --- Verification ------------------------------------------------------------------------------------


class VerifyIn(_Model):
    """A code typed on the cart's screen, with the phone's last 4 digits when the screen asks for them."""

    code: str = Field(min_length=1, max_length=32, description="6 digits (spaces and full-width allowed).")
    phone_tail: str | None = Field(default=None, min_length=1, max_length=16, description="4 digits.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "042917"}]})


class VerifyOut(_Model):
    """The right code: open this compartment."""

    result: Literal["open"] = "open"
    compartment: str
    parcel: str = Field(description="Tracking number.")
    state: Literal["picked_up", "delivered"]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"result": "open", "compartment": "7", "parcel": "SF1001", "state": "picked_up"}]
        }
    )


class ScreenOut(_Model):
    """What the code screen must ask for now, and whether code entry is locked."""

    challenge: Literal["code", "code+phone_tail"]
    locked_until: datetime | None
    lock_reason: Literal["window", "daily"] | None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"challenge": "code", "locked_until": None, "lock_reason": None}]}
    )


class ResendIn(_Model):
    """ "Resend my code": the recipient's phone number, typed on the screen."""

    phone: str = Field(min_length=1, max_length=32)

    model_config = ConfigDict(json_schema_extra={"examples": [{"phone": "13812341234"}]})


class ResendOut(_Model):
    """Always the same answer, whether or not a parcel waits here for that number."""

    detail: str

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "如有您的包裹，新的取件码已发送。If a parcel waits ..."}]}
    )


RESEND_ANSWER = (
    "如果此车上有您的包裹，新的取件码将以短信发送。"
    "If a parcel for this number waits at this cart, a new pickup code is on its way by SMS."
)


# --- Pickup events --------------------------------------------------------------------------------------


class PickupIn(_Model):
    """A pickup the cart checked offline: the hash it matched, the compartment that opened, when."""

    event_id: Name = Field(description="The cart's id of this event: sending it again is safe.")
    parcel: Annotated[str, Field(min_length=1, max_length=64)]
    compartment: Name
    code_hash: HashHex = Field(description="The code hash (or code+tail hash) from the sync that matched.")
    at: AwareDatetime | None = Field(default=None, description="When it happened (default: now).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "cart_1-000123",
                    "parcel": "SF1001",
                    "compartment": "7",
                    "code_hash": "5d1f" + "0" * 60,
                    "at": _T0,
                }
            ]
        }
    )


class PickupOut(_Model):
    """The pickup as stored; ``replayed`` when this event id was answered before."""

    event_id: str
    parcel: str
    state: Literal["picked_up"]
    picked_up_at: datetime
    replayed: bool

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "cart_1-000123",
                    "parcel": "SF1001",
                    "state": "picked_up",
                    "picked_up_at": _T0,
                    "replayed": False,
                }
            ]
        }
    )


# --- Compartments, heartbeat ---------------------------------------------------------------------------


class CompartmentIn(_Model):
    """One compartment's door and occupancy."""

    id: Name
    door: Literal["open", "closed"]
    occupied: bool


class CompartmentsIn(_Model):
    """The compartments whose status the cart reports (others keep their last status)."""

    compartments: list[CompartmentIn] = Field(min_length=1, max_length=256)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"compartments": [{"id": "7", "door": "closed", "occupied": True}]}]}
    )


class CompartmentOut(_Model):
    """A compartment as last reported."""

    id: str
    door: Literal["open", "closed"]
    occupied: bool
    updated_at: datetime


class CompartmentsOut(_Model):
    """Every compartment of the cart as last reported."""

    cart: str
    compartments: list[CompartmentOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "cart": "cart_1",
                    "compartments": [{"id": "7", "door": "closed", "occupied": True, "updated_at": _T0}],
                }
            ]
        }
    )


class Position(_Model):
    """Where the cart is, in the campus map's local metres (east, north)."""

    x: float = Field(allow_inf_nan=False, ge=-1e7, le=1e7)
    y: float = Field(allow_inf_nan=False, ge=-1e7, le=1e7)


class HeartbeatIn(_Model):
    """The cart's battery, what it is doing, where it is."""

    battery_percent: float = Field(ge=0, le=100, allow_inf_nan=False)
    state: Literal["idle", "loading", "driving", "at_stop", "returning", "charging", "fault"]
    position: Position | None = None
    stop: Name | None = None
    at: AwareDatetime | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "battery_percent": 76.5,
                    "state": "driving",
                    "position": {"x": -512.3, "y": -401.8},
                    "at": _T0,
                }
            ]
        }
    )


class HeartbeatOut(_Model):
    """Taken in; ``server_time`` lets the cart check its clock."""

    cart: str
    received_at: datetime
    server_time: datetime

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"cart": "cart_1", "received_at": _T0, "server_time": _T0}]}
    )


# --- Arrival --------------------------------------------------------------------------------------------


class ArrivalIn(_Model):
    """The cart reached ``stop`` serving ``window``."""

    stop: Name
    window: Name

    model_config = ConfigDict(json_schema_extra={"examples": [{"stop": "stop_dorm_1", "window": "w-0800"}]})


class ArrivedOut(_Model):
    """A parcel now waiting at the stop."""

    parcel: str
    compartment: str


class ArrivalOut(_Model):
    """What the arrival did: parcels waiting, SMS released, reminders scheduled."""

    cart: str
    stop: str
    window: str
    parcels: list[ArrivedOut]
    released: int
    reminders: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "cart": "cart_1",
                    "stop": "stop_dorm_1",
                    "window": "w-0800",
                    "parcels": [{"parcel": "SF1001", "compartment": "7"}],
                    "released": 1,
                    "reminders": 1,
                }
            ]
        }
    )


# --- The router -----------------------------------------------------------------------------------------

ServicesDep = Annotated[Services, Depends(services_of)]


def authenticated_cart(
    cart: CartId,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The path's cart id once the bearer token is that cart's; 401 otherwise."""
    token = credentials.credentials if credentials is not None else None
    if not check_cart_token(services.settings.security.carts, cart, token):
        raise Problem(
            401,
            "this request needs the cart's own API token",
            type_="urn:robopost:cart-unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="robopost-cart"'},
        )
    return cart


Cart = Annotated[str, Depends(authenticated_cart)]


def carts_router() -> APIRouter:
    """The cart API's routes (module docstring)."""
    router = APIRouter(prefix="/v1/carts/{cart}", tags=["carts"])

    @router.get("/codes", response_model=CodeSyncOut, responses=problem_responses(401, 422))
    async def sync_codes(
        cart: Cart,
        services: ServicesDep,
        window: Annotated[str | None, Query(min_length=1, max_length=NAME)] = None,
    ) -> CodeSyncOut:
        """The hashes of the cart's live pickup codes (of one window if given) and the cart's key, so
        the cart can check codes offline. Never a code in clear."""
        with typed_errors():
            return _sync_out(await Delivery.from_services(services).codes_for(cart, window))

    @router.get("/screen", response_model=ScreenOut, responses=problem_responses(401, 422))
    async def screen(cart: Cart, services: ServicesDep) -> ScreenOut:
        """What the code screen must ask for now (the code, or the code and the phone's last 4 digits)
        and until when code entry is locked."""
        status = services.guard.status(cart)
        return ScreenOut(
            challenge=status.challenge.value,
            locked_until=_dt(status.locked_until) if status.locked_until is not None else None,
            lock_reason=status.lock_reason,
        )

    @router.post(
        "/codes:verify",
        response_model=VerifyOut,
        responses=problem_responses(400, 401, 403, 409, 422, 423),
    )
    async def verify(cart: Cart, body: VerifyIn, request: Request, services: ServicesDep) -> Any:
        """Check a typed code: the right one opens its compartment once (the parcel is picked up).

        Every wrong answer — unknown, used, expired or not yet here — gets the same 403 with the
        challenge to ask for next. 5 wrong codes in 10 minutes lock entry (423 with Retry-After);
        after a wrong code the screen asks for the phone's last 4 digits too.
        """
        delivery = Delivery.from_services(services)
        try:
            with typed_errors():
                result = await delivery.verify(cart, body.code, body.phone_tail)
        except Locked as exc:
            return _locked(exc, services.clock.now())
        if result.opened is None:
            return problem_response(
                403, WRONG_CODE, type_="urn:robopost:wrong-code", challenge=result.challenge.value
            )
        opened = result.opened
        state: Literal["picked_up", "delivered"] = (
            "delivered" if opened.state is ParcelState.DELIVERED else "picked_up"
        )
        _tell_operations(request, opened.tracking_number, cart, state)
        return VerifyOut(compartment=opened.compartment, parcel=opened.tracking_number, state=state)

    @router.post(
        "/codes:resend",
        response_model=ResendOut,
        status_code=202,
        responses=problem_responses(400, 401, 422),
    )
    async def resend(cart: Cart, body: ResendIn, services: ServicesDep) -> ResendOut:
        """ "Resend my code": parcels waiting at this cart for this phone number get a new code by SMS
        (the old one stops working). The answer is the same whether or not there is such a parcel."""
        with typed_errors():
            await Delivery.from_services(services).resend_to_phone(cart, body.phone)
        return ResendOut(detail=RESEND_ANSWER)

    @router.post("/pickups", response_model=PickupOut, responses=problem_responses(400, 401, 404, 409, 422))
    async def pickup(cart: Cart, body: PickupIn, request: Request, services: ServicesDep) -> PickupOut:
        """A pickup the cart checked offline. Sending the same ``event_id`` again returns the first
        answer; the same id with a different body is refused (422)."""
        fingerprint = _fingerprint(request.url.path, body)
        at = body.at.timestamp() if body.at is not None else None
        with typed_errors():
            outcome = await Delivery.from_services(services).record_pickup(
                cart, body.event_id, fingerprint, body.parcel, body.compartment, body.code_hash, at
            )
        if not outcome.replayed:
            _tell_operations(request, outcome.tracking_number, cart, "picked_up")
        return _pickup_out(outcome)

    @router.put("/compartments", response_model=CompartmentsOut, responses=problem_responses(400, 401, 422))
    async def compartments(cart: Cart, body: CompartmentsIn, services: ServicesDep) -> CompartmentsOut:
        """Doors and occupancy of the compartments given; answers with all of the cart's compartments."""
        now = _dt(services.clock.now())
        statuses = [CompartmentStatus(c.id, c.door == "open", c.occupied, now) for c in body.compartments]
        known = services.carts.update_compartments(cart, statuses)
        return CompartmentsOut(
            cart=cart,
            compartments=[
                CompartmentOut(
                    id=c.id,
                    door="open" if c.door_open else "closed",
                    occupied=c.occupied,
                    updated_at=c.updated_at,
                )
                for c in known
            ],
        )

    @router.post("/heartbeat", response_model=HeartbeatOut, responses=problem_responses(400, 401, 422))
    async def heartbeat(cart: Cart, body: HeartbeatIn, services: ServicesDep) -> HeartbeatOut:
        """The cart's battery, state and position; the last one is kept in memory."""
        now = _dt(services.clock.now())
        position = body.position
        services.carts.record_heartbeat(
            cart,
            Heartbeat(
                battery_percent=body.battery_percent,
                state=body.state,
                x=position.x if position is not None else None,
                y=position.y if position is not None else None,
                stop=body.stop,
                reported_at=body.at.astimezone(UTC) if body.at is not None else now,
                received_at=now,
            ),
        )
        return HeartbeatOut(cart=cart, received_at=now, server_time=now)

    @router.post("/stops:arrive", response_model=ArrivalOut, responses=problem_responses(400, 401, 409, 422))
    async def arrive(cart: Cart, body: ArrivalIn, services: ServicesDep) -> ArrivalOut:
        """The cart reached ``stop`` in ``window``: its parcels for that stop wait there now, and their
        recipients get the SMS with the code and, later, a reminder. Arriving again changes nothing."""
        with typed_errors():
            arrival = await Delivery.from_services(services).arrive(cart, body.stop, body.window)
        return ArrivalOut(
            cart=arrival.cart,
            stop=arrival.stop,
            window=arrival.window,
            parcels=[
                ArrivedOut(parcel=p.tracking_number, compartment=p.compartment) for p in arrival.parcels
            ],
            released=arrival.released,
            reminders=arrival.reminders,
        )

    return router


@contextmanager
def typed_errors() -> Iterator[None]:
    """Turn the typed errors ``orchestrator.api.problems`` knows into ``Problem`` here, in the route.

    ``Locked`` passes through (the route answers it); a malformed code or phone is a 422. Errors
    ``status_of`` does not know are left to the app's handlers.
    (Errors answered by the app-wide ``Exception`` handler are re-raised by Starlette's
    ``ServerErrorMiddleware`` after the answer is sent — logged as crashes, and raised into tests.)
    """
    try:
        yield
    except (Problem, Locked):
        raise
    except (InvalidCode, InvalidPhone) as exc:  # bad input, like any ValueError (not a 400)
        raise Problem(422, str(exc), type_="urn:robopost:invalid-request") from exc
    except Exception as exc:
        status = status_of(exc)
        if status is None:
            raise
        raise Problem(status, str(exc), type_=f"urn:robopost:{_kebab(type(exc).__name__)}") from exc


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _sync_out(sync: CodeSync) -> CodeSyncOut:
    return CodeSyncOut(
        cart=sync.cart,
        cart_key=sync.cart_key_b64,
        formats=CODE_FORMATS,
        generated_at=sync.generated_at,
        codes=[
            CodeEntryOut(
                parcel=c.tracking_number,
                compartment=c.compartment,
                window=c.window,
                stop=c.stop,
                state="at_stop" if c.state is ParcelState.AT_STOP else "loaded",
                code_hash=c.code_hash,
                tail_hash=c.tail_hash,
                expires_at=c.expires_at,
            )
            for c in sync.codes
        ],
    )


def _tell_operations(request: Request, tracking_number: str, cart: str, state: str) -> None:
    """A parcel taken from a cart's compartment is news for the live dispatch loop (if it runs)."""
    operations = operations_of(request.app)
    if operations is not None and state == "picked_up":
        operations.picked_up(tracking_number, cart)


def _pickup_out(outcome: PickupOutcome) -> PickupOut:
    return PickupOut(
        event_id=outcome.event_id,
        parcel=outcome.tracking_number,
        state="picked_up",
        picked_up_at=outcome.picked_up_at,
        replayed=outcome.replayed,
    )


def _locked(exc: Locked, now: float) -> JSONResponse:
    """423 with ``Retry-After``: the screen says when to try again, nothing about the codes."""
    retry_after = max(1, math.ceil(exc.until - now))
    return problem_response(
        423,
        "取件码输入已锁定，请稍后再试。Code entry on this cart is locked; please try again later.",
        type_="urn:robopost:locked",
        headers={"Retry-After": str(retry_after)},
        locked_until=_dt(exc.until).isoformat(),
        reason=exc.reason,
    )


def _fingerprint(path: str, body: BaseModel) -> str:
    """The request's fingerprint for idempotency: its path and its body, canonical."""
    return hashlib.sha256(f"{path}\n{body.model_dump_json()}".encode()).hexdigest()


def _dt(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)
