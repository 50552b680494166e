"""The day report: ``write_report(result, out_dir, wall_s=None) -> dict`` writes into ``out_dir``

- ``kpis.json``: ``sim.day.kpis.kpis`` (deterministic: no wall time in it);
- ``pickups.csv``: ``parcel,stop,window,preferred_s,picked_up_s`` for every dorm parcel (read by
  ``robopost windows recommend``);
- ``timeline.png``: per cart, what it did over the day (loading, driving, at a stop, hand-off,
  charging) over the delivery windows; ``utilisation.png``: share of carts and indoor robots busy per
  10 minutes; ``map.png``: the campus paths with the parcels picked up / delivered per stop and
  building;
- ``report.md``: the KPIs as a table, the plots, the alarms.

Plots use matplotlib's Agg backend (no display needed) and WenQuanYi Micro Hei when it is installed
(for the Chinese words).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from orchestrator.dispatch.campus import LegKind, RobotKind
from sim.day.engine import DayResult
from sim.day.kpis import SPAN, kpis, pickup_rows

COLOURS = {
    "travel": "#9ecae1",
    "lift": "#6baed6",
    "load": "#fd8d3c",
    "dwell": "#31a354",
    "handoff": "#756bb1",
    "deliver": "#e6550d",
    "collect": "#de2d26",
    "drop": "#fb6a4a",
    "return": "#bdbdbd",
    "meet": "#756bb1",
}


def _font() -> None:
    names = {f.name for f in font_manager.fontManager.ttflist}
    if "WenQuanYi Micro Hei" in names:
        plt.rcParams["font.sans-serif"] = ["WenQuanYi Micro Hei", "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False


def _hours(seconds: float) -> float:
    return seconds / 3600.0


def write_report(result: DayResult, out_dir: Path, *, wall_s: float | None = None) -> dict[str, Any]:
    """Write every report file into ``out_dir`` (created); the KPIs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = kpis(result)
    (out_dir / "kpis.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    with (out_dir / "pickups.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["parcel", "stop", "window", "preferred_s", "picked_up_s"])
        writer.writeheader()
        writer.writerows(pickup_rows(result))
    _font()
    _timeline(result, out_dir / "timeline.png")
    _utilisation(result, out_dir / "utilisation.png")
    _map(result, out_dir / "map.png")
    (out_dir / "report.md").write_text(_markdown(result, figures, wall_s), encoding="utf-8")
    return figures


def _shade_windows(ax: Any, result: DayResult) -> None:
    for w in result.day.snapshot.windows:
        ax.axvspan(_hours(w.start_s), _hours(w.end_s), color="#fff7bc", zorder=0)
        ax.text(
            _hours(w.start_s), 1.0, f" {w.id}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=8
        )


def _timeline(result: DayResult, path: Path) -> None:
    robots = [r for r in result.robots.values() if r.base.kind is RobotKind.CART]
    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.8 * len(robots)))
    _shade_windows(ax, result)
    for row, robot in enumerate(robots):
        for what, colour in COLOURS.items():
            bars = [(_hours(a), _hours(b - a)) for a, b, kind in robot.busy if kind == what and b > a]
            if bars:
                ax.broken_barh(bars, (row - 0.35, 0.7), facecolors=colour)
        if robot.down:
            down = [(_hours(a), _hours(b - a)) for a, b in robot.down]
            ax.broken_barh(down, (row - 0.45, 0.9), facecolors="none", edgecolors="#d62728", hatch="///")
    ax.set_yticks(range(len(robots)), [r.base.id for r in robots])
    ax.set_xlim(6, 23.5)
    ax.set_xlabel("time of day (h)")
    ax.set_title("Cart timeline over the delivery windows (投递时段) — what each cart (无人车) does")
    used = sorted({kind for r in robots for _, _, kind in r.busy} & set(COLOURS))
    extra = [Patch(color="#fff7bc", label="window")]
    if any(r.down for r in robots):
        extra.append(Patch(facecolor="none", edgecolor="#d62728", hatch="///", label="broken down"))
    ax.legend(
        handles=[Patch(color=COLOURS[k], label=k) for k in used] + extra,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.25 if len(robots) > 2 else -0.45),
        ncol=8,
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _utilisation(result: DayResult, path: Path) -> None:
    step = 600.0
    times = [SPAN[0] - 3600 + k * step for k in range(int((SPAN[1] - SPAN[0] + 5400) / step))]
    fig, ax = plt.subplots(figsize=(12, 4))
    _shade_windows(ax, result)
    for kind, label, colour in (
        (RobotKind.CART, "carts", "#3182bd"),
        (RobotKind.INDOOR, "indoor robots", "#e6550d"),
    ):
        robots = [r for r in result.robots.values() if r.base.kind is kind]
        if not robots:
            continue
        shares = []
        for t in times:
            busy = 0.0
            for robot in robots:
                busy += sum(max(0.0, min(b, t + step) - max(a, t)) for a, b, _ in robot.busy) / step
            shares.append(100 * min(len(robots), busy) / len(robots))
        ax.step(
            [_hours(t) for t in times], shares, where="post", label=f"{label} ({len(robots)})", color=colour
        )
    ax.set_ylim(0, 105)
    ax.set_xlim(6, 23.5)
    ax.set_xlabel("time of day (h)")
    ax.set_ylabel("busy share of the fleet (%)")
    ax.set_title("Fleet utilisation over the day (10-minute bins)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _map(result: DayResult, path: Path) -> None:
    site = result.site
    fig, ax = plt.subplots(figsize=(9, 8))
    for edge in site.edges.values():
        a, b = site.nodes[edge.a], site.nodes[edge.b]
        if a.outdoor and b.outdoor:
            xs = [a.x, *(p[0] for p in edge.geometry), b.x]
            ys = [a.y, *(p[1] for p in edge.geometry), b.y]
            ax.plot(xs, ys, color="#cccccc", linewidth=1.2, zorder=1)
    snap = result.day.snapshot
    picked = Counter(stop for (_, _, stop) in result.pickups.values())
    delivered: Counter[str] = Counter()
    parcels = {p.id: p for p in snap.parcels}
    cart_place = {b: h.cart_place for b, h in snap.handoffs.items()}
    for pid in result.delivered:
        building = site.building_of(site.places[parcels[pid].destination].node)
        if building in cart_place:
            delivered[cart_place[building]] += 1
    station = site.places[snap.station]
    sn = site.nodes[station.node]
    ax.scatter([sn.x], [sn.y], marker="s", s=160, color="#444444", zorder=3)
    ax.annotate("post station", (sn.x, sn.y), fontsize=8, xytext=(0, -16), textcoords="offset points")
    for k, (place, count) in enumerate(sorted(picked.items())):
        node = site.nodes[site.places[place].node]
        ax.scatter([node.x], [node.y], s=20 + 2 * count, color="#31a354", alpha=0.7, zorder=3)
        ax.annotate(f"{place.removeprefix('stop_')}: {count}", (node.x, node.y), fontsize=8, rotation=35,
                    xytext=(4, 8 if k % 2 == 0 else -22), textcoords="offset points")  # fmt: skip
    for place, count in sorted(delivered.items()):
        node = site.nodes[site.places[place].node]
        ax.scatter([node.x], [node.y], s=20 + 2 * count, color="#e6550d", alpha=0.7, zorder=3, marker="D")
        ax.annotate(f"{place}: {count} to offices", (node.x, node.y), fontsize=8, xytext=(8, -12),
                    textcoords="offset points")  # fmt: skip
    handles = [
        Line2D([], [], marker="s", color="#444444", linestyle="", label="post station (邮政驿站)"),
        Line2D([], [], marker="o", color="#31a354", linestyle="", label="picked up at a stop (已取件)"),
        Line2D(
            [],
            [],
            marker="D",
            color="#e6550d",
            linestyle="",
            label="delivered to offices via hand-off (交接点)",
        ),
        Line2D([], [], color="#cccccc", label="outdoor paths"),
    ]
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("east (m)")
    ax.set_ylabel("north (m)")
    ax.set_title(f"Deliveries on the map — {site.name} (marker area grows with the parcels)")
    ax.legend(handles=handles, loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _markdown(result: DayResult, figures: dict[str, Any], wall_s: float | None) -> str:
    s = result.scenario
    lines = [
        f"# Simulated day — {s.name or 'scenario'} (seed {result.seed})",
        "",
        f"Campus `{s.campus.name}`: {s.parcels} parcels, {s.carts} carts, {s.indoor} indoor robots, "
        f"{s.requests} mini-program orders, {len(s.faults)} fault(s). "
        f"{result.events} simulated events" + (f", {wall_s:.1f} s wall time." if wall_s is not None else "."),
        "",
        "## KPIs",
        "",
        "| KPI | value |",
        "|---|---|",
    ]
    for key, value in figures.items():
        shown = ", ".join(f"{k}: {v}" for k, v in value.items()) or "—" if isinstance(value, dict) else value
        lines.append(f"| {key} | {shown} |")
    lines += [
        "",
        "## Plots",
        "",
        "![cart timeline](timeline.png)",
        "",
        "![fleet utilisation](utilisation.png)",
        "",
        "![deliveries on the map](map.png)",
        "",
        "## Faults",
        "",
    ]
    lines += [
        f"- {f.kind} at {int(f.at // 3600):02d}:{int(f.at % 3600 // 60):02d}: {f.model_dump()}"
        for f in s.faults
    ] or ["- none"]
    lines += ["", "## Alarms (first 30)", ""]
    lines += [f"- `{a.kind}` {a.text}" for a in result.ops.alarms[:30]] or ["- none"]
    kept = [(t, reason) for t, ok, reason in result.ops.plans if not ok]
    lines += ["", f"## Re-plans: {len(result.ops.plans)} ({len(kept)} kept the previous plan)", ""]
    lines += [f"- {t / 3600:05.2f} h: {reason}" for t, reason in kept]
    legs = sum(1 for legs in result.ops.plan.legs.values() for leg in legs if leg.released)
    loads = sum(
        1
        for legs in result.ops.plan.legs.values()
        for leg in legs
        if leg.released and leg.kind is LegKind.LOAD
    )
    lines += ["", f"Legs released to robots: {legs}; LOAD legs: {loads}.", ""]
    return "\n".join(lines)
