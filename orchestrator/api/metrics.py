"""Prometheus metrics at /metrics."""

from __future__ import annotations

from fastapi import APIRouter


def metrics_router() -> APIRouter:
    """The routes (filled in by issue 6)."""
    return APIRouter()
