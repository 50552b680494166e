"""A simulated lift car: the physics and the controller logic behind both simulated lift controllers.

Pure logic with no I/O: ``LiftCar.step(dt)`` moves the car ``dt`` seconds on, and ``LiftCar.run(clock)``
steps it on a ``Clock`` (a ``VirtualClock`` in tests, a ``RealClock`` in a demo). The vendor IoT box
(``sim.lift_iot``) and the Modbus relay board (``sim.lift_modbus``) read ``snapshot()`` and press the
car's buttons; they never move the car themselves.

Model (defaults in ``LiftCarConfig``):

- travel ``floor_travel_s`` (2 s) per storey, at constant speed; the position is a float floor index;
- doors take ``door_move_s`` (3 s) to open or close and stay open ``door_dwell_s`` (5 s) unless held
  (a held door-open button, a robot's hold); a closing door that is asked to open reverses at once;
- a simple collective controller: the car keeps its direction while calls lie ahead, stops at every
  floor with a cabin call or a hall call, then reverses or parks with its doors closed;
- passengers: ``passenger_call(origin, destination)`` is a person pressing the hall button; when the
  doors open at their floor they board and press their destination (a human call queue);
- faults: ``set_door_blocked`` (the light curtain is interrupted: the doors cannot close, fault
  ``DOOR_BLOCKED`` until they close again), ``set_out_of_service`` (the car stops at the next floor and
  parks with its doors open, refusing calls), ``set_fire`` (fire recall: calls are cancelled, the car
  goes to its fire floor without stopping and parks there with its doors open) and
  ``set_controller_silent`` (the car still works but its controller stops talking: the simulated
  IoT box and relay board honour this flag).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from interfaces.clock import Clock, VirtualClock

_EPS = 1e-9
_MAX_SEGMENTS = 100_000
"""Most state changes one ``step`` may go through (a guard against a logic loop)."""


class Direction(StrEnum):
    """Which way the car moves."""

    UP = "UP"
    DOWN = "DOWN"
    STOP = "STOP"


class CarDoor(StrEnum):
    """The car doors, as the door operator knows them."""

    CLOSED = "CLOSED"
    OPENING = "OPENING"
    OPEN = "OPEN"
    CLOSING = "CLOSING"


class CarMode(StrEnum):
    """The service the car gives."""

    NORMAL = "NORMAL"
    FIRE = "FIRE"
    OUT_OF_SERVICE = "OUT_OF_SERVICE"


class CarFault(StrEnum):
    """Faults the car's controller raises."""

    DOOR_BLOCKED = "DOOR_BLOCKED"


class CommandResult(StrEnum):
    """What the controller did with a button press."""

    ACCEPTED = "ACCEPTED"
    NOT_SERVED = "NOT_SERVED"  # the car does not serve that floor
    REFUSED_MODE = "REFUSED_MODE"  # fire recall or out of service: buttons are ignored
    REFUSED_MOVING = "REFUSED_MOVING"  # a door command while the car travels


@dataclass(frozen=True, slots=True)
class LiftCarConfig:
    """A car: the floors it serves (lowest first) and its timing in seconds."""

    floors: tuple[str, ...]
    fire_floor: str | None = None  # default: the lowest floor
    start_floor: str | None = None  # default: the lowest floor
    floor_travel_s: float = 2.0
    door_move_s: float = 3.0
    door_dwell_s: float = 5.0
    level_zone: float = 0.05  # fraction of a storey around a floor where the car reads "level"

    def __post_init__(self) -> None:
        if len(self.floors) < 2 or len(set(self.floors)) != len(self.floors):
            raise ValueError(f"LiftCarConfig: floors must be 2 or more distinct names, got {self.floors}")
        for name in ("fire_floor", "start_floor"):
            value = getattr(self, name)
            if value is not None and value not in self.floors:
                raise ValueError(f"LiftCarConfig: {name} {value!r} is not one of {self.floors}")
        for name in ("floor_travel_s", "door_move_s", "door_dwell_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LiftCarConfig: {name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.level_zone < 0.5:
            raise ValueError(f"LiftCarConfig: level_zone must be in (0, 0.5), got {self.level_zone}")


@dataclass(frozen=True, slots=True)
class CarSnapshot:
    """What the car's controller knows at one moment. ``time`` is the car's own elapsed time.

    ``floor`` is the position indicator (the floor the car stands at or passed last); ``level_floor``
    is the floor whose door zone the car is in, None between floors.
    """

    time: float
    position: float
    floor: str
    level_floor: str | None
    direction: Direction
    door: CarDoor
    door_held: bool
    mode: CarMode
    faults: frozenset[CarFault]
    car_calls: tuple[str, ...]
    hall_calls: tuple[str, ...]
    controller_silent: bool

    def same_state(self, other: CarSnapshot | None) -> bool:
        """Whether ``other`` shows the same discrete state (ignoring time and exact position)."""
        if other is None:
            return False
        return replace(self, time=0.0, position=0.0) == replace(other, time=0.0, position=0.0)


@dataclass(slots=True)
class Passenger:
    """A person who called the car at ``origin`` to ride to ``destination`` (floor indices)."""

    origin: int
    destination: int
    called_at: float
    boarded_at: float | None = None
    arrived_at: float | None = None


CarListener = Callable[[CarSnapshot], None]


@dataclass(eq=False)
class LiftCar:
    """One simulated car with its controller. Commands take effect at once; time moves by ``step``."""

    config: LiftCarConfig
    delivered: list[Passenger] = field(default_factory=list, init=False)
    _t: float = field(default=0.0, init=False)
    _floor: int = field(default=0, init=False)  # the floor reached last
    _moving: int = field(default=0, init=False)  # -1, 0, +1
    _travel_left: float = field(default=0.0, init=False)  # time to the next floor while moving
    _heading: int = field(default=0, init=False)  # direction kept between stops (collective control)
    _door: CarDoor = field(default=CarDoor.CLOSED, init=False)
    _door_left: float = field(default=0.0, init=False)  # time left in the door motion or dwell
    _held: bool = field(default=False, init=False)
    _car_calls: set[int] = field(default_factory=set, init=False)
    _hall_calls: set[int] = field(default_factory=set, init=False)
    _waiting: list[Passenger] = field(default_factory=list, init=False)
    _riding: list[Passenger] = field(default_factory=list, init=False)
    _fire: bool = field(default=False, init=False)
    _out_of_service: bool = field(default=False, init=False)
    _blocked: bool = field(default=False, init=False)
    _faults: set[CarFault] = field(default_factory=set, init=False)
    _silent: bool = field(default=False, init=False)
    _listeners: list[CarListener] = field(default_factory=list, init=False)
    _last: CarSnapshot | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        start = self.config.start_floor or self.config.floors[0]
        self._floor = self.config.floors.index(start)
        self._last = self.snapshot()

    # ---- reading ---------------------------------------------------------------------------------

    @property
    def floors(self) -> tuple[str, ...]:
        """The floors served, lowest first."""
        return self.config.floors

    @property
    def mode(self) -> CarMode:
        """Fire recall wins over out of service."""
        if self._fire:
            return CarMode.FIRE
        return CarMode.OUT_OF_SERVICE if self._out_of_service else CarMode.NORMAL

    @property
    def position(self) -> float:
        """The car's height as a floor index (fractional while it travels)."""
        return self._floor + self._moving * (1.0 - self._travel_left / self.config.floor_travel_s)

    @property
    def controller_silent(self) -> bool:
        """Whether the car's controller has stopped talking (the simulated controllers honour it)."""
        return self._silent

    def snapshot(self) -> CarSnapshot:
        """The car's state now."""
        names = self.config.floors
        return CarSnapshot(
            time=self._t,
            position=self.position,
            floor=names[self._floor],
            level_floor=None if (level := self._level()) is None else names[level],
            direction={1: Direction.UP, -1: Direction.DOWN}.get(self._moving, Direction.STOP),
            door=self._door,
            door_held=self._held,
            mode=self.mode,
            faults=frozenset(self._faults),
            car_calls=tuple(names[i] for i in sorted(self._car_calls)),
            hall_calls=tuple(names[i] for i in sorted(self._hall_calls)),
            controller_silent=self._silent,
        )

    def add_listener(self, listener: CarListener) -> None:
        """Call ``listener(snapshot)`` whenever the discrete state changes (floor, door, mode, ...)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: CarListener) -> None:
        """Stop calling ``listener``."""
        self._listeners.remove(listener)

    # ---- buttons and switches ----------------------------------------------------------------------

    def car_call(self, floor: str) -> CommandResult:
        """Press ``floor`` on the cabin panel (what a robot's call does)."""
        index = self._index(floor)
        if index is None:
            return CommandResult.NOT_SERVED
        if self.mode is not CarMode.NORMAL:
            return CommandResult.REFUSED_MODE
        if not self._moving and self._at(index):
            self._reopen()  # pressing the floor the car stands at opens its doors again
        else:
            self._car_calls.add(index)
        self._changed()
        return CommandResult.ACCEPTED

    def passenger_call(self, origin: str, destination: str) -> CommandResult:
        """A person at ``origin`` presses the hall button and will ride to ``destination``."""
        start, end = self._index(origin), self._index(destination)
        if start is None or end is None or start == end:
            return CommandResult.NOT_SERVED
        if self.mode is not CarMode.NORMAL:
            return CommandResult.REFUSED_MODE
        self._waiting.append(Passenger(start, end, self._t))
        if not self._moving and self._at(start) and self._door in (CarDoor.OPEN, CarDoor.OPENING):
            self._board_and_alight(start)
        else:
            self._hall_calls.add(start)
        self._changed()
        return CommandResult.ACCEPTED

    def open_door(self, hold: bool = False) -> CommandResult:
        """Press door-open; ``hold`` keeps it pressed (the doors stay open until released)."""
        if self.mode is not CarMode.NORMAL:
            return CommandResult.REFUSED_MODE
        if self._moving:
            return CommandResult.REFUSED_MOVING
        self._held = self._held or hold
        self._reopen()
        self._changed()
        return CommandResult.ACCEPTED

    def release_hold(self) -> None:
        """Let go of door-open: the dwell starts again, then the doors close."""
        self._held = False
        if self._door is CarDoor.OPEN:
            self._door_left = self.config.door_dwell_s
        self._changed()

    def close_door(self) -> CommandResult:
        """Press door-close: release any hold and close now (unless blocked)."""
        if self.mode is not CarMode.NORMAL:
            return CommandResult.REFUSED_MODE
        self._held = False
        self._close_now()
        self._changed()
        return CommandResult.ACCEPTED

    def set_door_blocked(self, blocked: bool) -> None:
        """Interrupt (or clear) the light curtain: blocked doors cannot close."""
        self._blocked = blocked
        if blocked and self._door is CarDoor.CLOSING:
            self._faults.add(CarFault.DOOR_BLOCKED)
            self._reverse_door(CarDoor.OPENING)
        self._changed()

    def set_fire(self, on: bool) -> None:
        """Fire recall on or off (the building's fire alarm)."""
        self._fire = on
        self._mode_switched(on)

    def set_out_of_service(self, on: bool) -> None:
        """Take the car out of service (key switch) or put it back."""
        self._out_of_service = on
        self._mode_switched(on)

    def set_controller_silent(self, silent: bool) -> None:
        """Make the car's controller stop (or resume) talking to the bridge."""
        self._silent = silent
        self._changed()

    # ---- time --------------------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Move the car ``dt`` seconds on, through as many state changes as fall in that time."""
        if not (dt >= 0 and math.isfinite(dt)):
            raise ValueError(f"LiftCar.step: dt must be a finite number >= 0, got {dt}")
        left = dt
        for _ in range(_MAX_SEGMENTS):
            if left <= _EPS:
                break
            used = self._advance(left)
            self._t += used
            left -= used
            self._changed()
        else:
            raise RuntimeError(f"LiftCar.step: no progress after {_MAX_SEGMENTS} state changes")
        self._t += max(left, 0.0)

    async def run(self, clock: Clock, tick_s: float = 0.1) -> None:
        """Step the car on ``clock`` every ``tick_s`` seconds until cancelled."""
        if not tick_s > 0:
            raise ValueError(f"LiftCar.run: tick_s must be > 0, got {tick_s}")
        last = clock.monotonic()
        while True:
            await clock.sleep(tick_s)
            now = clock.monotonic()
            self.step(now - last)
            last = now

    # ---- the controller ----------------------------------------------------------------------------

    def _advance(self, limit: float) -> float:
        """Run the current activity for at most ``limit`` seconds; return the time used."""
        if self._moving:
            return self._advance_travel(limit)
        if self._door in (CarDoor.OPENING, CarDoor.CLOSING):
            return self._advance_door(limit)
        if self._door is CarDoor.OPEN:
            return self._advance_dwell(limit)
        return 0.0 if self._dispatch() else limit

    def _advance_travel(self, limit: float) -> float:
        """Travel towards the next floor; arrive there if it is reached within ``limit``."""
        if limit < self._travel_left:
            self._travel_left -= limit
            return limit
        used = self._travel_left
        self._floor += self._moving
        self._travel_left = 0.0
        self._arrive(self._floor)
        if not 0 <= self._floor + self._moving < len(self.config.floors):
            self._moving = 0  # never run past the end floors
        if self._moving:
            self._travel_left = self.config.floor_travel_s
        return used

    def _advance_door(self, limit: float) -> float:
        """Move the doors; finish opening or closing when the motion ends within ``limit``."""
        if limit < self._door_left:
            self._door_left -= limit
            return limit
        used = self._door_left
        if self._door is CarDoor.OPENING:
            self._door, self._door_left = CarDoor.OPEN, self.config.door_dwell_s
            self._board_and_alight(self._here())
        else:
            self._door, self._door_left = CarDoor.CLOSED, 0.0
            self._faults.discard(CarFault.DOOR_BLOCKED)
        return used

    def _advance_dwell(self, limit: float) -> float:
        """Keep the doors open for the dwell (forever while held or parked), then close them."""
        if self._held or self._parked_open():
            return limit
        if limit < self._door_left:
            self._door_left -= limit
            return limit
        used = self._door_left
        self._try_close()
        return used

    def _dispatch(self) -> bool:
        """Doors closed and the car stands: start the next activity; False when there is none."""
        here = self._here()
        if self.mode is CarMode.FIRE and here != self._fire_index():
            return self._depart(1 if self._fire_index() > here else -1)
        if self.mode is not CarMode.NORMAL:
            self._open_doors()  # parked at the fire floor, or out of service: doors open
            return True
        if here in self._car_calls or here in self._hall_calls:
            self._serve(here)
            return True
        direction = self._choose_direction(here)
        return self._depart(direction) if direction else False

    def _choose_direction(self, here: int) -> int:
        """Keep heading while calls lie ahead, else go towards the nearest call; 0 when none."""
        calls = self._car_calls | self._hall_calls
        if not calls:
            self._heading = 0
            return 0
        ahead = [c for c in calls if (c - here) * self._heading > 0]
        if self._heading and ahead:
            return self._heading
        nearest = min(calls, key=lambda c: (abs(c - here), c))
        return 1 if nearest > here else -1

    def _depart(self, direction: int) -> bool:
        self._moving = self._heading = direction
        self._travel_left = self.config.floor_travel_s
        return True

    def _arrive(self, index: int) -> None:
        """The car reaches floor ``index`` while travelling: stop, pass or turn."""
        if self.mode is CarMode.FIRE:
            self._arrive_in_fire_recall(index)
        elif self.mode is CarMode.OUT_OF_SERVICE:
            self._moving = 0
        elif index in self._car_calls or index in self._hall_calls:
            self._moving = 0
            self._serve(index)
        elif not any((c - index) * self._moving > 0 for c in self._car_calls | self._hall_calls):
            self._moving = 0  # nothing further this way (calls were cancelled): stop here

    def _arrive_in_fire_recall(self, index: int) -> None:
        """Fire recall: stop at the fire floor, pass any other, turn round when moving away."""
        fire = self._fire_index()
        if index == fire:
            self._moving = 0
        elif (fire - index) * self._moving < 0:
            self._moving = self._heading = -self._moving

    def _serve(self, index: int) -> None:
        """Answer the calls at ``index``: clear them and open the doors."""
        self._car_calls.discard(index)
        self._hall_calls.discard(index)
        self._open_doors()

    def _open_doors(self) -> None:
        if self._door is CarDoor.CLOSED:
            self._door, self._door_left = CarDoor.OPENING, self.config.door_move_s

    def _reopen(self) -> None:
        """Door-open pressed at a floor: open, reverse a closing door, or restart the dwell."""
        if self._door is CarDoor.CLOSED:
            self._open_doors()
        elif self._door is CarDoor.CLOSING:
            self._reverse_door(CarDoor.OPENING)
        elif self._door is CarDoor.OPEN:
            self._door_left = self.config.door_dwell_s

    def _close_now(self) -> None:
        """Close open or opening doors at once (a blocked light curtain keeps them open)."""
        if self._door is CarDoor.OPEN:
            self._try_close()
        elif self._door is CarDoor.OPENING:
            if self._blocked:
                self._faults.add(CarFault.DOOR_BLOCKED)
            else:
                self._reverse_door(CarDoor.CLOSING)

    def _try_close(self) -> None:
        """Start closing; a blocked light curtain keeps the doors open and raises DOOR_BLOCKED."""
        if self._blocked:
            self._faults.add(CarFault.DOOR_BLOCKED)
            self._door_left = self.config.door_dwell_s
            return
        self._door, self._door_left = CarDoor.CLOSING, self.config.door_move_s

    def _reverse_door(self, to: CarDoor) -> None:
        """Turn a moving door round: it takes as long to go back as it has travelled."""
        self._door, self._door_left = to, self.config.door_move_s - self._door_left

    def _board_and_alight(self, index: int) -> None:
        """Doors open at ``index``: riders for here leave, waiting people board and press their floor."""
        for rider in [p for p in self._riding if p.destination == index]:
            rider.arrived_at = self._t
            self._riding.remove(rider)
            self.delivered.append(rider)
        if self.mode is not CarMode.NORMAL:
            return
        for person in [p for p in self._waiting if p.origin == index]:
            person.boarded_at = self._t
            self._waiting.remove(person)
            self._riding.append(person)
            self._car_calls.add(person.destination)

    def _mode_switched(self, on: bool) -> None:
        if on:
            self._enter_special_mode()
        else:
            self._resume_normal()

    def _enter_special_mode(self) -> None:
        """Fire recall or out of service: cancel every call; an open door at the wrong floor closes."""
        self._car_calls.clear()
        self._hall_calls.clear()
        self._waiting.clear()
        self._held = False
        if self.mode is CarMode.FIRE and not self._moving and self._here() != self._fire_index():
            self._close_now()
        self._changed()

    def _resume_normal(self) -> None:
        """Back to normal service: open doors close after a normal dwell."""
        if self.mode is CarMode.NORMAL and self._door is CarDoor.OPEN:
            self._door_left = self.config.door_dwell_s
        self._changed()

    def _parked_open(self) -> bool:
        """Doors stay open: out of service, or fire recall at the fire floor."""
        if self.mode is CarMode.OUT_OF_SERVICE:
            return True
        return self.mode is CarMode.FIRE and self._here() == self._fire_index()

    # ---- helpers -----------------------------------------------------------------------------------

    def _index(self, floor: str) -> int | None:
        return self.config.floors.index(floor) if floor in self.config.floors else None

    def _fire_index(self) -> int:
        return self.config.floors.index(self.config.fire_floor or self.config.floors[0])

    def _here(self) -> int:
        """The floor the car stands at (or reached last while it travels)."""
        return self._floor

    def _at(self, index: int) -> bool:
        return self._floor == index

    def _level(self) -> int | None:
        position = self.position
        nearest = round(position)
        return nearest if abs(position - nearest) <= self.config.level_zone + _EPS else None

    def _changed(self) -> None:
        """Tell the listeners when the discrete state moved on."""
        now = self.snapshot()
        if now.same_state(self._last):
            return
        self._last = now
        for listener in list(self._listeners):
            listener(now)


async def drive_until(
    clock: VirtualClock,
    car: LiftCar,
    predicate: Callable[[CarSnapshot], bool],
    limit_s: float,
    step_s: float = 0.1,
) -> float:
    """Run ``clock`` on in ``step_s`` steps until ``predicate(car.snapshot())`` holds.

    Returns the virtual seconds it took; ``TimeoutError`` when ``limit_s`` passes first. The car must
    be running on ``clock`` (``LiftCar.run``).
    """
    start = clock.monotonic()
    while not predicate(car.snapshot()):
        if clock.monotonic() - start >= limit_s:
            raise TimeoutError(f"drive_until: not reached within {limit_s} s; car is {car.snapshot()}")
        await clock.run_for(step_s)
    return clock.monotonic() - start
