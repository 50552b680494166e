"""The Clock protocol, the real clock and the virtual clock (no wall-clock waits)."""

from __future__ import annotations

import asyncio
import math

import pytest

from interfaces.clock import Clock, RealClock, VirtualClock


def test_both_clocks_satisfy_the_protocol() -> None:
    """RealClock and VirtualClock are both Clocks, so code can take either."""
    assert isinstance(RealClock(), Clock)
    assert isinstance(VirtualClock(), Clock)


def test_real_clock_reads_the_system_clocks() -> None:
    """RealClock.now is epoch time (after 2020) and monotonic never goes backwards."""
    clock = RealClock()
    assert clock.now() > 1_577_836_800
    first = clock.monotonic()
    assert clock.monotonic() >= first


def test_real_clock_sleep_zero_returns() -> None:
    """RealClock.sleep(0) and a negative sleep return at once instead of failing."""

    async def main() -> None:
        await RealClock().sleep(0)
        await RealClock().sleep(-1)

    asyncio.run(main())


def test_virtual_clock_starts_where_told() -> None:
    """now() starts at ``start`` and monotonic() at 0; advance moves both by the same amount."""
    clock = VirtualClock(start=1_700_000_000.0)
    assert clock.now() == 1_700_000_000.0
    assert clock.monotonic() == 0.0
    clock.advance(2.5)
    assert clock.now() == 1_700_000_002.5
    assert clock.monotonic() == 2.5


def test_advance_wakes_sleepers_in_time_order() -> None:
    """Sleepers due within an advance wake in due-time order, whatever order they started in."""
    clock = VirtualClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    async def main() -> None:
        tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("c", 3), ("a", 1), ("b", 2), ("d", 9))]
        await clock.settle()
        assert clock.pending == 4
        assert clock.advance(5) == 3
        await clock.settle()
        assert woke == ["a", "b", "c"]
        assert clock.pending == 1
        clock.advance(4)
        await asyncio.gather(*tasks)
        assert woke == ["a", "b", "c", "d"]

    asyncio.run(main())


def test_equal_due_times_wake_in_arrival_order() -> None:
    """Two sleepers due at the same instant wake in the order they went to sleep."""
    clock = VirtualClock()
    woke: list[int] = []

    async def sleeper(i: int) -> None:
        await clock.sleep(1.0)
        woke.append(i)

    async def main() -> None:
        tasks = [asyncio.create_task(sleeper(i)) for i in range(5)]
        await clock.settle()
        clock.advance(1.0)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert woke == [0, 1, 2, 3, 4]


def test_sleeper_not_due_stays_asleep() -> None:
    """A sleeper whose time has not come is not woken by a shorter advance."""
    clock = VirtualClock()

    async def main() -> None:
        task = asyncio.create_task(clock.sleep(10))
        await clock.settle()
        clock.advance(9.999)
        await clock.settle()
        assert not task.done()
        clock.advance(0.001)
        await clock.settle()
        assert task.done()

    asyncio.run(main())


def test_run_until_lets_each_sleeper_see_its_own_due_time() -> None:
    """With run_until, a periodic task ticks at exact virtual instants, including sleeps it starts."""
    clock = VirtualClock(start=100.0)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            await clock.sleep(0.5)
            ticks.append(clock.now())

    async def main() -> None:
        task = asyncio.create_task(ticker())
        woken = await clock.run_until(102.25)
        task.cancel()
        assert woken == 4
        assert clock.now() == 102.25

    asyncio.run(main())
    assert ticks == [100.5, 101.0, 101.5, 102.0]


def test_run_for_interleaves_two_tasks_deterministically() -> None:
    """Two tasks with different periods interleave by virtual time, the same way on every run."""

    def run_once() -> list[tuple[str, float]]:
        clock = VirtualClock()
        log: list[tuple[str, float]] = []

        async def every(name: str, period: float, count: int) -> None:
            for _ in range(count):
                await clock.sleep(period)
                log.append((name, clock.monotonic()))

        async def main() -> None:
            tasks = [asyncio.create_task(every("fast", 1.0, 4)), asyncio.create_task(every("slow", 1.5, 2))]
            await clock.run_for(10)
            await asyncio.gather(*tasks)

        asyncio.run(main())
        return log

    # at 3.0 both are due: "slow" went to sleep first (at 1.5, "fast" at 2.0), so it wakes first
    expected = [("fast", 1.0), ("slow", 1.5), ("fast", 2.0), ("slow", 3.0), ("fast", 3.0), ("fast", 4.0)]
    assert run_once() == expected
    assert run_once() == expected


def test_cancelled_sleeper_is_forgotten() -> None:
    """Cancelling a sleeping task removes it: it is neither counted nor woken."""
    clock = VirtualClock()

    async def main() -> None:
        task = asyncio.create_task(clock.sleep(1))
        keeper = asyncio.create_task(clock.sleep(2))
        await clock.settle()
        task.cancel()
        await clock.settle()
        assert clock.pending == 1
        assert clock.next_wakeup() == 2.0
        assert clock.advance(5) == 1
        await keeper

    asyncio.run(main())


def test_next_wakeup_is_none_without_sleepers() -> None:
    """next_wakeup() is None when nobody sleeps."""
    assert VirtualClock().next_wakeup() is None


def test_sleep_zero_passes_no_time() -> None:
    """sleep(0) and negative sleeps return without anyone advancing the clock."""
    clock = VirtualClock(start=5.0)

    async def main() -> None:
        await clock.sleep(0)
        await clock.sleep(-3)

    asyncio.run(main())
    assert clock.now() == 5.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(bad: float) -> None:
    """NaN and infinite times are refused with ValueError rather than corrupting the time line."""
    with pytest.raises(ValueError, match="finite"):
        VirtualClock(start=bad)
    with pytest.raises(ValueError, match="finite"):
        VirtualClock().advance(bad)


def test_time_cannot_go_backwards() -> None:
    """A negative advance or a run_until into the past raises ValueError."""
    clock = VirtualClock(start=10.0)
    with pytest.raises(ValueError, match=">= 0"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="in the past"):
        asyncio.run(clock.run_until(9.0))


async def test_run_until_next_wakeup_wakes_the_sleeper_despite_float_rounding() -> None:
    """With a large epoch start, run_until(next_wakeup()) wakes the sleeper even when
    ``when - start`` rounds below its due time (seen with start=1000.0)."""
    clock = VirtualClock(start=1000.0)
    for delay in (0.1, 0.3, 0.7, 1.1, 2.9, 0.05):
        woke = asyncio.Event()

        async def sleeper(d: float = delay, ev: asyncio.Event = woke) -> None:
            await clock.sleep(d)
            ev.set()

        task = asyncio.create_task(sleeper())
        await clock.settle()
        wake_at = clock.next_wakeup()
        assert wake_at is not None
        assert await clock.run_until(wake_at) == 1
        assert woke.is_set()
        await task
