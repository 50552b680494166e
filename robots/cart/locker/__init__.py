"""The cart's compartment locker board over RS-485 (Modbus RTU): what it reports and its driver.

``model``   shared types: ``BoardHealth``, ``OpenResult``, ``CompartmentInputs``, ``BoardSnapshot``,
            ``LockerPort`` (the board as the cart service sees it)
``driver``  ``LockerDriver`` (a ``LockerPort``), its ``LockerConfig``, register map ``LockerLayout``
            and counters ``LockerStats``
"""

from robots.cart.locker.driver import (
    MAX_COMPARTMENTS,
    BoardInfo,
    LockerConfig,
    LockerDriver,
    LockerLayout,
    LockerStats,
    decode_inputs,
)
from robots.cart.locker.model import (
    BoardHealth,
    BoardSnapshot,
    CompartmentInputs,
    LockerPort,
    OpenResult,
)

__all__ = [
    "MAX_COMPARTMENTS",
    "BoardHealth",
    "BoardInfo",
    "BoardSnapshot",
    "CompartmentInputs",
    "LockerConfig",
    "LockerDriver",
    "LockerLayout",
    "LockerPort",
    "LockerStats",
    "OpenResult",
    "decode_inputs",
]
