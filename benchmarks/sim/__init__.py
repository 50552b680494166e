"""Benchmarks of the campus simulator (``python -m benchmarks.sim.day``)."""
