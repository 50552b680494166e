"""robopost orchestrator.operations: the operations core (fleet decisions over a day), pure.

``Operations(planner, setup).on_event(event, now) -> list[Command]``: events in (``messages``: parcels
arrived, request created, leg arrived/finished/failed, parcel picked up, robot failed/recovered, lift
closed/reopened, timer), commands out (start/cancel a leg, release pickup codes, set a timer, alarm).
No I/O and no clock: the caller passes ``now`` and carries the commands out.

Two drivers use the same core:

- **fast mode** (``sim.day``): the simulator's event heap calls ``on_event`` and turns ``StartLeg``
  into simulated robot motion, ``ReleaseCodes`` into students walking to the cart, ``SetTimer`` into a
  heap entry.
- **live mode** (to be wired in ``orchestrator/app.py``): one asyncio task owns the core and feeds it
  from a queue (calls are serialised); an adapter around ``fleet.FleetMaster`` and the APIs translates.

  Commands out:

  - ``StartLeg(token, leg)`` → ``FleetMaster.send_order(leg)`` (one VDA 5050 order per leg: nodes of
    the route, the leg's action — ``openCompartment``/``waitForPickup``/``handoff``/... — on the last
    node); keep order id ↔ token;
  - ``CancelLeg(robot, token)`` → ``FleetMaster.cancel(robot)`` (instant action ``cancelOrder``);
  - ``ReleaseCodes`` → the notify outbox (SMS with the pickup code) and the cart's code sync;
  - ``SetTimer(at, key)`` → a task sleeping on the ``Clock`` until ``at``, then ``TimerFired(key)``;
  - ``Alarm`` → the console's alarm stream.

  Events in:

  - VDA 5050 ``state`` with ``lastNodeId`` = the order's last node → ``LegArrived``;
  - the order finished (all nodes and actions FINISHED) → ``LegFinished``, ``moved``/``slots`` from
    the action results (a cart's locker board events for LOAD, the indoor robot's compartments);
  - an action FAILED or the order cancelled → ``LegFailed``;
  - ``connection`` BROKEN/CONNECTIONBROKEN or an ``errors`` entry of level FATAL → ``RobotFailed``
    (``recovered_s`` from the operator's estimate); ONLINE again after a repair → ``RobotRecovered``;
  - the cart API's pickup event → ``ParcelPickedUp``; parcel import → ``ParcelsArrived``; a partner
    order → ``RequestCreated``; lift state OFFLINE/FIRE/EMERGENCY → ``LiftClosed``, back → ``LiftReopened``.

  Every ``DomainEvent`` in ``Operations.history`` is to be stored before the commands are carried out
  (DESIGN.md §5). Times passed as ``now`` must be on one clock with the windows (the simulator uses
  seconds since midnight; live mode must convert epoch time or give the windows in epoch seconds).

  The live runtime (groundwork, issue 10): ``timebase.ServiceDay`` converts epoch seconds to the core's
  seconds since local midnight of the service day (and the settings' ``HH:MM`` windows, DST-aware);
  ``setup.live_setup`` builds the ``Setup`` from the map, the fleet file and the windows, and
  ``setup.dispatch_parcel`` a core ``Parcel`` from a stored parcel; ``live.LiveOperations`` is the one
  task that owns the core, fed by ``submit(event)``, and carries the commands out through the
  ``ports.Ports`` (legs, codes, alarms, history: protocols the app implements).
"""

from orchestrator.operations.core import (
    STATION,
    Operations,
    OperationsError,
    Planner,
    RequestRecord,
    RequestStatus,
    Setup,
)
from orchestrator.operations.live import LiveOperations
from orchestrator.operations.messages import (
    Alarm,
    CancelLeg,
    Command,
    Event,
    LegArrived,
    LegFailed,
    LegFinished,
    LiftClosed,
    LiftReopened,
    ParcelPickedUp,
    ParcelsArrived,
    ReleaseCodes,
    RequestCreated,
    RobotFailed,
    RobotRecovered,
    SetTimer,
    StartLeg,
    TimerFired,
)
from orchestrator.operations.ports import AlarmPort, CodePort, HistoryPort, LegPort, Ports
from orchestrator.operations.timebase import ServiceDay

__all__ = [
    "STATION",
    "Alarm",
    "AlarmPort",
    "CancelLeg",
    "CodePort",
    "Command",
    "Event",
    "HistoryPort",
    "LegArrived",
    "LegFailed",
    "LegFinished",
    "LegPort",
    "LiftClosed",
    "LiftReopened",
    "LiveOperations",
    "Operations",
    "OperationsError",
    "ParcelPickedUp",
    "ParcelsArrived",
    "Planner",
    "Ports",
    "ReleaseCodes",
    "RequestCreated",
    "RequestRecord",
    "RequestStatus",
    "RobotFailed",
    "RobotRecovered",
    "ServiceDay",
    "SetTimer",
    "Setup",
    "StartLeg",
    "TimerFired",
]
