"""Stopping criteria for the solver: small objects answering "stop now?" and "how far along?".

Time is passed in as a clock callable (the dispatcher never reads the wall clock itself), so tests stop
by iteration count and the benchmark injects ``time.perf_counter``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class StoppingCriterion(Protocol):
    """Decides when the search stops; ``progress`` in [0, 1] drives the acceptance schedule."""

    def __call__(self, iteration: int) -> bool:
        """Whether to stop before running ``iteration``."""
        ...

    def progress(self, iteration: int) -> float:
        """The share of the budget used so far."""
        ...


class MaxIterations:
    """Stop after ``count`` iterations."""

    def __init__(self, count: int) -> None:
        if count < 0:
            raise ValueError(f"the iteration count must be >= 0, got {count}")
        self.count = count

    def __call__(self, iteration: int) -> bool:
        """Whether ``iteration`` is past the budget."""
        return iteration >= self.count

    def progress(self, iteration: int) -> float:
        """Iterations done over the budget."""
        return min(1.0, iteration / self.count) if self.count else 1.0


class MaxRuntime:
    """Stop ``seconds`` after construction, as measured by ``clock`` (e.g. ``time.perf_counter``)."""

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        if seconds < 0:
            raise ValueError(f"the time limit must be >= 0 s, got {seconds}")
        self.seconds = seconds
        self.clock = clock
        self.start = clock()

    def __call__(self, iteration: int) -> bool:
        """Whether the time is up."""
        return self.clock() - self.start >= self.seconds

    def progress(self, iteration: int) -> float:
        """Elapsed time over the limit."""
        return min(1.0, (self.clock() - self.start) / self.seconds) if self.seconds else 1.0


class FirstOf:
    """Stop as soon as any criterion says so; progress is the furthest along."""

    def __init__(self, *criteria: StoppingCriterion) -> None:
        if not criteria:
            raise ValueError("FirstOf needs at least one criterion")
        self.criteria = criteria

    def __call__(self, iteration: int) -> bool:
        """Whether any criterion stops."""
        return any(criterion(iteration) for criterion in self.criteria)

    def progress(self, iteration: int) -> float:
        """The largest progress of the criteria."""
        return max(criterion.progress(iteration) for criterion in self.criteria)
