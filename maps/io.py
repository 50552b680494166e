"""robopost's own map format: a YAML file for the site plus a GeoJSON file for the network.

``NAME.yaml`` holds the site (origin), profiles, buildings, floors, lifts, doors, gates and places and
names the network file; ``NAME.geojson`` holds the nodes (Points) and edges (LineStrings) in the site's
local ENU metres. ``maps/README.md`` documents every field. Saving and loading round-trip exactly
(floats are written with ``repr`` precision, defaults are omitted and restored).

``load_map`` opens any supported file by its name: our YAML, an Open-RMF ``*.building.yaml`` or an
OpenStreetMap ``*.osm``. Every problem raises ``MapFormatError`` naming the file and the element.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maps.errors import MapFormatError
from maps.model import (
    DEFAULT_PROFILES,
    Building,
    Cabin,
    Door,
    Edge,
    Floor,
    FloorFrame,
    Gate,
    GeoOrigin,
    Lift,
    Node,
    Place,
    PlaceKind,
    Profile,
    Site,
)

FORMAT = "robopost-map/1"

# ---- file schema (pydantic: gives the element path of every error) ------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Origin(_Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt: float = 0.0


class _SiteHead(_Strict):
    name: str
    label: str | None = None
    origin: _Origin


class _Profile(_Strict):
    max_speed: float = Field(gt=0)
    outdoor: bool = True
    indoor: bool = False
    lifts: bool = False
    doors: bool = False
    gates: bool = False
    kerbs: bool = False
    steps: bool = False
    min_width: float = Field(default=0.0, ge=0)
    barriers: bool = False


class _Building(_Strict):
    name: str
    label: str | None = None
    footprint: list[tuple[float, float]] = []


class _Frame(_Strict):
    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0


class _Floor(_Strict):
    building: str
    name: str
    elevation: float = 0.0
    frame: _Frame = _Frame()


class _Cabin(_Strict):
    x: float
    y: float
    width: float = Field(default=1.6, gt=0)
    depth: float = Field(default=1.6, gt=0)
    yaw: float = 0.0


class _Lift(_Strict):
    building: str
    name: str | None = None
    cabin: _Cabin
    landings: dict[str, str]
    door_positions: dict[str, tuple[float, float]] = {}
    wait_s: float = Field(default=20.0, ge=0)
    door_open_s: float = Field(default=3.0, ge=0)
    door_close_s: float = Field(default=3.0, ge=0)
    floor_travel_s: float = Field(default=2.5, ge=0)


class _Door(_Strict):
    name: str | None = None
    building: str | None = None
    kind: str = "hinged"
    iot: str | None = None
    pass_s: float = Field(default=6.0, ge=0)


class _Gate(_Strict):
    name: str | None = None
    building: str | None = None
    iot: str | None = None
    pass_s: float = Field(default=4.0, ge=0)


class _Place(_Strict):
    kind: PlaceKind
    node: str
    label: str | None = None
    profile: str | None = None
    tags: dict[str, str] = {}


class _SiteFile(_Strict):
    format: str
    site: _SiteHead
    network: str
    profiles: dict[str, _Profile] = {}
    buildings: dict[str, _Building] = {}
    floors: dict[str, _Floor] = {}
    lifts: dict[str, _Lift] = {}
    doors: dict[str, _Door] = {}
    gates: dict[str, _Gate] = {}
    places: dict[str, _Place] = {}


class _NodeProps(_Strict):
    kind: str = Field(pattern="^node$")
    id: str
    floor: str | None = None


class _EdgeProps(_Strict):
    kind: str = Field(pattern="^edge$")
    id: str
    a: str
    b: str
    oneway: bool = False
    length: float | None = Field(default=None, ge=0)
    width: float | None = Field(default=None, ge=0)
    speed_limit: float | None = Field(default=None, gt=0)
    kerb: bool = False
    step: bool = False
    barrier: str | None = None
    door: str | None = None
    gate: str | None = None
    tags: dict[str, str] = {}


class _Point(_Strict):
    type: str = Field(pattern="^Point$")
    coordinates: tuple[float, float]


class _Line(_Strict):
    type: str = Field(pattern="^LineString$")
    coordinates: list[tuple[float, float]] = Field(min_length=2)


class _NodeFeature(BaseModel):
    type: str = Field(pattern="^Feature$")
    geometry: _Point
    properties: _NodeProps


class _EdgeFeature(BaseModel):
    type: str = Field(pattern="^Feature$")
    geometry: _Line
    properties: _EdgeProps


# ---- loading -----------------------------------------------------------------------------------


def _element(loc: tuple[int | str, ...], prefix: str = "") -> str:
    parts = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts)


def _validate(model: type[BaseModel], data: Any, file: str, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        raise MapFormatError(file, _element(loc, prefix), err["msg"]) from None


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MapFormatError(str(path), "", f"cannot read: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise MapFormatError(str(path), where, f"not valid YAML: {problem}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MapFormatError(str(path), "", f"cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise MapFormatError(str(path), f"line {exc.lineno} column {exc.colno}", exc.msg) from None


def load_site(path: str | os.PathLike[str]) -> Site:
    """Load a site saved in robopost's format (the YAML file; the GeoJSON it names sits beside it)."""
    path = Path(path)
    file = str(path)
    raw = _read_yaml(path)
    if not isinstance(raw, Mapping):
        raise MapFormatError(file, "", "the file must be a YAML mapping")
    if raw.get("format") != FORMAT:
        raise MapFormatError(file, "format", f"expected {FORMAT!r}, found {raw.get('format')!r}")
    doc: _SiteFile = _validate(_SiteFile, raw, file)
    site = Site(
        name=doc.site.name,
        label=doc.site.label,
        origin=GeoOrigin(doc.site.origin.lat, doc.site.origin.lon, doc.site.origin.alt),
        source=file,
    )
    site.profiles = dict(DEFAULT_PROFILES)
    for name, p in doc.profiles.items():
        site.profiles[name] = Profile(name=name, **p.model_dump())
    _load_network(site, path.parent / doc.network)
    _load_structure(site, doc)
    _check_references(site, file)
    return site


def _load_network(site: Site, path: Path) -> None:
    file = str(path)
    raw = _read_json(path)
    if not isinstance(raw, Mapping) or raw.get("type") != "FeatureCollection":
        raise MapFormatError(file, "", "expected a GeoJSON FeatureCollection")
    features = raw.get("features")
    if not isinstance(features, list):
        raise MapFormatError(file, "features", "expected a list of features")
    edges: list[tuple[int, _EdgeFeature]] = []
    for i, feat in enumerate(features):
        kind = feat.get("properties", {}).get("kind") if isinstance(feat, Mapping) else None
        if kind == "node":
            f: _NodeFeature = _validate(_NodeFeature, feat, file, f"features[{i}]")
            p = f.properties
            if p.id in site.nodes:
                raise MapFormatError(file, f"features[{i}]", f"node {p.id!r} is defined twice")
            site.add_node(Node(p.id, *f.geometry.coordinates, floor=p.floor))
        elif kind == "edge":
            edges.append((i, _validate(_EdgeFeature, feat, file, f"features[{i}]")))
        else:
            raise MapFormatError(file, f"features[{i}].properties.kind", "expected 'node' or 'edge'")
    for i, e in edges:
        ep = e.properties
        for end in (ep.a, ep.b):
            if end not in site.nodes:
                raise MapFormatError(
                    file, f"features[{i}]", f"edge {ep.id!r} names node {end!r}, which does not exist"
                )
        if ep.id in site.edges:
            raise MapFormatError(file, f"features[{i}]", f"edge {ep.id!r} is defined twice")
        fields = ep.model_dump(exclude={"kind"})
        site.add_edge(Edge(**fields, geometry=tuple(e.geometry.coordinates[1:-1])))


def _load_structure(site: Site, doc: _SiteFile) -> None:
    for bid, b in doc.buildings.items():
        site.buildings[bid] = Building(bid, b.name, b.label, tuple(b.footprint))
    for fid, f in doc.floors.items():
        site.floors[fid] = Floor(fid, f.building, f.name, f.elevation, FloorFrame(**f.frame.model_dump()))
    for lid, li in doc.lifts.items():
        site.lifts[lid] = Lift(
            id=lid,
            building=li.building,
            name=li.name,
            cabin=Cabin(**li.cabin.model_dump()),
            landings=dict(li.landings),
            door_positions={k: tuple(v) for k, v in li.door_positions.items()},  # type: ignore[misc]
            wait_s=li.wait_s,
            door_open_s=li.door_open_s,
            door_close_s=li.door_close_s,
            floor_travel_s=li.floor_travel_s,
        )
    for did, d in doc.doors.items():
        site.doors[did] = Door(did, **d.model_dump())
    for gid, g in doc.gates.items():
        site.gates[gid] = Gate(gid, **g.model_dump())
    for name, pl in doc.places.items():
        site.places[name] = Place(name, pl.kind, pl.node, pl.label, pl.profile, dict(pl.tags))


def check_references(site: Site) -> list[tuple[str, str]]:
    """Every id the site refers to must exist: ``[(element, what is wrong), ...]`` (empty when sound)."""
    bad: list[tuple[str, str]] = []
    for fid, f in site.floors.items():
        if f.building not in site.buildings:
            bad.append((f"floors.{fid}.building", f"building {f.building!r} does not exist"))
    for nid, n in site.nodes.items():
        if n.floor is not None and n.floor not in site.floors:
            bad.append((f"nodes.{nid}.floor", f"floor {n.floor!r} does not exist"))
    for eid, e in site.edges.items():
        if e.door is not None and e.door not in site.doors:
            bad.append((f"edges.{eid}.door", f"door {e.door!r} does not exist"))
        if e.gate is not None and e.gate not in site.gates:
            bad.append((f"edges.{eid}.gate", f"gate {e.gate!r} does not exist"))
    for lid, li in site.lifts.items():
        if li.building not in site.buildings:
            bad.append((f"lifts.{lid}.building", f"building {li.building!r} does not exist"))
        for fid, nid in li.landings.items():
            elem = f"lifts.{lid}.landings.{fid}"
            if fid not in site.floors:
                bad.append((elem, f"floor {fid!r} does not exist"))
            elif nid not in site.nodes:
                bad.append((elem, f"node {nid!r} does not exist"))
            elif site.nodes[nid].floor != fid:
                bad.append((elem, f"node {nid!r} is on floor {site.nodes[nid].floor!r}, not {fid!r}"))
    for name, pl in site.places.items():
        if pl.node not in site.nodes:
            bad.append((f"places.{name}.node", f"node {pl.node!r} does not exist"))
        if pl.profile is not None and pl.profile not in site.profiles:
            bad.append((f"places.{name}.profile", f"profile {pl.profile!r} does not exist"))
    return bad


def _check_references(site: Site, file: str) -> None:
    bad = check_references(site)
    if bad:
        raise MapFormatError(file, *bad[0])


# ---- saving ------------------------------------------------------------------------------------


def _drop_defaults(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_defaults=True)


def site_to_document(site: Site, network_file: str) -> dict[str, Any]:
    """The YAML document of a site (without the network)."""
    head = _SiteHead(
        name=site.name,
        label=site.label,
        origin=_Origin(lat=site.origin.lat, lon=site.origin.lon, alt=site.origin.alt),
    )
    doc = _SiteFile(
        format=FORMAT,
        site=head,
        network=network_file,
        profiles={n: _Profile(**_profile_fields(p)) for n, p in site.profiles.items()},
        buildings={
            k: _Building(name=b.name, label=b.label, footprint=list(b.footprint))
            for k, b in site.buildings.items()
        },
        floors={
            k: _Floor(
                building=f.building,
                name=f.name,
                elevation=f.elevation,
                frame=_Frame(x=f.frame.x, y=f.frame.y, yaw=f.frame.yaw),
            )
            for k, f in site.floors.items()
        },
        lifts={k: _lift_doc(li) for k, li in site.lifts.items()},
        doors={
            k: _Door(name=d.name, building=d.building, kind=d.kind, iot=d.iot, pass_s=d.pass_s)
            for k, d in site.doors.items()
        },
        gates={
            k: _Gate(name=g.name, building=g.building, iot=g.iot, pass_s=g.pass_s)
            for k, g in site.gates.items()
        },
        places={
            k: _Place(kind=p.kind, node=p.node, label=p.label, profile=p.profile, tags=p.tags)
            for k, p in site.places.items()
        },
    )
    out: dict[str, Any] = {"format": FORMAT, "site": _drop_defaults(doc.site), "network": network_file}
    out["site"]["origin"] = doc.site.origin.model_dump()
    for section in ("profiles", "buildings", "floors", "lifts", "doors", "gates", "places"):
        items = getattr(doc, section)
        if items:
            out[section] = {k: _drop_defaults(v) for k, v in items.items()}
    return out


def _profile_fields(p: Profile) -> dict[str, Any]:
    return {k: getattr(p, k) for k in _Profile.model_fields}


def _lift_doc(li: Lift) -> _Lift:
    c = li.cabin
    return _Lift(
        building=li.building,
        name=li.name,
        cabin=_Cabin(x=c.x, y=c.y, width=c.width, depth=c.depth, yaw=c.yaw),
        landings=dict(li.landings),
        door_positions=dict(li.door_positions),
        wait_s=li.wait_s,
        door_open_s=li.door_open_s,
        door_close_s=li.door_close_s,
        floor_travel_s=li.floor_travel_s,
    )


def network_features(site: Site) -> list[dict[str, Any]]:
    """GeoJSON features (local ENU metres) of the site's nodes and edges, as saved in the network file."""
    feats: list[dict[str, Any]] = []
    for n in site.nodes.values():
        props: dict[str, Any] = {"kind": "node", "id": n.id}
        if n.floor is not None:
            props["floor"] = n.floor
        feats.append(
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [n.x, n.y]}, "properties": props}
        )
    for e in site.edges.values():
        a, b = site.nodes[e.a], site.nodes[e.b]
        coords = [[a.x, a.y], *[list(p) for p in e.geometry], [b.x, b.y]]
        eprops = _EdgeProps(kind="edge", **{k: getattr(e, k) for k in _EdgeProps.model_fields if k != "kind"})
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": coords},
                "properties": {"kind": "edge", **_drop_defaults(eprops)},
            }
        )
    return feats


class _Dumper(yaml.SafeDumper):
    """Writes short numeric lists (coordinates) on one line: ``[12.5, -3.0]``."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(v, int | float) and not isinstance(v, bool) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def save_site(site: Site, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``site`` as ``path`` (YAML) and the network beside it (same stem, ``.geojson``)."""
    path = Path(path)
    if path.suffix not in (".yaml", ".yml"):
        raise ValueError(f"{path}: our map files end in .yaml")
    net = path.with_suffix(".geojson")
    doc = site_to_document(site, net.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.dump(doc, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=110), encoding="utf-8"
    )
    collection = {"type": "FeatureCollection", "name": site.name, "features": network_features(site)}
    net.write_text(_dump_features(collection), encoding="utf-8")
    return path, net


def _dump_features(collection: dict[str, Any]) -> str:
    """One feature per line: diffs of edited maps stay readable."""
    head = {k: v for k, v in collection.items() if k != "features"}
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in collection["features"]]
    body = ",\n".join(lines)
    start = json.dumps(head, ensure_ascii=False)[:-1]
    return f'{start}, "features": [\n{body}\n]}}\n'


# ---- any supported file ------------------------------------------------------------------------


def map_kind(path: str | os.PathLike[str]) -> str:
    """``robopost``, ``rmf`` or ``osm``, from the file name (and for YAML, its first keys)."""
    name = Path(path).name.lower()
    if name.endswith(".osm") or name.endswith(".osm.xml"):
        return "osm"
    if name.endswith(".building.yaml"):
        return "rmf"
    if name.endswith((".yaml", ".yml")):
        return "robopost"
    raise MapFormatError(str(path), "", "unknown map file type (expected .yaml, .building.yaml or .osm)")


def load_map(path: str | os.PathLike[str]) -> Site:
    """Load any supported map file: robopost YAML, Open-RMF building.yaml or OpenStreetMap .osm."""
    kind = map_kind(path)
    if kind == "osm":
        from maps.importers.osm import import_osm

        return import_osm(path)
    if kind == "rmf":
        from maps.importers.rmf import import_rmf

        return import_rmf(path)
    return load_site(path)
