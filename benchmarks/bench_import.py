"""Import time of the real Open-RMF building maps (hotel, office, campus).

Run: ``.venv/bin/python benchmarks/bench_import.py [DIR] [--repeat N]``; DIR defaults to
``../shared/data/maps/rmf``. For each file prints the best and median import time, the time spent
parsing the YAML alone, and the counts of floors, lifts, doors, nodes, edges and places.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from maps.importers.rmf import import_rmf
from maps.model import Site

DEFAULT_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "maps" / "rmf"
FILES = ("hotel", "office", "campus")


def best_and_median(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best and median wall time (s) of ``repeat`` calls of ``run``."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def counts(site: Site) -> str:
    """The site's sizes on one line."""
    return (
        f"floors {len(site.floors)}, lifts {len(site.lifts)}, doors {len(site.doors)}, "
        f"nodes {len(site.nodes)}, edges {len(site.edges)}, places {len(site.places)}"
    )


def main() -> None:
    """Parse the arguments, time each file and print one line per file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR.resolve())
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for name in FILES:
        path = args.dir / f"{name}.building.yaml"
        best, median = best_and_median(lambda p=path: import_rmf(p), args.repeat)
        parse, _ = best_and_median(lambda p=path: yaml.load(p.read_text(encoding="utf-8"), Loader=loader), 3)
        size_kb = path.stat().st_size / 1e3
        print(
            f"{name:<7} {size_kb:6.0f} kB  import best {best * 1000:6.1f} ms, median {median * 1000:6.1f} ms"
            f" (YAML parse {parse * 1000:5.1f} ms)  {counts(import_rmf(path))}"
        )


if __name__ == "__main__":
    main()
