"""Vehicle safety: five protection layers, three operating modes, remote driving. Pure logic, no I/O.

Modules (each docstring has the rules and the reasons for them)::

    readings.py    the layers' readings (lidar/ultrasonic sectors, camera detections, e-stop, bumper)
    fields.py      speed-scaled protective and warning fields: v·t_r + v²/2a + margin
    config.py      SafetyConfig (frozen, validated)
    parties.py     who acts: on site, control centre, system; roles viewer/operator/admin
    supervisor.py  SafetySupervisor: readings + remote stops + acks → SafetyDecision (limit, level,
                   reasons, VDA 5050 eStop/fieldViolation, errors); latches and who clears them
    modes.py       ModeController: AUTOMATIC / SEMIAUTOMATIC (remote parallel driving) / MANUAL
                   (on-site), handover request → confirmation, available_for_orders
    teleop.py      TeleopGate: admission (order, age, rate, sender), zone caps, dead man, and the
                   supervisor's limit over everything; clamp_velocity; the ``teleop`` wire format
    report.py      VDA 5050 safetyState/errors and DiagnosticArray-shaped diagnostics
    control.py     SafetyController: one control tick — the decision capping navigation or teleop

Time: every function takes it as an argument (the robot's ``Clock.monotonic()``; teleop ages also
``Clock.now()``), so the same code runs in real time and in the simulator's virtual time.

One control tick of the agent (the integration this package expects)::

    modes = ModeController()
    control = SafetyController(SafetySupervisor(cfg), modes, TeleopGate(modes, zone_cap=zones))
    out = control.tick(clock.monotonic(), measured=odom_vx, navigation=(nav_vx, nav_omega), position=xy)
    publish cmd_vel (out.vx, out.omega); state.safetyState = report.safety_state(out.decision)
"""

from interfaces.teleop import TeleopCommand, teleop_from_json, teleop_to_json
from robots.safety.config import (
    AckPolicy,
    CameraConfig,
    ClassRule,
    Heartbeats,
    NearRangeConfig,
    SafetyConfig,
)
from robots.safety.control import ControlOutput, SafetyController
from robots.safety.fields import (
    FieldConfig,
    braking_curve,
    protective_distance,
    stopping_distance,
    warning_distance,
)
from robots.safety.modes import (
    Mode,
    ModeAnswer,
    ModeConfig,
    ModeController,
    ModeRequest,
    Refusal,
    Switch,
    VehicleStatus,
)
from robots.safety.parties import SYSTEM, Party, PartyKind, Role, control_centre, on_site
from robots.safety.readings import (
    LAYERS,
    BumperReading,
    CameraReading,
    Detection,
    EStopReading,
    LidarReading,
    ObjectClass,
    Reading,
    Source,
    UltrasonicReading,
    sector_ranges,
)
from robots.safety.report import (
    DiagnosticArray,
    DiagnosticLevel,
    DiagnosticStatus,
    KeyValue,
    diagnostics,
    safety_errors,
    safety_state,
)
from robots.safety.supervisor import (
    AckResult,
    Latch,
    LatchKind,
    LayerStatus,
    Reason,
    ReasonKind,
    ReportedError,
    SafetyDecision,
    SafetyLevel,
    SafetySupervisor,
)
from robots.safety.teleop import (
    Admission,
    Drop,
    TeleopConfig,
    TeleopGate,
    TeleopOutput,
    TeleopStatus,
    clamp_velocity,
)

__all__ = [
    "LAYERS",
    "SYSTEM",
    "AckPolicy",
    "AckResult",
    "Admission",
    "BumperReading",
    "CameraConfig",
    "CameraReading",
    "ClassRule",
    "ControlOutput",
    "Detection",
    "DiagnosticArray",
    "DiagnosticLevel",
    "DiagnosticStatus",
    "Drop",
    "EStopReading",
    "FieldConfig",
    "Heartbeats",
    "KeyValue",
    "Latch",
    "LatchKind",
    "LayerStatus",
    "LidarReading",
    "Mode",
    "ModeAnswer",
    "ModeConfig",
    "ModeController",
    "ModeRequest",
    "NearRangeConfig",
    "ObjectClass",
    "Party",
    "PartyKind",
    "Reading",
    "Reason",
    "ReasonKind",
    "Refusal",
    "ReportedError",
    "Role",
    "SafetyConfig",
    "SafetyController",
    "SafetyDecision",
    "SafetyLevel",
    "SafetySupervisor",
    "Source",
    "Switch",
    "TeleopCommand",
    "TeleopConfig",
    "TeleopGate",
    "TeleopOutput",
    "TeleopStatus",
    "UltrasonicReading",
    "VehicleStatus",
    "braking_curve",
    "clamp_velocity",
    "control_centre",
    "diagnostics",
    "on_site",
    "protective_distance",
    "safety_errors",
    "safety_state",
    "sector_ranges",
    "stopping_distance",
    "teleop_from_json",
    "teleop_to_json",
    "warning_distance",
]
