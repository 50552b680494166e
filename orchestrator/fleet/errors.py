"""The one exception tree of the fleet master.

::

    FleetError
    ├── FleetConfigError     the fleet YAML is unreadable or holds something unusable
    ├── UnknownRobotError    a robot that is not in the fleet was named
    ├── LegError             a plan leg cannot become an order (empty path, no edge between two nodes...)
    └── OrderStateError      the order cannot be sent/updated now (not confirmed yet, cancelled, finished)

Orders that fail *on the robot's side* are not exceptions raised by the API calls: they resolve the
handle's futures with ``OrderRejectedError`` (the robot reported an order error) or
``OrderNotConfirmedError`` (no confirming ``state`` after the bounded resends), both ``FleetError``.
Every message is one line.
"""

from __future__ import annotations


class FleetError(Exception):
    """Base of every error of ``orchestrator.fleet``."""


class FleetConfigError(FleetError):
    """The fleet configuration file cannot be used."""


class UnknownRobotError(FleetError):
    """The robot named is not part of the fleet."""


class LegError(FleetError):
    """A plan leg cannot be turned into a VDA 5050 order."""


class OrderStateError(FleetError):
    """The robot's current order does not allow this operation now."""


class OrderRejectedError(FleetError):
    """The robot refused the order or update (an ``orderError``/``orderUpdateError``/``validationError``)."""


class OrderNotConfirmedError(FleetError):
    """No ``state`` confirmed the order or update after the bounded number of resends."""


class ActionNotConfirmedError(FleetError):
    """The robot never reported an instant action after the bounded number of resends."""
