"""Southbound lift drivers: one interface (``base.LiftDriver``), one module per kind of equipment."""
