"""Console benchmark (issue 11): the map's frame time in a real browser with N moving robots.

Run ``robopost bench console --robots 200 --seconds 10 [--json OUT]`` (from a source checkout) or
``.venv/bin/python -m benchmarks.console --robots 200 --seconds 10``. See ``bench.py`` for the set-up
and what is measured, ``movers.py`` for the robots and ``probe.js`` for the in-page measurement.
"""

from benchmarks.console.bench import run_bench

__all__ = ["run_bench"]
