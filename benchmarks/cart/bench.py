"""How fast the cart answers a typed pickup code.

Two figures:

* ``p50_ms`` / ``p99_ms`` — **the code check on the cart**: ``CartService.enter_code`` up to its answer
  with a board that answers at once (guard, offline hash check against a sheet of ``parcels`` codes,
  pickup tracking), right and wrong codes mixed (1 in 4 wrong; the guard is reset between rounds so
  it never locks);
* ``open_p50_ms`` / ``open_p99_ms`` — **typed code → lock pulse confirmed by the board**: the same call
  with the real ``LockerDriver`` talking Modbus RTU to the simulated board over a real pty pair (socat).

Target: p99 < 20 ms for the code check.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from interfaces.clock import RealClock
from orchestrator.security.codes import CodeBook
from robots.cart.codes import CodeEntry, CodeSheet
from robots.cart.events import EventQueue
from robots.cart.locker import LockerConfig, LockerDriver
from robots.cart.locker.model import BoardHealth, BoardSnapshot, CompartmentInputs, OpenResult
from robots.cart.service import CartService, CartSettings
from sim.locker_board import LockerBoardSim

CART, WINDOW, STOP = "cart_bench", "w-bench", "stop_bench"


class InstantBoard:
    """A locker board that confirms every pulse at once (to time the cart's own work)."""

    def __init__(self, compartments: int) -> None:
        inputs = {n: CompartmentInputs(True, True) for n in range(1, compartments + 1)}
        self._snapshot = BoardSnapshot(0.0, BoardHealth.OK, inputs)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def open(self, compartment: int) -> OpenResult:
        return OpenResult.SENT

    def snapshot(self) -> BoardSnapshot:
        return self._snapshot

    async def snapshots(self) -> AsyncIterator[BoardSnapshot]:
        await asyncio.Event().wait()
        yield self._snapshot


def _sheet(parcels: int, rng: random.Random, expires: float) -> tuple[CodeSheet, list[tuple[str, int]]]:
    book = CodeBook(rng.randbytes(32))
    codes: list[tuple[str, int]] = []
    entries = []
    taken: set[str] = set()
    for n in range(1, parcels + 1):
        code = book.new_code(rng, taken)
        taken.add(code)
        codes.append((code, n))
        entries.append(
            CodeEntry(f"P{n}", str(n), WINDOW, STOP, book.code_hmac(CART, WINDOW, code), None, expires)
        )
    return CodeSheet(CART, book.cart_key(CART), time.time(), tuple(entries)), codes


async def _time_codes(
    service: CartService,
    codes: list[tuple[str, int]],
    trials: int,
    rng: random.Random,
    wrong_share: float,
    between: Callable[[], Awaitable[None]] | None = None,
) -> list[float]:
    samples = []
    answers: Counter[str] = Counter()
    for _ in range(trials):
        code, _n = rng.choice(codes)
        typed = f"{(int(code) + 1) % 1_000_000:06d}" if rng.random() < wrong_share else code
        started = time.perf_counter()
        answer = await service.enter_code(typed)
        samples.append((time.perf_counter() - started) * 1000)
        answers[answer.result] += 1
        service.guard.reset(CART)
        if between is not None:
            await between()  # untimed: let the lock pulse end, so each open is a new pulse
    expected = {"open", "wrong"} if wrong_share else {"open"}
    if set(answers) - expected:
        raise RuntimeError(f"unexpected answers while timing: {dict(answers)}")
    return samples


def _figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 4),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 4),
        "max_ms": round(ordered[-1], 4),
    }


async def _run(trials: int, parcels: int, board_trials: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    clock = RealClock()
    sheet, codes = _sheet(parcels, rng, time.time() + 3600)
    settings = CartSettings(cart=CART, plain_misses=10**6, attempts=10**6, daily_limit=10**6)
    with tempfile.TemporaryDirectory(prefix="robopost-bench-cart-") as tmp:
        directory = Path(tmp)
        queue = EventQueue(directory / "events.db", CART)
        service = CartService(settings, InstantBoard(parcels), queue, clock)
        service.load_codes(sheet)
        service.stop_id, service.window = STOP, WINDOW
        check = _figures(await _time_codes(service, codes, trials, rng, 0.25))

        board = LockerBoardSim(directory, parcels)
        await board.start()
        driver = LockerDriver(LockerConfig(port=board.port, compartments=parcels, pulse_s=0.05), clock)
        real = CartService(settings, driver, queue, clock)
        await real.start()
        try:
            real.load_codes(sheet)
            real.stop_id, real.window = STOP, WINDOW
            await board.wait_for(lambda: driver.snapshot().health is BoardHealth.OK, timeout=5)
            opened = await _time_codes(real, codes, board_trials, rng, 0.0, driver.wait_pulses)
        finally:
            await real.stop()
            await board.stop()
            queue.close()
    full = _figures(opened)
    return {
        "trials": trials,
        "parcels": parcels,
        **check,
        "board_trials": board_trials,
        "open_p50_ms": full["p50_ms"],
        "open_p99_ms": full["p99_ms"],
        "open_max_ms": full["max_ms"],
        "target_p99_ms": 20.0,
    }


def run_bench(
    trials: int = 2000, parcels: int = 50, board_trials: int = 100, seed: int = 1
) -> dict[str, Any]:
    """Run both measurements and return the figures (see the module docstring)."""
    return asyncio.run(_run(trials, parcels, board_trials, seed))
