"""The cart API: pickup-code hash sync, pickup events, compartment status, heartbeat (per-cart tokens)."""

from __future__ import annotations

from fastapi import APIRouter


def carts_router() -> APIRouter:
    """The routes (filled in by issue 6)."""
    return APIRouter()
