"""Import time of the real OpenStreetMap extract, its size and connectivity.

Run: ``.venv/bin/python benchmarks/bench_osm.py [FILE] [--repeat N]`` (default: the UW campus extract).
Prints the best and median import time, node/edge/gate/place counts, what was skipped, and the share
of nodes in the main weakly connected component (all edges) and in the cart profile's main strongly
connected component.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import networkx as nx

from maps.importers.osm import OsmImport, read_osm
from maps.model import Site
from maps.routing import Router

DEFAULT_FILE = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "maps" / "osm" / "uw_campus.osm"
)


def time_import(path: Path, repeat: int) -> tuple[list[float], OsmImport]:
    """Import ``path`` ``repeat`` times; the wall times in seconds and the last result."""
    times: list[float] = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = read_osm(path)
        times.append(time.perf_counter() - start)
    if result is None:
        raise ValueError("repeat must be at least 1")
    return times, result


def main_component_share(site: Site) -> float:
    """The share of nodes in the largest weakly connected component of all edges."""
    g = nx.DiGraph()
    g.add_nodes_from(site.nodes)
    g.add_edges_from((e.a, e.b) for e in site.edges.values())
    return len(max(nx.weakly_connected_components(g), key=len)) / max(1, len(site.nodes))


def cart_component_share(site: Site) -> float:
    """The share of nodes the cart profile can reach both ways within its main component."""
    graph = Router(site, "cart").graph
    return len(max(nx.strongly_connected_components(graph), key=len)) / max(1, len(site.nodes))


def main() -> None:
    """Parse the arguments, run the import and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE.resolve())
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    times, result = time_import(args.file, args.repeat)
    site, stats = result.site, result.stats
    size_mb = args.file.stat().st_size / 1e6
    print(f"file            {args.file.name} ({size_mb:.2f} MB)")
    print(f"import time     best {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms")
    print(f"nodes / edges   {len(site.nodes)} / {len(site.edges)}")
    print(f"gates / places  {len(site.gates)} / {len(site.places)}")
    print(
        f"ways            read {stats.ways_read}, used {stats.ways_used}, dropped {dict(stats.ways_dropped)}"
    )
    print(f"skipped         segments with a missing node {stats.segments_missing_node}, "
          f"unnamed/off-network entrances {stats.entrances_skipped}")  # fmt: skip
    print(f"main component  {main_component_share(site):.1%} of nodes (weak, all edges)")
    print(f"cart component  {cart_component_share(site):.1%} of nodes (strong, cart-usable edges)")


if __name__ == "__main__":
    main()
