"""Simulated people around the live carts: station staff who fill and empty compartments, and students
who get an SMS with a pickup code and come to the cart to type it.

**Station staff** (``StationStaff``, one per cart) follow the cart's code sheet (``CartService.checker``,
re-read at every ``changes()``). A parcel that appears on it (loaded in the orchestrator for
compartment n) is put into compartment n the way staff do it: log in to the cart's staff mode with the
cart's PIN, open the compartment (``staff_open``: the lock is pulsed over Modbus), put the parcel in,
shut the door. A parcel that leaves the sheet while it still lies in its compartment (returned to the
station unclaimed, its code expired or revoked) is taken out the same way once the cart stands at the
station (``LiveCart.at_station``). One that leaves the sheet with its compartment empty was picked up.
No double put: a parcel is put only when its compartment does not hold it already, and a compartment
holding another parcel still on the sheet is left alone (logged once).

**Students** get their SMS from the orchestrator through ``SmsGateway``, the SMS gateway the
orchestrator's ``WebhookProvider`` posts to (``notify.provider: webhook``, ``webhook_url:
http://HOST:PORT/sms``). The gateway checks ``X-Robopost-Signature`` (HMAC-SHA256 of the raw body under
the shared secret; anything else is answered 401 and goes no further), answers 200 (the provider's
"sent"; a body that is not the provider's JSON gets 400, which the provider takes as a permanent
failure) and hands each message to ``Students`` once per ``Idempotency-Key`` (the outbox delivers at
least once: a repeat gets 200 but no second student).

A pickup-code SMS (``cart_at_stop`` or ``pickup_code_resend`` of ``orchestrator.notify.messages``;
``parse_pickup_sms`` reads the code, the stop's label and the window's end ``HH:MM``, China time) makes
one ``Student``. Other messages (the window-ending reminder, office and order messages, calls) are
logged and ignored. At receipt the student decides, with the people's seeded ``random.Random`` (one
draw order per message, so a seed replays a day):

- whether they never come (``no_show_share``);
- whether they forgot the code and type a wrong one first (``forget_share``);
- when they come: with probability ``first_half_share`` in the first half of what is left of the
  window, else in the second half (up to 95 % of it, so that a late student still has time to type).

At that time (on the fleet's clock) they go to the cart standing at the SMS's stop (the one whose
service has arrived there; a student who is early waits for it until the window ends), type the code
on its screen path (``CartService.enter_code``, what the kiosk page calls), add the phone's last four
digits when the screen asks for them (after a wrong code), and once a compartment opens take the
parcel out and shut the door. What happened is ``Student.outcome``.

Everything here runs on the given ``Clock``; nothing sleeps in real time except waiting a bounded
``DOOR_WAIT_S`` for a Modbus pulse to open a door.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from interfaces.clock import Clock, within
from orchestrator.notify.messages import CHINA_TZ
from orchestrator.notify.providers import SIGNATURE_HEADER, sign_body
from robots.cart.locker import OpenResult
from robots.cart.service import CartService, StaffError
from sim.live.carts import LiveCart
from sim.live.serving import AppServer
from sim.locker_board import LockerSimError

DOOR_WAIT_S = 3.0
"""Real seconds a person waits for a pulsed lock to spring its door."""

GATEWAY_PATH = "/sms"
"""Where the gateway takes the webhook's POSTs."""

MAX_TRIES = 6
"""Codes a student types at most in one visit (a wrong one, the right one, with the tail, retries)."""

log = logging.getLogger("robopost.sim.live.people")


# --- the SMS ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PickupSms:
    """What a student reads in a pickup-code SMS."""

    code: str
    stop_label: str
    until: str
    """The window's end as printed, ``HH:MM`` (China time)."""


_PICKUP_PATTERNS = (
    re.compile(
        r"停靠点「(?P<stop>[^」]+)」，您的取件码是 (?P<code>\d{6})，请在 (?P<until>\d{2}:\d{2}) 前取件"
    ),
    re.compile(
        r"您的取件码是 (?P<code>\d{6})，停靠点「(?P<stop>[^」]+)」，请在 (?P<until>\d{2}:\d{2}) 前取件"
    ),
)


def parse_pickup_sms(text: str) -> PickupSms | None:
    """The code, stop and window end of a pickup-code SMS (arrival or resend); None for any other text."""
    for pattern in _PICKUP_PATTERNS:
        found = pattern.search(text)
        if found is not None:
            return PickupSms(found["code"], found["stop"], found["until"])
    return None


def window_end_from(until: str, now: float, tz: tzinfo = CHINA_TZ) -> float:
    """The epoch seconds of the first ``HH:MM`` in ``tz`` that has not passed at ``now`` (the minute
    ``now`` falls in counts as not passed: the window ends within it)."""
    hour, minute = (int(part) for part in until.split(":"))
    local = datetime.fromtimestamp(now, tz)
    end = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if end.timestamp() + 60 <= now:
        end += timedelta(days=1)
    return max(end.timestamp(), now)


@dataclass(frozen=True, slots=True)
class GatewayMessage:
    """One message the gateway accepted: the provider's JSON (``kind``, ``to``, ``text``, ``id``)."""

    kind: str
    to: str
    text: str
    id: str
    received_at: float


# --- students ---------------------------------------------------------------------------------------------


class StudentOutcome(StrEnum):
    """How a student's visit ended."""

    WAITING = "waiting"
    """Not yet decided (the student has not come, or is at the cart)."""
    PICKED_UP = "picked_up"
    NO_SHOW = "no_show"
    """Decided not to come."""
    MISSED = "missed"
    """Came, but no cart stood at the stop before the window ended."""
    REFUSED = "refused"
    """The screen did not open a compartment (wrong code, locked, board down until the end)."""
    JAMMED = "jammed"
    """A compartment was said to open but its door did not."""


@dataclass(frozen=True, slots=True)
class PeopleSettings:
    """How the simulated people behave (shares are probabilities 0..1)."""

    seed: int = 1
    forget_share: float = 0.1
    no_show_share: float = 0.05
    first_half_share: float = 0.8
    staff: bool = True

    def __post_init__(self) -> None:
        for name in ("forget_share", "no_show_share", "first_half_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"PeopleSettings: {name} must be between 0 and 1, got {value}")


@dataclass
class Student:
    """One recipient: their SMS, their decisions, what they typed and how it ended."""

    message: GatewayMessage
    sms: PickupSms
    stop: str
    deadline: float
    arrive_at: float
    forgets: bool
    no_show: bool
    at_stop_since: float | None = None
    """When the student got to the stop (then waits there for the cart if it is not there yet)."""
    typed: list[str] = field(default_factory=list)
    outcome: StudentOutcome = StudentOutcome.WAITING
    cart: str | None = None
    parcel: str | None = None

    @property
    def phone_tail(self) -> str:
        """The last four digits of the phone the SMS went to."""
        return "".join(c for c in self.message.to if c.isdigit())[-4:]


class Students:
    """Turns accepted messages into students and runs their visits to ``carts`` (module docstring)."""

    def __init__(
        self,
        carts: Sequence[LiveCart],
        clock: Clock,
        settings: PeopleSettings,
        *,
        stop_ids: Mapping[str, str] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.carts = list(carts)
        self.clock = clock
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.stop_ids = dict(stop_ids) if stop_ids is not None else _stop_ids(self.carts)
        self.students: dict[str, Student] = {}
        self.messages: list[GatewayMessage] = []
        self.ignored: list[GatewayMessage] = []
        self.duplicates = 0
        self._seen: set[str] = set()
        self._log = logger or log
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchers: list[asyncio.Task[None]] = []
        self._moved = asyncio.Event()
        self._changed = asyncio.Event()

    async def start(self) -> None:
        """Follow the carts (a waiting student notices one arriving)."""
        for cart in self.carts:
            service = cart.need_service()
            self._watchers.append(asyncio.create_task(self._follow(service), name=f"students {cart.cart}"))

    async def stop(self) -> None:
        """Cancel every visit and the cart watchers."""
        tasks = [*self._tasks, *self._watchers]
        self._tasks.clear()
        self._watchers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def receive(self, message: GatewayMessage) -> Student | None:
        """Take one accepted message: the new student for a pickup-code SMS (their visit starts), None
        for a repeat or any other message."""
        if message.id in self._seen:
            self.duplicates += 1
            self._log.info("SMS %s again: dropped (already delivered)", message.id)
            return None
        self._seen.add(message.id)
        self.messages.append(message)
        sms = parse_pickup_sms(message.text) if message.kind == "sms" else None
        if sms is None:
            self.ignored.append(message)
            self._log.info("%s %s is no pickup code: read and ignored", message.kind, message.id)
            self._bump()
            return None
        student = self._decide(message, sms)
        self.students[message.id] = student
        self._log.info(
            "student %s: code for stop %s until %s; %s",
            message.id,
            student.stop,
            sms.until,
            "will not come"
            if student.no_show
            else f"comes in {student.arrive_at - message.received_at:.0f} s"
            + (" (forgot the code)" if student.forgets else ""),
        )
        if student.no_show:
            student.outcome = StudentOutcome.NO_SHOW
        else:
            task = asyncio.create_task(self._visit(student), name=f"student {message.id}")
            self._tasks.add(task)
            task.add_done_callback(self._done)
        self._bump()
        return student

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Return once ``predicate()`` holds, checked after every message and every visit's end
        (real seconds; ``TimeoutError`` after)."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await self._changed.wait()

    def _decide(self, message: GatewayMessage, sms: PickupSms) -> Student:
        s, rng, now = self.settings, self.rng, message.received_at
        no_show, forgets, early, share = rng.random(), rng.random(), rng.random(), rng.random()
        deadline = window_end_from(sms.until, now)
        left = max(0.0, deadline - now)
        fraction = 0.5 * share if early < s.first_half_share else 0.5 + 0.45 * share
        return Student(
            message=message,
            sms=sms,
            stop=self.stop_ids.get(sms.stop_label, sms.stop_label),
            deadline=deadline,
            arrive_at=now + fraction * left,
            forgets=forgets < s.forget_share,
            no_show=no_show < s.no_show_share,
        )

    async def _visit(self, student: Student) -> None:
        await self.clock.sleep(max(0.0, student.arrive_at - self.clock.now()))
        student.at_stop_since = self.clock.now()
        self._bump()
        cart = await self._cart_at(student.stop, student.deadline)
        if cart is None:
            student.outcome = StudentOutcome.MISSED
            self._log.info(
                "student %s: no cart at %s before the window ended", student.message.id, student.stop
            )
            return
        student.cart = cart.cart
        student.outcome = await self._at_cart(student, cart)
        self._log.info("student %s at %s: %s", student.message.id, cart.cart, student.outcome.value)

    async def _cart_at(self, stop: str, deadline: float) -> LiveCart | None:
        while True:
            for cart in self.carts:
                if cart.service is not None and cart.service.stop_id == stop:
                    return cart
            left = deadline - self.clock.now()
            if left <= 0:
                return None
            await within(self.clock, left, self._moved.wait())

    async def _at_cart(self, student: Student, cart: LiveCart) -> StudentOutcome:
        service = cart.need_service()
        if student.forgets:
            wrong = _wrong_code(student.sms.code, self.rng)
            student.typed.append(wrong)
            await service.enter_code(wrong)
        tail: str | None = None
        for _ in range(MAX_TRIES):
            student.typed.append(student.sms.code)
            answer = await service.enter_code(student.sms.code, tail)
            if answer.result == "open" and answer.compartment is not None:
                return await self._take(student, cart, answer.compartment)
            if answer.result == "need_tail":
                tail = student.phone_tail
                continue
            if answer.result in ("board_down", "locked"):
                until = answer.locked_until or self.clock.now() + 10.0
                if until >= student.deadline:
                    return StudentOutcome.REFUSED
                await self.clock.sleep(until - self.clock.now())
                continue
            return StudentOutcome.JAMMED if answer.result == "jammed" else StudentOutcome.REFUSED
        return StudentOutcome.REFUSED

    async def _take(self, student: Student, cart: LiveCart, number: int) -> StudentOutcome:
        board = cart.board
        try:
            await board.wait_for(lambda: board.door_open(number) or board.coil_on(number), DOOR_WAIT_S)
            if not board.door_open(number):
                board.open_door(number)  # a sticking door: pulled while the lock is released
        except (TimeoutError, LockerSimError) as exc:
            self._log.warning("student %s: compartment %d did not open: %s", student.message.id, number, exc)
            return StudentOutcome.JAMMED
        await seen_open(cart.need_service(), number)
        student.parcel = board.take(number) if board.occupied(number) else None
        board.close_door(number)
        return StudentOutcome.PICKED_UP

    async def _follow(self, service: CartService) -> None:
        stop: str | None = None
        async for _ in service.changes():
            if service.stop_id != stop:
                stop = service.stop_id
                self._moved.set()
                self._moved = asyncio.Event()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("a student's visit failed", exc_info=task.exception())
        self._bump()

    def _bump(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def _wrong_code(code: str, rng: random.Random) -> str:
    """A 6-digit code that is not ``code`` (a misremembered one: one digit off)."""
    position = rng.randrange(len(code))
    digit = str((int(code[position]) + rng.randrange(1, 10)) % 10)
    return code[:position] + digit + code[position + 1 :]


def _stop_ids(carts: Iterable[LiveCart]) -> dict[str, str]:
    """Stop label (as SMS print it) → stop id, from the carts' stop labels."""
    return {text.zh: stop for cart in carts for stop, text in cart.spec.stop_labels.items()}


# --- the SMS gateway -------------------------------------------------------------------------------------


def gateway_app(secret: str, students: Students, clock: Clock) -> FastAPI:
    """The SMS gateway: ``POST /sms`` as ``orchestrator.notify.providers.WebhookProvider`` sends it."""
    key = secret.encode()
    app = FastAPI(title="robopost simulated SMS gateway", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post(GATEWAY_PATH)
    async def sms(request: Request) -> JSONResponse:
        body = await request.body()
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(signature.encode(), sign_body(key, body).encode()):
            log.warning("gateway: a request with a bad signature was refused")
            return JSONResponse({"error": "bad signature"}, status_code=401)
        message = _message(body, request.headers.get("Idempotency-Key"), clock.now())
        if message is None:
            return JSONResponse({"error": "not a message"}, status_code=400)
        student = students.receive(message)
        return JSONResponse({"status": "queued", "id": message.id, "student": student is not None})

    return app


def _message(body: bytes, idempotency_key: str | None, now: float) -> GatewayMessage | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    fields = [data.get(name) for name in ("kind", "to", "text", "id")]
    if not all(isinstance(value, str) and value for value in fields):
        return None
    kind, to, text, message_id = (str(value) for value in fields)
    return GatewayMessage(kind, to, text, idempotency_key or message_id, now)


# --- station staff ---------------------------------------------------------------------------------------


class StationStaff:
    """The station's staff for one cart (see the module docstring)."""

    def __init__(self, cart: LiveCart, *, logger: logging.Logger | None = None) -> None:
        self.cart = cart
        self.placed: dict[str, int] = {}
        """Parcels staff put in, by compartment, not yet seen leaving."""
        self.picked: set[str] = set()
        self.returned: set[str] = set()
        self._log = logger or log
        self._task: asyncio.Task[None] | None = None
        self._conflicts: set[tuple[str, int]] = set()

    async def start(self) -> None:
        """Follow the cart's code sheet."""
        self._task = asyncio.create_task(self._follow(), name=f"staff {self.cart.cart}")

    async def stop(self) -> None:
        """Stop following (safe to call twice)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _follow(self) -> None:
        async for _ in self.cart.need_service().changes():
            await self.reconcile()

    def live(self) -> dict[str, int]:
        """Parcel → compartment of every parcel on the cart's code sheet not yet seen taken."""
        checker = self.cart.need_service().checker
        sheet = checker.sheet
        if sheet is None:
            return {}
        return {
            e.parcel: int(e.compartment)
            for e in sheet.entries
            if e.compartment is not None and e.compartment.isdigit() and checker.entry_for(e.compartment) == e
        }

    async def reconcile(self) -> None:
        """Put in what the sheet gained, note what was picked up, take out what was returned."""
        live = self.live()
        for parcel, number in list(self.placed.items()):
            if parcel not in live:
                await self._gone(parcel, number)
        for parcel, number in live.items():
            if parcel not in self.placed and parcel not in self.picked:
                await self._load(parcel, number, live)

    async def _gone(self, parcel: str, number: int) -> None:
        board = self.cart.board
        if board.compartment(number).parcel != parcel:
            self.placed.pop(parcel)
            self.picked.add(parcel)
            self._log.info("staff %s: %s was picked up from compartment %d", self.cart.cart, parcel, number)
            return
        if not self.cart.at_station():
            return  # still on board: unloaded once the cart is back
        if await self._with_door(number, lambda: board.take(number)):
            self.placed.pop(parcel)
            self.returned.add(parcel)
            self._log.info("staff %s: took returned %s out of compartment %d", self.cart.cart, parcel, number)

    async def _load(self, parcel: str, number: int, live: Mapping[str, int]) -> None:
        board = self.cart.board
        inside = board.compartment(number).parcel
        if inside == parcel:
            self.placed[parcel] = number
            return
        if inside is not None:
            if inside in live or not self.cart.at_station():
                if (parcel, number) not in self._conflicts:
                    self._conflicts.add((parcel, number))
                    self._log.warning(
                        "staff %s: compartment %d holds %s; %s cannot go in",
                        self.cart.cart,
                        number,
                        inside,
                        parcel,
                    )
                return
            if not await self._with_door(number, lambda: board.take(number)):
                return
            self.returned.add(inside)
        if await self._with_door(number, lambda: board.put(number, parcel)):
            self.placed[parcel] = number
            self._log.info("staff %s: put %s into compartment %d", self.cart.cart, parcel, number)

    async def _with_door(self, number: int, work: Callable[[], object]) -> bool:
        """Open compartment ``number`` in staff mode, do ``work``, shut the door; whether it all worked."""
        service, board = self.cart.need_service(), self.cart.board
        try:
            token = await service.staff_login(self.cart.spec.staff_pin)
        except StaffError as exc:
            self._log.warning("staff %s: cannot log in: %s", self.cart.cart, exc)
            return False
        try:
            result = (await service.staff_open(token, [number]))[number]
            if result is not OpenResult.SENT:
                self._log.info("staff %s: compartment %d did not open: %s", self.cart.cart, number, result)
                return False
            await board.wait_for(lambda: board.door_open(number) or board.coil_on(number), DOOR_WAIT_S)
            if not board.door_open(number):
                board.open_door(number)
            await seen_open(service, number)
            work()
            board.close_door(number)
            return True
        except (TimeoutError, LockerSimError) as exc:
            self._log.warning("staff %s: compartment %d: %s", self.cart.cart, number, exc)
            if board.door_open(number):
                board.close_door(number)
            return False
        finally:
            service.staff_logout(token)


async def seen_open(service: CartService, number: int) -> None:
    """Until the cart has seen compartment ``number``'s door open (its watch left OPENING), at most
    ``DOOR_WAIT_S``. A person is slower than the cart's door poll; a simulated one that shut the door
    before the next poll would make a staff put (empty, then shut and full) look like a lock that never
    released: the cart would raise ``lock_jammed``."""

    async def watch() -> None:
        async for screen in service.changes():
            phases = {c.number: c.phase for c in screen.compartments}
            if phases.get(number) != "opening":
                return

    try:
        await asyncio.wait_for(watch(), DOOR_WAIT_S)
    except TimeoutError:
        log.info("cart %s: the door of compartment %d was not seen open in time", service.cart, number)


# --- everyone together -----------------------------------------------------------------------------------


class People:
    """The students, their SMS gateway on ``host:port`` and (``settings.staff``) each cart's staff."""

    def __init__(
        self,
        carts: Sequence[LiveCart],
        clock: Clock,
        settings: PeopleSettings,
        *,
        secret: str,
        host: str = "127.0.0.1",
        port: int = 0,
        stop_ids: Mapping[str, str] | None = None,
    ) -> None:
        if not secret:
            raise ValueError("the SMS gateway needs the webhook's shared secret")
        self.students = Students(carts, clock, settings, stop_ids=stop_ids)
        self.staff = [StationStaff(cart) for cart in carts] if settings.staff else []
        self.gateway = AppServer(gateway_app(secret, self.students, clock), host, port, name="SMS gateway")

    @property
    def gateway_url(self) -> str:
        """The ``notify.webhook_url`` for the orchestrator."""
        return self.gateway.url + GATEWAY_PATH

    async def start(self) -> None:
        """Staff, students, then the gateway (the carts must be running)."""
        try:
            for staff in self.staff:
                await staff.start()
            await self.students.start()
            await self.gateway.start()
        except BaseException:
            await self.stop()
            raise
        log.info("SMS gateway on %s", self.gateway_url)

    async def stop(self) -> None:
        """Gateway, students, staff (safe to call twice)."""
        await self.gateway.stop()
        await self.students.stop()
        for staff in self.staff:
            await staff.stop()
