"""The web console's static page: ``GET /`` is ``console/index.html``; its assets are under ``/console/``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
"""Where the console's files live (``orchestrator/console``)."""


def console_router() -> APIRouter:
    """``GET /``: the map page."""
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(CONSOLE_DIR / "index.html", media_type="text/html; charset=utf-8")

    return router


def console_files() -> StaticFiles:
    """The console's assets (scripts, styles), to mount at ``/console``."""
    return StaticFiles(directory=CONSOLE_DIR)
