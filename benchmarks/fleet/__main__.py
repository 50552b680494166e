"""``python -m benchmarks.fleet --robots N --seconds S [--processes K] [--json OUT]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.fleet.bench import run_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--robots", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = run_bench(
        args.robots, args.seconds, processes=args.processes, warmup_s=args.warmup, progress=print
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
