"""The orchestrator's composition root: ``create_app(settings)`` builds the FastAPI app from one settings
object; ``run(settings)`` serves it with uvicorn.

Nothing happens on import. Resources are opened by the app's lifespan and kept in ``app.state``:

    app.state.settings     the settings the app was built from
    app.state.site         the campus (``maps.io.load_map(settings.campus.map)``)
    app.state.map_geojson  encoded ``GET /v1/map`` bodies, per coordinate system, built on demand

A campus map that cannot be loaded stops the start-up with its one-line ``MapError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol

import uvicorn
from fastapi import FastAPI

from maps.io import load_map
from orchestrator.api.console import console_files, console_router
from orchestrator.api.map import map_router


class _Campus(Protocol):
    map: Path


class _Http(Protocol):
    host: str
    port: int


class AppSettings(Protocol):
    """What the app needs of ``orchestrator.settings.Settings``."""

    @property
    def campus(self) -> _Campus: ...

    @property
    def http(self) -> _Http: ...


def _lifespan(settings: AppSettings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.site = await asyncio.to_thread(load_map, settings.campus.map)
        app.state.map_geojson = {}
        yield

    return lifespan


def create_app(settings: AppSettings) -> FastAPI:
    """The orchestrator's HTTP app: health, map API and the console page."""
    app = FastAPI(title="robopost orchestrator", lifespan=_lifespan(settings))
    app.include_router(map_router())
    app.include_router(console_router())
    app.mount("/console", console_files(), name="console")
    return app


def run(settings: AppSettings) -> None:
    """Serve the app on ``settings.http.host:port`` until interrupted."""
    log_level = str(getattr(settings, "log_level", "info")).lower()
    uvicorn.run(create_app(settings), host=settings.http.host, port=settings.http.port, log_level=log_level)
