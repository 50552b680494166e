"""Prometheus metrics at ``GET /metrics`` (text exposition format 0.0.4), one registry per app.

::

    robopost_http_requests_total{route, method, status}        counter   every HTTP request answered
    robopost_http_request_duration_seconds{route, method}      histogram time to the end of the answer
    robopost_parcels{state}                                    gauge     parcels in each state
    robopost_orders{state}                                     gauge     orders in each state
    robopost_outbox_entries{status}                            gauge     notifications in each status
    robopost_robots_online                                     gauge     robots whose link is ONLINE
    robopost_robots{link}                                      gauge     robots by link state
    robopost_console_streams                                   gauge     open console WebSockets

``route`` is the route's path template (``/v1/console/parcels/{tracking_number}``), never the raw
path, so a scan of random URLs cannot blow up the label set (unmatched paths count as
``<unmatched>``). The store's counts are read when scraped (one ``GROUP BY`` per table, off the event
loop); the robots' from the fleet master, on the loop.

``install_metrics(app)`` adds the request middleware (call it once in the composition root, before the
app starts; a second call does nothing); ``metrics_router()`` serves the page.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.api.problems import status_of
from orchestrator.domain import OrderState, ParcelState
from orchestrator.fleet.picture import Link
from orchestrator.notify import OutboxStatus
from orchestrator.store.domain_tables import OrderRow, ParcelRow
from orchestrator.store.notify_tables import OutboxRow

PROMETHEUS_TEXT = CONTENT_TYPE_PLAIN_0_0_4
UNMATCHED = "<unmatched>"
TEXT = {"schema": {"type": "string"}}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class StoreCollector(Collector):
    """Counts parcels, orders and outbox entries by state when scraped (blocking: scrape off the loop)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One gauge family per table, every known state present (zero when none)."""
        sessions: sessionmaker[Session] | None = getattr(self._app.state, "sessions", None)
        if sessions is None:
            return
        with sessions() as session:
            yield _family(
                session, ParcelRow.state, "robopost_parcels", "Parcels by state.", "state", ParcelState
            )
            yield _family(session, OrderRow.state, "robopost_orders", "Orders by state.", "state", OrderState)
            yield _family(session, OutboxRow.status, "robopost_outbox_entries", "Notifications by status.",
                          "status", OutboxStatus)  # fmt: skip


def _family(session: Session, column: Any, name: str, doc: str, label: str, known: Any) -> GaugeMetricFamily:
    counts = {
        str(value): int(n) for value, n in session.execute(select(column, func.count()).group_by(column))
    }
    family = GaugeMetricFamily(name, doc, labels=[label])
    for value in [str(v) for v in known] + sorted(set(counts) - {str(v) for v in known}):
        family.add_metric([value], counts.get(value, 0))
    return family


class AppMetrics:
    """The metrics of one app, in their own registry."""

    def __init__(self, app: FastAPI) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = PromCounter(
            "robopost_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "robopost_http_request_duration_seconds",
            "Time from receiving an HTTP request to the end of its answer, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.robots_online = Gauge(
            "robopost_robots_online",
            "Robots whose link is ONLINE (0 without a fleet master).",
            registry=self.registry,
        )
        self.robots = Gauge("robopost_robots", "Robots by link state.", ["link"], registry=self.registry)
        self.streams = Gauge("robopost_console_streams", "Open console WebSockets.", registry=self.registry)
        self.registry.register(StoreCollector(app))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def update_live(self, app: FastAPI) -> None:
        """Set the gauges read from the running app (call on the event loop)."""
        master = getattr(app.state, "fleet", None)
        links: Counter[str] = (
            Counter(v.link.value for v in master.views()) if master is not None else Counter()
        )
        for link in Link:
            self.robots.labels(link.value).set(links.get(link.value, 0))
        self.robots_online.set(links.get(Link.ONLINE.value, 0))
        console = getattr(app.state, "console", None)
        self.streams.set(console.hub.subscribers if console is not None else 0)

    def render(self) -> bytes:
        """The exposition text (blocking: the store is read)."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (pure ASGI: streaming untouched)."""

    def __init__(self, app: ASGIApp, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; record its status and duration when the answer is complete."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status, started = 500, False

        async def send_and_watch(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = int(message["status"]), True
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except Exception as exc:  # the outer error handler answers it: count what it will say
            if not started:
                status = status_of(exc) or 500
            raise
        finally:
            self.metrics.observe(_route_of(scope), scope["method"], status, time.perf_counter() - start)


def _route_of(scope: Scope) -> str:
    """The template of the route that handled the request (``<unmatched>`` if none did)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def install_metrics(app: FastAPI) -> AppMetrics:
    """Give ``app`` its metrics registry (``app.state.metrics``) and the request middleware; once only."""
    existing: AppMetrics | None = getattr(app.state, "metrics", None)
    if existing is not None:
        return existing
    metrics = AppMetrics(app)
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return metrics


def metrics_router() -> APIRouter:
    """``GET /metrics``: the app's metrics in the Prometheus text format."""
    router = APIRouter()

    @router.get(
        "/metrics",
        tags=["metrics"],
        response_class=Response,
        responses={200: {"description": "Prometheus text format 0.0.4", "content": {"text/plain": TEXT}}},
    )
    async def metrics(request: Request) -> Response:
        """Request counts and latencies, parcels/orders/outbox by state, robots online."""
        app: FastAPI = request.app
        metrics = getattr(app.state, "metrics", None)
        if metrics is None:  # the composition root did not install them: still serve the store's counts
            metrics = _late_metrics(app)
        metrics.update_live(app)
        body = await asyncio.to_thread(metrics.render)
        return Response(body, media_type=PROMETHEUS_TEXT)

    return router


def _late_metrics(app: FastAPI) -> AppMetrics:
    """Metrics for an app started without ``install_metrics``: the store's and the fleet's counts, but
    no request counting (the middleware cannot be added to a running app)."""
    metrics = AppMetrics(app)
    app.state.metrics = metrics
    return metrics
