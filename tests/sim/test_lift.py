"""The simulated lift car: travel and door timing, calls, passengers and faults, in virtual time."""

from __future__ import annotations

import asyncio

import pytest

from interfaces.clock import VirtualClock
from sim.lift import (
    CarDoor,
    CarFault,
    CarMode,
    CarSnapshot,
    CommandResult,
    Direction,
    LiftCar,
    LiftCarConfig,
    drive_until,
)

FLOORS = ("B1", "1", "2", "3", "4", "5", "6")


def make_car(**kw: object) -> LiftCar:
    return LiftCar(LiftCarConfig(floors=FLOORS, start_floor="1", fire_floor="1", **kw))  # type: ignore[arg-type]


def run_until(car: LiftCar, predicate: object, limit: float = 120.0, dt: float = 0.1) -> float:
    """Step the car until ``predicate(snapshot)``; return the time it took."""
    start = car.snapshot().time
    while not predicate(car.snapshot()):  # type: ignore[operator]
        if car.snapshot().time - start > limit:
            raise AssertionError(f"not reached: {car.snapshot()}")
        car.step(dt)
    return car.snapshot().time - start


def at(floor: str, door: CarDoor = CarDoor.OPEN) -> object:
    return lambda s: s.floor == floor and s.door is door and s.direction is Direction.STOP


def test_ride_takes_two_seconds_a_floor_plus_door_time() -> None:
    """From idle at 1 with doors closed, a call to 6 opens the doors there after 5×2 s + 3 s."""
    car = make_car()
    assert car.car_call("6") is CommandResult.ACCEPTED
    assert run_until(car, at("6")) == pytest.approx(13.0)
    assert run_until(car, at("6", CarDoor.CLOSED)) == pytest.approx(5.0 + 3.0)


def test_indicator_and_door_zone_while_travelling() -> None:
    """Moving up, the indicator shows the floor passed last; the door zone reads only near a floor."""
    car = make_car()
    car.car_call("3")
    car.step(1.0)
    snap = car.snapshot()
    assert (snap.floor, snap.level_floor, snap.direction) == ("1", None, Direction.UP)
    assert snap.position == pytest.approx(1.5)
    car.step(1.0)
    assert car.snapshot().floor == "2" and car.snapshot().level_floor == "2"


def test_one_big_step_equals_many_small_ones() -> None:
    """Stepping is exact: one 30 s step ends where three hundred 0.1 s steps end."""
    a, b = make_car(), make_car()
    for car in (a, b):
        car.car_call("5")
        car.passenger_call("3", "B1")
    a.step(30.0)
    for _ in range(300):
        b.step(0.1)
    assert a.snapshot().same_state(b.snapshot())
    assert a.snapshot().time == pytest.approx(b.snapshot().time)


def test_door_hold_keeps_doors_open_until_released() -> None:
    """A held door-open keeps the doors open past the dwell; close_door closes them at once."""
    car = make_car()
    assert car.open_door(hold=True) is CommandResult.ACCEPTED
    car.step(60.0)
    assert car.snapshot().door is CarDoor.OPEN and car.snapshot().door_held
    car.close_door()
    assert car.snapshot().door is CarDoor.CLOSING
    assert run_until(car, at("1", CarDoor.CLOSED)) == pytest.approx(3.0)


def test_release_hold_restarts_the_dwell() -> None:
    """Releasing a held door-open lets the doors close after a full dwell."""
    car = make_car(door_dwell_s=4.0)
    car.open_door(hold=True)
    car.step(10.0)
    car.release_hold()
    assert run_until(car, lambda s: s.door is CarDoor.CLOSING) == pytest.approx(4.0)


def test_open_reverses_closing_doors_and_is_refused_while_moving() -> None:
    """Door-open during closing reopens (taking as long as they closed); while travelling it is refused."""
    car = make_car()
    car.open_door()
    run_until(car, lambda s: s.door is CarDoor.CLOSING)
    car.step(1.0)
    car.open_door()
    assert run_until(car, lambda s: s.door is CarDoor.OPEN, dt=0.01) == pytest.approx(1.0, abs=0.11)
    car.close_door()
    run_until(car, at("1", CarDoor.CLOSED))
    car.car_call("4")
    car.step(1.0)
    assert car.open_door() is CommandResult.REFUSED_MOVING


def test_calling_the_floor_the_car_is_at_opens_the_doors() -> None:
    """A cabin call to the floor where the car stands idle opens its doors (no travel)."""
    car = make_car()
    car.car_call("1")
    assert run_until(car, at("1")) == pytest.approx(3.0)


def test_unknown_floor_is_not_served() -> None:
    """Calls to floors the car does not serve are refused with NOT_SERVED."""
    car = make_car()
    assert car.car_call("7") is CommandResult.NOT_SERVED
    assert car.passenger_call("1", "9") is CommandResult.NOT_SERVED


def test_passenger_call_moves_the_car_and_delivers_the_person() -> None:
    """A person calls at 3 for B1: the car fetches them, they press B1 and arrive there."""
    car = make_car()
    assert car.passenger_call("3", "B1") is CommandResult.ACCEPTED
    assert car.snapshot().hall_calls == ("3",)
    run_until(car, at("3"))
    assert car.snapshot().car_calls == ("B1",)
    run_until(car, at("B1"))
    (person,) = car.delivered
    assert (person.origin, person.destination) == (FLOORS.index("3"), FLOORS.index("B1"))
    assert person.boarded_at is not None and person.arrived_at is not None


def test_collective_control_stops_on_the_way_in_the_direction_of_travel() -> None:
    """Going up to 6, the car stops at 4 for a hall call, at 5 for that rider, then goes on to 6."""
    car = make_car()
    car.car_call("6")
    car.step(1.0)
    car.passenger_call("4", "5")
    stops: list[str] = []
    car.add_listener(lambda s: stops.append(s.floor) if s.door is CarDoor.OPENING else None)
    run_until(car, at("6"))
    assert stops == ["4", "5", "6"]
    assert len(car.delivered) == 1


def test_door_blocked_keeps_doors_open_and_raises_the_fault_until_they_close() -> None:
    """With the light curtain blocked the doors cannot close (DOOR_BLOCKED); cleared, they close."""
    car = make_car(door_dwell_s=2.0)
    car.open_door()
    car.set_door_blocked(True)
    car.step(20.0)
    snap = car.snapshot()
    assert snap.door is CarDoor.OPEN and CarFault.DOOR_BLOCKED in snap.faults
    car.set_door_blocked(False)
    run_until(car, at("1", CarDoor.CLOSED))
    assert not car.snapshot().faults


def test_blocking_a_closing_door_reopens_it() -> None:
    """Blocking the light curtain while the doors close reverses them and raises DOOR_BLOCKED."""
    car = make_car()
    car.open_door()
    run_until(car, lambda s: s.door is CarDoor.CLOSING)
    car.step(1.0)
    car.set_door_blocked(True)
    assert car.snapshot().door is CarDoor.OPENING
    assert CarFault.DOOR_BLOCKED in car.snapshot().faults


def test_fire_recall_turns_round_and_parks_open_at_the_fire_floor() -> None:
    """Fire mid-ride upwards: calls are cancelled, the car turns at the next floor, goes to the fire
    floor without stopping, parks there with its doors open, and refuses calls and door commands."""
    car = make_car()
    car.car_call("6")
    car.passenger_call("5", "2")
    car.step(5.0)  # between 3 and 4, going up
    car.set_fire(True)
    snap = car.snapshot()
    assert snap.mode is CarMode.FIRE and not snap.car_calls and not snap.hall_calls
    opened: list[str] = []
    car.add_listener(lambda s: opened.append(s.floor) if s.door is CarDoor.OPENING else None)
    run_until(car, at("1"))
    assert opened == ["1"]
    car.step(60.0)
    assert car.snapshot().door is CarDoor.OPEN
    assert car.car_call("3") is CommandResult.REFUSED_MODE
    assert car.close_door() is CommandResult.REFUSED_MODE
    car.set_fire(False)
    run_until(car, at("1", CarDoor.CLOSED))


def test_fire_recall_closes_open_doors_elsewhere_first() -> None:
    """A car standing open at 4 when fire recall starts closes its doors and goes to the fire floor."""
    car = make_car()
    car.car_call("4")
    run_until(car, at("4"))
    car.set_fire(True)
    assert car.snapshot().door is CarDoor.CLOSING
    assert run_until(car, at("1")) == pytest.approx(3.0 + 3 * 2.0 + 3.0)


def test_out_of_service_stops_at_the_next_floor_and_parks_open() -> None:
    """Out of service while travelling: the car stops at the next floor, opens and refuses calls."""
    car = make_car()
    car.car_call("6")
    car.step(1.0)
    car.set_out_of_service(True)
    run_until(car, at("2"))
    car.step(30.0)
    assert car.snapshot().door is CarDoor.OPEN and car.snapshot().mode is CarMode.OUT_OF_SERVICE
    assert car.car_call("5") is CommandResult.REFUSED_MODE
    car.set_out_of_service(False)
    assert car.car_call("5") is CommandResult.ACCEPTED
    run_until(car, at("5"))


def test_listeners_hear_discrete_changes_only() -> None:
    """Listeners are told about floor/door/mode changes, not about every step of travel."""
    car = make_car()
    heard: list[CarSnapshot] = []
    car.add_listener(heard.append)
    car.car_call("2")
    for _ in range(100):
        car.step(0.01)
    assert 2 <= len(heard) <= 6
    car.set_controller_silent(True)
    assert heard[-1].controller_silent and car.controller_silent
    car.remove_listener(heard.append)


@pytest.mark.parametrize(
    "kw",
    [
        {"floors": ("1",)},
        {"floors": ("1", "1")},
        {"floors": ("1", "2"), "fire_floor": "3"},
        {"floors": ("1", "2"), "door_move_s": 0},
        {"floors": ("1", "2"), "level_zone": 0.5},
    ],
)
def test_bad_config_is_refused(kw: dict[str, object]) -> None:
    """Impossible cars are refused with a clear ValueError."""
    with pytest.raises(ValueError, match="LiftCarConfig"):
        LiftCarConfig(**kw)  # type: ignore[arg-type]


def test_step_refuses_negative_time() -> None:
    """Time does not run backwards."""
    with pytest.raises(ValueError, match="dt"):
        make_car().step(-1.0)


async def test_run_steps_the_car_on_a_virtual_clock() -> None:
    """LiftCar.run steps the car on a VirtualClock; drive_until reports the virtual time taken."""
    clock = VirtualClock()
    car = make_car()
    task = asyncio.create_task(car.run(clock))
    car.car_call("3")
    took = await drive_until(clock, car, at("3"), limit_s=60)
    assert took == pytest.approx(2 * 2.0 + 3.0, abs=0.11)
    with pytest.raises(TimeoutError):
        await drive_until(clock, car, at("6"), limit_s=1)
    task.cancel()
