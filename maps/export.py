"""The site as one GeoJSON FeatureCollection, for web maps (``GET /v1/map``) and GIS tools.

Features (``properties.feature`` tells them apart; nodes are left out, edges carry their ends' ids):

    building  Polygon     id, name, label
    edge      LineString  id, a, b, floor, oneway, length, width, speed_limit, door, gate, kerb, step,
                          barrier, entrance, cart
    place     Point       name, kind, label, floor, building
    lift      Point       id, name, building, floors

``floor`` is ``None`` outdoors (an entrance edge belongs to its indoor end's floor); ``cart`` says
whether the site's ``cart`` profile may use the edge (``None`` when the site has no such profile).
A top-level ``site`` member gives the name, label, geodetic origin and the floors (id, building, name,
elevation) in building order, lowest first.

Coordinates are the site's local ENU metres by default, announced by a top-level
``"crs": {"type": "name", "properties": {"name": "robopost:enu"}}``; with ``wgs84=True`` they are
RFC 7946 longitude/latitude degrees (WGS84) and there is no ``crs`` member.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pymap3d

from maps.model import Site, edge_length, edge_points
from maps.routing import Router

ENU_CRS: dict[str, Any] = {"type": "name", "properties": {"name": "robopost:enu"}}
ENU_DECIMALS = 3  # millimetres
WGS84_DECIMALS = 8  # about a millimetre of latitude


class _Projector:
    """Turns ENU points into output coordinates (ENU rounded, or WGS84 lon/lat)."""

    def __init__(self, site: Site, wgs84: bool) -> None:
        self.origin = site.origin
        self.wgs84 = wgs84

    def __call__(self, points: Sequence[tuple[float, float]]) -> list[list[float]]:
        arr = np.asarray(points, dtype=float).reshape(-1, 2)
        if not self.wgs84:
            return np.round(arr, ENU_DECIMALS).tolist()
        o = self.origin
        lat, lon, _ = pymap3d.enu2geodetic(arr[:, 0], arr[:, 1], np.zeros(len(arr)), o.lat, o.lon, o.alt)
        return np.round(np.column_stack([lon, lat]), WGS84_DECIMALS).tolist()


def _feature(geometry_type: str, coordinates: Any, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": geometry_type, "coordinates": coordinates},
        "properties": properties,
    }


def _building_features(site: Site, project: _Projector) -> list[dict[str, Any]]:
    out = []
    for b in site.buildings.values():
        if len(b.footprint) < 3:
            continue
        ring = project([*b.footprint, b.footprint[0]])  # GeoJSON rings are closed
        out.append(
            _feature("Polygon", [ring], {"feature": "building", "id": b.id, "name": b.name, "label": b.label})
        )
    return out


def _edge_features(site: Site, project: _Projector) -> list[dict[str, Any]]:
    cart = Router(site, "cart") if "cart" in site.profiles else None
    out = []
    for e in site.edges.values():
        a, b = site.nodes[e.a], site.nodes[e.b]
        props = {
            "feature": "edge",
            "id": e.id,
            "a": e.a,
            "b": e.b,
            "floor": a.floor if a.floor is not None else b.floor,
            "oneway": e.oneway,
            "length": round(edge_length(site, e), ENU_DECIMALS),
            "width": e.width,
            "speed_limit": e.speed_limit,
            "door": e.door,
            "gate": e.gate,
            "kerb": e.kerb,
            "step": e.step,
            "barrier": e.barrier,
            "entrance": a.outdoor != b.outdoor,
            "cart": None if cart is None else cart.edge_allowed(e),
        }
        out.append(_feature("LineString", project(edge_points(site, e)), props))
    return out


def _place_features(site: Site, project: _Projector) -> list[dict[str, Any]]:
    out = []
    for p in site.places.values():
        n = site.nodes[p.node]
        props = {
            "feature": "place",
            "name": p.name,
            "kind": p.kind.value,
            "label": p.label,
            "floor": n.floor,
            "building": site.building_of(p.node),
        }
        out.append(_feature("Point", project([(n.x, n.y)])[0], props))
    return out


def _lift_features(site: Site, project: _Projector) -> list[dict[str, Any]]:
    out = []
    for li in site.lifts.values():
        props = {
            "feature": "lift",
            "id": li.id,
            "name": li.name,
            "building": li.building,
            "floors": li.floors,
        }
        out.append(_feature("Point", project([(li.cabin.x, li.cabin.y)])[0], props))
    return out


def site_summary(site: Site) -> dict[str, Any]:
    """The ``site`` member: name, label, origin and floors (building order, lowest first; each with its
    map frame in site metres)."""
    order = list(site.buildings) + sorted({f.building for f in site.floors.values()} - set(site.buildings))
    floors = [
        {
            "id": f.id,
            "building": f.building,
            "name": f.name,
            "elevation": f.elevation,
            # where the floor's own map frame sits in site metres: robots report indoor poses in it
            "frame": {"x": f.frame.x, "y": f.frame.y, "yaw": f.frame.yaw},
        }
        for building in order
        for f in site.floors_of(building)
    ]
    o = site.origin
    return {
        "name": site.name,
        "label": site.label,
        "origin": {"lat": o.lat, "lon": o.lon, "alt": o.alt},
        "floors": floors,
    }


def site_feature_collection(site: Site, *, wgs84: bool = False) -> dict[str, Any]:
    """The site as a GeoJSON FeatureCollection (see the module docstring for its members)."""
    project = _Projector(site, wgs84)
    features = (
        _building_features(site, project)
        + _edge_features(site, project)
        + _place_features(site, project)
        + _lift_features(site, project)
    )
    collection: dict[str, Any] = {"type": "FeatureCollection", "site": site_summary(site)}
    if not wgs84:
        collection["crs"] = ENU_CRS
    collection["features"] = features
    return collection
