"""robopost sim.day: the fast-mode discrete-event campus simulator and its day report.

- ``scenario``: the scenario YAML (``load_scenario``) and its errors;
- ``engine``: ``simulate_day(scenario)`` — the real dispatcher and operations core against simulated
  robots, lifts, doors, students, customers, vans and faults on a virtual clock;
- ``world``: where every item is; the invariants (``InvariantError``);
- ``kpis``: the day's KPIs and pickup records; ``report``: ``write_report`` (report.md, kpis.json,
  pickups.csv, PNGs); ``compare``: paired what-if comparisons with confidence intervals.
"""
