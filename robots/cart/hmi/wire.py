"""The kiosk's JSON: the cart service's screen and answers as the page reads them.

Every time is given twice: as epoch seconds (``window_end``) for arithmetic in the page and as ISO 8601
in UTC (``window_end_iso``) for people reading the API. Messages are ``{"zh": ..., "en": ...}``.
Enums are their string values (``"ok"``, ``"code+phone_tail"``, ``"sent"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from robots.cart.locker.model import BoardSnapshot, OpenResult
from robots.cart.service import CartAlarm, CodeAnswer, CompartmentView, Notice, ScreenView, Text

ALARMS_FOR_STUDENTS = frozenset({"door_left_open"})
"""Alarms the person at the screen can act on (close that door); the others are for staff and operators
(a jammed lock is told to the student who typed the code, in the answer)."""


def iso(epoch: float | None) -> str | None:
    """``epoch`` as ISO 8601 in UTC (``Z``), or None."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def text(message: Text | None) -> dict[str, str] | None:
    """A bilingual message."""
    return None if message is None else {"zh": message.zh, "en": message.en}


def notice_json(notice: Notice | None) -> dict[str, Any] | None:
    """The latest notice: its message (``zh``, ``en``), what happened, to which compartment, when."""
    if notice is None:
        return None
    return {
        "zh": notice.message.zh,
        "en": notice.message.en,
        "kind": notice.kind,
        "compartment": notice.compartment,
        **_timed("at", notice.at),
    }


def _timed(name: str, epoch: float | None) -> dict[str, Any]:
    return {name: epoch, f"{name}_iso": iso(epoch)}


def compartment_json(view: CompartmentView) -> dict[str, Any]:
    """A compartment being watched (opening, open or jammed)."""
    return {
        "number": view.number,
        "phase": view.phase,
        "staff": view.staff,
        "alarm": view.alarm,
        **_timed("since", view.since),
    }


def alarm_json(alarm: CartAlarm) -> dict[str, Any]:
    """An alarm; ``for_student`` when the person at the screen can do something about it."""
    return {
        "kind": alarm.kind,
        "compartment": alarm.compartment,
        "message": text(alarm.message),
        "for_student": alarm.kind in ALARMS_FOR_STUDENTS,
        **_timed("since", alarm.since),
    }


def screen_json(view: ScreenView) -> dict[str, Any]:
    """Everything the page shows (``ScreenView``)."""
    return {
        "version": view.version,
        **_timed("now", view.now),
        "cart": view.cart,
        "stop": view.stop,
        "stop_label": text(view.stop_label),
        "window": view.window,
        **_timed("window_end", view.window_end),
        "challenge": view.challenge.value,
        **_timed("locked_until", view.locked_until),
        "lock_reason": view.lock_reason,
        "board": view.board.value,
        "board_detail": view.board_detail,
        "online": view.online,
        "pending_events": view.pending_events,
        "compartments": [compartment_json(c) for c in view.compartments],
        "alarms": [alarm_json(a) for a in view.alarms],
        "notice": notice_json(view.notice),
        "support_phone": view.support_phone,
    }


def answer_json(answer: CodeAnswer) -> dict[str, Any]:
    """The answer to a typed code (``CodeAnswer``)."""
    return {
        "result": answer.result,
        "message": text(answer.message),
        "compartment": answer.compartment,
        "challenge": answer.challenge.value,
        **_timed("locked_until", answer.locked_until),
    }


def open_results_json(results: Mapping[int, OpenResult]) -> dict[str, Any]:
    """Staff openings: one result per compartment, by number."""
    return {
        "results": [{"compartment": n, "result": r.value} for n, r in sorted(results.items())],
        "opened": sum(r is OpenResult.SENT for r in results.values()),
    }


def board_json(snapshot: BoardSnapshot, watched: Mapping[int, CompartmentView]) -> dict[str, Any]:
    """Every compartment of the board for the staff grid: door, occupancy and any running watch."""
    compartments = []
    for number, inputs in sorted(snapshot.compartments.items()):
        watch = watched.get(number)
        compartments.append(
            {
                "number": number,
                "door": "closed" if inputs.door_closed else "open",
                "occupied": inputs.occupied,
                "phase": watch.phase if watch is not None else None,
            }
        )
    return {
        "board": snapshot.health.value,
        "board_detail": snapshot.detail,
        "compartments": compartments,
    }
