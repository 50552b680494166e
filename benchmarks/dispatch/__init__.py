"""Dispatch benchmark: the PyVRP adapter on classical VRPTW (Solomon) and PDPTW (Li & Lim) instances.

Run ``robopost bench dispatch --suite vrptw --instances ../shared/data/vrptw/solomon
--bks ../shared/data/vrptw/solomon/bks.json --time-limit 10 [--baseline] [--json OUT] [--limit N]
[--iterations N]`` (from a source checkout) or ``.venv/bin/python -m benchmarks.dispatch`` with the same
options; ``--baseline`` runs OR-Tools' guided local search on every instance too (``pip install -e
'.[bench]'``). See ``bench.py``.
"""

from benchmarks.dispatch.bench import SUITES, load_instance, run_bench, summarise

__all__ = ["SUITES", "load_instance", "run_bench", "summarise"]
