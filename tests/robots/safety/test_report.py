"""Reports of the supervisor's decision: VDA 5050 ``safetyState`` and ``errors`` (valid against the
official 2.1 schema inside a whole ``state``) and the per-layer DiagnosticArray."""

from __future__ import annotations

from vda5050_samples import OfficialSchemas, sample_state

from interfaces.vda5050 import ErrorLevel, EStop, OperatingMode, TopicKind, to_json
from robots.safety import (
    Detection,
    DiagnosticLevel,
    LatchKind,
    ModeController,
    ObjectClass,
    SafetySupervisor,
    diagnostics,
    safety_errors,
    safety_state,
)

from .kit import ALICE, feed


def busy_decision():
    """E-stop pressed, a building stop, a person in the slow zone and a silent camera."""
    sup = SafetySupervisor()
    feed(sup, 0.0, pressed=True, lidar=1.0, detections=(Detection(ObjectClass.PERSON, 3.0),))
    sup.building_alarm("library", True, 0.0, by=ALICE)
    feed(sup, 0.6, pressed=True, lidar=1.0, skip=("camera",))
    return sup.step(0.6, commanded=1.0)


def test_safety_state_and_errors_of_a_busy_decision() -> None:
    """eStop MANUAL, fieldViolation true, FATAL latch errors with references, WARNING silent camera."""
    decision = busy_decision()
    state = safety_state(decision)
    assert state.e_stop is EStop.MANUAL and state.field_violation is True
    errors = {e.error_type: e for e in safety_errors(decision)}
    assert set(errors) == {"emergencyStop", "buildingStop", "safetySensorSilent"}
    assert errors["emergencyStop"].error_level is ErrorLevel.FATAL
    refs = {(r.reference_key, r.reference_value) for r in errors["buildingStop"].error_references or []}
    assert ("building", "library") in refs and ("latch", "buildingStop") in refs
    assert errors["safetySensorSilent"].error_level is ErrorLevel.WARNING


def test_a_state_carrying_the_reports_validates_against_the_official_schema(shared_data) -> None:
    """safetyState, errors and operatingMode from this package make a schema-valid VDA 5050 state."""
    decision = busy_decision()
    modes = ModeController()
    state = sample_state().model_copy(
        update={
            "safety_state": safety_state(decision),
            "errors": safety_errors(decision),
            "operating_mode": modes.operating_mode,
        }
    )
    assert state.operating_mode is OperatingMode.AUTOMATIC
    OfficialSchemas(shared_data).check(TopicKind.STATE, to_json(state))


def test_a_clear_decision_reports_none_and_no_errors() -> None:
    """All clear: eStop NONE, no violation, no errors, every diagnostic OK."""
    sup = SafetySupervisor()
    feed(sup, 0.0)
    decision = sup.step(0.0)
    assert safety_state(decision).e_stop is EStop.NONE and safety_errors(decision) == []
    array = diagnostics(decision, stamp=1_714_564_800.0, hardware_id="cart-01")
    assert array.stamp == 1_714_564_800.0
    assert {s.level for s in array.status} == {DiagnosticLevel.OK}
    assert {s.hardware_id for s in array.status} == {"cart-01"}
    assert array.by_name("safety/supervisor").message.startswith("NORMAL (limit 1.50 m/s)")


def test_diagnostic_levels_per_layer() -> None:
    """Lidar in the protective field WARN, e-stop latched ERROR, silent camera STALE, bumper OK,
    field_violation WARN, the summary ERROR with the limit and every reason as key/values."""
    array = diagnostics(busy_decision())
    assert [s.name for s in array.status] == [
        "safety/lidar",
        "safety/ultrasonic",
        "safety/camera",
        "safety/e_stop",
        "safety/bumper",
        "safety/field_violation",
        "safety/supervisor",
    ]
    level = {s.name: s.level for s in array.status}
    assert level["safety/lidar"] is DiagnosticLevel.WARN
    assert level["safety/ultrasonic"] is DiagnosticLevel.OK
    assert level["safety/camera"] is DiagnosticLevel.STALE
    assert level["safety/e_stop"] is DiagnosticLevel.ERROR
    assert level["safety/bumper"] is DiagnosticLevel.OK
    assert level["safety/field_violation"] is DiagnosticLevel.WARN
    summary = array.by_name("safety/supervisor")
    assert summary.level is DiagnosticLevel.ERROR
    values = {kv.key: kv.value for kv in summary.values}
    assert values["speed_limit"] == "0.00" and values["e_stop"] == "MANUAL"
    assert values["latches"] == "eStop,buildingStop"
    assert "reason.remote.buildingStop.library" in values
    camera = array.by_name("safety/camera")
    assert camera.message.startswith("silent for 0.60 s")
    assert "person at 3.00 m" in camera.message  # the last reading still counts, and says so


def test_a_layer_never_heard_reads_stale_never_heard() -> None:
    """Before the first reading each layer is STALE with 'never heard'."""
    array = diagnostics(SafetySupervisor().step(0.0), prefix="cart-01/safety")
    lidar = array.by_name("cart-01/safety/lidar")
    assert lidar.level is DiagnosticLevel.STALE and lidar.message == "never heard"
    assert array.by_name("cart-01/safety/supervisor").level is DiagnosticLevel.WARN


def test_remote_stop_latch_shows_in_the_summary_not_in_a_layer() -> None:
    """An operator stop is no sensor's doing: layers stay OK, the summary says ERROR and why."""
    sup = SafetySupervisor()
    feed(sup, 0.0)
    sup.remote_stop(LatchKind.OPERATOR_STOP, ALICE, 0.0)
    array = diagnostics(sup.step(0.0))
    assert array.by_name("safety/e_stop").level is DiagnosticLevel.OK
    summary = array.by_name("safety/supervisor")
    assert summary.level is DiagnosticLevel.ERROR and "operatorStop by" in summary.message
