"""The partner API for the mini-program backend (signed requests, idempotent order creation)."""

from __future__ import annotations

from fastapi import APIRouter


def partner_router() -> APIRouter:
    """The routes (filled in by issue 6)."""
    return APIRouter()
