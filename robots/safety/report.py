"""The supervisor's decision as VDA 5050 ``safetyState``/``errors`` and as ROS 2 diagnostics.

Pure: plain dataclasses shaped like ``diagnostic_msgs/DiagnosticArray`` (no rclpy here; the ROS
adapter copies them field for field into messages).

**Diagnostics**, one ``DiagnosticStatus`` per layer plus two summaries, named ``{prefix}/{name}``:

===================  =====================================================================
name                 level
===================  =====================================================================
``lidar``            STALE silent · WARN a field violated · OK
``ultrasonic``       STALE silent · WARN within the stop or slow range · OK
``camera``           STALE silent · WARN a target within a stop or slow zone · OK
``e_stop``           STALE silent · ERROR latched (pressed, or awaiting acknowledgement) · OK
``bumper``           STALE silent · ERROR latched · OK
``field_violation``  WARN while VDA 5050 ``fieldViolation`` is true · OK
``supervisor``       ERROR emergency stop · WARN protective stop or slow · OK; the limit,
                     the level, ``eStop`` and every reason as key/values
===================  =====================================================================

A silent layer reads STALE even when it also restricts (its message says both): STALE is what
``rqt_robot_monitor`` and the diagnostic aggregator show for a sensor that stopped reporting. The
``e_stop`` and ``field_violation`` names and levels match ``robots.rosutil`` (``E_STOP_STATUS``,
``FIELD_VIOLATION_STATUS``), the convention the agent's ROS driver already reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from interfaces.vda5050 import AgvError, ErrorReference, SafetyState
from robots.safety.readings import LAYERS
from robots.safety.supervisor import LayerStatus, ReportedError, SafetyDecision, SafetyLevel


class DiagnosticLevel(IntEnum):
    """``diagnostic_msgs/DiagnosticStatus`` levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass(frozen=True, slots=True)
class KeyValue:
    """``diagnostic_msgs/KeyValue``."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class DiagnosticStatus:
    """``diagnostic_msgs/DiagnosticStatus``."""

    level: DiagnosticLevel
    name: str
    message: str
    hardware_id: str = ""
    values: tuple[KeyValue, ...] = ()


@dataclass(frozen=True, slots=True)
class DiagnosticArray:
    """``diagnostic_msgs/DiagnosticArray``: ``stamp`` is the header's time in epoch seconds."""

    stamp: float
    status: tuple[DiagnosticStatus, ...]

    def by_name(self, name: str) -> DiagnosticStatus:
        """The status called ``name`` (full name, prefix included)."""
        for status in self.status:
            if status.name == name:
                return status
        raise KeyError(name)


def safety_state(decision: SafetyDecision) -> SafetyState:
    """VDA 5050 ``safetyState``: ``eStop`` and ``fieldViolation`` of the decision."""
    return SafetyState(e_stop=decision.e_stop, field_violation=decision.field_violation)


def agv_error(error: ReportedError) -> AgvError:
    """One ``ReportedError`` as a VDA 5050 error object."""
    refs = [ErrorReference(reference_key=k, reference_value=v) for k, v in error.references]
    return AgvError(
        error_type=error.error_type,
        error_level=error.level,
        error_references=refs or None,
        error_description=error.description,
    )


def safety_errors(decision: SafetyDecision) -> list[AgvError]:
    """VDA 5050 ``errors`` entries for the decision (latches, silent layers, overspeed)."""
    return [agv_error(error) for error in decision.errors]


def diagnostics(
    decision: SafetyDecision, *, stamp: float | None = None, hardware_id: str = "", prefix: str = "safety"
) -> DiagnosticArray:
    """The diagnostics of ``decision`` (module docstring); ``stamp`` defaults to the decision's time."""
    statuses = [_layer_status(decision.layer(layer), prefix, hardware_id) for layer in LAYERS]
    statuses.append(
        DiagnosticStatus(
            DiagnosticLevel.WARN if decision.field_violation else DiagnosticLevel.OK,
            f"{prefix}/field_violation",
            "protective field violated" if decision.field_violation else "clear",
            hardware_id,
        )
    )
    statuses.append(_summary(decision, prefix, hardware_id))
    return DiagnosticArray(decision.time if stamp is None else stamp, tuple(statuses))


def _layer_status(status: LayerStatus, prefix: str, hardware_id: str) -> DiagnosticStatus:
    level = DiagnosticLevel.STALE if status.silent else _LAYER_LEVEL[status.level]
    values = tuple(KeyValue(k, v) for k, v in status.values)
    return DiagnosticStatus(level, f"{prefix}/{status.layer.value}", status.message, hardware_id, values)


_LAYER_LEVEL = {
    SafetyLevel.NORMAL: DiagnosticLevel.OK,
    SafetyLevel.SLOW: DiagnosticLevel.WARN,
    SafetyLevel.PROTECTIVE_STOP: DiagnosticLevel.WARN,
    SafetyLevel.EMERGENCY_STOP: DiagnosticLevel.ERROR,
}


def _summary(decision: SafetyDecision, prefix: str, hardware_id: str) -> DiagnosticStatus:
    values = [
        KeyValue("level", decision.level.value),
        KeyValue("speed_limit", f"{decision.speed_limit:.2f}"),
        KeyValue("e_stop", decision.e_stop.value),
        KeyValue("field_violation", "true" if decision.field_violation else "false"),
        KeyValue("latches", ",".join(latch.kind.value for latch in decision.latches) or "none"),
    ]
    values += [
        KeyValue(f"reason.{r.source.value}.{r.kind.value}" + (f".{r.subject}" if r.subject else ""), r.detail)
        for r in decision.reasons
    ]
    top = decision.reasons[0].detail if decision.reasons else "all layers clear"
    message = f"{decision.level.value} (limit {decision.speed_limit:.2f} m/s): {top}"
    return DiagnosticStatus(
        _LAYER_LEVEL[decision.level], f"{prefix}/supervisor", message, hardware_id, tuple(values)
    )
