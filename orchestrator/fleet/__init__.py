"""orchestrator.fleet: the VDA 5050 master control of the robot fleet.

::

    config.py       the fleet file: robots (manufacturer, serial, kind, profile, MQTT login), our login
    digest.py       cheap reading of ``state``/``visualization`` (only the fields we use)
    picture.py      the fleet picture: per robot its link (ONLINE/OFFLINE/CONNECTIONBROKEN/STALE) and
                    last state summary; frozen ``RobotView`` snapshots
    orders.py       plan legs → order nodes/edges on the campus graph (pure); update stitching
    legs.py         dispatcher legs → route stages (drives, lift rides) and the end actions per leg kind
                    (pure); which parcels/requests moved, from the action states
    executor.py     LegExecutor: carries one leg out over VDA 5050 orders, the lift (session, enterLift,
                    initPosition on the new floor, exitLift) and doors, and reports arrived/finished/failed
    tracking.py     orders and instant actions followed through the robot's states (pure)
    events.py       fleet events and the bus that fans them out
    persistence.py  robots registered in the store; snapshots upserted at a bounded rate
    master.py       FleetMaster: MQTT in and out, resends, timeouts, the small async API
    broker.py       Mosquitto password file, ACL and config snippet for a fleet
    service.py      building the master from the orchestrator's settings

Errors: ``orchestrator.fleet.errors`` (``FleetError`` and its subclasses).
"""

from orchestrator.fleet.config import Account, FleetConfig, RobotConfig, load_fleet, parse_fleet
from orchestrator.fleet.errors import (
    ActionNotConfirmedError,
    FleetConfigError,
    FleetError,
    LegError,
    OrderNotConfirmedError,
    OrderRejectedError,
    OrderStateError,
    UnknownRobotError,
)
from orchestrator.fleet.events import (
    ActionEnded,
    EventStream,
    FactsheetReceived,
    FleetEvent,
    LinkChanged,
    NodePassed,
    OrderConfirmed,
    OrderEnded,
    OrderNotConfirmed,
    OrderStatus,
)
from orchestrator.fleet.executor import ExecutorOptions, LegExecutor
from orchestrator.fleet.legs import (
    Drive,
    ItemOutcome,
    LegPlan,
    LegPlanner,
    Passage,
    Ride,
    fleet_leg,
    item_outcomes,
    moved_from_results,
)
from orchestrator.fleet.master import FleetMaster, FleetOptions
from orchestrator.fleet.orders import Leg, OrderBuilder, OrderParts
from orchestrator.fleet.persistence import SnapshotStore
from orchestrator.fleet.picture import Link, Position, RobotView
from orchestrator.fleet.tracking import InstantActionHandle, OrderHandle

__all__ = [
    "Account",
    "ActionEnded",
    "ActionNotConfirmedError",
    "Drive",
    "EventStream",
    "ExecutorOptions",
    "FactsheetReceived",
    "FleetConfig",
    "FleetConfigError",
    "FleetError",
    "FleetEvent",
    "FleetMaster",
    "FleetOptions",
    "InstantActionHandle",
    "ItemOutcome",
    "Leg",
    "LegError",
    "LegExecutor",
    "LegPlan",
    "LegPlanner",
    "Link",
    "LinkChanged",
    "NodePassed",
    "OrderBuilder",
    "OrderConfirmed",
    "OrderEnded",
    "OrderHandle",
    "OrderNotConfirmed",
    "OrderNotConfirmedError",
    "OrderParts",
    "OrderRejectedError",
    "OrderStateError",
    "OrderStatus",
    "Passage",
    "Position",
    "Ride",
    "RobotConfig",
    "RobotView",
    "SnapshotStore",
    "UnknownRobotError",
    "fleet_leg",
    "item_outcomes",
    "load_fleet",
    "moved_from_results",
    "parse_fleet",
]
