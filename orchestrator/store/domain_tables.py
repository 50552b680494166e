"""Tables of the orchestrator's domain: parcels, orders, tasks, their events, audit, users (issue 6)."""

from __future__ import annotations
