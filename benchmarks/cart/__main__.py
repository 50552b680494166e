"""``python -m benchmarks.cart [--trials N] [--parcels P] [--board-trials M] [--json OUT]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.cart.bench import run_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--parcels", type=int, default=50)
    parser.add_argument("--board-trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    text = json.dumps(run_bench(args.trials, args.parcels, args.board_trials, args.seed), indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
