"""Readers for the classical benchmark formats: Solomon VRPTW, Li & Lim PDPTW, best-known solutions.

Every reader takes the file's text and its name (this package does no I/O: ``benchmarks.dispatch``
reads the files); a malformed file raises ``InstanceFormatError`` naming the file, the line and what
is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from orchestrator.dispatch.errors import InstanceFormatError
from orchestrator.dispatch.problem import Node, Problem

SOLOMON_FIELDS = 7
LILIM_FIELDS = 9


@dataclass(frozen=True, slots=True)
class BestKnown:
    """A best-known solution's objective: vehicles, then distance."""

    vehicles: int
    distance: float


def _numbers(file: str, lineno: int, line: str, count: int) -> list[float]:
    fields = line.split()
    if len(fields) != count:
        raise InstanceFormatError(file, lineno, f"expected {count} numbers, found {len(fields)}")
    try:
        return [float(field) for field in fields]
    except ValueError:
        raise InstanceFormatError(file, lineno, f"not a number in {line.strip()!r}") from None


def _integer(file: str, lineno: int, value: float, what: str) -> int:
    if value != int(value):
        raise InstanceFormatError(file, lineno, f"{what} must be a whole number, found {value}")
    return int(value)


def _problem(file: str, name: str, nodes: list[Node], vehicles: int, capacity: int) -> Problem:
    if len(nodes) < 2:
        raise InstanceFormatError(file, None, "no customers")
    try:
        return Problem(name=name, nodes=tuple(nodes), vehicles=vehicles, capacity=capacity)
    except ValueError as exc:
        raise InstanceFormatError(file, None, str(exc)) from None


def read_solomon_text(text: str, file: str = "<text>") -> Problem:
    """A Solomon VRPTW instance: name line, ``VEHICLE`` (number, capacity), ``CUSTOMER`` rows of 7."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise InstanceFormatError(file, None, "empty file")
    name = lines[0][1].strip()
    fleet: tuple[int, int] | None = None
    nodes: list[Node] = []
    for lineno, line in lines[1:]:
        if line.split()[0][0].isalpha():
            continue  # section headers: VEHICLE, NUMBER CAPACITY, CUSTOMER, CUST NO. ...
        if fleet is None:
            if len(line.split()) != 2:
                raise InstanceFormatError(file, lineno, "expected the VEHICLE line (number, capacity) first")
            k, q = _numbers(file, lineno, line, 2)
            fleet = (_integer(file, lineno, k, "vehicle number"), _integer(file, lineno, q, "capacity"))
            continue
        i, x, y, demand, ready, due, service = _numbers(file, lineno, line, SOLOMON_FIELDS)
        node_id = _integer(file, lineno, i, "customer number")
        dem = _integer(file, lineno, demand, "demand")
        nodes.append(Node(node_id, x, y, dem, ready, due, service))
    if fleet is None:
        raise InstanceFormatError(file, None, "no VEHICLE line (number and capacity)")
    return _problem(file, name, nodes, *fleet)


def read_lilim_text(text: str, name: str, file: str = "<text>") -> Problem:
    """A Li & Lim PDPTW instance: ``K Q speed``, then ``id x y demand ready due service pickup delivery``."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise InstanceFormatError(file, None, "empty file")
    lineno, first = lines[0]
    # The speed field is ignored: the classical convention is travel time = distance (several
    # published files carry 0 there).
    k, q, _speed = _numbers(file, lineno, first, 3)
    nodes: list[Node] = []
    for lineno, line in lines[1:]:
        values = _numbers(file, lineno, line, LILIM_FIELDS)
        i, x, y, demand, ready, due, service, pickup, delivery = values
        nodes.append(
            Node(
                _integer(file, lineno, i, "node id"),
                x,
                y,
                _integer(file, lineno, demand, "demand"),
                ready,
                due,
                service,
                pickup=_integer(file, lineno, pickup, "pickup sibling"),
                delivery=_integer(file, lineno, delivery, "delivery sibling"),
            )
        )
    vehicles = _integer(file, lineno, k, "vehicle number")
    return _problem(file, name, nodes, vehicles, _integer(file, lineno, q, "capacity"))


def read_bks_text(text: str, file: str = "<text>") -> dict[str, BestKnown]:
    """``{"NAME": {"vehicles": int, "distance": float}, ...}`` → best-known objective by instance name."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InstanceFormatError(file, exc.lineno, f"not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InstanceFormatError(file, None, "expected an object of instance names")
    result: dict[str, BestKnown] = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or not {"vehicles", "distance"} <= entry.keys():
            raise InstanceFormatError(file, None, f"{name}: expected vehicles and distance")
        vehicles, distance = entry["vehicles"], entry["distance"]
        if not isinstance(vehicles, int) or not isinstance(distance, int | float):
            raise InstanceFormatError(file, None, f"{name}: vehicles must be an integer, distance a number")
        result[name] = BestKnown(vehicles, float(distance))
    return result
