"""A simulated day's scenario: the campus file, the fleet, the load, the windows, the students, faults.

A scenario is a YAML file (see ``sim/scenarios/neijiang-3carts.yaml``)::

    campus: ../../maps/campuses/neijiang.yaml   # relative to this file (or absolute)
    seed: 0                  # the day's seed (overridable on the command line)
    parcels: 2000            # parcels of the day (two vans: 06:30 and 15:30)
    carts: 3
    indoor: 6                # indoor robots, spread over the buildings with a hand-off point
    requests: 300            # mini-program orders, 08:00-18:00
    windows:                 # optional: default w1 07:30-08:30, w2 12:00-13:30, w3 17:00-18:30,
                             # w4 21:00-22:00
      - {id: w1, start: "07:30", end: "08:30"}
    iterations: 1000         # PyVRP iterations per solve (the dispatcher stops by count: deterministic)
    students: {no_show: 0.03, forget_code: 0.08, step_up: 0.3, flexible: 0.5}
    faults:
      - {kind: robot_breakdown, robot: cart_2, at: "12:20", repair_min: 90, tow_min: 30}
      - {kind: lift_out_of_service, lift: ADM-L1, at: "09:00", minutes: 120}
      - {kind: gnss_outage, at: "17:05", minutes: 20, slowdown: 2.0}   # carts drive slower outdoors
      - {kind: broker_outage, at: "12:30", minutes: 5}                  # commands and reports wait

Times are ``"HH:MM"`` (or seconds since midnight). ``load_scenario(path, seed=None)`` raises
``ScenarioError`` with one line naming the file and the field for anything wrong (unknown keys,
bad times, a campus file that does not exist, a fault naming an unknown robot or lift is checked when
the day is built: ``sim.day.engine``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message is one line naming the file and the field."""


def parse_time(value: Any) -> float:
    """``"HH:MM"`` or a number of seconds since midnight, as seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _HHMM.match(value.strip())):
        hours, minutes = int(m.group(1)), int(m.group(2))
        if hours > 24 or minutes > 59:
            raise ValueError(f"{value!r} is not a time of day")
        seconds = hours * 3600.0 + minutes * 60.0
    else:
        raise ValueError(f"{value!r} is not a time (HH:MM or seconds since midnight)")
    if not 0 <= seconds <= 86400:
        raise ValueError(f"{value!r} is not within the day")
    return seconds


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowSpec(_Model):
    """A delivery window."""

    id: str = Field(min_length=1)
    start: float
    end: float

    _times = field_validator("start", "end", mode="before")(parse_time)


class Students(_Model):
    """How recipients behave (shares in 0..1)."""

    no_show: float = Field(default=0.03, ge=0, le=1)  # never come for the parcel
    forget_code: float = Field(default=0.08, ge=0, le=1)  # type a wrong code first and retry
    step_up: float = Field(default=0.3, ge=0, le=1)  # of those: need a phone call to staff (step-up)
    react_mean_s: float = Field(default=300.0, gt=0)  # from the SMS to the cart, when free
    flexible: float = Field(
        default=0.5, ge=0, le=1
    )  # come when the code comes even before their preferred time


class RobotBreakdown(_Model):
    """A robot breaks down at ``at``: towed home in ``tow_min``, repaired after ``repair_min``."""

    kind: Literal["robot_breakdown"]
    robot: str
    at: float
    tow_min: float = Field(default=30.0, ge=0)
    repair_min: float = Field(default=90.0, ge=0)

    _at = field_validator("at", mode="before")(parse_time)


class LiftOutOfService(_Model):
    """A lift is out of service from ``at`` for ``minutes``."""

    kind: Literal["lift_out_of_service"]
    lift: str
    at: float
    minutes: float = Field(gt=0)

    _at = field_validator("at", mode="before")(parse_time)


class GnssOutage(_Model):
    """Carts (or one ``robot``) drive ``slowdown`` times slower outdoors from ``at`` for ``minutes``."""

    kind: Literal["gnss_outage"]
    at: float
    minutes: float = Field(gt=0)
    slowdown: float = Field(default=2.0, ge=1)
    robot: str | None = None

    _at = field_validator("at", mode="before")(parse_time)


class BrokerOutage(_Model):
    """The MQTT broker is down: commands and robot reports wait until it is back."""

    kind: Literal["broker_outage"]
    at: float
    minutes: float = Field(gt=0)

    _at = field_validator("at", mode="before")(parse_time)


Fault = Annotated[RobotBreakdown | LiftOutOfService | GnssOutage | BrokerOutage, Field(discriminator="kind")]


class Scenario(_Model):
    """A day to simulate (see the module docstring)."""

    campus: Path
    seed: int = 0
    parcels: int = Field(default=2000, ge=0)
    carts: int = Field(default=3, ge=1)
    indoor: int = Field(default=6, ge=0)
    requests: int = Field(default=300, ge=0)
    windows: tuple[WindowSpec, ...] | None = None
    iterations: int = Field(default=1000, ge=1)
    students: Students = Field(default_factory=Students)
    faults: tuple[Fault, ...] = ()
    name: str = ""


def load_scenario(path: Path | str, *, seed: int | None = None) -> Scenario:
    """The scenario in ``path`` (``seed`` replaces the file's); ``ScenarioError`` if it is unusable."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise ScenarioError(f"{path}:{line} is not valid YAML") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping of keys (campus, carts, ...)")
    raw.setdefault("name", path.stem)
    return scenario_from_dict(raw, base=path.parent, source=str(path), seed=seed)


def scenario_from_dict(
    raw: dict[str, Any], *, base: Path, source: str = "scenario", seed: int | None = None
) -> Scenario:
    """A scenario from already parsed data; a relative ``campus`` is taken from ``base``."""
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "scenario"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ScenarioError(f"{source}: {field}: {message}") from None
    campus = scenario.campus if scenario.campus.is_absolute() else (base / scenario.campus).resolve()
    if not campus.is_file():
        raise ScenarioError(f"{source}: campus: no such map file {campus}")
    updates: dict[str, Any] = {"campus": campus}
    if seed is not None:
        updates["seed"] = seed
    if scenario.windows is not None:
        for w in scenario.windows:
            if w.end <= w.start:
                raise ScenarioError(f"{source}: windows: {w.id} ends before it starts")
    return scenario.model_copy(update=updates)
