"""Routing on the small site: profiles, one-ways, lifts, doors, gates, matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from maps.errors import RoutingError, UnknownPlaceError
from maps.model import Profile, Site
from maps.routing import Router


def test_cart_avoids_kerb_and_narrow_path_and_obeys_oneway(small_site: Site) -> None:
    """The cart goes S-B-C (kerb on A-C, A-B too narrow) and comes back by Y (B-C is one-way)."""
    router = Router(small_site, "cart")
    there = router.route("station", "stop_c")
    assert there.path == ["S", "B", "C"]
    assert there.length_m == pytest.approx(150.0 + math.hypot(100, 50))
    back = router.route("stop_c", "station")
    assert back.path == ["C", "Y", "S"]
    assert there.floors == ["outdoor"] and there.lifts == []


def test_profile_that_climbs_kerbs_takes_the_shortcut(small_site: Site) -> None:
    """A profile allowed on kerbs uses A-C; the speed limit on S-A counts in the time."""
    small_site.profiles["climber"] = Profile("climber", max_speed=3.0, kerbs=True, min_width=1.4)
    route = Router(small_site, "climber").route("station", "stop_c")
    assert route.path == ["S", "A", "C"]
    assert route.time_s == pytest.approx(100 / 2.0 + 100 / 3.0)


def test_indoor_route_takes_the_faster_lift_and_opens_the_door(small_site: Site) -> None:
    """Mailroom to office: lift LA (wait 20 s) beats LB (wait 60 s); the office door adds its pass time."""
    route = Router(small_site, "indoor").route("mailroom", "office")
    assert route.lifts == ["LA"]
    assert route.floors == ["H1", "H3"]
    assert route.doors == ["D"]
    lift_s = 20.0 + 2 * (3.0 + 3.0) + 2 * 2.5
    assert route.time_s == pytest.approx(lift_s + 20.0 + (10.0 + 6.0))
    assert route.length_m == pytest.approx(30.0)


def test_robot_crosses_the_gated_entrance(small_site: Site) -> None:
    """The indoor/outdoor robot goes from the station through gate G and lift LA to the office."""
    route = Router(small_site, "robot").route("station", "office")
    assert route.floors == ["outdoor", "H1", "H3"]
    assert route.gates == ["G"]
    assert route.lifts == ["LA"]


def test_cart_cannot_reach_an_office(small_site: Site) -> None:
    """A cart never enters a building: a clear RoutingError, not a crash."""
    with pytest.raises(RoutingError, match="cannot be used by profile 'cart'"):
        Router(small_site, "cart").route("station", "office")


def test_unknown_ends_and_profiles_are_refused(small_site: Site) -> None:
    """Names that are no place, node or coordinate, and unknown profiles, raise typed errors."""
    router = Router(small_site, "cart")
    with pytest.raises(UnknownPlaceError):
        router.route("station", "nowhere")
    with pytest.raises(UnknownPlaceError, match="latitude"):
        router.route("station", "95.0,10.0")
    with pytest.raises(RoutingError, match="unknown profile"):
        Router(small_site, "hovercraft")


def test_lat_lon_end_snaps_to_the_nearest_usable_node(small_site: Site) -> None:
    """A lat,lon end resolves to the closest node the profile may use (here C at 200 m east)."""
    import pymap3d

    o = small_site.origin
    lat, lon, _ = pymap3d.enu2geodetic(198.0, 3.0, 0.0, o.lat, o.lon, o.alt)
    route = Router(small_site, "cart").route("station", f"{lat},{lon}")
    assert route.path[-1] == "C"


def test_matrix_matches_routes_and_marks_unreachable_as_inf(small_site: Site) -> None:
    """Matrix entries equal the route times; pairs without a route are inf."""
    router = Router(small_site, "robot")
    names = ["station", "stop_c", "mailroom", "office"]
    m = router.matrix(names)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            expected = 0.0 if a == b else router.route(a, b).time_s
            assert m[i, j] == pytest.approx(expected)
    to_x = router.matrix(["station"], ["X"])  # X is only reachable over a step
    assert to_x.shape == (1, 1) and np.isinf(to_x[0, 0])
    del small_site.edges["CY"]
    m2 = Router(small_site, "robot").matrix(["stop_c", "station"])
    assert np.isinf(m2[0, 1]) and np.isfinite(m2[1, 0])
    with pytest.raises(RoutingError, match="cannot be used"):
        Router(small_site, "cart").matrix(["station", "office"])


def test_reachable(small_site: Site) -> None:
    """reachable() follows the directed graph."""
    router = Router(small_site, "cart")
    assert router.reachable("station", "stop_c")
    del small_site.edges["YS"]
    assert not Router(small_site, "cart").reachable("stop_c", "station")
