"""Localization benchmarks: ``bench`` (accuracy, consistency, switching and cost; ``robopost bench
localization``) and ``bench_update`` (cost of ``Localizer.process`` alone)."""
