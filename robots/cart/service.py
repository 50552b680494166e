"""The cart service: one per cart, composing the locker board, the offline code check, pickup tracking,
the durable event queue and the link to the orchestrator. The kiosk page (``robots.cart.hmi``) and the
cart's VDA 5050 agent (``robots.cart.agent``) are its two users.

::

    student types a code ──▶ enter_code ──▶ CodeGuard (lockout, step-up) ──▶ CodeChecker (offline hashes)
                                   │                                              │ right code
                                   ▼                                              ▼
    screen()/changes() ◀── alarms, watches ◀── PickupTracker ◀── board snapshots   board.open(n)
                                                     │ PickedUp
                                                     ▼
                              EventQueue (on disk first) ──Forwarder──▶ orchestrator (idempotent on id)

Answers to a typed code (``CodeAnswer.result``), every one with a Chinese and an English message:

* ``open``        the compartment's lock was pulsed: "compartment 12 is open — please close the door"
* ``wrong``       one neutral answer for every wrong code (never says whether a code exists)
* ``need_tail``   the screen asks for the phone's last four digits too (step-up after a wrong code)
* ``invalid``     not 6 digits (a typo; not counted as a wrong code)
* ``locked``      too many wrong codes: code entry locked until ``locked_until``
* ``board_down``  the locker board does not answer: nothing is counted, try again or ask staff
* ``jammed``      the board refused to open: the code stays valid, staff are alerted

Alarms (``CartAlarm.kind``): ``door_left_open``, ``lock_jammed``, ``door_forced``, ``board_offline``,
``code_lockout``, ``event_rejected``. They are shown on the screen and reported to operators through the
agent (VDA 5050 ``errors``).

Time comes from the ``Clock``; nothing here sleeps except on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from interfaces.clock import Clock, within
from interfaces.pickup_codes import Challenge, CodeGuard, InvalidCode, Locked
from robots.cart.codes import CodeChecker, CodeSheet, SyncError
from robots.cart.events import CartEvent, EventQueue, EventStatus, Forwarder, Refused, Unreachable
from robots.cart.locker.model import BoardHealth, BoardSnapshot, LockerPort, OpenResult
from robots.cart.pickup import (
    DoorClosed,
    DoorForced,
    DoorLeftOpen,
    DoorOpened,
    Jammed,
    NotTaken,
    Outcome,
    PickedUp,
    PickupTracker,
    Watch,
)
from robots.cart.uplink import Uplink

AnswerKind = Literal["open", "wrong", "need_tail", "invalid", "locked", "board_down", "jammed"]
AlarmKind = Literal[
    "door_left_open", "lock_jammed", "door_forced", "board_offline", "code_lockout", "event_rejected"
]


@dataclass(frozen=True, slots=True)
class Text:
    """A message in Chinese and English."""

    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class CartSettings:
    """How one cart behaves. ``staff_pin_hash`` is an argon2 hash (``robopost cart hash-pin``)."""

    cart: str
    support_phone: str = "400-000-0000"
    staff_pin_hash: str | None = None
    stop_labels: Mapping[str, Text] = field(default_factory=dict)
    attempts: int = 5
    attempts_window_s: float = 600.0
    daily_limit: int = 20
    plain_misses: int = 1
    door_alarm_s: float = 30.0
    remind_s: float = 30.0
    open_timeout_s: float = 3.0
    sync_s: float = 30.0
    retry_s: float = 0.5
    max_retry_s: float = 10.0
    staff_session_s: float = 300.0
    staff_attempts: int = 3
    staff_lock_s: float = 300.0


@dataclass(frozen=True, slots=True)
class CodeAnswer:
    """What the screen shows after a code was typed."""

    result: AnswerKind
    message: Text
    compartment: int | None = None
    challenge: Challenge = Challenge.CODE
    locked_until: float | None = None


@dataclass(frozen=True, slots=True)
class CartAlarm:
    """A condition an operator must know about; ``compartment`` when it concerns one."""

    kind: AlarmKind
    since: float
    message: Text
    compartment: int | None = None


@dataclass(frozen=True, slots=True)
class CompartmentView:
    """A compartment being watched, for the screen."""

    number: int
    phase: str
    staff: bool
    alarm: bool
    since: float


@dataclass(frozen=True, slots=True)
class ScreenView:
    """Everything the kiosk page shows; ``version`` grows with every change."""

    version: int
    now: float
    cart: str
    stop: str | None
    stop_label: Text | None
    window: str | None
    window_end: float | None
    challenge: Challenge
    locked_until: float | None
    lock_reason: str | None
    board: BoardHealth
    board_detail: str
    online: bool
    pending_events: int
    compartments: tuple[CompartmentView, ...]
    alarms: tuple[CartAlarm, ...]
    notice: Notice | None
    """The latest thing to tell the person at the screen (a parcel left inside, a door left open)."""
    support_phone: str


class StaffError(Exception):
    """Staff mode refused. ::

    StaffError
    ├── StaffPinWrong        the PIN is not this cart's
    ├── StaffLocked          too many wrong PINs: staff mode is locked for ``staff_lock_s``
    ├── StaffNotConfigured   this cart has no staff PIN
    └── StaffSessionEnded    the session token is unknown or expired: enter the PIN again
    """


class StaffPinWrong(StaffError):
    """The PIN is not this cart's."""


class StaffLocked(StaffError):
    """Too many wrong PINs: staff mode is locked for a while."""


class StaffNotConfigured(StaffError):
    """This cart has no staff PIN."""


class StaffSessionEnded(StaffError):
    """The session token is unknown or expired."""


NoticeKind = Literal["opened", "picked_up", "not_taken", "door_left_open", "jammed"]


@dataclass(frozen=True, slots=True)
class Notice:
    """The latest thing to tell the person at the screen: what happened, to which compartment, when."""

    kind: NoticeKind
    message: Text
    at: float
    compartment: int | None = None


_WRONG = Text("取件码不正确，请核对后重试。", "The pickup code is not right; please check it and try again.")
_NEED_TAIL = Text(
    "为保护您的包裹，请同时输入收件手机号后四位。",
    "To protect your parcel, please also enter the last four digits of your phone number.",
)
_INVALID = Text("取件码为6位数字。", "A pickup code is 6 digits.")
_TAIL_INVALID = Text("手机尾号为4位数字。", "The phone tail is 4 digits.")


_BOARD_TROUBLE = {
    BoardHealth.NO_REPLY: ("柜门控制板无响应。", "The locker board does not answer."),
    BoardHealth.LINK_DOWN: ("柜门控制板连接断开。", "The locker board's cable is disconnected."),
}


def _opened(n: int) -> Text:
    return Text(f"{n}号格口已打开，取件后请关好柜门。", f"Compartment {n} is open — please close the door.")


def _locked(until: float, reason: str | None, phone: str) -> Text:
    clock = datetime.fromtimestamp(until, UTC).astimezone().strftime("%H:%M")
    if reason == "daily":
        return Text(
            f"今日输错次数过多，本车暂停取件码输入。请通过小程序取件或致电 {phone}。",
            f"Too many wrong codes today: code entry on this cart is closed. "
            f"Use the mini-program or call {phone}.",
        )
    return Text(
        f"输错次数过多，请于 {clock} 后再试。",
        f"Too many wrong codes. Please try again after {clock}.",
    )


def _board_down(phone: str) -> Text:
    return Text(
        f"柜门控制暂时不可用，请稍后再试或致电 {phone}。",
        f"The lockers are not responding right now. Please try again shortly or call {phone}.",
    )


def _jammed(n: int, phone: str) -> Text:
    return Text(
        f"{n}号格口未能打开，已通知工作人员。您的取件码仍然有效，请致电 {phone}。",
        f"Compartment {n} did not open. Staff have been told and your code still works; please call {phone}.",
    )


def _close_door(n: int) -> Text:
    return Text(f"{n}号格口未关闭，请关好柜门。", f"Compartment {n} is still open — please close the door.")


def _not_taken(n: int) -> Text:
    return Text(
        f"{n}号格口内的包裹未取走，格口继续为您保留。",
        f"The parcel is still in compartment {n}; it stays reserved for you.",
    )


def _picked(n: int) -> Text:
    return Text(f"取件成功，谢谢！（{n}号格口）", f"Picked up — thank you! (compartment {n})")


class CartService:
    """See the module docstring. ``start()``/``stop()`` own the background tasks."""

    def __init__(
        self,
        settings: CartSettings,
        board: LockerPort,
        queue: EventQueue,
        clock: Clock,
        uplink: Uplink | None = None,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        self.settings = settings
        self.board = board
        self.queue = queue
        self.clock = clock
        self.uplink = uplink
        self.cart = settings.cart
        self._log = logger or logging.getLogger(f"robopost.cart.{settings.cart}")
        self.guard = CodeGuard(
            clock,
            attempts=settings.attempts,
            window_s=settings.attempts_window_s,
            daily_limit=settings.daily_limit,
            plain_misses=settings.plain_misses,
        )
        self.checker = CodeChecker(settings.cart)
        self.tracker = PickupTracker(
            door_alarm_s=settings.door_alarm_s,
            remind_s=settings.remind_s,
            open_timeout_s=settings.open_timeout_s,
        )
        self.forwarder = Forwarder(
            queue,
            self._send,
            clock,
            retry_s=settings.retry_s,
            max_retry_s=settings.max_retry_s,
            on_change=self._on_forwarded,
            logger=self._log,
        )
        self.stop_id: str | None = None
        self.window: str | None = None
        self._alarms: dict[tuple[AlarmKind, int | None], CartAlarm] = {}
        self._notice: Notice | None = None
        self._version = 0
        self._bump = asyncio.Event()
        self._wake_timer = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._staff_sessions: dict[str, float] = {}
        self._staff_failures: list[float] = []
        self._hasher = PasswordHasher()
        self._synced = False
        self._inputs_seen = 0  # how many input changes the board showed
        self._inputs_reported = 0  # ... of which the orchestrator has the latest
        self._report_needed = asyncio.Event()

    # --- life cycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Restore the last code sync, start the board and the background work."""
        self._restore()
        await self.board.start()
        self._spawn(self._watch_board(), "board")
        self._spawn(self._timer(), "timer")
        if self.uplink is not None:
            self._spawn(self.forwarder.run(), "forwarder")
            self._spawn(self._sync_loop(), "sync")
            self._spawn(self._report_loop(), "compartments")

    async def stop(self) -> None:
        """Stop the background work and the board (queued events stay on disk)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.board.stop()
        if self.uplink is not None:
            await self.uplink.close()

    # --- where the cart is ---------------------------------------------------------------------------

    def arrive(self, stop: str, window: str) -> str:
        """The cart stands at ``stop`` serving ``window``: its codes open from now; the orchestrator is
        told (queued, so it learns even if it is unreachable now). Returns the arrival event's id."""
        self.stop_id, self.window = stop, window
        event_id = self.queue.put("arrival", {"stop": stop, "window": window}, self.clock.now())
        self._changed_now()
        return event_id

    def depart(self) -> None:
        """The cart drives off: no code opens until the next stop."""
        self.stop_id = self.window = None
        self._changed_now()

    # --- the code screen -----------------------------------------------------------------------------

    async def enter_code(self, code: str, tail: str | None = None) -> CodeAnswer:
        """Check a typed code offline and open its compartment (see the module docstring)."""
        phone = self.settings.support_phone
        if self.board.snapshot().health is not BoardHealth.OK:
            return CodeAnswer("board_down", _board_down(phone))
        try:
            challenge = self.guard.check(self.cart)
        except Locked as locked:
            return CodeAnswer(
                "locked", _locked(locked.until, locked.reason, phone), locked_until=locked.until
            )
        if challenge is Challenge.CODE_AND_PHONE_TAIL and not tail:
            return CodeAnswer("need_tail", _NEED_TAIL, challenge=challenge)
        now = self.clock.now()
        try:
            match = self.checker.check(
                code, tail if challenge is Challenge.CODE_AND_PHONE_TAIL else None, stop=self.stop_id, now=now
            )
        except InvalidCode as exc:
            message = _TAIL_INVALID if "tail" in str(exc) else _INVALID
            return CodeAnswer("invalid", message, challenge=challenge)
        if match is None:
            return self._wrong()
        self.guard.record_success(self.cart)
        number = int(match.entry.compartment or 0)
        result = await self.board.open(number)
        if result is OpenResult.SENT:
            self.tracker.opening(number, now, parcel=match.entry.parcel, code_hash=match.code_hash)
            self._wake_timer.set()
            self._set_notice("opened", _opened(number), number)
            return CodeAnswer("open", _opened(number), compartment=number)
        if result is OpenResult.BOARD_DOWN:
            return CodeAnswer("board_down", _board_down(phone))
        self._raise_alarm("lock_jammed", number, _jammed(number, phone))
        return CodeAnswer("jammed", _jammed(number, phone), compartment=number)

    def _wrong(self) -> CodeAnswer:
        self.guard.record_failure(self.cart)
        status = self.guard.status(self.cart)
        self._changed_now()
        if status.locked_until is not None:
            until = status.locked_until
            self._wake_timer.set()  # to clear the alarm when the lock ends
            self._raise_alarm(
                "code_lockout",
                None,
                Text("取件码输错次数过多，已锁定。", "Code entry locked after too many wrong codes."),
            )
            return CodeAnswer(
                "locked", _locked(until, status.lock_reason, self.settings.support_phone), locked_until=until
            )
        return CodeAnswer("wrong", _WRONG, challenge=status.challenge)

    def screen(self) -> ScreenView:
        """What the kiosk page shows now."""
        status = self.guard.status(self.cart)
        board = self.board.snapshot()
        return ScreenView(
            version=self._version,
            now=self.clock.now(),
            cart=self.cart,
            stop=self.stop_id,
            stop_label=self.settings.stop_labels.get(self.stop_id) if self.stop_id else None,
            window=self.window,
            window_end=self._window_end(),
            challenge=status.challenge,
            locked_until=status.locked_until,
            lock_reason=status.lock_reason,
            board=board.health,
            board_detail=board.detail,
            online=self.forwarder.online,
            pending_events=self.queue.count(),
            compartments=tuple(_view(w) for w in self.tracker.watches()),
            alarms=self.alarms(),
            notice=self._notice,
            support_phone=self.settings.support_phone,
        )

    async def changes(self) -> AsyncGenerator[ScreenView, None]:
        """The screen now, then again after every change."""
        seen = -1
        while True:
            while self._version == seen:
                await self._bump.wait()
            seen = self._version
            yield self.screen()

    def alarms(self) -> tuple[CartAlarm, ...]:
        """The alarms now, oldest first."""
        return tuple(sorted(self._alarms.values(), key=lambda a: (a.since, a.kind)))

    # --- staff mode ----------------------------------------------------------------------------------

    async def staff_login(self, pin: str) -> str:
        """A staff session token for the right PIN; ``StaffError`` otherwise (3 wrong PINs lock it)."""
        now = self.clock.now()
        self._staff_failures = [t for t in self._staff_failures if now < t + self.settings.staff_lock_s]
        if len(self._staff_failures) >= self.settings.staff_attempts:
            raise StaffLocked("staff mode is locked after wrong PINs; try again later")
        pin_hash = self.settings.staff_pin_hash
        if pin_hash is None:
            raise StaffNotConfigured("no staff PIN is configured on this cart")
        try:  # argon2 takes tens of ms by design: off the loop, so board polling goes on
            await asyncio.to_thread(self._hasher.verify, pin_hash, pin)
        except (VerificationError, InvalidHashError):
            self._staff_failures.append(now)
            raise StaffPinWrong("wrong staff PIN") from None
        token = secrets.token_urlsafe(24)
        self._staff_sessions[token] = now + self.settings.staff_session_s
        return token

    def staff_logout(self, token: str) -> None:
        """End a staff session."""
        self._staff_sessions.pop(token, None)

    async def staff_open(
        self, token: str, compartments: Iterable[int] | None = None
    ) -> dict[int, OpenResult]:
        """Open the chosen compartments (None: all) for loading or unloading; one answer per compartment."""
        self.check_staff(token)
        numbers = (
            sorted(compartments) if compartments is not None else sorted(self.board.snapshot().compartments)
        )
        results: dict[int, OpenResult] = {}
        for number in numbers:
            results[number] = await self.board.open(number)
            if results[number] is OpenResult.SENT:
                self.tracker.opening(number, self.clock.now(), staff=True)
        self._wake_timer.set()
        self._changed_now()
        return results

    def check_staff(self, token: str) -> None:
        """``StaffSessionEnded`` unless ``token`` is a live staff session."""
        expires = self._staff_sessions.get(token)
        if expires is None or self.clock.now() >= expires:
            self._staff_sessions.pop(token, None)
            raise StaffSessionEnded("the staff session has ended; enter the PIN again")

    # --- the agent's actions -------------------------------------------------------------------------

    async def open_compartment(self, number: int) -> OpenResult:
        """Open a compartment for the robot's own action (a hand-off): door watched, no pickup."""
        result = await self.board.open(number)
        if result is OpenResult.SENT:
            self.tracker.opening(number, self.clock.now())
            self._wake_timer.set()
            self._changed_now()
        return result

    async def wait_for_pickup(self, number: int, timeout_s: float) -> bool:
        """Wait until compartment ``number`` holds no live parcel (taken) or ``timeout_s`` passes."""
        taken = self._until(lambda: self.checker.entry_for(str(number)) is None)
        return await within(self.clock, timeout_s, taken)

    # --- code sync -----------------------------------------------------------------------------------

    async def sync_now(self) -> bool:
        """Fetch the codes from the orchestrator now; whether it worked (the old sheet stays otherwise)."""
        if self.uplink is None:
            return False
        try:
            body = await self.uplink.fetch_codes()
            sheet = CodeSheet.from_sync(body, self.cart)
        except (Unreachable, Refused, SyncError) as exc:
            self._log.info("code sync failed: %s", exc)
            self.forwarder.set_online(isinstance(exc, Refused | SyncError))  # it answered, though
            return False
        self.forwarder.set_online(True)
        self.load_codes(sheet)
        self.forwarder.kick()
        await self.report_compartments()
        return True

    def load_codes(self, sheet: CodeSheet) -> None:
        """Use ``sheet`` from now on and keep it on disk for a reboot without network."""
        self.checker.load(sheet)
        self.queue.remember("codes", sheet.to_json())
        self._synced = True
        self._changed_now()

    # --- internals -----------------------------------------------------------------------------------

    def _restore(self) -> None:
        kept = self.queue.recall("codes")
        if kept is not None:
            try:
                self.checker.load(CodeSheet.from_sync(kept, self.cart))
            except SyncError as exc:
                self._log.warning("the kept code sync is unusable: %s", exc)
        self.checker.mark_picked(e.body["parcel"] for e in self.queue.events() if e.kind == "pickup")

    def _window_end(self) -> float | None:
        sheet = self.checker.sheet
        if sheet is None or self.window is None:
            return None
        ends = [e.expires_at for e in sheet.entries if e.window == self.window]
        return max(ends, default=None)

    def _on_forwarded(self) -> None:
        rejected = self.queue.count(EventStatus.REJECTED)
        if rejected:
            self._raise_alarm(
                "event_rejected",
                None,
                Text(
                    f"{rejected}条取件记录被服务器拒收，请联系运营人员。",
                    f"{rejected} cart event(s) were refused by the orchestrator; operators must check them.",
                ),
            )
        self._changed_now()

    async def _send(self, event: CartEvent) -> None:
        if self.uplink is None:
            raise Unreachable("no link to the orchestrator is configured")
        await self.uplink.send(event)

    async def _sync_loop(self) -> None:
        while True:
            await self.sync_now()
            await self.clock.sleep(self.settings.sync_s)

    async def _watch_board(self) -> None:
        last_health: BoardHealth | None = None
        last_inputs: object = None
        async for snapshot in self.board.snapshots():
            if snapshot.health is not last_health:
                last_health = snapshot.health
                self._board_health(snapshot)
            if snapshot.health is BoardHealth.OK and snapshot.compartments:
                self._handle(self.tracker.inputs(snapshot.compartments, snapshot.time))
                if snapshot.compartments != last_inputs:
                    last_inputs = snapshot.compartments
                    self._inputs_seen += 1
                    self._report_needed.set()
            self._changed_now()

    def _board_health(self, snapshot: BoardSnapshot) -> None:
        if snapshot.health is BoardHealth.OK:
            self._clear_alarm("board_offline", None)
        elif snapshot.health in _BOARD_TROUBLE:
            zh, en = _BOARD_TROUBLE[snapshot.health]
            self._raise_alarm("board_offline", None, Text(zh, f"{en} ({snapshot.detail})"))

    async def _timer(self) -> None:
        while True:
            self._wake_timer.clear()
            deadline = _earliest(self.tracker.next_deadline(), self._lockout_ends())
            waker = asyncio.ensure_future(self._wake_timer.wait())
            waiters: set[asyncio.Future[Any]] = {waker}
            if deadline is not None:
                waiters.add(asyncio.ensure_future(self.clock.sleep(max(0.0, deadline - self.clock.now()))))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            self._handle(self.tracker.tick(self.clock.now()))
            if ("code_lockout", None) in self._alarms and self.guard.status(self.cart).locked_until is None:
                self._clear_alarm("code_lockout", None)

    def _lockout_ends(self) -> float | None:
        """When the code-entry lock ends, while its alarm is raised."""
        if ("code_lockout", None) not in self._alarms:
            return None
        return self.guard.status(self.cart).locked_until

    def _handle(self, outcomes: list[Outcome]) -> None:
        phone = self.settings.support_phone
        for outcome in outcomes:
            match outcome:
                case PickedUp(number, parcel, code_hash, at):
                    self.queue.put(
                        "pickup",
                        {
                            "parcel": parcel,
                            "compartment": str(number),
                            "code_hash": code_hash,
                            "at": _iso(at),
                        },
                        at,
                    )
                    self.checker.mark_picked([parcel])
                    self._set_notice("picked_up", _picked(number), number)
                case NotTaken(number, _parcel, _at):
                    self._set_notice("not_taken", _not_taken(number), number)
                case DoorOpened(number, _at):
                    self._clear_alarm("lock_jammed", number)
                case DoorClosed(number, _at, _cleared):
                    self._clear_alarm("door_left_open", number)
                    self._clear_alarm("door_forced", number)
                    if _about(self._notice, number, "opened", "door_left_open"):
                        self._notice = None
                case DoorLeftOpen(number, since, _reminder, _at):
                    self._raise_alarm("door_left_open", number, _close_door(number), since)
                    self._set_notice("door_left_open", _close_door(number), number)
                case Jammed(number, _parcel, since, _at):
                    self._raise_alarm("lock_jammed", number, _jammed(number, phone), since)
                    self._set_notice("jammed", _jammed(number, phone), number)
                case DoorForced(number, at):
                    self._raise_alarm(
                        "door_forced",
                        number,
                        Text(
                            f"{number}号格口被异常打开。", f"Compartment {number} was opened without a code."
                        ),
                        at,
                    )
        if outcomes:
            self._wake_timer.set()  # a watch changed phase: its next deadline may be sooner
            self._changed_now()

    async def _report_loop(self) -> None:
        """Report doors and occupancy soon after they change (a failed report is retried by the sync)."""
        while True:
            await self._report_needed.wait()
            self._report_needed.clear()
            await self.report_compartments()

    async def report_compartments(self) -> bool:
        """Report doors and occupancy to the orchestrator if they changed since the last report;
        whether the orchestrator has the latest now."""
        if self.uplink is None:
            return False
        seen = self._inputs_seen
        if seen == self._inputs_reported:
            return True
        compartments = self.board.snapshot().compartments
        body = [
            {"id": str(n), "door": "closed" if c.door_closed else "open", "occupied": c.occupied}
            for n, c in sorted(compartments.items())
        ]
        if not body:
            return False
        try:
            await self.uplink.report_compartments(body)
        except (Unreachable, Refused) as exc:
            self._log.info("compartment report failed: %s", exc)
            return False
        self._inputs_reported = max(self._inputs_reported, seen)
        return True

    def _raise_alarm(
        self, kind: AlarmKind, compartment: int | None, message: Text, since: float | None = None
    ) -> None:
        key = (kind, compartment)
        old = self._alarms.get(key)
        self._alarms[key] = (
            replace(old, message=message)
            if old
            else CartAlarm(kind, since or self.clock.now(), message, compartment)
        )
        if old is None:
            self._log.warning("alarm %s%s: %s", kind, f" #{compartment}" if compartment else "", message.en)
        self._changed_now()

    def _clear_alarm(self, kind: AlarmKind, compartment: int | None) -> None:
        if self._alarms.pop((kind, compartment), None) is not None:
            self._changed_now()

    def _set_notice(self, kind: NoticeKind, message: Text, compartment: int | None = None) -> None:
        self._notice = Notice(kind, message, self.clock.now(), compartment)
        self._changed_now()

    def _changed_now(self) -> None:
        self._version += 1
        bump, self._bump = self._bump, asyncio.Event()
        bump.set()

    async def _until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds (checked after every change)."""
        while not predicate():
            await self._bump.wait()

    def _spawn(self, work: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=f"cart-{self.cart}-{name}")
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._log.error("cart task %s failed", task.get_name(), exc_info=task.exception())


def _about(notice: Notice | None, compartment: int, *kinds: NoticeKind) -> bool:
    """Whether ``notice`` is one of ``kinds`` about ``compartment``."""
    return notice is not None and notice.compartment == compartment and notice.kind in kinds


def _earliest(*times: float | None) -> float | None:
    return min((t for t in times if t is not None), default=None)


def _view(watch: Watch) -> CompartmentView:
    return CompartmentView(watch.compartment, watch.phase.value, watch.staff, watch.alarm, watch.since)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


__all__ = [
    "AlarmKind",
    "AnswerKind",
    "CartAlarm",
    "CartService",
    "CartSettings",
    "CodeAnswer",
    "CompartmentView",
    "EventStatus",
    "Notice",
    "NoticeKind",
    "ScreenView",
    "StaffError",
    "StaffLocked",
    "StaffNotConfigured",
    "StaffPinWrong",
    "StaffSessionEnded",
    "Text",
]
