"""The outbox worker on SQLite and PostgreSQL: retries with backoff on a virtual clock, dead letters,
at-least-once delivery across a crash, and the ``run()`` loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx
import pytest
from notify_testkit import (
    GATEWAY_SECRET,
    PHONE,
    T0,
    FailingSessions,
    GatewayStub,
    Reply,
    ScriptedProvider,
    at,
    inline,
    make_cipher,
)
from sqlalchemy.orm import Session, sessionmaker

from interfaces.clock import VirtualClock
from orchestrator.notify.messages import Message, cart_at_stop
from orchestrator.notify.outbox import Outbox, OutboxEntry, OutboxStatus, OutboxWorker, RunReport
from orchestrator.notify.providers import Provider, ProviderResult, WebhookProvider
from orchestrator.security.crypto import PersonalDataCipher
from orchestrator.store.errors import StoreError

KEY = "cart_at_stop/p17/w3"


def _message(ref: str = "p17/w3") -> Message:
    return cart_at_stop(PHONE, "042917", "Dorm 3", at(3600), ref=ref)


def _enqueue(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock, **kw: Any
) -> int:
    with sessions.begin() as session:
        return Outbox(session, cipher, clock).enqueue(_message(**kw)).id


def _entry(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock, id_: int
) -> OutboxEntry:
    with sessions.begin() as session:
        return Outbox(session, cipher, clock).get(id_)


def _worker(
    sessions: Any, provider: Provider, cipher: PersonalDataCipher, clock: VirtualClock, **kw: Any
) -> OutboxWorker:
    kw.setdefault("blocking", inline)
    return OutboxWorker(sessions, provider, cipher, clock, **kw)


async def test_retry_then_success_through_a_real_gateway(
    sessions: sessionmaker[Session],
    cipher: PersonalDataCipher,
    clock: VirtualClock,
    gateway: GatewayStub,
    http_client: httpx.AsyncClient,
) -> None:
    """The gateway fails twice (503): the message is retried after 5 s, then 10 s, and then sent; the
    gateway gets the same signed message id each time (database work in worker threads)."""
    gateway.fail(2)
    provider = WebhookProvider(gateway.url, GATEWAY_SECRET, http_client)
    worker = OutboxWorker(sessions, provider, cipher, clock, max_attempts=6, backoff_s=5.0)
    entry_id = _enqueue(sessions, cipher, clock)

    assert await worker.run_once() == RunReport(claimed=1, retrying=1)
    entry = _entry(sessions, cipher, clock, entry_id)
    assert (entry.status, entry.attempts, entry.next_attempt_at) == (OutboxStatus.RETRY, 1, at(5))
    assert entry.last_error == "HTTP 503: gateway busy"
    assert await worker.run_once() == RunReport()  # not due yet
    clock.advance(5)
    assert await worker.run_once() == RunReport(claimed=1, retrying=1)
    assert _entry(sessions, cipher, clock, entry_id).next_attempt_at == at(15)
    clock.advance(10)
    assert await worker.run_once() == RunReport(claimed=1, sent=1)

    entry = _entry(sessions, cipher, clock, entry_id)
    assert (entry.status, entry.attempts, entry.sent_at) == (OutboxStatus.SENT, 3, at(15))
    assert [r.json()["id"] for r in gateway.requests] == [KEY] * 3
    assert all(r.signed for r in gateway.requests)
    assert gateway.delivered == [KEY] and gateway.duplicates == 0


async def test_permanent_failure_is_a_dead_letter_an_operator_can_retry(
    sessions: sessionmaker[Session],
    cipher: PersonalDataCipher,
    clock: VirtualClock,
    gateway: GatewayStub,
    http_client: httpx.AsyncClient,
) -> None:
    """A 4xx refusal makes a dead letter at once, listed with its error; the operator's retry sends it."""
    gateway.then(Reply(status=400, body="number not in service"))
    provider = WebhookProvider(gateway.url, GATEWAY_SECRET, http_client)
    worker = _worker(sessions, provider, cipher, clock)
    entry_id = _enqueue(sessions, cipher, clock)

    assert await worker.run_once() == RunReport(claimed=1, dead=1)
    [dead] = await worker.dead_letters()
    assert dead.id == entry_id and dead.attempts == 1 and dead.to_masked == "138****1234"
    assert dead.last_error == "permanent failure: HTTP 400: number not in service"
    assert (await worker.counts())[OutboxStatus.DEAD] == 1

    retried = await worker.retry(entry_id)
    assert retried.status is OutboxStatus.PENDING and retried.attempts == 0
    assert await worker.run_once() == RunReport(claimed=1, sent=1)
    assert await worker.dead_letters() == []
    assert len(gateway.requests) == 2 and gateway.delivered == [KEY]


async def test_backoff_schedule_on_a_virtual_clock(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """A message failing every time is tried at 0, 5, 15, 35, 75 and 155 s, never earlier, then given up."""
    provider = ScriptedProvider(clock, [ProviderResult.retry("busy")] * 10)
    worker = _worker(sessions, provider, cipher, clock, max_attempts=6, backoff_s=5.0)
    entry_id = _enqueue(sessions, cipher, clock)

    await worker.run_once()
    for _ in range(5):
        due = _entry(sessions, cipher, clock, entry_id).next_attempt_at
        clock.advance(due.timestamp() - clock.now() - 0.5)
        assert await worker.run_once() == RunReport()  # half a second early: nothing
        clock.advance(0.5)
        await worker.run_once()
    assert provider.times == [0, 5, 15, 35, 75, 155]
    entry = _entry(sessions, cipher, clock, entry_id)
    assert entry.status is OutboxStatus.DEAD and entry.attempts == 6
    assert entry.last_error == "busy (gave up after 6 attempts)"
    clock.advance(3600)
    assert await worker.run_once() == RunReport()


async def test_backoff_is_capped_and_honours_retry_after(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """Waits stop growing at the cap; a provider's longer Retry-After is honoured."""
    results = [ProviderResult.retry("slow down", retry_after_s=60.0)] + [ProviderResult.retry("busy")] * 3
    provider = ScriptedProvider(clock, results)
    worker = _worker(sessions, provider, cipher, clock, max_attempts=10, backoff_s=5.0, backoff_cap_s=12.0)
    entry_id = _enqueue(sessions, cipher, clock)
    for _ in range(5):
        await worker.run_once()
        clock.advance(_entry(sessions, cipher, clock, entry_id).next_attempt_at.timestamp() - clock.now())
    assert provider.times == [0, 12, 22, 34, 46]  # 60 s asked, capped at 12; then 10, 12, 12


async def test_crash_between_send_and_record_sends_again_with_the_same_id(
    sessions: sessionmaker[Session],
    cipher: PersonalDataCipher,
    clock: VirtualClock,
    gateway: GatewayStub,
    http_client: httpx.AsyncClient,
) -> None:
    """At least once: the gateway accepted the message but the result was never recorded (the database
    went away). After the lease the message is sent again with the same id, which the gateway drops."""
    provider = WebhookProvider(gateway.url, GATEWAY_SECRET, http_client)
    crashing = _worker(FailingSessions(sessions, fail_on=[2]), provider, cipher, clock, lease_s=120.0)
    entry_id = _enqueue(sessions, cipher, clock)

    with pytest.raises(StoreError, match="the database went away"):
        await crashing.run_once()  # claim (1st transaction) and send worked; recording (2nd) failed
    entry = _entry(sessions, cipher, clock, entry_id)
    assert (entry.status, entry.attempts) == (OutboxStatus.SENDING, 1)
    assert gateway.delivered == [KEY]

    restarted = _worker(sessions, provider, cipher, clock, lease_s=120.0)
    assert await restarted.run_once() == RunReport()  # still leased to the crashed worker
    clock.advance(120)
    assert await restarted.run_once() == RunReport(claimed=1, sent=1)
    assert [r.headers["idempotency-key"] for r in gateway.requests] == [KEY, KEY]
    assert gateway.delivered == [KEY] and gateway.duplicates == 1
    assert _entry(sessions, cipher, clock, entry_id).attempts == 2


async def test_a_message_that_never_finishes_ends_as_a_dead_letter(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """Claims count as attempts: a message whose sending dies every time is given up on after the last."""
    provider = ScriptedProvider(clock)
    worker = _worker(
        FailingSessions(sessions, fail_on=[2, 4]), provider, cipher, clock, max_attempts=2, lease_s=60
    )
    entry_id = _enqueue(sessions, cipher, clock)
    for _ in range(2):
        with pytest.raises(StoreError):
            await worker.run_once()
        clock.advance(60)
    assert await worker.run_once() == RunReport()
    entry = _entry(sessions, cipher, clock, entry_id)
    assert entry.status is OutboxStatus.DEAD and entry.attempts == 2
    assert entry.last_error == "attempt 2 of 2 never finished (process stopped?)"
    assert len(provider.sent) == 2


async def test_a_provider_that_raises_is_retried_and_logged(
    sessions: sessionmaker[Session],
    cipher: PersonalDataCipher,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A provider bug does not lose the message or stop the others: it is recorded and retried."""
    provider = ScriptedProvider(clock, [RuntimeError("boom")])
    worker = _worker(sessions, provider, cipher, clock)
    first = _enqueue(sessions, cipher, clock, ref="a")
    second = _enqueue(sessions, cipher, clock, ref="b")
    with caplog.at_level(logging.ERROR, logger="robopost.notify"):
        assert await worker.run_once() == RunReport(claimed=2, sent=1, retrying=1)
    assert _entry(sessions, cipher, clock, first).last_error == "provider raised RuntimeError: boom"
    assert _entry(sessions, cipher, clock, second).status is OutboxStatus.SENT
    assert "provider raised on outbox entry" in caplog.text


async def test_a_message_that_cannot_be_decrypted_is_a_dead_letter(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """Data under a key this process lacks is not sent (nor retried): it is a dead letter saying why."""
    provider = ScriptedProvider(clock)
    worker = _worker(sessions, provider, make_cipher(), clock)  # other keys than the writer's
    entry_id = _enqueue(sessions, cipher, clock)
    assert await worker.run_once() == RunReport()
    entry = _entry(sessions, cipher, clock, entry_id)
    assert entry.status is OutboxStatus.DEAD
    assert entry.last_error == "stored message cannot be decrypted: DecryptionError"
    assert provider.sent == []


async def test_sends_are_bounded_by_the_batch_size(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """One run claims at most ``batch_size`` messages, oldest due first."""
    provider = ScriptedProvider(clock)
    worker = _worker(sessions, provider, cipher, clock, batch_size=2)
    for ref in ("a", "b", "c"):
        _enqueue(sessions, cipher, clock, ref=ref)
    assert (await worker.run_once()).sent == 2
    assert (await worker.run_once()).sent == 1
    assert [m.dedupe_key for _, m in provider.sent] == ["cart_at_stop/a", "cart_at_stop/b", "cart_at_stop/c"]


async def test_run_sends_when_woken_and_when_due(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """``run()`` sends an enqueued message at once (woken), a later one exactly when it falls due, and
    cancels cleanly; it only waits on the clock."""
    provider = ScriptedProvider(clock)
    worker = _worker(sessions, provider, cipher, clock, poll_s=600.0)
    task = asyncio.create_task(worker.run())
    await clock.settle()
    await worker.enqueue(_message("now"))
    await clock.settle()
    assert provider.times == [0]
    await worker.enqueue(_message("later"), at(30))
    await clock.run_until(T0 + 29)
    assert provider.times == [0]
    await clock.run_until(T0 + 30)
    assert provider.times == [0, 30]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert clock.pending == 0


async def test_run_keeps_going_after_a_database_failure(
    sessions: sessionmaker[Session],
    cipher: PersonalDataCipher,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing database is logged and tried again after ``poll_s``; the message then goes out."""
    _enqueue(sessions, cipher, clock)
    provider = ScriptedProvider(clock)
    worker = _worker(FailingSessions(sessions, fail_on=[1]), provider, cipher, clock, poll_s=10.0)
    with caplog.at_level(logging.ERROR, logger="robopost.notify"):
        task = asyncio.create_task(worker.run())
        await clock.settle()
        assert provider.sent == [] and "the database went away" in caplog.text
        await clock.run_for(10)
    assert provider.times == [10]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_worker_refuses_bad_settings(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """Zero lease, poll, batch or concurrency, or a bad retry policy, are refused when the worker is built."""
    provider = ScriptedProvider(clock)
    for kwargs, error in (
        ({"lease_s": 0.0}, "lease_s"),
        ({"poll_s": -1.0}, "poll_s"),
        ({"batch_size": 0}, "batch_size"),
        ({"concurrency": 0}, "concurrency"),
        ({"max_attempts": 0}, "max_attempts"),
    ):
        with pytest.raises(ValueError, match=error):
            _worker(sessions, provider, cipher, clock, **kwargs)


async def test_many_messages_at_once_in_worker_threads(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """A cart's worth of messages goes out in one run, sent concurrently, their results recorded from
    worker threads without tripping over each other (SQLite allows one writer at a time)."""
    provider = ScriptedProvider(clock)
    worker = OutboxWorker(sessions, provider, cipher, clock, concurrency=8, batch_size=50)
    for i in range(40):
        _enqueue(sessions, cipher, clock, ref=f"p{i}")
    assert await worker.run_once() == RunReport(claimed=40, sent=40)
    assert (await worker.counts())[OutboxStatus.SENT] == 40


async def test_release_wakes_the_running_worker(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """A held message goes out as soon as the worker is told of its release, not at the next poll."""
    provider = ScriptedProvider(clock)
    worker = _worker(sessions, provider, cipher, clock, poll_s=600.0)
    with sessions.begin() as session:
        Outbox(session, cipher, clock).enqueue(_message(), hold=True)
    task = asyncio.create_task(worker.run())
    await clock.run_for(60)
    assert provider.sent == []
    assert await worker.release([KEY]) == 1
    await clock.settle()
    assert provider.times == [60]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
