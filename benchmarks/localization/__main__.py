"""``python -m benchmarks.localization [--seed N] [--json OUT]``: the localization benchmark."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.localization.bench import format_table, run_bench


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table and the JSON, and write the JSON if asked."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    figures = run_bench(args.seed)
    print(format_table(figures))
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
