"""``python -m benchmarks.console --robots N --seconds S [--page auto|console|minimal] [--json OUT]
[--screenshot PNG]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.console.bench import PAGES, run_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--robots", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--page", choices=PAGES, default="auto")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--screenshot", type=Path, default=None, help="a PNG of the page after the window")
    args = parser.parse_args()
    result = run_bench(
        args.robots,
        args.seconds,
        page=args.page,
        warmup_s=args.warmup,
        screenshot=args.screenshot,
        progress=print,
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
