"""Test kit of the delivery-flow tests: the real app on a fresh database at ``T0`` with its background
tasks (outbox worker, retention) stopped, so a test sends at the virtual times it chooses, and parcel
import in one call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from notify_testkit import T0

from interfaces.clock import VirtualClock
from orchestrator.api.services import Services
from orchestrator.app import create_app
from orchestrator.settings import CampusSettings, DatabaseSettings, SecuritySettings, Settings
from orchestrator.store.domain_records import ParcelIntake
from orchestrator.store.domain_repositories import ParcelRepository

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CAMPUS = REPO / "maps" / "campuses" / "neijiang.yaml"


@asynccontextmanager
async def quiet_app(
    database_url: str, tmp_path: Path, start: float = T0
) -> AsyncIterator[tuple[FastAPI, Services, VirtualClock]]:
    """The app on the sample campus and ``database_url``, its clock at ``start``, its background tasks
    cancelled: (app, its services, its virtual clock)."""
    settings = Settings(
        campus=CampusSettings(map=SAMPLE_CAMPUS),
        database=DatabaseSettings(url=database_url),
        security=SecuritySettings(keys_file=tmp_path / "keys.yaml", retention_days=30),
    )
    clock = VirtualClock(start=start)
    app = create_app(settings, clock)
    async with app.router.lifespan_context(app):
        for task in app.state.background.tasks.values():
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        yield app, app.state.services, clock


def import_parcels(
    repo: ParcelRepository, parcels: Iterable[tuple[str, str]], *, office: bool = False
) -> None:
    """Import size-S parcels ``(tracking number, phone)`` for 张三: to ADM room 201 (``office``) or
    to DORM1."""
    repo.import_rows(
        [
            ParcelIntake(tn, "S", "张三", phone, building="ADM", room="201", place="adm_201")
            if office
            else ParcelIntake(tn, "S", "张三", phone, dorm="DORM1")
            for tn, phone in parcels
        ]
    )
