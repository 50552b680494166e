"""The dispatcher's pure core (no I/O, no wall clock: time is passed in).

So far (issue 5, foundation): the classical routing core and its yardstick.

- ``problem``: the frozen ``Problem`` (depot, customers with demand, time windows, service times,
  pickup-delivery pairs; identical vehicles with a capacity). Euclidean distances, not rounded;
  travel time = distance; objective = vehicles first, then distance.
- ``instances``: readers for Solomon VRPTW, Li & Lim PDPTW and best-known-solution JSON texts.
- ``check``: the independent feasibility checker (``check(problem, routes) -> CheckResult``).
- ``solver``: ``solve(problem, seed=, stop=, time_limit_s=, clock=) -> Result`` (ruin and recreate).
- ``stop``: ``MaxIterations``, ``MaxRuntime(seconds, clock)``, ``FirstOf``.
- ``errors``: ``DispatchError`` ← ``InstanceFormatError``.
"""

from orchestrator.dispatch.check import CheckResult, check
from orchestrator.dispatch.errors import DispatchError, InstanceFormatError
from orchestrator.dispatch.problem import Node, Problem
from orchestrator.dispatch.solver import Result, solve
from orchestrator.dispatch.stop import FirstOf, MaxIterations, MaxRuntime

__all__ = [
    "CheckResult",
    "DispatchError",
    "FirstOf",
    "InstanceFormatError",
    "MaxIterations",
    "MaxRuntime",
    "Node",
    "Problem",
    "Result",
    "check",
    "solve",
]
