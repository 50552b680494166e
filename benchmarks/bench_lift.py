"""Lift figures in virtual time: the bridge's session logic driving the simulated car (no I/O).

Run: ``.venv/bin/python benchmarks/bench_lift.py``. The car is ``sim.lift.LiftCar`` with the timings
of the simulated controllers (2 s per floor, doors 3 s to open or close, 5 s dwell); its controller
reports every ``--report`` s (0.1 s), the bridge ticks as often. The robot passes the doors in
``--pass`` s (3 s) each way and answers at once. Printed:

- *request → doors open*: from the robot's request until the cabin stands at its floor with open
  doors, for an idle lift parked at the ground floor with its doors shut;
- *lift-seconds*: how long one ride keeps the lift bound to its session (from the bridge binding it
  to the robot's END_SESSION), for rides on the sample campus buildings (ADM 10 floors, TEA 6).

MQTT adds milliseconds per message on loopback (see ``tests/elevator_bridge/test_end_to_end.py``);
they are not counted here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from elevator_bridge.drivers.base import DriverResult, LiftStatus
from elevator_bridge.sessions import Building, EventKind, LiftCommand, LiftSettings, Verb
from interfaces.clock import VirtualClock
from interfaces.lift import DoorState, LiftMode, LiftRequest, LiftRequestType, MotionState, Passage
from sim.lift import CarDoor, CarMode, CommandResult, Direction, LiftCar, LiftCarConfig

DOOR = {CarDoor.OPEN: DoorState.OPEN, CarDoor.CLOSED: DoorState.CLOSED}
MOTION = {Direction.UP: MotionState.UP, Direction.DOWN: MotionState.DOWN, Direction.STOP: MotionState.STOPPED}
MODE = {CarMode.NORMAL: LiftMode.HUMAN, CarMode.FIRE: LiftMode.FIRE, CarMode.OUT_OF_SERVICE: LiftMode.OFFLINE}
RESULT = {CommandResult.ACCEPTED: DriverResult.SUCCESS, CommandResult.REFUSED_MOVING: DriverResult.RETRY}


class Bench:
    """One building with one lift (the simulated car) and one robot, in virtual time."""

    def __init__(self, building: str, floors: int, report_s: float) -> None:
        self.names = [f"{building}-{n}F" for n in range(1, floors + 1)]
        self.clock = VirtualClock(0.0)
        self.building = Building(building, [LiftSettings("L1", tuple(self.names), self.names[0])], self.clock)
        self.car = LiftCar(LiftCarConfig(floors=tuple(self.names)))
        self.report_s = report_s
        self.bound_at: float | None = None
        self.unbound_at: float | None = None
        self.last: tuple[str, Passage] | None = None  # the robot's latest request, repeated every 2 s
        self.sent_at = 0.0
        self.step()

    def step(self) -> None:
        """Move the car one report period on, report, tick, carry the commands out."""
        self.car.step(self.report_s)
        self.clock.advance(self.report_s)
        snap = self.car.snapshot()
        status = LiftStatus(
            self.clock.now(),
            snap.floor,
            MOTION[snap.direction],
            DOOR.get(snap.door, DoorState.MOVING),
            MODE[snap.mode],
            tuple(snap.faults),
        )
        self.building.status("L1", status)
        if self.last is not None and self.clock.now() - self.sent_at >= 2.0:
            self.send(*self.last)  # heartbeat
        self.building.tick()
        self.flush()

    def flush(self) -> None:
        for command in self.building.take_commands():
            self.building.command_result(command, self.apply(command))
        for event in self.building.take_events():
            if event.kind is EventKind.BOUND:
                self.bound_at = event.time
            elif event.kind is EventKind.UNBOUND:
                self.unbound_at = event.time

    def apply(self, command: LiftCommand) -> DriverResult:
        if command.verb is Verb.CALL:
            result = self.car.car_call(command.floor or "")
        elif command.verb is Verb.HOLD_OPEN:
            result = self.car.open_door(hold=True)
        else:
            result = self.car.close_door()
        return RESULT.get(result, DriverResult.IMPOSSIBLE)

    def send(self, floor: str, passage: Passage = Passage.OUTSIDE, end: bool = False) -> None:
        self.last, self.sent_at = (None if end else (floor, passage)), self.clock.now()
        self.building.request(
            LiftRequest(
                building=self.building.name,
                lift_name="L1",
                session_id="s",
                robot_id="r",
                request_type=LiftRequestType.END_SESSION if end else LiftRequestType.AGV_MODE,
                destination_floor=floor,
                passage=passage,
                request_time=self.clock.now(),
            )
        )
        self.flush()

    def run_until(self, done: Callable[[], bool], limit_s: float = 600.0) -> float:
        start = self.clock.now()
        while not done():
            if self.clock.now() - start > limit_s:
                raise RuntimeError("the lift did not get there")
            self.step()
        return self.clock.now() - start

    def open_at(self, floor: str) -> bool:
        state = self.building.state("L1")
        return (
            state.current_floor == floor
            and state.door_state is DoorState.OPEN
            and state.motion_state is MotionState.STOPPED
        )

    def pass_doors(self, floor: str, passage: Passage, after: Passage, pass_s: float) -> None:
        self.send(floor, passage)
        end = self.clock.now() + pass_s
        self.run_until(lambda: self.clock.now() >= end - 1e-9)
        self.send(floor, after)


def doors_open_after(building: str, floors: int, robot_floor: int, report_s: float) -> float:
    """Seconds from the request until the doors are open at the robot's floor (idle lift at 1F)."""
    bench = Bench(building, floors, report_s)
    floor = bench.names[robot_floor - 1]
    bench.send(floor)
    return bench.run_until(lambda: bench.open_at(floor))


def ride_lift_seconds(
    building: str, floors: int, start: int, to: int, pass_s: float, report_s: float
) -> float:
    """How long one ride ``start`` → ``to`` keeps the lift bound (idle lift parked at 1F)."""
    bench = Bench(building, floors, report_s)
    here, there = bench.names[start - 1], bench.names[to - 1]
    bench.send(here)
    bench.run_until(lambda: bench.open_at(here))
    bench.pass_doors(here, Passage.ENTERING, Passage.INSIDE, pass_s)
    bench.send(there, Passage.INSIDE)
    bench.run_until(lambda: bench.open_at(there))
    bench.pass_doors(there, Passage.EXITING, Passage.OUTSIDE, pass_s)
    bench.send(there, Passage.OUTSIDE, end=True)
    if bench.bound_at is None or bench.unbound_at is None:
        raise RuntimeError("the session was not bound and ended")
    return bench.unbound_at - bench.bound_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pass", dest="pass_s", type=float, default=3.0, help="robot door passage, s")
    parser.add_argument("--report", dest="report_s", type=float, default=0.1, help="status period, s")
    args = parser.parse_args()
    print("request → doors open at the robot's floor (idle lift at 1F, doors shut)")
    for building, floors, robot in (
        ("ADM", 10, 1),
        ("ADM", 10, 2),
        ("TEA", 6, 6),
        ("ADM", 10, 6),
        ("ADM", 10, 10),
    ):
        took = doors_open_after(building, floors, robot, args.report_s)
        print(f"  {building} robot at {robot:>2}F: {took:5.1f} s")
    print(f"lift-seconds of one ride (doors passed in {args.pass_s:.0f} s each way)")
    for building, floors, start, to in (
        ("TEA", 6, 1, 6),
        ("TEA", 6, 6, 1),
        ("ADM", 10, 1, 10),
        ("ADM", 10, 1, 2),
    ):
        took = ride_lift_seconds(building, floors, start, to, args.pass_s, args.report_s)
        print(f"  {building} {start}F → {to}F: {took:5.1f} lift-s")


if __name__ == "__main__":
    main()
