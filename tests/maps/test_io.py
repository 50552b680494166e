"""robopost's own map format: exact round trip and one-line errors for broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from maps.errors import MapFormatError
from maps.io import load_map, load_site, map_kind, save_site
from maps.model import Site


def test_save_load_round_trip_is_exact(small_site: Site, tmp_path: Path) -> None:
    """Loading what was saved gives an equal site, and saving that again gives the same bytes."""
    yaml_path, net_path = save_site(small_site, tmp_path / "small.yaml")
    loaded = load_site(yaml_path)
    assert loaded == small_site
    assert loaded.source == str(yaml_path)
    again_yaml, again_net = save_site(loaded, tmp_path / "again" / "small.yaml")
    assert again_yaml.read_bytes() == yaml_path.read_bytes()
    assert again_net.read_bytes() == net_path.read_bytes()


def test_files_are_human_readable(small_site: Site, tmp_path: Path) -> None:
    """The YAML keeps Chinese labels as text and omits defaults; the GeoJSON has one feature per line."""
    yaml_path, net_path = save_site(small_site, tmp_path / "small.yaml")
    text = yaml_path.read_text(encoding="utf-8")
    assert "邮政驿站" in text
    assert "door_open_s" not in text  # the default lift timing is not written
    lines = net_path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(small_site.nodes) + len(small_site.edges) + 2


def _write_broken(tmp_path: Path, site: Site, edit_yaml=None, edit_net=None) -> Path:  # type: ignore[no-untyped-def]
    yaml_path, net_path = save_site(site, tmp_path / "broken.yaml")
    if edit_yaml:
        doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
        edit_yaml(doc)
        yaml_path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    if edit_net:
        doc = json.loads(net_path.read_text(encoding="utf-8"))
        edit_net(doc)
        net_path.write_text(json.dumps(doc), encoding="utf-8")
    return yaml_path


def _del_place_node(d: dict) -> None:
    del d["places"]["office"]["node"]


def _bad_lat(d: dict) -> None:
    d["site"]["origin"]["lat"] = "north"


def _unknown_lift_floor(d: dict) -> None:
    d["lifts"]["LA"]["landings"]["H9"] = "h1"


def _dangling_place(d: dict) -> None:
    d["places"]["office"]["node"] = "ghost"


def _edge_to_missing_node(d: dict) -> None:
    edge = next(f for f in d["features"] if f["properties"]["id"] == "AC")
    edge["properties"]["b"] = "ZZ"


def _edge_width_string(d: dict) -> None:
    edge = next(f for f in d["features"] if f["properties"]["id"] == "AC")
    edge["properties"]["width"] = "wide"


def _node_without_geometry(d: dict) -> None:
    del d["features"][0]["geometry"]


@pytest.mark.parametrize(
    ("edit_yaml", "edit_net", "element", "words"),
    [
        (_del_place_node, None, "places.office.node", "Field required"),
        (_bad_lat, None, "site.origin.lat", "valid number"),
        (_unknown_lift_floor, None, "lifts.LA.landings.H9", "floor 'H9' does not exist"),
        (_dangling_place, None, "places.office.node", "node 'ghost' does not exist"),
        (None, _edge_to_missing_node, "features[", "names node 'ZZ', which does not exist"),
        (None, _edge_width_string, "features[", "valid number"),
        (None, _node_without_geometry, "features[0].geometry", "Field required"),
    ],
)
def test_broken_files_give_one_line_naming_file_and_element(
    small_site: Site,
    tmp_path: Path,
    edit_yaml,
    edit_net,
    element: str,
    words: str,  # type: ignore[no-untyped-def]
) -> None:
    """Each malformed input raises MapFormatError whose one line names the file, the element and why."""
    path = _write_broken(tmp_path, small_site, edit_yaml, edit_net)
    with pytest.raises(MapFormatError) as info:
        load_site(path)
    line = str(info.value)
    assert "\n" not in line
    assert element in line and words in line
    assert "broken." in line  # the yaml or the geojson file is named


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    """A YAML syntax error names the line and column."""
    path = tmp_path / "bad.yaml"
    path.write_text("format: robopost-map/1\nsite: {name: x\n", encoding="utf-8")
    with pytest.raises(MapFormatError, match=r"bad\.yaml: line \d+ column \d+: not valid YAML"):
        load_site(path)


def test_truncated_geojson_and_wrong_format_tag(small_site: Site, tmp_path: Path) -> None:
    """A truncated network file and a file of another format are refused with their names."""
    yaml_path, net_path = save_site(small_site, tmp_path / "t.yaml")
    net_path.write_text(net_path.read_text()[:300], encoding="utf-8")
    with pytest.raises(MapFormatError, match=r"t\.geojson: line \d+ column \d+"):
        load_site(yaml_path)
    yaml_path.write_text("format: other/9\n", encoding="utf-8")
    with pytest.raises(MapFormatError, match="format: expected 'robopost-map/1'"):
        load_site(yaml_path)
    with pytest.raises(MapFormatError, match="cannot read"):
        load_site(tmp_path / "missing.yaml")


def test_map_kind_by_name(tmp_path: Path) -> None:
    """Files are recognised by their names; unknown kinds are refused."""
    assert map_kind("x/hotel.building.yaml") == "rmf"
    assert map_kind("campus.osm") == "osm"
    assert map_kind("neijiang.yaml") == "robopost"
    with pytest.raises(MapFormatError, match="unknown map file type"):
        load_map(tmp_path / "map.png")
