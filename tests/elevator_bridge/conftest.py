"""Fixtures of the bridge tests (defined in ``tests/lift_testkit.py``)."""

from lift_testkit import make_rig, rig  # noqa: F401  (fixtures)
