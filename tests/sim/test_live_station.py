"""The live station feeder against the real orchestrator app: the start batch, the vans at their times on
a virtual clock, deterministic tracking numbers, an orchestrator that comes up late (real connection
refused over loopback) and a wrong token."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from api_testkit import STATION_TOKEN, make_settings, running_app
from cart_testkit import OrchestratorServer

from interfaces.clock import VirtualClock
from maps.io import load_map
from maps.model import Site
from orchestrator.api.services import Services
from orchestrator.domain import ParcelState
from orchestrator.settings import CampusSettings
from orchestrator.store.domain_repositories import ParcelRepository
from sim.live.station import (
    BatchOutcome,
    StationFeeder,
    StationSection,
    VanSection,
    generate_batch,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CAMPUS = REPO / "maps" / "campuses" / "neijiang.yaml"
ZONE = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2027, 1, 15)
NOON = dt.datetime(2027, 1, 15, 12, 0, tzinfo=ZONE).timestamp()
TIMEOUT = 30.0  # real seconds: a bound, never a wait
LOGGER = "robopost.sim.live.station"


@pytest.fixture(scope="module")
def site() -> Site:
    return load_map(SAMPLE_CAMPUS)


def _local(hour: int, minute: int, day: dt.date = DAY) -> float:
    return dt.datetime.combine(day, dt.time(hour, minute), ZONE).timestamp()


def _section(url: str, **kw: object) -> StationSection:
    values: dict[str, object] = {"url": url, "token": STATION_TOKEN, "seed": 7, "start_parcels": 40}
    values["vans"] = (VanSection(at="06:30", parcels=30), VanSection(at="15:30", parcels=25))
    values.update(kw)
    return StationSection.model_validate(values)


@asynccontextmanager
async def _orchestrator(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """The real app on the sample campus with the station token, an in-memory client on it."""
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'robopost.db'}", campus=CampusSettings(map=SAMPLE_CAMPUS)
    )
    async with running_app(settings, VirtualClock(start=NOON)) as api:
        yield api.http, api.app.state.services


@asynccontextmanager
async def _running(feeder: StationFeeder) -> AsyncIterator[StationFeeder]:
    await feeder.start()
    try:
        yield feeder
    finally:
        await feeder.stop()


async def _until(feeder: StationFeeder, predicate: Callable[[], bool]) -> None:
    await asyncio.wait_for(feeder.wait_until(predicate), TIMEOUT)


def _stored(services: Services, numbers: list[str]) -> dict[str, str | None]:
    """The stored parcels' resolved places by tracking number."""
    with services.sessions.begin() as session:
        repo = ParcelRepository(session, services.clock, services.personal)
        return {tn: repo.get(tn).parcel.destination.place for tn in numbers}


async def test_start_batch_is_imported_at_once_with_valid_destinations(tmp_path: Path, site: Site) -> None:
    """Started at noon, the feeder sends the start batch at once: every parcel created, none refused,
    each stored at the place the simulator drew for it."""
    clock = VirtualClock(start=NOON)
    async with _orchestrator(tmp_path) as (http, services):
        feeder = StationFeeder(_section(str(http.base_url)), clock=clock, site=site, client=http)
        async with _running(feeder):
            await _until(feeder, lambda: len(feeder.outcomes) >= 1)
        expected = feeder.batch(DAY, "S", 40)
        assert feeder.outcomes == [BatchOutcome("2027-01-15 S", 40, 1, created=40)]
        stored = _stored(services, [p.tracking_number for p in expected])
        assert stored == {p.tracking_number: p.place for p in expected}
        assert {p.dorm is not None for p in expected} == {True, False}  # dorm stops and office rooms


async def test_vans_arrive_at_their_times_and_past_ones_are_skipped(tmp_path: Path, site: Site) -> None:
    """At noon the 06:30 van is past: the next batch is the 15:30 van (V2) at 15:30, then the next
    day's 06:30 van (V1); nothing is sent in between."""
    clock = VirtualClock(start=NOON)
    async with _orchestrator(tmp_path) as (http, services):
        feeder = StationFeeder(_section(str(http.base_url)), clock=clock, site=site, client=http)
        async with _running(feeder):
            await _until(feeder, lambda: len(feeder.outcomes) >= 1)
            assert clock.next_wakeup() == pytest.approx(_local(15, 30))
            await clock.run_until(_local(15, 29))
            assert len(feeder.outcomes) == 1
            await clock.run_until(_local(15, 30))
            await _until(feeder, lambda: len(feeder.outcomes) >= 2)
            tomorrow = DAY + dt.timedelta(days=1)
            assert clock.next_wakeup() == pytest.approx(_local(6, 30, tomorrow))
            await clock.run_until(_local(6, 30, tomorrow))
            await _until(feeder, lambda: len(feeder.outcomes) >= 3)
        assert [(o.label, o.created, o.refused) for o in feeder.outcomes] == [
            ("2027-01-15 S", 40, 0),
            ("2027-01-15 V2", 25, 0),
            ("2027-01-16 V1", 30, 0),
        ]
        van = feeder.batch(tomorrow, "V1", 30)
        assert _stored(services, [van[0].tracking_number, van[-1].tracking_number])


def test_batches_are_deterministic_and_numbers_unique(site: Site) -> None:
    """Same seed, day and batch → the same parcels; other batches and days → other tracking numbers."""
    first = generate_batch(site, seed=3, day=DAY, batch="V1", count=60)
    assert first == generate_batch(site, seed=3, day=DAY, batch="V1", count=60)
    assert first != generate_batch(site, seed=4, day=DAY, batch="V1", count=60)
    assert first[0].tracking_number == "RP-20270115-V1-00001"
    numbers = [
        p.tracking_number
        for day in (DAY, DAY + dt.timedelta(days=1))
        for name in ("S", "V1", "V2")
        for p in generate_batch(site, seed=3, day=day, batch=name, count=60)
    ]
    assert len(set(numbers)) == len(numbers) == 360


async def _first_outcome(http: httpx.AsyncClient, site: Site) -> BatchOutcome:
    """The start batch's outcome of a fresh feeder at noon (seed 7)."""
    feeder = StationFeeder(
        _section(str(http.base_url)), clock=VirtualClock(start=NOON), site=site, client=http
    )
    async with _running(feeder):
        await _until(feeder, lambda: len(feeder.outcomes) >= 1)
    return feeder.outcomes[0]


async def test_restart_resends_the_same_parcels_as_duplicates(tmp_path: Path, site: Site) -> None:
    """A second feeder with the same seed on the same day (a restarted process) sends the same
    tracking numbers: the import reports all of them as duplicates."""
    async with _orchestrator(tmp_path) as (http, _services):
        outcomes = [await _first_outcome(http, site) for _ in range(2)]
    assert (outcomes[0].created, outcomes[0].duplicate) == (40, 0)
    assert (outcomes[1].created, outcomes[1].duplicate, outcomes[1].refused) == (0, 40, 0)


async def test_orchestrator_down_then_up_gets_the_batch(tmp_path: Path, site: Site) -> None:
    """Connection refused: the feeder backs off on its clock (5 s, then 10 s), doing nothing in
    between; once the orchestrator listens, the next retry delivers the batch."""
    server = OrchestratorServer(tmp_path)
    clock = VirtualClock(start=NOON)
    feeder = StationFeeder(_section(server.base_url, retry_min_s=5.0), clock=clock, site=site)
    try:
        async with _running(feeder):
            await _until(feeder, lambda: feeder.failed_attempts >= 1)
            assert clock.next_wakeup() == pytest.approx(NOON + 5.0)
            await clock.run_for(5.0)
            await _until(feeder, lambda: feeder.failed_attempts >= 2)
            assert clock.next_wakeup() == pytest.approx(NOON + 15.0)  # doubled
            assert feeder.outcomes == []
            await server.start()
            await clock.run_for(10.0)
            await _until(feeder, lambda: len(feeder.outcomes) >= 1)
        assert feeder.outcomes == [BatchOutcome("2027-01-15 S", 40, 3, created=40)]
        assert server.state("RP-20270115-S-00040") is ParcelState.RECEIVED
    finally:
        await server.stop()


async def test_wrong_token_is_one_error_and_no_retry(
    tmp_path: Path, site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """A 401 is logged once as an error with the problem's detail; the feeder does not retry: its next
    wake-up is the next van."""
    clock = VirtualClock(start=NOON)
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with _orchestrator(tmp_path) as (http, _services):
        feeder = StationFeeder(
            _section(str(http.base_url), token="not-the-token"), clock=clock, site=site, client=http
        )
        async with _running(feeder):
            await _until(feeder, lambda: len(feeder.outcomes) >= 1)
            assert clock.next_wakeup() == pytest.approx(_local(15, 30))
        outcome = feeder.outcomes[0]
        assert (outcome.imported, outcome.attempts, feeder.failed_attempts) == (False, 1, 0)
        assert outcome.error is not None and "401" in outcome.error and "not valid" in outcome.error
    errors = [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "not-the-token" not in caplog.text


def test_section_validation() -> None:
    """The section refuses bad values with one clear sentence; defaults are the scenario's two vans."""
    section = StationSection.model_validate({"token": "s3cret-token"})
    assert [(v.at, v.parcels) for v in section.vans] == [("06:30", 385), ("15:30", 315)]
    assert "s3cret" not in repr(section)
    for bad in (
        {"token": "t", "time_zone": "Mars/Olympus"},
        {"token": "t", "vans": [{"at": "25:00", "parcels": 3}]},
        {"token": "t", "vans": [{"at": "06:30", "parcels": 3}, {"at": "6:30", "parcels": 1}]},
        {"token": "t", "prefix": "rp-1"},
        {"token": "t", "extra": 1},
        {"token": ""},
    ):
        with pytest.raises(ValueError):
            StationSection.model_validate(bad)
