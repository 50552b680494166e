"""Travel-time matrix and single-route speed on a map (default: the sample campus).

Run: ``.venv/bin/python benchmarks/bench_routing.py [FILE] [--size 200] [--profile robot] [--repeat 5]``.
Picks ``size`` ends (every named place first, then nodes spread over the map with a fixed seed), then
prints the time to build the router, the best/median time of the size×size matrix and of one route.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path
from typing import cast

import numpy as np

from maps.io import load_map
from maps.routing import Route, Router

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "maps" / "campuses" / "neijiang.yaml"


def pick_ends(router: Router, size: int, seed: int = 7) -> list[str]:
    """Up to ``size`` node ids usable by the router's profile: places first, then random nodes."""
    usable = set(router.graph.nodes)
    ends = [p.node for p in router.site.places.values() if p.node in usable]
    ends = list(dict.fromkeys(ends))[:size]
    rest = sorted(usable - set(ends))
    random.Random(seed).shuffle(rest)
    return ends + rest[: size - len(ends)]


def timed(fn, repeat: int) -> tuple[list[float], object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--profile", default="robot")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    t0 = time.perf_counter()
    site = load_map(args.file)
    load_s = time.perf_counter() - t0
    build, router = timed(lambda: Router(site, args.profile), 3)
    assert isinstance(router, Router)
    ends = pick_ends(router, args.size)
    router.matrix(ends[:1])  # compile the sparse graph once, as a long-lived router does
    mat_times, m = timed(lambda: router.matrix(ends), args.repeat)
    far = np.where(np.isfinite(m), m, -1.0)  # type: ignore[call-overload]
    i, j = np.unravel_index(np.argmax(far), far.shape)
    route_times, out = timed(lambda: router.route(ends[i], ends[j]), args.repeat)
    route = cast(Route, out)
    finite = np.isfinite(m).mean() * 100  # type: ignore[call-overload]
    print(
        f"map            {args.file.name}: {len(site.nodes)} nodes, {len(site.edges)} edges "
        f"(load {load_s:.3f} s)"
    )
    print(
        f"profile        {args.profile}: graph {router.graph.number_of_nodes()} nodes, "
        f"{router.graph.number_of_edges()} arcs; build best {min(build) * 1e3:.1f} ms"
    )
    print(
        f"matrix         {len(ends)}x{len(ends)}: best {min(mat_times) * 1e3:.1f} ms, "
        f"median {statistics.median(mat_times) * 1e3:.1f} ms; {finite:.1f}% pairs reachable"
    )
    print(
        f"longest route  {route.length_m:.0f} m, {route.time_s:.0f} s: best {min(route_times) * 1e3:.2f} ms, "
        f"median {statistics.median(route_times) * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    main()
