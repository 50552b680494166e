"""Rendering a site to PNG: panels, pixel size, something actually drawn, real imported maps."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maps import render
from maps.io import load_map, load_site
from maps.model import Building, Cabin, Door, Edge, Floor, Gate, GeoOrigin, Lift, Node, Place, PlaceKind, Site
from maps.render import FIG_WIDTH_IN, plan_panels, render_site

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CAMPUS = REPO / "maps" / "campuses" / "neijiang.yaml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _two_storey_site() -> Site:
    """A road with a one-way, a narrow path and a step, and a 2-floor building with a gate, door and lift."""
    site = Site("tiny", GeoOrigin(29.58, 105.06, 350.0), label="小站点")
    for nid, x, y in [("S", 0.0, 0.0), ("A", 80.0, 0.0), ("B", 80.0, 40.0), ("C", 0.0, 40.0)]:
        site.add_node(Node(nid, x, y))
    site.buildings["H"] = Building(
        "H", "Hall", "大楼", ((70.0, 50.0), (110.0, 50.0), (110.0, 70.0), (70.0, 70.0))
    )
    site.buildings["E"] = Building("E", "Empty", None, ())
    site.floors["H1"] = Floor("H1", "H", "1F", 0.0)
    site.floors["H2"] = Floor("H2", "H", "2F", 3.6)
    site.floors["E1"] = Floor("E1", "E", "1F", 0.0)  # no nodes: no panel
    for nid, x, y, floor in [
        ("h1", 80.0, 52.0, "H1"),
        ("h1l", 90.0, 60.0, "H1"),
        ("h2l", 90.0, 60.0, "H2"),
        ("h2o", 100.0, 65.0, "H2"),
    ]:
        site.add_node(Node(nid, x, y, floor))
    site.gates["G"] = Gate("G", "Front gate", "H")
    site.doors["D"] = Door("D", "Office door", "H", iot="h/2/d")
    for edge in [
        Edge("SA", "S", "A", width=6.0, speed_limit=4.0),
        Edge("AB", "A", "B", width=6.0, oneway=True),
        Edge("BC", "B", "C", width=1.0),
        Edge("CS", "C", "S", width=3.0, step=True),
        Edge("B-h1", "B", "h1", width=1.2, gate="G"),
        Edge("h1-h1l", "h1", "h1l", width=2.0),
        Edge("h2l-h2o", "h2l", "h2o", width=0.9, door="D"),
    ]:
        site.add_edge(edge)
    site.lifts["L"] = Lift("L", "H", Cabin(90.0, 60.0), {"H1": "h1l", "H2": "h2l"})
    site.places["station"] = Place("station", PlaceKind.STATION, "S", "邮政驿站")
    site.places["stop_b"] = Place("stop_b", PlaceKind.STOP, "B", "停靠点B")
    site.places["office"] = Place("office", PlaceKind.OFFICE, "h2o", "办公室")
    return site


def _image(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _drawn_share(pixels: np.ndarray) -> float:
    """Share of pixels that are not (near) white."""
    return float((pixels.astype(int).sum(axis=2) < 735).mean())


def test_panels_are_outdoor_first_then_each_floor_with_nodes() -> None:
    """A site with outdoor nodes gets an outdoor panel, then one per floor that has nodes (E1 has none)."""
    panels = plan_panels(_two_storey_site())
    assert [p.floor for p in panels] == [None, "H1", "H2"]
    assert panels[0].title == "Outdoor network"
    assert "大楼 Hall" in panels[1].title and "H1" in panels[1].title
    assert panels[1].bounds == panels[2].bounds  # floors of one building line up


def test_small_site_renders_to_a_png_of_the_requested_size(tmp_path: Path) -> None:
    """render_site writes a real PNG, FIG_WIDTH_IN × dpi pixels wide, with drawing on it."""
    out = render_site(_two_storey_site(), tmp_path / "sub" / "tiny.png", dpi=60)
    assert out == tmp_path / "sub" / "tiny.png"
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    pixels = _image(out)
    assert pixels.shape[1] == round(FIG_WIDTH_IN * 60)
    assert pixels.shape[0] > 300
    assert 0.01 < _drawn_share(pixels) < 0.9


def test_sample_campus_renders_readably(tmp_path: Path) -> None:
    """The sample campus renders to a 2000 px wide PNG with an outdoor panel and 16 floor panels."""
    site = load_site(SAMPLE_CAMPUS)
    assert len(plan_panels(site)) == 17
    out = render_site(site, tmp_path / "neijiang.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    pixels = _image(out)
    assert pixels.shape[1] == 2000
    assert pixels.shape[0] > 2000  # the floor rows below the campus panel
    assert _drawn_share(pixels) > 0.05
    # the post station's red star and the stops' orange are on the picture
    red = (pixels[:, :, 0] > 170) & (pixels[:, :, 1] < 80) & (pixels[:, :, 2] < 80)
    orange = (pixels[:, :, 0] > 220) & (abs(pixels[:, :, 1].astype(int) - 156) < 25) & (pixels[:, :, 2] < 60)
    assert red.sum() > 50 and orange.sum() > 200


def test_rendering_does_not_load_pyplot(tmp_path: Path) -> None:
    """The renderer uses Figure + FigureCanvasAgg only: pyplot's global state is never touched."""
    had_pyplot = "matplotlib.pyplot" in sys.modules
    render_site(_two_storey_site(), tmp_path / "tiny.png", dpi=40)
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot


def test_empty_site_is_refused(tmp_path: Path) -> None:
    """A site without nodes has nothing to draw: ValueError naming it."""
    with pytest.raises(ValueError, match="'void' has no nodes"):
        render_site(Site("void", GeoOrigin(0.0, 0.0)), tmp_path / "void.png")


def test_rmf_hotel_renders_three_floor_panels_and_no_outdoor(shared_data: Path, tmp_path: Path) -> None:
    """The Open-RMF hotel (3 floors, no outdoor nodes) gets exactly its 3 floor panels."""
    site = load_map(shared_data / "maps" / "rmf" / "hotel.building.yaml")
    assert [p.floor for p in plan_panels(site)] == ["L1", "L2", "L3"]
    pixels = _image(render_site(site, tmp_path / "hotel.png", dpi=60))
    assert _drawn_share(pixels) > 0.01


def test_osm_extract_renders_one_outdoor_panel(shared_data: Path, tmp_path: Path) -> None:
    """The OpenStreetMap extract (thousands of edges, no floors) renders as one outdoor panel."""
    site = load_map(shared_data / "maps" / "osm" / "uw_campus.osm")
    assert len(site.edges) > 1000
    assert [p.floor for p in plan_panels(site)] == [None]
    pixels = _image(render_site(site, tmp_path / "uw.png", dpi=50))
    assert pixels.shape[1] == round(FIG_WIDTH_IN * 50)
    assert _drawn_share(pixels) > 0.02


def test_without_a_cjk_font_labels_fall_back_to_english(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no CJK font on the machine the Chinese labels are left out: no missing-glyph warnings."""
    monkeypatch.setattr(render, "_find_cjk_family", lambda: None)
    out = render_site(_two_storey_site(), tmp_path / "tiny.png", dpi=40)  # warnings are errors in tests
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    fonts = render._fonts()
    assert fonts.text("邮政驿站\npost_station") == "post_station"
    assert fonts.text("大楼 Hall · H1 (1F, +0.0 m)") == "Hall · H1 (1F, +0.0 m)"
