"""The orchestrator's composition root: ``create_app(settings)`` builds the FastAPI app from one settings
object; ``run(settings)`` serves it with uvicorn.

Nothing happens on import. Resources are opened by the app's lifespan and kept in ``app.state``:

    app.state.settings     the settings the app was built from
    app.state.clock        the clock every part takes time from (``RealClock`` unless given)
    app.state.engine       the store's engine (``settings.database.url``), migrated to the newest schema
    app.state.sessions     its session factory
    app.state.site         the campus (``maps.io.load_map(settings.campus.map)``)
    app.state.site_record  the campus as registered in the store
    app.state.map_geojson  encoded ``GET /v1/map`` bodies, per coordinate system, built on demand
    app.state.fleet        the VDA 5050 fleet master over ``settings.mqtt`` (``None`` unless
                           ``settings.fleet.enabled``)
    app.state.services     what the issue-6 routers share (``orchestrator.api.services.Services``:
                           keys, cipher, signature verifier, pickup codes, dispatcher, outbox
                           worker, ...)
    app.state.background   the outbox worker and the daily retention purge, tasks on the app's clock
                           (``orchestrator.api.delivery.Background``); stopped before the engine closes
    app.state.operations   the live dispatch loop (``orchestrator.api.live_operations.LiveDispatch``;
                           ``None`` unless ``settings.operations.enabled``); stopped first

A campus map that cannot be loaded stops the start-up with its one-line ``MapError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from interfaces.clock import Clock, RealClock, ScaledClock
from interfaces.tasks import cancel_and_wait
from maps.io import load_map
from maps.model import Site
from orchestrator.api.carts import carts_router
from orchestrator.api.console import console_files, console_router
from orchestrator.api.console_live import console_live_router
from orchestrator.api.control import control_router
from orchestrator.api.delivery import start_background
from orchestrator.api.fleet import fleet_router
from orchestrator.api.intake import intake_router
from orchestrator.api.map import map_router
from orchestrator.api.metrics import install_metrics, metrics_router
from orchestrator.api.operators import operators_router
from orchestrator.api.partner import partner_router
from orchestrator.api.problems import install_problem_handlers
from orchestrator.api.services import build_services
from orchestrator.settings import Settings
from orchestrator.store import SiteRecord, SiteRepository, make_engine, session_factory, upgrade


def register_site(engine: Engine, site: Site, clock: Clock) -> SiteRecord:
    """Bring the store's schema up to date and record the campus the app serves."""
    upgrade(engine)
    with session_factory(engine).begin() as session:
        return SiteRepository(session, clock).register(
            site.name, site.origin, label=site.label or "", map_source=site.source or ""
        )


def _lifespan(settings: Settings, clock: Clock) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.clock = clock
        app.state.site = await asyncio.to_thread(load_map, settings.campus.map)
        engine = make_engine(settings.database.url)
        try:
            app.state.site_record = await asyncio.to_thread(register_site, engine, app.state.site, clock)
            app.state.engine = engine
            app.state.sessions = session_factory(engine)
            app.state.services = await asyncio.to_thread(
                build_services, settings, clock, app.state.sessions, app.state.site
            )
            app.state.map_geojson = {}
            app.state.fleet = None
            if settings.fleet.enabled:
                from orchestrator.fleet.service import open_fleet_master

                app.state.fleet = await open_fleet_master(
                    settings, app.state.site, clock, engine=engine, site_id=app.state.site_record.id
                )
            app.state.background = start_background(app.state.services)  # outbox worker, retention
            webhooks = _start_order_webhooks(app, settings, clock)
            app.state.operations = None
            if settings.operations.enabled and app.state.fleet is not None:
                from orchestrator.api.live_operations import open_live_dispatch
                from orchestrator.api.operators import publish_domain_events

                app.state.operations = await open_live_dispatch(
                    settings,
                    app.state.site,
                    app.state.fleet,
                    app.state.services,
                    clock,
                    published=lambda events: publish_domain_events(app, events),
                )
            try:
                yield
            finally:
                if app.state.operations is not None:
                    await app.state.operations.stop()
                if webhooks is not None:
                    await _stop_order_webhooks(app, webhooks)
                await app.state.background.stop()
                if app.state.fleet is not None:
                    await app.state.fleet.stop()
        finally:
            engine.dispose()

    return lifespan


def _start_order_webhooks(app: FastAPI, settings: Settings, clock: Clock) -> asyncio.Task[object] | None:
    """Partners with a callback URL get their orders' state changes POSTed to it (signed)."""
    callbacks = settings.security.partner_callbacks
    if not callbacks:
        app.state.order_webhooks = None
        return None
    import httpx

    from orchestrator.api.partner import OrderWebhooks

    client = httpx.AsyncClient()
    hooks = OrderWebhooks(app.state.sessions, clock, settings.security.partners, callbacks, client)
    app.state.order_webhooks = hooks
    app.state.order_webhooks_client = client
    task: asyncio.Task[object] = asyncio.create_task(hooks.run(), name="order-webhooks")
    return task


async def _stop_order_webhooks(app: FastAPI, task: asyncio.Task[object]) -> None:
    await cancel_and_wait([task])
    await app.state.order_webhooks_client.aclose()


def clock_of(settings: Settings) -> Clock:
    """The clock ``settings.clock`` names: real time, or a ``ScaledClock`` for a simulation or demo."""
    given = settings.clock
    if given.real:
        return RealClock()
    return ScaledClock(given.time_factor, epoch=given.epoch, origin=given.origin)


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The orchestrator's HTTP app: health, map API and the console page (``clock`` defaults to
    ``clock_of(settings)``)."""
    app = FastAPI(title="robopost orchestrator", lifespan=_lifespan(settings, clock or clock_of(settings)))
    install_problem_handlers(app)
    install_metrics(app)
    app.include_router(map_router())
    app.include_router(fleet_router())
    app.include_router(intake_router())
    app.include_router(partner_router())
    app.include_router(carts_router())
    app.include_router(operators_router())
    app.include_router(control_router())
    app.include_router(console_live_router())
    app.include_router(metrics_router())
    app.include_router(console_router())
    app.mount("/console", console_files(), name="console")
    return app


def run(settings: Settings) -> None:
    """Serve the app on ``settings.http.host:port`` until interrupted; robopost's own loggers write to
    stderr at ``settings.log_level`` (uvicorn configures only its own)."""
    import logging

    robopost = logging.getLogger("robopost")
    if not robopost.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        robopost.addHandler(handler)
        robopost.setLevel(settings.log_level)
    log_level = settings.log_level.lower()
    uvicorn.run(
        create_app(settings),
        host=settings.http.host,
        port=settings.http.port,
        log_level=log_level,
        access_log=settings.http.access_log,
        ws="websockets-sansio",
    )
