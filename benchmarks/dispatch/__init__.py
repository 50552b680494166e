"""Dispatch benchmark: the solver on classical VRPTW (Solomon) and PDPTW (Li & Lim) instances.

Run ``robopost bench dispatch --suite vrptw --instances ../shared/data/vrptw/solomon
--bks ../shared/data/vrptw/solomon/bks.json --time-limit 10 [--json OUT] [--limit N]`` (from a source
checkout) or ``.venv/bin/python -m benchmarks.dispatch`` with the same options. See ``bench.py``.
"""

from benchmarks.dispatch.bench import load_instance, run_bench, summarise

__all__ = ["load_instance", "run_bench", "summarise"]
