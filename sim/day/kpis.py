"""The KPIs of a simulated day (``kpis(result) -> dict``) and the pickup records (``pickup_rows``).

Definitions (percentages 0–100, times in seconds, rounded):

==========================  =======================================================================
parcels                     parcels of the day
delivered_in_window_pct     parcels that reached their recipient in time: a dorm parcel picked up
                            before its window's end (+ the queue), an office parcel delivered by its
                            deadline — over all parcels
pickup_rate_pct             dorm parcels picked up over dorm parcels offered at a stop at least once
pickup_rate_by_window       per window: picked up in it over offered in it (%)
student_wait_mean_s / p95   at the cart: from the student's arrival to the compartment opening
                            (queue at the screen, code typing, retries, step-up calls)
students_missed             student trips that found the cart gone
orders_on_time_pct          mini-program orders served by their promise (a pickup collected, a coffee
                            dropped, by ``latest_s``) over all orders created (refused ones count late)
orders_refused              orders the dispatcher could not accept
robot_utilisation_pct       busy time (driving, lifts, service) over 07:00–22:30, mean over robots;
                            ``utilisation_by_kind_pct`` per cart / indoor
cart_km                     kilometres driven by carts
lift_rides, lift_wait_*     rides by indoor robots; wait from reaching the lift to the session start
handoff_wait_mean_s         the first robot at a hand-off until the other one came
parcels_delivered           picked up + delivered; ``parcels_at_station_end`` were never delivered
parcels_lost                parcels nowhere (must be 0)
alarms, replans, replans_kept  operator alarms; re-plans and those that kept the previous plan
min_battery_pct             lowest battery level of any robot
==========================  =======================================================================
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from orchestrator.dispatch.campus import RobotKind
from orchestrator.operations import RequestStatus
from sim.day.engine import DayResult

SPAN = (7.0 * 3600, 22.5 * 3600)
QUEUE_GRACE_S = 600.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank), 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _pct(a: float, b: float) -> float:
    return round(100.0 * a / b, 2) if b else 0.0


def kpis(result: DayResult) -> dict[str, Any]:
    """The day's KPIs (see the module docstring); deterministic for a scenario and seed."""
    snap = result.day.snapshot
    windows = {w.id: w for w in snap.windows}
    parcels = {p.id: p for p in snap.parcels}
    in_time = 0
    for t, window, _stop in result.pickups.values():
        if t <= windows[window].end_s + QUEUE_GRACE_S:
            in_time += 1
    for pid, t in result.delivered.items():
        if t <= parcels[pid].deadline_s:
            in_time += 1
    offered = [p for p in result.dorm if p in result.offered]
    by_window: dict[str, float] = {}
    offered_in: Counter[str] = Counter(w for p in offered for w in result.offered[p])
    picked_in: Counter[str] = Counter(w for (_, w, _) in result.pickups.values())
    for wid in windows:
        by_window[wid] = _pct(picked_in[wid], offered_in[wid])
    requests = list(result.ops.requests.values())
    on_time = sum(1 for r in requests if r.served_s is not None and r.served_s <= r.request.latest_s + 1e-6)
    refused = sum(1 for r in requests if r.status is RequestStatus.REFUSED)
    util_kind: dict[str, list[float]] = {}
    for robot in result.robots.values():
        util_kind.setdefault(robot.base.kind.value, []).append(_busy(robot.busy) / (SPAN[1] - SPAN[0]))
    all_util = [u for us in util_kind.values() for u in us]
    cart_m = sum(r.metres for r in result.robots.values() if r.base.kind is RobotKind.CART)
    where = Counter(result.world.where[p] for p in parcels)
    lost = len(parcels) - sum(where.values())
    plans = result.ops.plans
    min_battery = min(
        (
            r.min_battery_wh / r.base.battery.capacity_wh
            for r in result.robots.values()
            if math.isfinite(r.min_battery_wh)
        ),
        default=1.0,
    )
    return {
        "parcels": len(parcels),
        "delivered_in_window_pct": _pct(in_time, len(parcels)),
        "pickup_rate_pct": _pct(sum(1 for p in offered if p in result.pickups), len(offered)),
        "pickup_rate_by_window": by_window,
        "student_wait_mean_s": round(sum(result.student_waits) / len(result.student_waits), 1)
        if result.student_waits
        else 0.0,
        "student_wait_p95_s": round(percentile(result.student_waits, 0.95), 1),
        "students_missed": result.missed,
        "orders": len(requests),
        "orders_on_time_pct": _pct(on_time, len(requests)),
        "orders_refused": refused,
        "robot_utilisation_pct": round(100 * sum(all_util) / len(all_util), 2) if all_util else 0.0,
        "utilisation_by_kind_pct": {k: round(100 * sum(v) / len(v), 2) for k, v in sorted(util_kind.items())},
        "cart_km": round(cart_m / 1000, 2),
        "lift_rides": sum(r.lift_rides for r in result.robots.values()),
        "lift_wait_mean_s": round(sum(result.lift_waits) / len(result.lift_waits), 1)
        if result.lift_waits
        else 0.0,
        "lift_wait_p95_s": round(percentile(result.lift_waits, 0.95), 1),
        "handoffs": len(result.handoff_waits),
        "handoff_wait_mean_s": round(sum(result.handoff_waits) / len(result.handoff_waits), 1)
        if result.handoff_waits
        else 0.0,
        "parcels_delivered": len(result.pickups) + len(result.delivered),
        "parcels_at_station_end": where.get("station", 0),
        "parcels_lost": lost,
        "alarms": len(result.ops.alarms),
        "alarms_by_kind": dict(sorted(Counter(a.kind for a in result.ops.alarms).items())),
        "replans": len(plans),
        "replans_kept": sum(1 for _, ok, _ in plans if not ok),
        "compartment_reshuffles": result.world.reshuffles,
        "min_battery_pct": round(100 * min_battery, 1),
        "sim_events": result.events,
    }


def _busy(intervals: Sequence[tuple[float, float, str]]) -> float:
    """Seconds covered by the intervals within ``SPAN`` (overlaps counted once)."""
    total, reach = 0.0, SPAN[0]
    for start, end, _ in sorted(intervals):
        a, b = max(start, reach, SPAN[0]), min(end, SPAN[1])
        if b > a:
            total += b - a
            reach = b
    return total


def pickup_rows(result: DayResult) -> list[dict[str, str]]:
    """One row per dorm parcel: ``parcel, stop, window, preferred_s, picked_up_s`` (empty if never)."""
    rows = []
    snap = result.day.snapshot
    for parcel in sorted(snap.parcels, key=lambda p: p.id):
        if parcel.id not in result.dorm:
            continue
        student = result.students[parcel.id]
        pickup = result.pickups.get(parcel.id)
        window = pickup[1] if pickup else (result.offered.get(parcel.id) or [""])[-1]
        rows.append(
            {
                "parcel": parcel.id,
                "stop": parcel.destination,
                "window": window,
                "preferred_s": f"{student.preferred_s:.1f}",
                "picked_up_s": f"{pickup[0]:.1f}" if pickup else "",
            }
        )
    return rows
