"""A simulated Modbus RTU relay board on a real pseudo-terminal pair, wired to a simulated lift car.

``RelayBoardSim`` is the board of ``elevator_bridge.drivers.modbus_relay``: a pymodbus RTU slave on
one end of a pty pair made by ``socat`` (a virtual RS-485 cable); the driver opens the other end,
``port``. Its coils press the car's buttons (rising edge of a floor coil: cabin call; door-open held
on: doors held open, dropped: released; door-close rising: close now) and its discrete inputs show the
car's state at the moment they are read (door-zone sensors or binary floor code, door limits, moving
up/down, fire service, fault, door obstructed, out of service). The car itself runs on its own clock
(``LiftCar.run``); the board answers in real time.

Faults for tests and demos:

- ``car.set_controller_silent(True)``: the board still reads requests but sends no replies;
- ``unplug()`` / ``replug()``: the cable is pulled (both pty ends vanish, the driver's port hangs up)
  and put back (a new pty pair at the same paths, a new server: pymodbus does not reopen a port);
  the relays keep their state, as on a real board whose cable was pulled;
- ``reset()``: the board reboots: every relay drops, the server restarts;
- ``inject(data)``: raw bytes onto the line towards the driver (garbage, frames with a bad CRC).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

from elevator_bridge.drivers.modbus_relay import RelayBoardLayout
from sim.lift import CarDoor, CarFault, CarMode, CarSnapshot, Direction, LiftCar
from sim.pty import PtyPair, PtyPairError, RtuBoardOnPty

__all__ = ["PtyPair", "PtyPairError", "RelayBoardSim", "input_bits"]  # PtyPair lives in sim.pty

_BLOCK_BITS = 32  # coils and inputs per block on the simulated board (two 16-bit words each)


def input_bits(layout: RelayBoardLayout, car: CarSnapshot, floors: tuple[str, ...]) -> dict[int, bool]:
    """The board's discrete inputs (address → on) for the car state ``car``."""
    bits: dict[int, bool] = dict.fromkeys(layout.inputs(), False)
    if layout.floor_code == "binary":
        code = floors.index(car.floor) + 1
        for i, address in enumerate(layout.floor_inputs):
            bits[address] = bool(code >> i & 1)
    elif car.level_floor is not None:
        bits[layout.floor_inputs[floors.index(car.level_floor)]] = True
    bits[layout.door_open_input] = car.door is CarDoor.OPEN
    bits[layout.door_closed_input] = car.door is CarDoor.CLOSED
    bits[layout.moving_up_input] = car.direction is Direction.UP
    bits[layout.moving_down_input] = car.direction is Direction.DOWN
    bits[layout.fire_input] = car.mode is CarMode.FIRE
    bits[layout.fault_input] = bool(car.faults)
    if layout.door_blocked_input is not None:
        bits[layout.door_blocked_input] = CarFault.DOOR_BLOCKED in car.faults
    if layout.out_of_service_input is not None:
        bits[layout.out_of_service_input] = car.mode is CarMode.OUT_OF_SERVICE
    return bits


class RelayBoardSim(RtuBoardOnPty):
    """The relay board of one simulated lift, on a pty pair in ``directory`` (see the module docstring).

    The driver opens ``port`` (``directory/line``); the board holds ``directory/board``.
    """

    def __init__(
        self,
        car: LiftCar,
        directory: Path,
        *,
        layout: RelayBoardLayout | None = None,
        device_id: int = 1,
        baudrate: int = 19200,
        logger: logging.Logger | None = None,
    ) -> None:
        self.car = car
        self.layout = layout or RelayBoardLayout.standard(len(car.floors))
        if len(self.layout.floor_coils) != len(car.floors):
            raise ValueError("RelayBoardSim: the layout needs one floor coil per floor of the car")
        if max(*self.layout.coils(), *self.layout.inputs()) >= _BLOCK_BITS:
            raise ValueError(f"RelayBoardSim: addresses must be below {_BLOCK_BITS}")
        self._log = logger or logging.getLogger("robopost.sim.relay_board")
        super().__init__(
            directory / "board", directory / "line", device_id=device_id, baudrate=baudrate, logger=self._log
        )
        self.coils = [False] * _BLOCK_BITS
        self.dropped_replies = 0

    async def reset(self) -> None:
        """The board reboots: every relay drops (the car sees the buttons released), replies resume."""
        await self._stop_server()
        self._apply_coils(0, [False] * _BLOCK_BITS)
        await self._start_server()

    # ---- the Modbus server ---------------------------------------------------------------------------

    def _device(self) -> SimDevice:
        return SimDevice(
            self.device_id,
            simdata=(
                [SimData(0, values=list(self.coils), datatype=DataType.BITS)],
                [SimData(0, count=_BLOCK_BITS, values=False, datatype=DataType.BITS)],
                [SimData(0, values=[0x0100], datatype=DataType.REGISTERS)],  # firmware 1.0
                [SimData(0, values=[len(self.car.floors)], datatype=DataType.REGISTERS)],
            ),
            action=self._on_access,
        )

    def _trace(self, sending: bool, data: bytes) -> bytes:
        """pymodbus hands us every packet: a silent controller sends nothing."""
        if sending and self.car.controller_silent:
            self.dropped_replies += 1
            return b""
        return data

    async def _on_access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        _count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> None:
        """pymodbus calls this on every access: fill the inputs from the car, or press its buttons."""
        if function_code == 2:
            bits = [False] * (16 * (len(registers) - 1))
            for input_address, on in input_bits(self.layout, self.car.snapshot(), self.car.floors).items():
                bits[input_address - 16 * start_address] = on
            registers[: len(registers) - 1] = SimUtils.bitsToRegisters(bits)
        elif function_code in (5, 15) and values is not None:
            self._apply_coils(address, [bool(v) for v in values])

    def _apply_coils(self, first: int, values: list[bool]) -> None:
        """Set coils from ``first`` on; edges press or release the car's buttons."""
        for offset, on in enumerate(values):
            coil = first + offset
            if coil >= _BLOCK_BITS or self.coils[coil] == on:
                continue
            self.coils[coil] = on
            self._edge(coil, on)

    def _edge(self, coil: int, on: bool) -> None:
        layout = self.layout
        if coil in layout.floor_coils and on:
            self.car.car_call(self.car.floors[layout.floor_coils.index(coil)])
        elif coil == layout.door_open_coil:
            if on:
                self.car.open_door(hold=True)
            else:
                self.car.release_hold()
        elif coil == layout.door_close_coil and on:
            self.car.close_door()
