"""Map routes: ``GET /healthz`` and ``GET /v1/map`` (the campus as GeoJSON).

The site lives in ``app.state.site`` (loaded by the app's lifespan); the GeoJSON of each coordinate
system is built on first request and kept in ``app.state.map_geojson`` as encoded bytes.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from maps.export import site_feature_collection
from maps.model import Site

GEOJSON_MEDIA_TYPE = "application/geo+json"

Crs = Literal["enu", "wgs84"]


def current_site(request: Request) -> Site:
    """The campus the app serves (``app.state.site``)."""
    site: Site = request.app.state.site
    return site


def map_geojson(request: Request, crs: Crs) -> bytes:
    """The encoded FeatureCollection of the app's site in ``crs``, built once per coordinate system."""
    cache: dict[str, bytes] = request.app.state.map_geojson
    if crs not in cache:
        collection = site_feature_collection(current_site(request), wgs84=crs == "wgs84")
        cache[crs] = json.dumps(collection, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return cache[crs]


def map_router() -> APIRouter:
    """Routes for the health check and the campus map."""
    router = APIRouter()

    @router.get("/healthz", tags=["health"])
    def healthz(site: Annotated[Site, Depends(current_site)]) -> dict[str, str]:
        """Liveness: the app is up and serves ``site``."""
        return {"status": "ok", "site": site.name}

    @router.get(
        "/v1/map",
        tags=["map"],
        response_class=Response,
        responses={200: {"content": {GEOJSON_MEDIA_TYPE: {}}}},
    )
    def get_map(
        request: Request,
        crs: Annotated[
            Crs, Query(description="enu: local metres (default); wgs84: RFC 7946 lon/lat")
        ] = "enu",
    ) -> Response:
        """The campus as a GeoJSON FeatureCollection (buildings, edges, places, lifts; ``site`` summary)."""
        return Response(map_geojson(request, crs), media_type=GEOJSON_MEDIA_TYPE)

    return router
