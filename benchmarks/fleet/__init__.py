"""Fleet benchmark: N lightweight VDA 5050 robots at 2 Hz into the fleet master's picture.

Run ``robopost bench fleet --robots 500 --seconds 20 [--json OUT]`` (from a source checkout) or
``.venv/bin/python -m benchmarks.fleet --robots 500 --seconds 20``. See ``bench.py`` for what is
measured and ``robots.py`` for the robots.
"""

from benchmarks.fleet.bench import run_bench

__all__ = ["run_bench"]
