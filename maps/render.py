"""Draw a site as a PNG: one panel for the outdoor network plus one panel per floor.

matplotlib is used through its object API (``Figure`` + ``FigureCanvasAgg``): rendering needs no
display and leaves pyplot alone. The only shared state touched is matplotlib's font list, to which a
CJK font found on the system is added when matplotlib has not listed it yet (so that Chinese labels
fall back to it); without any CJK font the labels are English only.

What is drawn
    outdoor panel   building footprints (Chinese + English names), roads and paths (line width from
                    the passage width), passages a cart cannot use in their own styles (too narrow,
                    step or kerb, barrier), entrances, one-way arrows, gates, places;
    floor panels    the building's outline, corridors, doors (filled square: IoT door), gates, lift
                    cabins with their ids, places. Floors of one building share their extent.
Labels are placed greedily by importance (station, hand-offs, stops, ... first) at the first free spot
around their point; a label that finds none is left out and counted in the panel's corner. Unnamed
nodes are never labelled, so an OpenStreetMap extract of thousands of edges stays readable.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon, Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Affine2D, Bbox
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from maps.model import Edge, Lift, Place, PlaceKind, Site, edge_points, polyline_length
from maps.routing import Router

FIG_WIDTH_IN = 20.0
MARGIN_IN = 0.3
HEADER_IN = 1.5
FLOOR_COLUMNS = 4

_CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "AR PL UMing CN",
)
_CJK_FILE = re.compile(r"cjk|wqy|sourcehan|simhei|yahei|droidsansfallback|uming|ukai", re.IGNORECASE)
_TRAILING_NUMBER = re.compile(r"\d+$")
GROUP_RADIUS_FRAC = 0.04
"""Numbered places of one kind closer than this share of the panel's span share one label."""
_CJK_RUN = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]+")
_HAS_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")

# ---- styles ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LineStyle:
    label: str
    color: str
    dashes: tuple[float, float] | None = None
    width: float | None = None  # points; None: from the passage width
    zorder: float = 2.0


_EDGE_STYLES: dict[str, _LineStyle] = {
    "road": _LineStyle("road / path (cart OK)", "#6b6b6b"),
    "narrow": _LineStyle("too narrow for carts", "#e08a1e", dashes=(3.0, 1.5), width=1.3),
    "step": _LineStyle("step or kerb (no carts)", "#d62728", dashes=(1.5, 1.5), width=1.8),
    "barrier": _LineStyle("barrier (no carts)", "#9467bd", dashes=(4.0, 1.5), width=1.8),
    "entrance": _LineStyle("building entrance", "#2ca02c", width=2.6, zorder=3.0),
    "indoor": _LineStyle("indoor corridor", "#4a7fb5", zorder=2.0),
}


@dataclass(frozen=True, slots=True)
class _Marker:
    label: str
    marker: str
    color: str
    size: float  # points²


_PLACE_MARKERS: dict[PlaceKind, _Marker] = {
    PlaceKind.STATION: _Marker("post station", "*", "#c0392b", 260.0),
    PlaceKind.STOP: _Marker("cart stop", "o", "#f39c12", 70.0),
    PlaceKind.HANDOFF: _Marker("hand-off / mailroom", "h", "#27ae60", 110.0),
    PlaceKind.OFFICE: _Marker("office", "s", "#2e86c1", 30.0),
    PlaceKind.ROOM: _Marker("room", "s", "#85c1e9", 30.0),
    PlaceKind.CHARGER: _Marker("charger", "^", "#f1c40f", 70.0),
    PlaceKind.PARKING: _Marker("parking", "P", "#566573", 70.0),
}
_OTHER_PLACE = _Marker("other place", "o", "#7f8c8d", 22.0)

_PRIORITY: dict[PlaceKind, int] = {
    PlaceKind.STATION: 0,
    PlaceKind.HANDOFF: 1,
    PlaceKind.STOP: 2,
    PlaceKind.CHARGER: 3,
    PlaceKind.OFFICE: 4,
    PlaceKind.ROOM: 4,
    PlaceKind.PARKING: 5,
}

_OFFSETS: tuple[tuple[float, float, str, str], ...] = (
    (0.0, 6.0, "center", "bottom"),
    (0.0, -6.0, "center", "top"),
    (7.0, 0.0, "left", "center"),
    (-7.0, 0.0, "right", "center"),
    (6.0, 6.0, "left", "bottom"),
    (-6.0, 6.0, "right", "bottom"),
    (6.0, -6.0, "left", "top"),
    (-6.0, -6.0, "right", "top"),
    (0.0, 16.0, "center", "bottom"),
    (0.0, -16.0, "center", "top"),
    # farther out, with a leader line
    (0.0, 30.0, "center", "bottom"),
    (0.0, -30.0, "center", "top"),
    (30.0, 22.0, "left", "bottom"),
    (-30.0, 22.0, "right", "bottom"),
    (30.0, -22.0, "left", "top"),
    (-30.0, -22.0, "right", "top"),
    (0.0, 48.0, "center", "bottom"),
    (0.0, -48.0, "center", "top"),
)
_LEADER = {"arrowstyle": "-", "color": "#777777", "linewidth": 0.6, "shrinkA": 0.0, "shrinkB": 2.0}
LEADER_MIN_PT = 20.0
ARROW_MIN_EDGE_FRAC = 0.01
ARROW_SPACING_FRAC = 0.03
"""One-way arrows: only on edges at least this share of the panel's span long, spaced at least this."""
"""Labels placed farther than this from their point get a thin leader line."""


@dataclass(slots=True)
class _Fonts:
    families: list[str]
    cjk: bool

    def text(self, text: str) -> str:
        """``text`` as it can be drawn: without a CJK font, CJK runs are dropped (no missing glyphs)."""
        if self.cjk:
            return text
        lines = (" ".join(_CJK_RUN.sub(" ", line).split()) for line in text.split("\n"))
        return "\n".join(line for line in lines if line)

    def size(self, outdoor: bool) -> float:
        return 8.5 if outdoor else 7.5


def _find_cjk_family() -> str | None:
    """The family name of a CJK font matplotlib can use (adding a system font file if needed)."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in _CJK_FAMILIES:
        if family in known:
            return family
    for path in sorted(font_manager.findSystemFonts()):
        if _CJK_FILE.search(os.path.basename(path)):
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
    return None


def _fonts() -> _Fonts:
    cjk = _find_cjk_family()
    return _Fonts(["DejaVu Sans", cjk] if cjk else ["DejaVu Sans"], cjk is not None)


# ---- panels ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Panel:
    """One drawing: the outdoor network (``floor is None``) or one floor; ``bounds`` in ENU metres."""

    floor: str | None
    title: str
    bounds: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax


def _bounds(
    points: Iterable[tuple[float, float]], pad_frac: float = 0.04, min_pad: float = 3.0
) -> tuple[float, float, float, float]:
    arr = np.asarray(list(points), dtype=float)
    xmin, ymin = arr.min(axis=0)
    xmax, ymax = arr.max(axis=0)
    pad = max(min_pad, pad_frac * max(xmax - xmin, ymax - ymin))
    return (float(xmin - pad), float(ymin - pad), float(xmax + pad), float(ymax + pad))


def _outdoor_points(site: Site) -> list[tuple[float, float]]:
    pts = [(n.x, n.y) for n in site.nodes.values() if n.outdoor]
    for e in site.edges.values():
        if site.nodes[e.a].outdoor and site.nodes[e.b].outdoor:
            pts.extend(e.geometry)
    if pts:
        for b in site.buildings.values():
            pts.extend(b.footprint)
    return pts


def _building_points(site: Site, building: str) -> list[tuple[float, float]]:
    floors = {f.id for f in site.floors_of(building)}
    pts = [(n.x, n.y) for n in site.nodes.values() if n.floor in floors]
    b = site.buildings.get(building)
    if b is not None:
        pts.extend(b.footprint)
    for lift in site.lifts.values():
        if lift.building == building:
            pts.append((lift.cabin.x, lift.cabin.y))
    return pts


def _ordered_floors(site: Site) -> list[str]:
    """Floors with at least one node: buildings in site order, each lowest floor first."""
    used = {n.floor for n in site.nodes.values() if n.floor is not None}
    order = list(site.buildings) + sorted({f.building for f in site.floors.values()} - set(site.buildings))
    out: list[str] = []
    for building in order:
        out.extend(f.id for f in site.floors_of(building) if f.id in used)
    return out


def _floor_title(site: Site, floor_id: str) -> str:
    f = site.floors[floor_id]
    b = site.buildings.get(f.building)
    name = f"{b.label} {b.name}" if b is not None and b.label else (b.name if b else f.building)
    return f"{name} · {floor_id} ({f.name}, {f.elevation:+.1f} m)"


def plan_panels(site: Site) -> list[Panel]:
    """The panels to draw: outdoor first when the site has outdoor nodes, then each non-empty floor."""
    panels: list[Panel] = []
    outdoor = _outdoor_points(site)
    if outdoor:
        panels.append(Panel(None, "Outdoor network", _bounds(outdoor)))
    extent: dict[str, tuple[float, float, float, float]] = {}
    for fid in _ordered_floors(site):
        building = site.floors[fid].building
        if building not in extent:
            extent[building] = _bounds(_building_points(site, building), pad_frac=0.08)
        panels.append(Panel(fid, _floor_title(site, fid), extent[building]))
    return panels


# ---- layout (inches, from the top) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cell:
    panel: Panel
    left: float
    top: float
    width: float
    height: float


def _aspect(panel: Panel) -> float:
    xmin, ymin, xmax, ymax = panel.bounds
    return (ymax - ymin) / max(xmax - xmin, 1e-9)


def _layout(panels: Sequence[Panel], site: Site) -> tuple[list[_Cell], float]:
    """Cells for the panels and the figure height: outdoor across the top, floors in rows per building."""
    cells: list[_Cell] = []
    top = HEADER_IN
    inner = FIG_WIDTH_IN - 2 * MARGIN_IN
    floors = [p for p in panels if p.floor is not None]
    for p in panels:
        if p.floor is None:
            height = min(max(inner * _aspect(p), 5.0), 14.0)
            cells.append(_Cell(p, MARGIN_IN, top, inner, height))
            top += height + 0.5
    by_building: dict[str, list[Panel]] = {}
    for p in floors:
        by_building.setdefault(site.floors[p.floor or ""].building, []).append(p)
    most = max((len(v) for v in by_building.values()), default=1)
    ncols = max(1, min(FLOOR_COLUMNS, most))
    width = inner / ncols
    for group in by_building.values():
        height = min(max((width - 0.2) * _aspect(group[0]), 2.4), width * 1.1)
        for i, p in enumerate(group):
            row, col = divmod(i, ncols)
            cells.append(
                _Cell(p, MARGIN_IN + col * width + 0.1, top + row * (height + 0.45), width - 0.2, height)
            )
        top += math.ceil(len(group) / ncols) * (height + 0.45)
    return cells, top + 0.2


# ---- drawing ---------------------------------------------------------------------------------


def _edge_class(site: Site, edge: Edge, cart: Router | None) -> str:
    a_out, b_out = site.nodes[edge.a].outdoor, site.nodes[edge.b].outdoor
    if a_out != b_out:
        return "entrance"
    if not a_out:
        return "indoor"
    if cart is None or cart.edge_allowed(edge):
        return "road"
    if edge.barrier is not None:
        return "barrier"
    if edge.step or edge.kerb:
        return "step"
    return "narrow"


def _edge_floor(site: Site, edge: Edge) -> str | None:
    """The panel an edge belongs to: its indoor end's floor, outdoor when both ends are outdoor."""
    a, b = site.nodes[edge.a], site.nodes[edge.b]
    return a.floor if a.floor is not None else b.floor


def _line_width(edge: Edge, style: _LineStyle, outdoor: bool) -> float:
    if style.width is not None:
        return style.width
    if edge.width is None:
        return 1.0 if outdoor else 1.4
    return (
        float(np.clip(0.6 + 0.4 * edge.width, 0.8, 3.4)) if outdoor else float(np.clip(edge.width, 0.8, 2.4))
    )


@dataclass(slots=True)
class _Label:
    x: float
    y: float
    text: str
    priority: int
    size: float
    color: str = "#1b1b1b"
    weight: str = "normal"


@dataclass(slots=True)
class _PanelDrawing:
    """What one panel collects while drawing: labels to place and points labels must not cover."""

    labels: list[_Label] = field(default_factory=list)
    points: list[tuple[float, float]] = field(default_factory=list)
    areas: list[tuple[float, float, float, float]] = field(default_factory=list)  # xmin, ymin, xmax, ymax


def _draw_edges(ax: Axes, site: Site, edges: list[Edge], classes: dict[str, str], outdoor: bool) -> None:
    for cls, style in _EDGE_STYLES.items():
        chosen = [e for e in edges if classes[e.id] == cls]
        if not chosen:
            continue
        lines = [edge_points(site, e) for e in chosen]
        widths = [_line_width(e, style, outdoor) for e in chosen]
        linestyle = (0, style.dashes) if style.dashes else "solid"
        ax.add_collection(
            LineCollection(
                lines,
                colors=style.color,
                linewidths=widths,
                linestyles=[linestyle],
                zorder=style.zorder,
                capstyle="round",
            )
        )


def _midpoint(site: Site, edge: Edge) -> tuple[float, float, float, float]:
    """Middle of an edge's polyline and the unit direction there (a → b)."""
    pts = np.asarray(edge_points(site, edge), dtype=float)
    seg = np.diff(pts, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    total = lengths.sum()
    if total <= 0:
        return float(pts[0, 0]), float(pts[0, 1]), 1.0, 0.0
    half = total / 2
    i = int(np.searchsorted(np.cumsum(lengths), half))
    i = min(i, len(seg) - 1)
    before = lengths[:i].sum()
    t = (half - before) / lengths[i] if lengths[i] > 0 else 0.0
    x, y = pts[i] + t * seg[i]
    d = seg[i] / lengths[i] if lengths[i] > 0 else np.array([1.0, 0.0])
    return float(x), float(y), float(d[0]), float(d[1])


def _arrow_points(site: Site, edges: list[Edge], span: float) -> np.ndarray:
    """Midpoints and directions of one-way edges worth an arrow: long enough, not crowding each other."""
    kept: list[tuple[float, float, float, float]] = []
    for e in edges:
        if not e.oneway or polyline_length(edge_points(site, e)) < ARROW_MIN_EDGE_FRAC * span:
            continue
        x, y, dx, dy = _midpoint(site, e)
        if all(math.hypot(x - k[0], y - k[1]) >= ARROW_SPACING_FRAC * span for k in kept):
            kept.append((x, y, dx, dy))
    return np.array(kept)


def _draw_oneway(ax: Axes, site: Site, edges: list[Edge], span: float) -> None:
    mids = _arrow_points(site, edges, span)
    if len(mids) == 0:
        return
    ax.quiver(
        mids[:, 0],
        mids[:, 1],
        mids[:, 2],
        mids[:, 3],
        angles="xy",
        pivot="mid",
        units="dots",
        scale_units="dots",
        scale=1 / 14.0,
        width=2.2,
        headwidth=4.0,
        headlength=4.0,
        headaxislength=3.5,
        color="#111111",
        zorder=4,
    )


def _draw_passages(ax: Axes, site: Site, edges: list[Edge], drawing: _PanelDrawing, size: float) -> None:
    """Door, gate and barrier markers at the middle of their passages."""
    doors = [(e, site.doors.get(e.door)) for e in edges if e.door is not None]
    if doors:
        pts = np.array([_midpoint(site, e)[:2] for e, _ in doors])
        iot = ["#1f77b4" if d is not None and d.iot else "white" for _, d in doors]
        ax.scatter(
            pts[:, 0], pts[:, 1], marker="s", s=16, c=iot, edgecolors="#1f77b4", linewidths=0.8, zorder=5
        )
    labelled: set[str] = set()
    for e in edges:
        gate = site.gates.get(e.gate or "")
        if gate is None:
            continue
        x, y, _, _ = _midpoint(site, e)
        ax.scatter([x], [y], marker="D", s=46, c="#e74c3c", edgecolors="black", linewidths=0.6, zorder=5)
        drawing.points.append((x, y))
        if gate.name and gate.id not in labelled:  # unnamed gates (OSM) keep just their marker
            labelled.add(gate.id)
            text = f"{gate.name} ({gate.id})"
            drawing.labels.append(_Label(x, y, text, 1, size, color="#b03a2e", weight=_bold(text)))
    barriers = [e for e in edges if e.barrier is not None]
    if barriers:
        pts = np.array([_midpoint(site, e)[:2] for e in barriers])
        ax.scatter(
            pts[:, 0], pts[:, 1], marker="X", s=40, c="#9467bd", edgecolors="white", linewidths=0.5, zorder=5
        )


def _draw_footprints(ax: Axes, site: Site, panel: Panel, fonts: _Fonts, drawing: _PanelDrawing) -> None:
    outdoor = panel.floor is None
    here = None if outdoor else site.floors[panel.floor or ""].building
    for b in site.buildings.values():
        if len(b.footprint) < 3 or (not outdoor and b.id != here):
            continue
        ax.add_patch(
            Polygon(
                b.footprint,
                closed=True,
                facecolor="#ece6d8" if outdoor else "#f7f4ee",
                edgecolor="#a39a86",
                linewidth=1.0 if outdoor else 1.6,
                zorder=1,
            )
        )
        if outdoor:
            cx, cy = np.asarray(b.footprint, dtype=float).mean(axis=0)
            text = f"{b.label}\n{b.name}" if b.label and fonts.cjk else b.name
            drawing.labels.append(_Label(float(cx), float(cy), text, -1, 8.0, color="#6e6654"))


def _draw_lifts(ax: Axes, site: Site, floor: str, drawing: _PanelDrawing, size: float) -> None:
    for lift in site.lifts.values():
        node_id = lift.landings.get(floor)
        if node_id is None:
            continue
        c = lift.cabin
        rect = Rectangle(
            (c.x - c.width / 2, c.y - c.depth / 2),
            c.width,
            c.depth,
            facecolor="#34495e",
            edgecolor="black",
            linewidth=0.6,
            zorder=4,
        )
        rect.set_transform(Affine2D().rotate_around(c.x, c.y, c.yaw) + ax.transData)
        ax.add_patch(rect)
        text = _lift_text(lift)
        drawing.labels.append(_Label(c.x, c.y, text, 0, size, color="#1c2833", weight=_bold(text)))
        half = max(c.width, c.depth) / 2
        drawing.areas.append((c.x - half, c.y - half, c.x + half, c.y + half))


def _bold(text: str) -> str:
    """Bold for Latin text only: the CJK fallback fonts have no bold face."""
    return "normal" if _HAS_CJK.search(text) else "bold"


def _lift_text(lift: Lift) -> str:
    return f"lift {lift.id}"


def _place_text(site: Site, place: Place, fonts: _Fonts) -> str:
    label = place.label if fonts.cjk else None
    if label and not _HAS_CJK.search(label) and label == place.name:
        label = None
    if label is None:
        return place.name
    building = site.buildings.get(site.building_of(place.node) or "")
    if (
        building is not None
        and building.label
        and label.startswith(building.label)
        and label != building.label
    ):
        label = label[len(building.label) :]  # "行政楼301办公室" on the 行政楼 floor panel: "301办公室"
    return f"{label}\n{place.name}"


def _stem(text: str) -> tuple[str, int | None]:
    """``("cart_parking_", 2)`` for ``cart_parking_2``; ``(text, None)`` when it ends in no number."""
    m = _TRAILING_NUMBER.search(text)
    return (text[: m.start()], int(m.group())) if m else (text, None)


def _number_range(numbers: list[int]) -> str:
    numbers = sorted(numbers)
    if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
        return f"{numbers[0]}–{numbers[-1]}"
    return ",".join(str(n) for n in numbers)


def _label_groups(site: Site, places: list[Place], radius: float) -> list[list[Place]]:
    """Places of one kind whose names differ only in a trailing number and lie within ``radius`` metres
    of the group's first place share one label (``cart_parking_1–3``)."""
    groups: dict[tuple[PlaceKind, str, str], list[list[Place]]] = {}
    singles: list[list[Place]] = []
    for p in places:
        stem, number = _stem(p.name)
        if number is None:
            singles.append([p])
            continue
        n = site.nodes[p.node]
        key = (p.kind, stem, _stem(p.label or "")[0])
        for group in groups.setdefault(key, []):
            first = site.nodes[group[0].node]
            if math.hypot(n.x - first.x, n.y - first.y) <= radius:
                group.append(p)
                break
        else:
            groups[key].append([p])
    return singles + [g for gs in groups.values() for g in gs]


def _group_text(site: Site, group: list[Place], fonts: _Fonts) -> str:
    if len(group) == 1:
        return _place_text(site, group[0], fonts)
    stem, _ = _stem(group[0].name)
    numbers = _number_range([_stem(p.name)[1] or 0 for p in group])
    name = f"{stem}{numbers}"
    labels = [_stem(p.label) for p in group if p.label]
    if not (fonts.cjk and len(labels) == len(group) and all(n is not None for _, n in labels)):
        return name
    return f"{labels[0][0]}{_number_range([n or 0 for _, n in labels])}\n{name}"


def _draw_places(
    ax: Axes,
    site: Site,
    panel: Panel,
    places: list[Place],
    fonts: _Fonts,
    drawing: _PanelDrawing,
    size: float,
) -> None:
    by_marker: dict[_Marker, list[Place]] = {}
    for p in places:
        by_marker.setdefault(_PLACE_MARKERS.get(p.kind, _OTHER_PLACE), []).append(p)
    for m, group in by_marker.items():
        xy = np.array([(site.nodes[p.node].x, site.nodes[p.node].y) for p in group])
        ax.scatter(
            xy[:, 0],
            xy[:, 1],
            marker=m.marker,
            s=m.size,
            c=m.color,
            edgecolors="black",
            linewidths=0.5,
            zorder=6,
        )
        drawing.points.extend((float(x), float(y)) for x, y in xy)
    xmin, ymin, xmax, ymax = panel.bounds
    radius = GROUP_RADIUS_FRAC * max(xmax - xmin, ymax - ymin)
    for group in _label_groups(site, places, radius):
        x, y = np.mean([(site.nodes[p.node].x, site.nodes[p.node].y) for p in group], axis=0)
        priority = _PRIORITY.get(group[0].kind, 6)
        drawing.labels.append(_Label(float(x), float(y), _group_text(site, group, fonts), priority, size))


def _point_boxes(ax: Axes, points: list[tuple[float, float]], radius_px: float) -> list[Bbox]:
    if not points:
        return []
    disp = ax.transData.transform(np.asarray(points, dtype=float))
    return [Bbox.from_bounds(x - radius_px, y - radius_px, 2 * radius_px, 2 * radius_px) for x, y in disp]


def _place_labels(ax: Axes, renderer: RendererBase, drawing: _PanelDrawing, fonts: _Fonts, dpi: float) -> int:
    """Put each label at the first free spot around its point; return how many found none."""
    frame = ax.get_window_extent(renderer)
    taken = _point_boxes(ax, drawing.points, 3.0 * dpi / 72.0)
    for xmin, ymin, xmax, ymax in drawing.areas:
        (x0, y0), (x1, y1) = ax.transData.transform([(xmin, ymin), (xmax, ymax)])
        taken.append(Bbox.from_extents(x0, y0, x1, y1))
    hidden = 0
    for item in sorted(drawing.labels, key=lambda lb: lb.priority):
        item.text = fonts.text(item.text)
        if not item.text:
            continue
        offsets = (((0.0, 0.0, "center", "center"), *_OFFSETS[:2])) if item.priority < 0 else _OFFSETS
        if not _place_one(ax, renderer, item, offsets, frame, taken, fonts):
            hidden += 1
    return hidden


def _place_one(
    ax: Axes,
    renderer: RendererBase,
    item: _Label,
    offsets: Sequence[tuple[float, float, str, str]],
    frame: Bbox,
    taken: list[Bbox],
    fonts: _Fonts,
) -> bool:
    for dx, dy, ha, va in offsets:
        text = ax.annotate(
            item.text,
            (item.x, item.y),
            xytext=(dx, dy),
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=item.size,
            family=fonts.families if item.weight == "normal" else "DejaVu Sans",
            color=item.color,
            weight=item.weight,
            zorder=7,
            linespacing=1.05,
            parse_math=False,
            annotation_clip=False,
            bbox={"boxstyle": "round,pad=0.12", "facecolor": "white", "edgecolor": "none", "alpha": 0.72},
            arrowprops=_LEADER if math.hypot(dx, dy) > LEADER_MIN_PT else None,
        )
        text.update_positions(renderer)
        box = Text.get_window_extent(text, renderer).padded(1.5)  # the text alone, not its leader line
        fits = (
            frame.containsx(box.x0)
            and frame.containsx(box.x1)
            and frame.containsy(box.y0)
            and frame.containsy(box.y1)
        )
        if fits and not any(box.overlaps(o) for o in taken):
            taken.append(box)
            return True
        text.remove()
    return False


def _panel_parts(site: Site, panel: Panel) -> tuple[list[Edge], list[Place]]:
    edges = [
        e
        for e in site.edges.values()
        if _edge_floor(site, e) == panel.floor
        or (panel.floor is None and site.nodes[e.a].outdoor != site.nodes[e.b].outdoor)
    ]
    places = [p for p in site.places.values() if site.nodes[p.node].floor == panel.floor]
    return edges, places


def _fit_limits(ax: Axes, bounds: tuple[float, float, float, float], box_aspect: float) -> None:
    """Set limits that hold ``bounds`` at one metre = one metre on both axes in a box of that aspect."""
    xmin, ymin, xmax, ymax = bounds
    w, h = xmax - xmin, ymax - ymin
    if h / w < box_aspect:
        grow = (w * box_aspect - h) / 2
        ymin, ymax = ymin - grow, ymax + grow
    else:
        grow = (h / box_aspect - w) / 2
        xmin, xmax = xmin - grow, xmax + grow
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal", adjustable="box")


def _nice_length(span: float) -> float:
    """A round length (1, 2 or 5 × 10^k metres) about a sixth of ``span``."""
    raw = max(span / 6.0, 1e-3)
    exp = math.floor(math.log10(raw))
    return min((m * 10.0**exp for m in (1.0, 2.0, 5.0, 10.0)), key=lambda v: abs(v - raw))


def _add_scale_bar(ax: Axes, panel: Panel) -> None:
    xmin, _, xmax, _ = panel.bounds
    length = _nice_length(xmax - xmin)
    bar = AnchoredSizeBar(
        ax.transData,
        length,
        f"{length:g} m",
        "lower left",
        pad=0.4,
        frameon=False,
        size_vertical=0.0,
        color="#555555",
        fontproperties={"size": 7},
    )
    ax.add_artist(bar)


def _draw_panel(ax: Axes, site: Site, cell: _Cell, classes: dict[str, str], fonts: _Fonts) -> _PanelDrawing:
    panel = cell.panel
    outdoor = panel.floor is None
    size = fonts.size(outdoor)
    drawing = _PanelDrawing()
    _fit_limits(ax, panel.bounds, cell.height / cell.width)
    ax.set_title(fonts.text(panel.title), fontsize=11 if outdoor else 9, family=fonts.families, loc="left")
    if outdoor:
        ax.tick_params(labelsize=7)
        ax.grid(True, color="#eeeeee", linewidth=0.5, zorder=0)
    else:  # floors: a scale bar instead of axis ticks
        ax.set_xticks([])
        ax.set_yticks([])
        _add_scale_bar(ax, panel)
    ax.set_facecolor("#fbfbf8")
    edges, places = _panel_parts(site, panel)
    _draw_footprints(ax, site, panel, fonts, drawing)
    _draw_edges(ax, site, edges, classes, outdoor)
    xmin, ymin, xmax, ymax = panel.bounds
    _draw_oneway(ax, site, edges, max(xmax - xmin, ymax - ymin))
    _draw_passages(ax, site, edges, drawing, size)
    if not outdoor:
        _draw_lifts(ax, site, panel.floor or "", drawing, size)
    _draw_places(ax, site, panel, places, fonts, drawing, size)
    return drawing


def _legend_handles() -> list[Line2D]:
    handles = [
        Line2D(
            [],
            [],
            color=s.color,
            linewidth=s.width or 2.5,
            linestyle=(0, s.dashes) if s.dashes else "-",
            label=s.label,
        )
        for s in _EDGE_STYLES.values()
    ]
    handles += [
        Line2D(
            [], [], color="#111111", marker=r"$\rightarrow$", markersize=12, linestyle="none", label="one-way"
        ),
        Line2D([], [], color="#1f77b4", marker="s", markersize=5, linestyle="none", label="IoT door"),
        Line2D(
            [],
            [],
            color="#e74c3c",
            marker="D",
            markersize=6,
            markeredgecolor="black",
            linestyle="none",
            label="gate",
        ),
        Line2D([], [], color="#9467bd", marker="X", markersize=7, linestyle="none", label="barrier"),
        Line2D([], [], color="#34495e", marker="s", markersize=8, linestyle="none", label="lift cabin"),
    ]
    handles += [
        Line2D(
            [],
            [],
            color=m.color,
            marker=m.marker,
            markersize=math.sqrt(m.size) * 0.8,
            markeredgecolor="black",
            markeredgewidth=0.5,
            linestyle="none",
            label=m.label,
        )
        for m in (*_PLACE_MARKERS.values(), _OTHER_PLACE)
    ]
    return handles


def _site_title(site: Site) -> str:
    head = f"{site.label} — {site.name}" if site.label and site.label != site.name else site.name
    return head


def _site_subtitle(site: Site) -> str:
    o = site.origin
    counts = [
        (len(site.nodes), "nodes"), (len(site.edges), "edges"), (len(site.buildings), "buildings"),
        (len(site.floors), "floors"), (len(site.lifts), "lifts"), (len(site.doors), "doors"),
        (len(site.gates), "gates"), (len(site.places), "places"),
    ]  # fmt: skip
    parts = [f"origin {o.lat:.5f}°, {o.lon:.5f}°, {o.alt:.0f} m", *(f"{n} {what}" for n, what in counts)]
    return " · ".join([*parts, "ENU metres"])


def render_site(site: Site, out_path: str | os.PathLike[str], *, dpi: float = 100.0) -> Path:
    """Draw ``site`` to a PNG at ``out_path`` (outdoor panel + one panel per floor); return the path.

    The figure is ``FIG_WIDTH_IN`` inches wide (2000 px at the default ``dpi``); its height follows the
    panels. Raises ``ValueError`` when the site has no node at all.
    """
    if not site.nodes:
        raise ValueError(f"site {site.name!r} has no nodes to draw")
    fonts = _fonts()
    panels = plan_panels(site)
    cells, height = _layout(panels, site)
    fig = Figure(figsize=(FIG_WIDTH_IN, height), dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    fig.text(
        MARGIN_IN / FIG_WIDTH_IN,
        1 - 0.45 / height,
        fonts.text(_site_title(site)) or site.name,
        fontsize=19,
        family=fonts.families,
        va="baseline",
        parse_math=False,
    )
    fig.text(
        MARGIN_IN / FIG_WIDTH_IN,
        1 - 0.72 / height,
        fonts.text(_site_subtitle(site)),
        fontsize=10,
        color="#555555",
        family=fonts.families,
        va="baseline",
        parse_math=False,
    )
    fig.legend(
        handles=_legend_handles(),
        loc="upper left",
        ncol=10,
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(MARGIN_IN / FIG_WIDTH_IN, 1 - 0.8 / height),
        handlelength=2.6,
        columnspacing=1.4,
    )
    cart = Router(site, "cart") if "cart" in site.profiles else None
    classes = {e.id: _edge_class(site, e, cart) for e in site.edges.values()}
    drawn: list[tuple[Axes, _PanelDrawing]] = []
    for cell in cells:
        rect = (
            cell.left / FIG_WIDTH_IN,
            1 - (cell.top + cell.height) / height,
            cell.width / FIG_WIDTH_IN,
            cell.height / height,
        )
        ax = fig.add_axes(rect)
        drawn.append((ax, _draw_panel(ax, site, cell, classes, fonts)))
    renderer = canvas.get_renderer()
    for ax, drawing in drawn:
        ax.apply_aspect()
        hidden = _place_labels(ax, renderer, drawing, fonts, dpi)
        if hidden:
            ax.text(
                0.995,
                0.01,
                f"{hidden} label(s) hidden to avoid overlap",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=6.5,
                color="#888888",
                parse_math=False,
            )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, facecolor="white")
    return out
