"""Delivery flows on the real app's services (SQLite and PostgreSQL, virtual clock): codes issued at
loading and stored only as hashes, the held SMS released at the stop, reminders, one use, expiry,
"resend my code", office SMS with the phone-call fallback, returns, and the retention purge.

The app's own outbox worker is stopped here so that each test sends at the virtual times it chooses
(``run_once``); ``test_carts.py`` has the end-to-end test with the worker running.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from delivery_testkit import SAMPLE_CAMPUS, import_parcels, quiet_app
from fastapi import FastAPI
from notify_testkit import T0, inline
from sqlalchemy import select

from interfaces.clock import VirtualClock
from orchestrator.api.delivery import (
    Delivery,
    IssuedCode,
    NoCodeToResend,
    RetentionJob,
    run_retention,
)
from orchestrator.api.services import Services
from orchestrator.app import create_app
from orchestrator.domain import ParcelEvent, ParcelState
from orchestrator.notify import LogProvider, OutboxStatus
from orchestrator.notify.outbox import Outbox, OutboxEntry
from orchestrator.security.codes import Challenge
from orchestrator.settings import CampusSettings, DatabaseSettings, SecuritySettings, Settings
from orchestrator.store.domain_repositories import (
    AuditRepository,
    CodeExpired,
    ParcelRepository,
    PickupCodeRepository,
)
from orchestrator.store.domain_tables import PickupCodeRow
from orchestrator.store.notify_tables import OutboxRow

CART, ROBOT = "cart_1", "robot_7"
WINDOW, STOP, STOP_LABEL = "w-1600", "stop_dorm_1", "1号学生公寓停靠点"
WINDOW_END = T0 + 3600.0
PHONES = ("13812341234", "13900001111", "13700002222")
DAY = 86_400.0
T = TypeVar("T")


@dataclass
class Env:
    """The running app's parts a test needs."""

    app: FastAPI
    services: Services
    clock: VirtualClock

    @property
    def delivery(self) -> Delivery:
        return Delivery.from_services(self.services)

    @property
    def sent(self) -> list[str]:
        """Dedupe keys of the messages the (log) provider sent, in order."""
        provider = self.services.provider
        assert isinstance(provider, LogProvider)
        return [m.dedupe_key for m in provider.messages]

    async def send_due(self) -> int:
        """Let the outbox worker send what is due now; how many went out."""
        return (await self.services.outbox_worker.run_once()).sent

    def entry(self, key: str) -> OutboxEntry:
        with self.services.sessions.begin() as session:
            return Outbox(session, self.services.cipher, self.clock).get_by_key(key)

    def state(self, tracking_number: str) -> ParcelState:
        with self.services.sessions.begin() as session:
            return ParcelRepository(session, self.clock, self.services.personal).get(tracking_number).state


@asynccontextmanager
async def running(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    """The app on a fresh database at ``T0``, its background tasks (outbox worker, retention) stopped."""
    async with quiet_app(database_url, tmp_path, T0) as (app, services, clock):
        yield Env(app, services, clock)


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    """The app on SQLite, then PostgreSQL."""
    async with running(database_url, tmp_path) as started:
        yield started


@pytest.fixture
async def lite(tmp_path: Path) -> AsyncIterator[Env]:
    """The app on SQLite only (for flows whose store work the other tests already run on PostgreSQL)."""
    async with running(f"sqlite:///{tmp_path / 'robopost.db'}", tmp_path) as started:
        yield started


def seed(env: Env, *parcels: tuple[str, str], office: bool = False) -> None:
    """Import parcels ``(tracking number, phone)`` and sort them into ``WINDOW`` at ``STOP``."""
    with env.services.sessions.begin() as session:
        repo = ParcelRepository(session, env.clock, env.services.personal)
        import_parcels(repo, parcels, office=office)
        for tn, _ in parcels:
            repo.transition(tn, ParcelEvent.SORT, window=WINDOW, stop=STOP, office=office)


async def load(env: Env, tn: str, compartment: str, cart: str = CART) -> IssuedCode:
    loaded = await env.delivery.load(tn, cart, compartment, window_end=WINDOW_END)
    assert loaded.code is not None
    return loaded.code


def key(notice: str, code: IssuedCode) -> str:
    return f"{notice}/{code.ref}"


async def test_loading_issues_distinct_codes_stored_only_as_hashes(env: Env) -> None:
    """Each parcel loaded gets a 6-digit code, distinct on the cart in the window; the store holds only
    its keyed hashes (code, code + phone tail) and the SMS waits, held and encrypted."""
    seed(env, ("SF1", PHONES[0]), ("SF2", PHONES[1]), ("SF3", PHONES[2]))
    codes = [await load(env, tn, str(i)) for i, tn in enumerate(("SF1", "SF2", "SF3"), start=1)]
    assert len({c.code for c in codes}) == 3
    assert all(len(c.code) == 6 and c.code.isdigit() for c in codes)
    assert all(c.expires_at == datetime.fromtimestamp(WINDOW_END, UTC) for c in codes)
    book = env.services.codes
    with env.services.sessions.begin() as session:
        rows = session.scalars(select(PickupCodeRow).order_by(PickupCodeRow.id)).all()
        stored = " ".join(f"{r.code_hmac} {r.tail_hmac}" for r in rows)
        outbox = session.scalars(select(OutboxRow)).all()
        clear = " ".join(f"{r.text_masked} {r.to_masked} {r.to_enc!r} {r.text_enc!r}" for r in outbox)
    assert [r.code_hmac for r in rows] == [book.code_hmac(CART, WINDOW, c.code) for c in codes]
    assert rows[0].tail_hmac == book.code_hmac(CART, WINDOW, codes[0].code, PHONES[0][-4:])
    for code in codes:
        assert code.code not in stored and code.code not in clear
        assert env.entry(key("cart_at_stop", code)).status is OutboxStatus.HELD
    assert await env.send_due() == 0 and env.sent == []
    assert "code=" not in repr(codes[0])  # the code never shows in a repr or a log line


async def test_a_code_already_on_the_cart_is_drawn_again(lite: Env) -> None:
    """Two draws of the same digits on one cart and window: the second parcel gets a fresh code."""

    class Scripted(random.Random):
        def __init__(self, draws: list[int]) -> None:
            super().__init__(0)
            self.draws = draws

        def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
            return self.draws.pop(0)

    seed(lite, ("SF1", PHONES[0]), ("SF2", PHONES[1]))
    delivery = Delivery.from_services(lite.services, rng=Scripted([42, 42, 42, 777]))
    first = await delivery.load("SF1", CART, "1", window_end=WINDOW_END)
    second = await delivery.load("SF2", CART, "2", window_end=WINDOW_END)
    assert first.code is not None and second.code is not None
    assert (first.code.code, second.code.code) == ("000042", "000777")


async def test_arrival_releases_the_sms_and_the_reminder_comes_before_the_window_ends(env: Env) -> None:
    """At the stop the held SMS goes out at once; the reminder waits until 15 minutes before the end."""
    seed(env, ("SF1", PHONES[0]))
    code = await load(env, "SF1", "7")
    arrival = await env.delivery.arrive(CART, STOP, WINDOW)
    assert [(p.tracking_number, p.compartment) for p in arrival.parcels] == [("SF1", "7")]
    assert (arrival.released, arrival.reminders) == (1, 1)
    assert env.state("SF1") is ParcelState.AT_STOP
    assert await env.send_due() == 1
    assert env.sent == [key("cart_at_stop", code)]
    provider = env.services.provider
    assert isinstance(provider, LogProvider)
    assert STOP_LABEL in provider.messages[0].text and "17:00" in provider.messages[0].text
    reminder = env.entry(key("window_ending", code))
    assert reminder.next_attempt_at == datetime.fromtimestamp(WINDOW_END - 900, UTC)
    await env.clock.run_until(WINDOW_END - 901)
    assert await env.send_due() == 0
    await env.clock.run_until(WINDOW_END - 900)
    assert await env.send_due() == 1
    assert env.sent[-1] == key("window_ending", code)
    again = await env.delivery.arrive(CART, STOP, WINDOW)
    assert again.parcels == () and again.released == 0


async def test_the_right_code_opens_once_and_cancels_the_reminder(env: Env) -> None:
    """The code opens its compartment once (picked up); the reminder is cancelled; the same code again
    is a wrong code."""
    seed(env, ("SF1", PHONES[0]))
    code = await load(env, "SF1", "7")
    early = await env.delivery.verify(CART, code.code)
    assert early.opened is None  # the cart is not at the stop yet
    await env.delivery.arrive(CART, STOP, WINDOW)
    result = await env.delivery.verify(CART, code.code, PHONES[0][-4:])  # stepped up after the miss
    assert result.opened is not None
    assert (result.opened.compartment, result.opened.state) == ("7", ParcelState.PICKED_UP)
    assert env.entry(key("window_ending", code)).status is OutboxStatus.CANCELLED
    assert env.state("SF1") is ParcelState.PICKED_UP
    twice = await env.delivery.verify(CART, code.code, PHONES[0][-4:])
    assert twice.opened is None and twice.challenge is Challenge.CODE_AND_PHONE_TAIL


async def test_resend_revokes_the_old_code_and_sends_a_new_one(lite: Env) -> None:
    """At the stop, "resend my code" sends a new code at once with a new reminder; the old code and its
    reminder are dead."""
    seed(lite, ("SF1", PHONES[0]))
    old = await load(lite, "SF1", "7")
    await lite.delivery.arrive(CART, STOP, WINDOW)
    await lite.send_due()
    new = await lite.delivery.resend_code("SF1")
    assert new.code != old.code and new.ref != old.ref
    assert lite.entry(key("window_ending", old)).status is OutboxStatus.CANCELLED
    assert lite.entry(key("window_ending", new)).status is OutboxStatus.PENDING
    assert await lite.send_due() == 1
    assert lite.sent[-1] == key("code_resend", new)
    assert (await lite.delivery.verify(CART, old.code)).opened is None
    opened = (await lite.delivery.verify(CART, new.code, PHONES[0][-4:])).opened
    assert opened is not None and opened.tracking_number == "SF1"
    with pytest.raises(NoCodeToResend):
        await lite.delivery.resend_code("SF1")


async def test_resend_before_arrival_holds_the_new_code_until_the_stop(lite: Env) -> None:
    """Before the cart is at the stop the new code's SMS is held too, and released on arrival."""
    seed(lite, ("SF1", PHONES[0]))
    old = await load(lite, "SF1", "7")
    new = await lite.delivery.resend_code("SF1")
    assert lite.entry(key("cart_at_stop", old)).status is OutboxStatus.CANCELLED
    assert lite.entry(key("cart_at_stop", new)).status is OutboxStatus.HELD
    assert await lite.send_due() == 0
    await lite.delivery.arrive(CART, STOP, WINDOW)
    assert await lite.send_due() == 1
    assert lite.sent == [key("cart_at_stop", new)]


async def test_codes_expire_with_the_window(env: Env) -> None:
    """After the window's end a code opens nothing and is no longer synced; a pickup the cart saw
    offline before the end still counts when it is reported later."""
    seed(env, ("SF1", PHONES[0]), ("SF2", PHONES[1]))
    late = await load(env, "SF1", "1")
    offline = await load(env, "SF2", "2")
    await env.delivery.arrive(CART, STOP, WINDOW)
    await env.clock.run_until(WINDOW_END)
    assert (await env.delivery.verify(CART, late.code)).opened is None
    assert (await env.delivery.codes_for(CART)).codes == ()
    book = env.services.codes
    with pytest.raises(CodeExpired):
        await env.delivery.record_pickup(
            CART, "ev-1", "f1", "SF1", "1", book.code_hmac(CART, WINDOW, late.code), at=WINDOW_END + 1
        )
    outcome = await env.delivery.record_pickup(
        CART, "ev-2", "f2", "SF2", "2", book.code_hmac(CART, WINDOW, offline.code), at=WINDOW_END - 60
    )
    assert outcome.state is ParcelState.PICKED_UP
    assert outcome.picked_up_at == datetime.fromtimestamp(WINDOW_END - 60, UTC)
    with pytest.raises(CodeExpired):
        await env.delivery.resend_code("SF1")


async def test_office_delivery_sms_then_the_call_unless_delivered(lite: Env) -> None:
    """An office parcel's code comes with the indoor robot; at the door the SMS goes at once and the
    phone call 5 minutes later — unless the recipient opened the robot first."""
    seed(lite, ("OF1", PHONES[0]), ("OF2", PHONES[1]), office=True)
    codes: dict[str, IssuedCode] = {}
    for tn, compartment in (("OF1", "a"), ("OF2", "b")):
        loaded = await lite.delivery.load(tn, CART, compartment, window_end=WINDOW_END)
        assert loaded.code is None  # no cart code for an office parcel
        with lite.services.sessions.begin() as session:
            ParcelRepository(session, lite.clock, lite.services.personal).transition(tn, ParcelEvent.HAND_OFF)
        codes[tn] = await lite.delivery.load_robot(tn, ROBOT, compartment, wait_until=T0 + 1800)
        assert codes[tn].holder == ROBOT
    assert await lite.send_due() == 0  # held until the robot is at the door
    assert await lite.delivery.robot_at_door("OF1") == 2
    assert await lite.delivery.robot_at_door("OF2") == 2
    assert await lite.send_due() == 2
    assert lite.sent == [key("robot_at_door", codes["OF1"]), key("robot_at_door", codes["OF2"])]
    opened = (await lite.delivery.verify(ROBOT, codes["OF2"].code)).opened
    assert opened is not None and opened.state is ParcelState.DELIVERED
    await lite.clock.run_until(T0 + 300)
    assert await lite.send_due() == 1
    assert lite.sent[-1] == key("office_call", codes["OF1"])
    assert lite.entry(key("office_call", codes["OF2"])).status is OutboxStatus.CANCELLED
    provider = lite.services.provider
    assert isinstance(provider, LogProvider)
    assert provider.messages[-1].kind.value == "call" and "行政楼201办公室" in provider.messages[-1].text


async def test_a_returned_parcel_sends_nothing_more(lite: Env) -> None:
    """A parcel that goes back to the station has its unsent messages cancelled."""
    seed(lite, ("SF1", PHONES[0]))
    code = await load(lite, "SF1", "7")
    record = await lite.delivery.return_to_station("SF1", "cart broke down")
    assert record.state is ParcelState.RETURNED
    assert lite.entry(key("cart_at_stop", code)).status is OutboxStatus.CANCELLED
    with pytest.raises(NoCodeToResend):
        await lite.delivery.resend_code("SF1")


async def test_retention_purges_personal_data_n_days_after_delivery(env: Env) -> None:
    """30 days after delivery the recipient's data and the messages are erased; earlier, nothing is;
    each run is in the audit log."""
    seed(env, ("SF1", PHONES[0]), ("SF2", PHONES[1]))
    code = await load(env, "SF1", "7")
    await load(env, "SF2", "8")
    await env.delivery.arrive(CART, STOP, WINDOW)
    await env.send_due()
    assert (await env.delivery.verify(CART, code.code)).opened is not None
    await env.clock.run_until(T0 + 29 * DAY)
    early = await run_retention(env.services, actor="admin1", role="admin")
    assert (early.parcels, early.outbox) == (0, 0)
    await env.clock.run_until(T0 + 30 * DAY + 1)
    report = await run_retention(env.services, actor="admin1", role="admin")
    assert (report.parcels, report.orders) == (1, 0)
    assert report.outbox == 3  # both SMS sent and SF1's cancelled reminder; SF2's reminder still waits
    with env.services.sessions.begin() as session:
        parcels = ParcelRepository(session, env.clock, env.services.personal)
        purged, kept = parcels.get("SF1"), parcels.get("SF2")
        audit = AuditRepository(session, env.clock).list(action="retention_purge")
    assert purged.recipient.phone == "" and purged.personal_data_purged_at is not None
    assert kept.recipient.phone == "139****1111"
    assert [a.actor for a in audit][:2] == ["admin1", "admin1"]
    assert "1 parcels" in audit[0].reason


async def test_the_retention_job_runs_daily_on_the_clock(lite: Env) -> None:
    """``RetentionJob.run`` purges at once and then once per day of clock time."""

    job = RetentionJob.from_services(lite.services, blocking=inline)
    task = asyncio.create_task(job.run())
    await lite.clock.settle()
    await lite.clock.run_for(2 * DAY)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with lite.services.sessions.begin() as session:
        runs = AuditRepository(session, lite.clock).list(action="retention_purge", actor="system")
    cutoffs = sorted({datetime.fromisoformat(r.entity_id) for r in runs})
    start = datetime.fromtimestamp(T0, UTC) - timedelta(days=30)
    assert cutoffs[-3:] == [start, start + timedelta(days=1), start + timedelta(days=2)]
    assert job.last is not None and job.last.cutoff == cutoffs[-1]


async def test_the_app_runs_the_worker_and_the_retention_job(tmp_path: Path) -> None:
    """The lifespan starts both background tasks and stops them when the app stops."""
    settings = Settings(
        campus=CampusSettings(map=SAMPLE_CAMPUS),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'robopost.db'}"),
        security=SecuritySettings(keys_file=tmp_path / "keys.yaml"),
    )
    app = create_app(settings, VirtualClock(start=T0))
    async with app.router.lifespan_context(app):
        tasks = app.state.background.tasks
        assert set(tasks) == {"outbox-worker", "retention"}
        assert not any(t.done() for t in tasks.values())
    assert all(t.done() for t in tasks.values())


async def test_codes_are_one_per_parcel_and_live_codes_sync(lite: Env) -> None:
    """Issuing again (resend) leaves one live code per parcel; the sync lists exactly the live ones."""
    seed(lite, ("SF1", PHONES[0]), ("SF2", PHONES[1]))
    await load(lite, "SF1", "1")
    await load(lite, "SF2", "2")
    await lite.delivery.resend_code("SF1")
    sync = await lite.delivery.codes_for(CART)
    assert sorted(c.tracking_number for c in sync.codes) == ["SF1", "SF2"]
    assert len(sync.cart_key) == 32 and sync.cart_key == lite.services.codes.cart_key(CART)
    with lite.services.sessions.begin() as session:
        live = PickupCodeRepository(session, lite.clock).live_for_cart(CART)
    assert {c.code_hmac for c in live} == {c.code_hash for c in sync.codes}
