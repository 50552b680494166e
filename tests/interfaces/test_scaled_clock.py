"""ScaledClock: virtual time at ``factor`` times real speed (the live demo's clock).

No test asserts on how long something took in real time: sleeps are short (factor 100 or more), and
what is checked is the clock's own reading after the sleep returned.
"""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from interfaces.clock import Clock, ScaledClock, within


def test_scaled_clock_satisfies_the_protocol() -> None:
    """A ScaledClock can be passed wherever a Clock is taken."""
    assert isinstance(ScaledClock(10), Clock)


def test_now_starts_at_the_epoch_and_monotonic_at_zero() -> None:
    """now() starts at ``epoch`` (not the real time) and both readings move together, forwards."""
    clock = ScaledClock(50, epoch=1_000.0)
    first_now, first_mono = clock.now(), clock.monotonic()
    assert 1_000.0 <= first_now < 1_000.0 + 50  # < 1 real second since it was made
    assert 0.0 <= first_mono < 50
    assert clock.now() - clock.monotonic() == pytest.approx(1_000.0)
    assert clock.monotonic() >= first_mono


def test_default_epoch_is_the_real_time() -> None:
    """Without ``epoch`` the virtual time starts at the real time the clock was made."""
    before = time.time()
    clock = ScaledClock(2)
    assert before <= clock.epoch <= time.time()
    assert clock.now() >= clock.epoch


def test_origin_puts_every_process_on_one_timeline() -> None:
    """With an ``origin`` 10 real seconds ago at factor 3, now() reads epoch + 30 (and a little)."""
    origin = time.time() - 10.0
    clock = ScaledClock(3, epoch=5_000.0, origin=origin)
    assert 5_030.0 <= clock.now() < 5_030.0 + 3 * 5  # generous: < 5 real seconds to get here
    late = ScaledClock(3, epoch=5_000.0, origin=origin)  # made later, same timeline
    assert abs(late.now() - clock.now()) < 3 * 1.0


async def test_sleep_waits_its_virtual_seconds() -> None:
    """sleep(1.0) at factor 100 returns (after ~10 ms) with the clock at least 1.0 s further on."""
    clock = ScaledClock(100)
    start_mono, start_now = clock.monotonic(), clock.now()
    await clock.sleep(1.0)
    assert clock.monotonic() - start_mono >= 1.0
    assert clock.now() - start_now >= 1.0


async def test_sleepers_wake_in_the_order_of_their_due_times() -> None:
    """Concurrent sleeps of different lengths finish shortest first."""
    clock = ScaledClock(200)
    woke: list[float] = []

    async def nap(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(seconds)

    await asyncio.gather(nap(3.0), nap(1.0), nap(2.0))
    assert woke == [1.0, 2.0, 3.0]


async def test_sleep_zero_and_negative_only_yield() -> None:
    """sleep(0) and a negative sleep give other tasks a turn and return."""
    clock = ScaledClock(10)
    ran = asyncio.Event()

    async def other() -> None:
        ran.set()

    task = asyncio.ensure_future(other())
    await clock.sleep(0)
    await clock.sleep(-5)
    assert ran.is_set()
    await task


async def test_within_times_out_in_virtual_seconds() -> None:
    """``within`` on a ScaledClock gives up after the virtual time-out (2 s at factor 200: 10 ms)."""
    clock = ScaledClock(200)
    never = asyncio.Event()
    start = clock.monotonic()
    assert not await within(clock, 2.0, never.wait())
    assert clock.monotonic() - start >= 2.0


def test_real_seconds_converts_virtual_to_real() -> None:
    """30 virtual seconds at factor 10 take 3 real seconds."""
    assert ScaledClock(10).real_seconds(30.0) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"factor": 0}, "factor must be > 0"),
        ({"factor": -2}, "factor must be > 0"),
        ({"factor": math.nan}, "factor must be a finite number"),
        ({"factor": math.inf}, "factor must be a finite number"),
        ({"factor": 1, "epoch": math.inf}, "epoch must be a finite number"),
        ({"factor": 1, "origin": math.nan}, "origin must be a finite number"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, float], message: str) -> None:
    """A factor that is not a positive finite number, or a non-finite epoch/origin, is refused."""
    with pytest.raises(ValueError, match=message):
        ScaledClock(**kwargs)


async def test_non_finite_sleep_is_refused() -> None:
    """sleep(inf) or sleep(nan) would hang or corrupt the wait: refused."""
    with pytest.raises(ValueError, match="seconds must be a finite number"):
        await ScaledClock(10).sleep(math.inf)
