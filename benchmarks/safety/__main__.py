"""``python -m benchmarks.safety [--trials N] [--json OUT]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.safety.bench import run_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    text = json.dumps(run_bench(args.trials, progress=print), indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
