"""The console API for operators: login, roles, fleet stream, search, unmasking, alarms, audit."""

from __future__ import annotations

from fastapi import APIRouter


def operators_router() -> APIRouter:
    """The routes (filled in by issue 6)."""
    return APIRouter()
