"""Fleet routes: ``GET /v1/fleet``, the fleet picture.

The fleet master lives in ``app.state.fleet`` (started by the app's lifespan when ``fleet.enabled``);
without it the route answers 503 with a problem+json body.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from orchestrator.api.problems import problem_responses
from orchestrator.fleet import FleetMaster

PROBLEM_MEDIA_TYPE = "application/problem+json"


def fleet_router() -> APIRouter:
    """Routes for the fleet picture."""
    router = APIRouter()

    @router.get("/v1/fleet", tags=["fleet"], response_model=None, responses=problem_responses(503))
    def get_fleet(request: Request) -> dict[str, Any] | JSONResponse:
        """Every robot of the fleet: link, last state summary (position, battery, order, errors), age."""
        master: FleetMaster | None = getattr(request.app.state, "fleet", None)
        if master is None:
            return JSONResponse(
                {
                    "type": "about:blank",
                    "title": "fleet master not running",
                    "status": 503,
                    "detail": "set fleet.enabled and fleet.config in the orchestrator's settings",
                },
                status_code=503,
                media_type=PROBLEM_MEDIA_TYPE,
            )
        return {"robots": [view.to_json() for view in master.views()], "stats": master.stats()}

    return router
