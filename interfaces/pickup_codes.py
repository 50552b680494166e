"""Pickup codes as both ends see them: the format, the keyed hash, and the guard against guessing.

Shared by the orchestrator (``orchestrator.security.codes.CodeBook`` issues codes and derives each
cart's key) and the cart (``robots.cart.codes`` checks typed codes offline against synced hashes), so
both compute the same hash and apply the same lockout policy.

Codes are 6 digits, drawn uniformly and unique among the parcels on one cart in one delivery window.
They are stored and synced only as keyed hashes. Each cart gets its own derived key so it can check
codes offline without holding the server's code key: a stolen cart reveals at most its own window's
codes, never another cart's.

Hash format, for the cart side to recompute (hex HMAC-SHA256 under the cart key)::

    robopost/code/v1\\n{cart}\\n{window}\\n{code}                         code alone
    robopost/code+tail/v1\\n{cart}\\n{window}\\n{code}\\n{phone tail}      code plus last 4 phone digits

Brute-force policy (``CodeGuard``), per cart screen (one screen per cart):

1. **Short lockout** — after ``attempts`` (5) wrong entries within ``window_s`` (10 min) the screen
   locks until the oldest of them is ``window_s`` old. A correct code clears this count (so a
   student who mistyped is not punished for the previous one's typos).
2. **Step-up** — after ``plain_misses`` (1) wrong entry, the screen asks for the code *and* the last
   four digits of the recipient's phone (手机尾号, the check parcel stations already use) until a whole
   ``day_s`` passes without a wrong entry. Both parts are checked as one hash, so the screen cannot
   tell (and must not say) which part was wrong.
3. **Daily budget** — after ``daily_limit`` (20) wrong entries within ``day_s`` (24 h) code entry on
   that cart closes until the oldest of them is a day old; recipients then open their compartment
   through online verification (the mini-program) or station staff. Successes never refund it.

Why all three: with codes alone the issue's 1e-4 target needs fewer than 2 wrong guesses per cart per
day (50 parcels: each guess wins with 50/10^6 = 5e-5), which no keypad used by people can promise.
The short lockout alone allows 720 guesses a day (≈3.5 %); a daily budget alone of 20 gives 1e-3.
With step-up, only ``plain_misses`` guesses a day are against the 10^6 code space; the rest are
against 10^10 (code × phone tail). See ``guess_success_probability``: 5.0e-5 per cart per day for 50
parcels, 6.9e-5 even for an attacker who knows one victim's phone tail.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from interfaces.clock import Clock

CODE_DIGITS = 6
CODE_SPACE = 1_000_000  # 10**CODE_DIGITS
TAIL_DIGITS = 4
TAIL_SPACE = 10_000  # 10**TAIL_DIGITS
DAY_S = 86_400.0

LockReason = Literal["window", "daily"]

CODE_FORMATS = {
    "code": "robopost/code/v1\n{cart}\n{window}\n{code}",
    "code+phone_tail": "robopost/code+tail/v1\n{cart}\n{window}\n{code}\n{phone_tail}",
}
"""The hashed messages (fields in braces), as the orchestrator's code sync announces them."""


class InvalidCode(ValueError):
    """The text is not a pickup code (exactly 6 digits) or not a phone tail (exactly 4 digits)."""


class Locked(Exception):
    """Code entry on a screen is locked until ``until`` (epoch seconds).

    ``reason`` is ``"window"`` (too many wrong codes in the short window: wait) or ``"daily"`` (the
    screen's daily budget of wrong codes is spent: pick up through online verification or staff).
    """

    def __init__(self, screen_id: str, until: float, reason: LockReason) -> None:
        what = "too many wrong codes" if reason == "window" else "the daily budget of wrong codes is spent"
        super().__init__(f"code entry on screen {screen_id!r} is locked until {until:.0f}: {what}")
        self.screen_id = screen_id
        self.until = until
        self.reason: LockReason = reason


class Challenge(StrEnum):
    """What a cart screen asks for now."""

    CODE = "code"
    """The 6-digit pickup code alone."""
    CODE_AND_PHONE_TAIL = "code+phone_tail"
    """The code and the last four digits of the recipient's phone."""


def parse_code(text: str) -> str:
    """The 6-digit code in ``text`` (spaces ignored, full-width digits folded); else ``InvalidCode``."""
    return _digits(text, CODE_DIGITS, "a pickup code must be exactly 6 digits")


def parse_tail(text: str) -> str:
    """The 4-digit phone tail in ``text`` (spaces ignored, full-width digits folded); else ``InvalidCode``."""
    return _digits(text, TAIL_DIGITS, "a phone tail must be exactly 4 digits")


def hash_code(cart_key: bytes, cart: str, window: str, code: str, tail: str | None = None) -> str:
    """Hex HMAC-SHA256 of a code (and optionally a phone tail) bound to its cart and window.

    This is what the cart recomputes offline from the typed digits and its ``cart_key``.
    """
    check_id("cart", cart)
    check_id("window", window)
    code = parse_code(code)
    if tail is None:
        message = CODE_FORMATS["code"].format(cart=cart, window=window, code=code)
    else:
        tail = parse_tail(tail)
        message = CODE_FORMATS["code+phone_tail"].format(cart=cart, window=window, code=code, phone_tail=tail)
    return hmac.new(cart_key, message.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ScreenStatus:
    """A cart screen's guard state at one moment (failure counts are capped at the guard's limits)."""

    challenge: Challenge
    locked_until: float | None
    lock_reason: LockReason | None
    failures_in_window: int
    failures_today: int
    step_up_until: float | None


@dataclass
class _Screen:
    recent: deque[float]
    today: deque[float]
    step_up_until: float = field(default=-math.inf)


class CodeGuard:
    """Counts wrong pickup codes per cart screen and locks code entry (policy in the module docstring).

    Times come from ``clock.now()``. A failure at ``t`` counts in the short window while
    ``now < t + window_s`` and in the day while ``now < t + day_s``. Not thread-safe: use it from the
    event loop.
    """

    def __init__(
        self,
        clock: Clock,
        attempts: int = 5,
        window_s: float = 600.0,
        daily_limit: int = 20,
        day_s: float = DAY_S,
        plain_misses: int = 1,
    ) -> None:
        if attempts < 1 or daily_limit < 1 or plain_misses < 1:
            raise ValueError("CodeGuard: attempts, daily_limit and plain_misses must be >= 1")
        if not 0 < window_s <= day_s:
            raise ValueError(f"CodeGuard: need 0 < window_s <= day_s, got {window_s} and {day_s}")
        self._clock = clock
        self._attempts = attempts
        self._window_s = window_s
        self._daily_limit = daily_limit
        self._day_s = day_s
        self._plain_misses = plain_misses
        self._screens: dict[str, _Screen] = {}

    def check(self, screen_id: str) -> Challenge:
        """What the screen must ask for now; raises ``Locked`` while code entry is locked."""
        status = self.status(screen_id)
        if status.locked_until is not None and status.lock_reason is not None:
            raise Locked(screen_id, status.locked_until, status.lock_reason)
        return status.challenge

    def status(self, screen_id: str) -> ScreenStatus:
        """The screen's lock, challenge and failure counts now (for the cart API and the console)."""
        now = self._clock.now()
        screen = self._screens.get(screen_id)
        if screen is None:
            return ScreenStatus(Challenge.CODE, None, None, 0, 0, None)
        self._expire(screen, now)
        locks: list[tuple[float, LockReason]] = []
        if len(screen.recent) >= self._attempts:
            locks.append((screen.recent[-self._attempts] + self._window_s, "window"))
        if len(screen.today) >= self._daily_limit:
            locks.append((screen.today[-self._daily_limit] + self._day_s, "daily"))
        until, reason = max(locks) if locks else (None, None)
        stepped = now < screen.step_up_until
        return ScreenStatus(
            challenge=Challenge.CODE_AND_PHONE_TAIL if stepped else Challenge.CODE,
            locked_until=until,
            lock_reason=reason,
            failures_in_window=len(screen.recent),
            failures_today=len(screen.today),
            step_up_until=screen.step_up_until if stepped else None,
        )

    def record_failure(self, screen_id: str) -> None:
        """Count a wrong entry now (also while locked: a cart may report failures it saw offline)."""
        now = self._clock.now()
        screen = self._screens.get(screen_id)
        if screen is None:
            screen = _Screen(deque(maxlen=self._attempts), deque(maxlen=self._daily_limit))
            self._screens[screen_id] = screen
        self._expire(screen, now)
        screen.recent.append(now)
        screen.today.append(now)
        if now < screen.step_up_until or len(screen.today) >= self._plain_misses:
            screen.step_up_until = now + self._day_s

    def record_success(self, screen_id: str) -> None:
        """A correct code: clears the short-window count; the daily budget and step-up stay."""
        screen = self._screens.get(screen_id)
        if screen is not None:
            screen.recent.clear()
            self._forget_if_idle(screen_id, screen, self._clock.now())

    def reset(self, screen_id: str) -> None:
        """Operator unlock: clears both counts but keeps step-up; each reset grants another daily budget,
        so callers must audit-log it."""
        screen = self._screens.get(screen_id)
        if screen is not None:
            screen.recent.clear()
            screen.today.clear()
            self._forget_if_idle(screen_id, screen, self._clock.now())

    def _expire(self, screen: _Screen, now: float) -> None:
        while screen.recent and now >= screen.recent[0] + self._window_s:
            screen.recent.popleft()
        while screen.today and now >= screen.today[0] + self._day_s:
            screen.today.popleft()

    def _forget_if_idle(self, screen_id: str, screen: _Screen, now: float) -> None:
        """Drop a screen's entry once it holds nothing, so memory stays bounded by active screens."""
        self._expire(screen, now)
        if not screen.recent and not screen.today and now >= screen.step_up_until:
            del self._screens[screen_id]


def guess_success_probability(
    parcels_on_cart: int,
    attempts_per_window: int = 5,
    window_s: float = 600.0,
    hours: float = 24.0,
    daily_limit: int | None = 20,
    plain_misses: int | None = 1,
    tail_known: bool = False,
) -> float:
    """Chance that a guesser at the allowed rate opens some compartment of one cart within ``hours``.

    With N = ``parcels_on_cart`` live codes among S = 10^6, each plain guess wins with N/S. The guard
    allows G = min(a·⌈3600·h/w⌉, D·⌈h/24⌉) wrong guesses (a = ``attempts_per_window``, w = ``window_s``,
    D = ``daily_limit``, no daily term when it is ``None``); of these G_p = min(G, m·⌈h/24⌉) are plain
    (m = ``plain_misses``; all of them when ``None``) and the rest step-up guesses, each winning with
    N/(S·T) (T = 10^4 phone tails), or (1 + (N-1)/T)/S when the attacker knows one victim's tail
    (``tail_known``). Then

        P = 1 − (1 − N/S)^G_p · (1 − p_step)^(G − G_p)

    Examples (N = 50, a = 5, w = 600 s, 24 h): codes alone (``daily_limit=None, plain_misses=None``)
    720 guesses → 3.5e-2; this policy (D = 20, m = 1) → 5.0e-5; with a known tail → 6.9e-5.
    Guessing without repeats changes these by less than G/S relative. Successes that clear the short
    window (the attacker's own parcels) and operator resets add guesses and are not counted here.
    """
    if parcels_on_cart < 0 or parcels_on_cart > CODE_SPACE:
        raise ValueError(f"parcels_on_cart must be within 0..{CODE_SPACE}, got {parcels_on_cart}")
    if attempts_per_window < 1 or window_s <= 0 or hours < 0:
        raise ValueError("attempts_per_window must be >= 1, window_s > 0 and hours >= 0")
    days = math.ceil(hours / 24)
    guesses = attempts_per_window * math.ceil(hours * 3600 / window_s)
    if daily_limit is not None:
        guesses = min(guesses, daily_limit * days)
    plain = guesses if plain_misses is None else min(guesses, plain_misses * days)
    n = parcels_on_cart
    p_plain = n / CODE_SPACE
    p_step = (1 + (n - 1) / TAIL_SPACE) / CODE_SPACE if tail_known and n else n / (CODE_SPACE * TAIL_SPACE)
    return float(1 - (1 - p_plain) ** plain * (1 - p_step) ** (guesses - plain))


def _digits(text: str, count: int, message: str) -> str:
    """Exactly ``count`` ASCII digits from ``text`` (spaces dropped, full-width digits folded)."""
    if not isinstance(text, str):
        raise InvalidCode(message)
    folded = "".join(text.split()).translate(_FULL_WIDTH)
    if len(folded) != count or not folded.isascii() or not folded.isdigit():
        raise InvalidCode(message)
    return folded


def check_id(name: str, value: str) -> None:
    """Ids go into the hashed message line by line: non-empty and without line breaks."""
    if not isinstance(value, str) or not value or "\n" in value or "\r" in value:
        raise ValueError(f"{name} id must be non-empty text without line breaks")


_FULL_WIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
