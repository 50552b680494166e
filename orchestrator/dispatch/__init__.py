"""The dispatcher's pure core (no I/O, no wall clock: time is passed in).

The campus dispatcher:

- ``campus``: the model (robots with compartments by size and a battery, parcels, mini-program
  requests, windows, hand-offs, timings) and the ``Plan`` of legs, with the plan rules in its docstring.
- ``travel``: time, metres and lift rides between places per robot profile, from ``maps`` (closed
  lifts left out).
- ``trips``: PyVRP groups visits into trips from one home place (capacity, windows, release times,
  optional visits with prizes).
- ``planner``: ``plan_campus(snapshot, now, tables, stop=)`` — windows, cart trips, hand-offs met by
  indoor robots, indoor trips, charging, then the requests.
- ``insertion``: ``insert_request(plan, snapshot, request, tables, now)`` → ``Accepted`` (ETA) or
  ``Refused`` (reason), in milliseconds.
- ``validate``: the independent plan checker (every rule, one sentence per violation).
- ``dispatcher``: ``Dispatcher(site).plan(snapshot, now, previous) -> Outcome`` (validated, budgeted,
  the previous plan plus a reason on failure; released legs and trips in progress kept) and
  ``insert``.
- ``windows``: ``recommend(times, WindowRules(...))`` — the daily delivery windows (default 4) that
  serve the most pickups, exactly (dynamic programming), within lengths, gaps, service hours and a
  capacity per window (``robopost windows recommend``).

The classical routing core and its yardstick (Solomon VRPTW and Li & Lim PDPTW):

- ``problem``: the frozen ``Problem`` (depot, customers with demand, time windows, service times,
  pickup-delivery pairs; identical vehicles with a capacity). Euclidean distances, not rounded;
  travel time = distance; objective = vehicles first, then distance.
- ``instances``: readers for Solomon VRPTW, Li & Lim PDPTW and best-known-solution JSON texts.
- ``check``: the independent feasibility checker (``check(problem, routes) -> CheckResult``).
- ``solver``: ``solve(problem, seed=, stop=, time_limit_s=, clock=) -> Result``, a thin adapter over
  PyVRP 0.14 (fleet minimisation with restarts, then distance; ``Tuning`` holds the knobs);
  ``IntegerScale`` maps real distances and times to PyVRP's integers so that integer feasibility
  implies real feasibility (reusable for any PyVRP model).
- ``stop``: ``MaxIterations``, ``MaxRuntime(seconds, clock)``, ``FirstOf``, ``Share`` (PyVRP's stopping
  protocol plus ``progress()``).
- ``errors``: ``DispatchError`` ← ``InstanceFormatError``.
"""

from orchestrator.dispatch.check import CheckResult, check
from orchestrator.dispatch.errors import DispatchError, InstanceFormatError
from orchestrator.dispatch.problem import Node, Problem
from orchestrator.dispatch.solver import IntegerScale, Result, Tuning, solve
from orchestrator.dispatch.stop import FirstOf, MaxIterations, MaxRuntime, Share

__all__ = [
    "CheckResult",
    "DispatchError",
    "FirstOf",
    "InstanceFormatError",
    "IntegerScale",
    "MaxIterations",
    "MaxRuntime",
    "Node",
    "Problem",
    "Result",
    "Share",
    "Tuning",
    "check",
    "solve",
]
