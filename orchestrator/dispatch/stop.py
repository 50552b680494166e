"""Stopping criteria for the solver: small objects answering "stop now?" and "how far along?".

They follow PyVRP's stopping protocol (called once per search iteration with the best cost so far, they
answer whether to stop) and add ``progress()``, the share of the budget used, with which the solver
splits one budget between its phases (fleet minimisation, then distance). Time is passed in as a
clock callable (the dispatcher never reads the wall clock itself), so tests stop by iteration count
and the benchmark injects ``time.perf_counter``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class StoppingCriterion(Protocol):
    """Decides when the search stops; ``progress`` in [0, 1] is the share of the budget used, and
    reaches 1 when the criterion says stop (the solver's phases are cut by progress)."""

    def __call__(self, best_cost: float) -> bool:
        """Whether to stop now (called once per iteration; ``best_cost`` is PyVRP's, unused here)."""
        ...

    def progress(self) -> float:
        """The share of the budget used so far."""
        ...


class MaxIterations:
    """Stop after ``count`` iterations (calls), summed over every phase that shares this criterion."""

    def __init__(self, count: int) -> None:
        if count < 0:
            raise ValueError(f"the iteration count must be >= 0, got {count}")
        self.count = count
        self.done = 0

    def __call__(self, best_cost: float) -> bool:
        """Count one iteration; whether the budget was already used up."""
        if self.done >= self.count:
            return True
        self.done += 1
        return False

    def progress(self) -> float:
        """Iterations done over the budget."""
        return min(1.0, self.done / self.count) if self.count else 1.0


class MaxRuntime:
    """Stop ``seconds`` after construction, as measured by ``clock`` (e.g. ``time.perf_counter``)."""

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        if seconds < 0:
            raise ValueError(f"the time limit must be >= 0 s, got {seconds}")
        self.seconds = seconds
        self.clock = clock
        self.start = clock()

    def __call__(self, best_cost: float) -> bool:
        """Whether the time is up."""
        return self.progress() >= 1.0

    def progress(self) -> float:
        """Elapsed time over the limit."""
        return min(1.0, (self.clock() - self.start) / self.seconds) if self.seconds else 1.0


class FirstOf:
    """Stop as soon as any criterion says so; progress is the furthest along."""

    def __init__(self, *criteria: StoppingCriterion) -> None:
        if not criteria:
            raise ValueError("FirstOf needs at least one criterion")
        self.criteria = criteria

    def __call__(self, best_cost: float) -> bool:
        """Whether any criterion stops (each one is asked, so every iteration counter stays exact)."""
        answers = [criterion(best_cost) for criterion in self.criteria]
        return any(answers)

    def progress(self) -> float:
        """The largest progress of the criteria."""
        return max(criterion.progress() for criterion in self.criteria)


class Share:
    """The first ``until`` share of ``budget``: stops when ``budget`` stops or its progress reaches ``until``.

    Iterations and time spent under a ``Share`` count against ``budget``, so a solver can run phase after
    phase on one budget: ``Share(budget, 0.3)`` for the first phase, ``budget`` itself for the last.
    """

    def __init__(self, budget: StoppingCriterion, until: float) -> None:
        if not 0 <= until <= 1:
            raise ValueError(f"a budget share must be in [0, 1], got {until}")
        self.budget = budget
        self.until = until

    def __call__(self, best_cost: float) -> bool:
        """Whether this share of the budget, or the whole budget, is used up."""
        # Asked first, so the iteration that is not run is not counted against the budget.
        if self.budget.progress() >= self.until:
            return True
        return self.budget(best_cost)

    def progress(self) -> float:
        """The share of this phase used so far."""
        return min(1.0, self.budget.progress() / self.until) if self.until else 1.0
