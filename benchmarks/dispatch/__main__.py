"""``python -m benchmarks.dispatch --suite vrptw|pdptw --instances DIR --bks FILE ...``: as ``robopost bench
dispatch``."""

from __future__ import annotations

import sys

from launch.cli import bench_app

if __name__ == "__main__":
    bench_app(["dispatch", *sys.argv[1:]], prog_name="python -m benchmarks.dispatch")
