"""Map checks: unreachable places, dangling lifts, impossible lengths, and the info summary."""

from __future__ import annotations

from dataclasses import replace

from maps.check import site_info, site_problems
from maps.model import Site


def test_small_site_has_only_its_dangling_landing(small_site: Site) -> None:
    """H2's landing of lift LA has no corridor: that is the one problem (X is no place)."""
    problems = [str(p) for p in site_problems(small_site)]
    assert problems == ["lifts.LA.landings.H2: landing 'h2a' is dangling: no edge reaches it"]


def test_place_cut_off_from_its_anchor_is_reported(small_site: Site) -> None:
    """Removing the way back from C makes the stop unreachable 'there and back' for the cart."""
    del small_site.edges["CY"]
    problems = [str(p) for p in site_problems(small_site)]
    assert "places.stop_c: stop not reachable there and back by profile 'cart'" in problems


def test_office_behind_a_narrow_door_is_unreachable_indoors(small_site: Site) -> None:
    """An office door narrower than the indoor robot makes the office unreachable from the mailroom."""
    small_site.edges["h3b-off"] = replace(small_site.edges["h3b-off"], width=0.5)
    problems = [str(p) for p in site_problems(small_site)]
    assert "places.office: office not reachable there and back by profile 'indoor'" in problems


def test_lift_serving_one_floor_and_short_edges(small_site: Site) -> None:
    """A lift with one landing and an edge shorter than its chord are problems."""
    lift = small_site.lifts["LB"]
    small_site.lifts["LB"] = replace(lift, landings={"H1": "h1b"})
    small_site.edges["SA"] = replace(small_site.edges["SA"], length=50.0)
    problems = [str(p) for p in site_problems(small_site)]
    assert "lifts.LB: serves fewer than two floors" in problems
    assert any(p.startswith("edges.SA: length 50.00 m is shorter") for p in problems)


def test_info_summary(small_site: Site) -> None:
    """info counts floors, lifts, doors, gates, nodes, edges, places and the main component."""
    info = site_info(small_site)
    assert [f["id"] for f in info["floors"]] == ["H1", "H2", "H3"]
    assert [li["id"] for li in info["lifts"]] == ["LA", "LB"]
    assert info["doors"] == ["D"] and info["gates"] == ["G"]
    assert info["nodes"] == len(small_site.nodes) and info["edges"] == len(small_site.edges)
    assert set(info["places"]) == {"station", "stop_c", "mailroom", "office"}
    assert info["entrances"] == ["C-h1"]
    assert info["components"] == 1 and info["main_component"]["share"] == 1.0
    assert len(info["problems"]) == 1
