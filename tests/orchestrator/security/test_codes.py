"""Pickup codes: issuing, per-cart hashes, and the brute-force guard on a virtual clock."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Set

import pytest

from interfaces.clock import VirtualClock
from orchestrator.security import (
    CODE_SPACE,
    Challenge,
    CodeBook,
    CodeGuard,
    CodeSpaceExhausted,
    InvalidCode,
    InvalidPhone,
    Locked,
    guess_success_probability,
    hash_code,
    parse_code,
    phone_tail,
)

T0 = 1_717_000_000.0
CODE_KEY = bytes(range(32))
TARGET = 1e-4


class _ScriptedRandom(random.Random):
    """A ``Random`` whose ``randrange`` returns the given values in order."""

    def __init__(self, values: list[int]) -> None:
        super().__init__(0)
        self._values: Iterator[int] = iter(values)

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        return next(self._values)


class _FullSet(Set[str]):
    """Stands for all 10^6 codes without building them."""

    def __contains__(self, item: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return CODE_SPACE


# --- issuing and hashing ---------------------------------------------------------------------------


def test_new_code_is_six_digits_and_avoids_taken_codes() -> None:
    """Codes keep leading zeros and a taken code is drawn again rather than reused."""
    book = CodeBook(CODE_KEY)
    assert book.new_code(_ScriptedRandom([42]), set()) == "000042"
    assert book.new_code(_ScriptedRandom([42, 42, 999_999]), {"000042"}) == "999999"


def test_new_codes_are_uniform() -> None:
    """Over 50 000 draws each leading digit appears 10 % of the time within 0.5 points."""
    book, rng = CodeBook(CODE_KEY), random.Random(6)
    counts = Counter(book.new_code(rng, set())[0] for _ in range(50_000))
    assert set(counts) == set("0123456789")
    assert all(abs(n / 50_000 - 0.1) < 0.005 for n in counts.values())


def test_unique_within_a_cart_window() -> None:
    """Drawing 2 000 codes for one cart and window, each one added to ``taken``, gives no duplicate."""
    book, rng = CodeBook(CODE_KEY), random.Random(1)
    taken: set[str] = set()
    for _ in range(2_000):
        taken.add(book.new_code(rng, taken))
    assert len(taken) == 2_000


def test_code_space_exhausted() -> None:
    """With every code taken there is a clear error instead of an endless draw."""
    with pytest.raises(CodeSpaceExhausted, match="every 6-digit pickup code is taken"):
        CodeBook(CODE_KEY).new_code(random.Random(0), _FullSet())


def test_hash_vectors_match_an_independent_implementation() -> None:
    """Cart key and code hashes equal those computed with ``openssl dgst -mac HMAC`` (see module doc)."""
    book = CodeBook(CODE_KEY)
    cart_key = book.cart_key("cart-7")
    assert cart_key.hex() == "91ce09f39fb4365848c0a7335aa889083e9c78a47c737e4e23fb15acc825d8a6"
    assert (
        book.code_hmac("cart-7", "2024-06-01T18", "042917")
        == "b5f5881edebf3c0a417c4dddabb6ab30b815df27b5fdc3d8e07caa2edcbb0a1f"
    )
    assert (
        book.code_hmac("cart-7", "2024-06-01T18", "042917", tail="1234")
        == "87669e2f7f78f84e47dc718aa736cc0175e966e496d8e5a48cbfccd54e502395"
    )
    assert hash_code(cart_key, "cart-7", "2024-06-01T18", "042 917") == book.code_hmac(
        "cart-7", "2024-06-01T18", "042917"
    )


def test_hash_binds_cart_window_code_and_tail() -> None:
    """Changing the cart, window, code, tail or server key changes the hash."""
    book = CodeBook(CODE_KEY)
    base = book.code_hmac("cart-7", "w1", "123456")
    others = {
        book.code_hmac("cart-8", "w1", "123456"),
        book.code_hmac("cart-7", "w2", "123456"),
        book.code_hmac("cart-7", "w1", "123457"),
        book.code_hmac("cart-7", "w1", "123456", tail="0000"),
        CodeBook(b"\x01" * 32).code_hmac("cart-7", "w1", "123456"),
    }
    assert base not in others and len(others) == 5
    assert book.cart_key("cart-7") != book.cart_key("cart-8")


@pytest.mark.parametrize(
    ("text", "code"), [("042917", "042917"), (" 042 917 ", "042917"), ("０４２９１７", "042917")]
)
def test_parse_code(text: str, code: str) -> None:
    """Spaces are ignored and full-width digits folded."""
    assert parse_code(text) == code


@pytest.mark.parametrize("text", ["04291", "0429170", "04291a", "", "٠٤٢٩١٧", None])
def test_parse_code_refuses(text: str) -> None:
    """Anything but exactly six ASCII digits is not a code."""
    with pytest.raises(InvalidCode, match="exactly 6 digits"):
        parse_code(text)


def test_ids_with_line_breaks_and_bad_tails_are_refused() -> None:
    """Ids cannot smuggle a line break into the hashed message; tails are four digits."""
    book = CodeBook(CODE_KEY)
    with pytest.raises(ValueError, match="window id must be non-empty"):
        book.code_hmac("cart-7", "w1\n123456", "123456")
    with pytest.raises(ValueError, match="cart id must be non-empty"):
        book.cart_key("")
    with pytest.raises(InvalidCode, match="phone tail must be exactly 4 digits"):
        book.code_hmac("cart-7", "w1", "123456", tail="123")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        CodeBook(b"short")


def test_phone_tail() -> None:
    """The tail is the last four digits of the normalised mobile number."""
    assert phone_tail("+86 138-1234-5678") == "5678"
    with pytest.raises(InvalidPhone):
        phone_tail("5678")


# --- the guard ------------------------------------------------------------------------------------


def test_five_wrong_codes_in_ten_minutes_lock_until_the_oldest_leaves() -> None:
    """Failures at 0, 60, 120, 180, 240 s lock the screen until 600 s; a sixth at 600 s locks to 660 s."""
    clock = VirtualClock(T0)
    guard = CodeGuard(clock)
    for _ in range(4):
        guard.record_failure("cart-1")
        clock.advance(60)
    guard.check("cart-1")
    guard.record_failure("cart-1")
    with pytest.raises(Locked) as info:
        guard.check("cart-1")
    assert (info.value.until, info.value.reason) == (T0 + 600, "window")
    assert "'cart-1' is locked" in str(info.value)
    clock.advance(599 - 240)
    with pytest.raises(Locked):
        guard.check("cart-1")
    clock.advance(1)
    assert guard.check("cart-1") is Challenge.CODE_AND_PHONE_TAIL
    guard.record_failure("cart-1")
    with pytest.raises(Locked) as info:
        guard.check("cart-1")
    assert info.value.until == T0 + 660
    guard.check("cart-2")  # other screens are not affected


def test_spread_out_failures_do_not_lock() -> None:
    """Failures 150 s apart put at most four in any 10 minutes, so the screen never locks for them."""
    clock = VirtualClock(T0)
    guard = CodeGuard(clock)
    for _ in range(10):
        guard.check("cart-1")
        guard.record_failure("cart-1")
        clock.advance(150)
    assert guard.status("cart-1").failures_in_window == 3
    assert guard.status("cart-1").failures_today == 10


def test_success_clears_the_short_window_only() -> None:
    """A correct code forgives earlier typos for the lockout, but not for step-up or the daily budget."""
    clock = VirtualClock(T0)
    guard = CodeGuard(clock)
    for _ in range(4):
        guard.record_failure("cart-1")
    guard.record_success("cart-1")
    for _ in range(4):
        guard.record_failure("cart-1")
    status = guard.status("cart-1")
    assert status.locked_until is None and status.failures_in_window == 4
    assert status.failures_today == 8 and status.challenge is Challenge.CODE_AND_PHONE_TAIL


def test_step_up_after_a_miss_until_a_quiet_day() -> None:
    """One wrong code makes the screen ask for the phone tail too, until a day passes without a miss."""
    clock = VirtualClock(T0)
    guard = CodeGuard(clock)
    assert guard.check("cart-1") is Challenge.CODE
    guard.record_failure("cart-1")
    assert guard.status("cart-1").step_up_until == T0 + 86_400
    clock.advance(3_600)
    guard.record_failure("cart-1")
    clock.advance(86_400 - 1)
    assert guard.check("cart-1") is Challenge.CODE_AND_PHONE_TAIL
    clock.advance(1)
    assert guard.check("cart-1") is Challenge.CODE
    assert guard.status("cart-1") == guard.status("never-used")


def test_daily_budget_closes_code_entry() -> None:
    """The 20th wrong code within a day closes the screen until the first of them is a day old."""
    clock = VirtualClock(T0)
    guard = CodeGuard(clock)
    for _ in range(4):
        for _ in range(5):
            guard.record_failure("cart-1")
        clock.advance(600)
    with pytest.raises(Locked) as info:
        guard.check("cart-1")
    assert (info.value.until, info.value.reason) == (T0 + 86_400, "daily")
    assert "daily budget" in str(info.value)
    guard.record_success("cart-1")
    clock.advance(86_400 - 2_400 - 1)
    with pytest.raises(Locked, match="daily budget"):
        guard.check("cart-1")
    clock.advance(1)
    assert guard.check("cart-1") is Challenge.CODE_AND_PHONE_TAIL


def test_operator_reset_unlocks_but_keeps_step_up() -> None:
    """An operator reset reopens a locked screen; it still asks for the phone tail."""
    clock = VirtualClock(T0)
    guard = CodeGuard(clock)
    for _ in range(5):
        guard.record_failure("cart-1")
    guard.reset("cart-1")
    assert guard.check("cart-1") is Challenge.CODE_AND_PHONE_TAIL


def _attack_one_day(guard: CodeGuard, clock: VirtualClock) -> Counter[Challenge]:
    """A guesser who is always wrong, typing as fast as the guard allows for 24 h; counts guesses by kind."""
    end = clock.now() + 86_400
    guesses: Counter[Challenge] = Counter()
    while clock.now() < end:
        try:
            challenge = guard.check("cart-1")
        except Locked as locked:
            clock.advance(min(locked.until, end) - clock.now())
            continue
        guesses[challenge] += 1
        guard.record_failure("cart-1")
    return guesses


def test_attacker_at_the_allowed_rate_stays_below_the_target() -> None:
    """Simulated for a day: 1 plain guess and 19 with the phone tail; for 50 parcels P ≈ 5.0e-5 < 1e-4."""
    clock = VirtualClock(T0)
    guesses = _attack_one_day(CodeGuard(clock), clock)
    assert guesses == {Challenge.CODE: 1, Challenge.CODE_AND_PHONE_TAIL: 19}
    p_plain, p_step = 50 / 10**6, 50 / 10**10
    simulated = (
        1 - (1 - p_plain) ** guesses[Challenge.CODE] * (1 - p_step) ** guesses[Challenge.CODE_AND_PHONE_TAIL]
    )
    assert simulated == pytest.approx(guess_success_probability(50), rel=1e-12)
    assert simulated < TARGET
    assert guess_success_probability(50, tail_known=True) < TARGET


def test_codes_alone_would_miss_the_target() -> None:
    """Without step-up and daily budget the guard allows 720 guesses a day: ≈3.5 % for 50 parcels."""
    clock = VirtualClock(T0)
    guard = CodeGuard(clock, daily_limit=10**6, plain_misses=10**6)
    guesses = _attack_one_day(guard, clock)
    assert guesses == {Challenge.CODE: 720}
    assert guess_success_probability(50, daily_limit=None, plain_misses=None) == pytest.approx(
        0.03536, abs=1e-5
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, 5.0095e-05),
        ({"tail_known": True}, 6.9092e-05),
        ({"plain_misses": None}, 9.9953e-04),
        ({"hours": 48}, 1.0019e-04),
        ({"hours": 0}, 0.0),
    ],
)
def test_probability_figures(kwargs: dict[str, object], expected: float) -> None:
    """The documented figures for 50 parcels; the target holds per day, not per two days."""
    assert guess_success_probability(50, **kwargs) == pytest.approx(expected, rel=1e-4, abs=1e-12)  # type: ignore[arg-type]


def test_probability_grows_with_parcels() -> None:
    """More parcels on the cart, more codes to hit; no parcels, no chance."""
    values = [guess_success_probability(n) for n in (0, 1, 10, 50, 100)]
    assert values[0] == 0 and values == sorted(values) and len(set(values)) == 5


@pytest.mark.parametrize(
    "kwargs",
    [{"parcels_on_cart": -1}, {"parcels_on_cart": 10**6 + 1}, {"parcels_on_cart": 5, "window_s": 0}],
)
def test_probability_refuses_nonsense(kwargs: dict[str, float]) -> None:
    """Negative or impossible parcel counts and empty windows are refused."""
    with pytest.raises(ValueError):
        guess_success_probability(**kwargs)  # type: ignore[arg-type]


def test_guard_parameters_are_checked() -> None:
    """A guard that could never lock or whose window exceeds its day is refused."""
    with pytest.raises(ValueError, match="must be >= 1"):
        CodeGuard(VirtualClock(T0), attempts=0)
    with pytest.raises(ValueError, match="window_s <= day_s"):
        CodeGuard(VirtualClock(T0), window_s=90_000)
