"""The notification outbox table (issue 6)."""

from __future__ import annotations
