"""``GET /metrics``: Prometheus text from the app's own registry: requests by route template, method
and status, latency histogram, parcels/orders/outbox by state, robots online (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from console_testkit import (
    PHONES,
    T0,
    Console,
    console_settings,
    order_draft,
    parcel_rows,
    running_console,
)
from prometheus_client.parser import text_string_to_metric_families

from interfaces.clock import VirtualClock
from orchestrator.notify import Message, Outbox
from orchestrator.settings import Settings
from orchestrator.store.domain_repositories import OrderRepository, ParcelRepository


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings on the test database."""
    return console_settings(database_url, tmp_path)


@pytest.fixture
async def console(settings: Settings) -> AsyncIterator[Console]:
    """The app running on the test database, with a viewer."""
    async with running_console(settings, VirtualClock(start=T0), ["viewer"]) as console:
        yield console


async def _scrape(console: Console) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of GET /metrics by (name, sorted labels)."""
    response = await console.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _seed(console: Console) -> None:
    services = console.app.state.services
    with services.sessions.begin() as session:
        parcels = ParcelRepository(session, services.clock, services.personal)
        parcels.import_rows(parcel_rows())
        parcels.transition("SF1001", "sort", window="w1", stop="s1")
        OrderRepository(session, services.clock, services.personal).create(order_draft())
        Outbox(session, services.cipher, services.clock).enqueue(
            Message("sms", PHONES[0], "取件码 / pickup", "metrics:1"), hold=True
        )


async def test_requests_are_counted_by_route_template_method_and_status(console: Console) -> None:
    """Each answered request counts once under its route's template (not the raw path), method and
    status, and is timed; a path no route matches counts as <unmatched>."""
    headers = await console.bearer("viewer")
    await console.client.get("/v1/console/parcels/SF1", headers=headers)
    await console.client.get("/v1/console/parcels/SF2", headers=headers)
    console.client.cookies.clear()
    await console.client.get("/v1/console/parcels/SF3")
    await console.client.get("/no/such/page")
    samples = await _scrape(console)
    route = "/v1/console/parcels/{tracking_number}"

    def count(status: str, path: str = route, method: str = "GET") -> float:
        key = ("robopost_http_requests_total", (("method", method), ("route", path), ("status", status)))
        return samples.get(key, 0.0)

    assert count("404") == 2 and count("401") == 1
    assert count("404", "<unmatched>") == 1
    assert count("200", "/v1/console/login", "POST") == 1
    assert not any("SF1" in str(labels) for _, labels in samples)
    histogram = ("robopost_http_request_duration_seconds_count", (("method", "GET"), ("route", route)))
    assert samples[histogram] == 3
    assert (
        samples[
            (
                "robopost_http_request_duration_seconds_bucket",
                (("le", "+Inf"), ("method", "GET"), ("route", route)),
            )
        ]
        == 3
    )


async def test_store_counts_by_state_and_robots_online(console: Console) -> None:
    """Parcels, orders and outbox entries are gauged by state when scraped (every state present, zero
    when none); without a fleet master no robot is online."""
    empty = await _scrape(console)
    assert empty[("robopost_parcels", (("state", "received"),))] == 0
    await asyncio.to_thread(_seed, console)
    samples = await _scrape(console)
    assert samples[("robopost_parcels", (("state", "received"),))] == 2
    assert samples[("robopost_parcels", (("state", "sorted"),))] == 1
    assert samples[("robopost_parcels", (("state", "picked_up"),))] == 0
    assert samples[("robopost_orders", (("state", "created"),))] == 1
    assert samples[("robopost_outbox_entries", (("status", "held"),))] == 1
    assert samples[("robopost_outbox_entries", (("status", "dead"),))] == 0
    assert samples[("robopost_robots_online", ())] == 0
    assert samples[("robopost_console_streams", ())] == 0


async def test_each_app_has_its_own_registry(settings: Settings) -> None:
    """Two apps in one process count their own requests (no global registry)."""
    async with running_console(settings, VirtualClock(start=T0), []) as first:
        await first.client.get("/healthz")
        await first.client.get("/healthz")
        async with running_console(settings, VirtualClock(start=T0), []) as second:
            await second.client.get("/healthz")
            key = (
                "robopost_http_requests_total",
                (("method", "GET"), ("route", "/healthz"), ("status", "200")),
            )
            assert (await _scrape(first))[key] == 2
            assert (await _scrape(second))[key] == 1


def test_the_composition_root_installs_the_metrics(tmp_path: Path) -> None:
    """create_app gives the app its registry and request middleware (``install_metrics``)."""
    from orchestrator.api.metrics import AppMetrics
    from orchestrator.app import create_app

    app = create_app(console_settings(f"sqlite:///{tmp_path / 'robopost.db'}", tmp_path))
    assert isinstance(getattr(app.state, "metrics", None), AppMetrics)
    assert any(m.cls.__name__ == "MetricsMiddleware" for m in app.user_middleware)
