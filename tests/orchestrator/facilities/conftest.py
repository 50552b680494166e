"""Fixtures of the facilities client tests: a bridge with fake lifts (``tests/lift_testkit.py``)."""

from lift_testkit import make_rig, rig  # noqa: F401  (fixtures)
