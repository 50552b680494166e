"""Parcel intake from the station's sorting system (POST /v1/parcels:import)."""

from __future__ import annotations

from fastapi import APIRouter


def intake_router() -> APIRouter:
    """The routes (filled in by issue 6)."""
    return APIRouter()
