"""The outbox table on SQLite and PostgreSQL: encrypted, idempotent, listable, cancellable, purgeable."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest
from notify_testkit import PHONE, at
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from interfaces.clock import VirtualClock
from orchestrator.notify.errors import OutboxEntryNotFoundError, OutboxStateError
from orchestrator.notify.messages import (
    Message,
    MessageKind,
    cart_at_stop,
    pickup_cancels,
    reminder_notice,
    window_delivery_notices,
    withdrawal_cancels,
)
from orchestrator.notify.outbox import Outbox, OutboxEntry, OutboxStatus, RetryPolicy
from orchestrator.notify.providers import ProviderResult
from orchestrator.security.crypto import PersonalDataCipher
from orchestrator.store.errors import ConflictError, NotFoundError
from orchestrator.store.notify_tables import OutboxRow

CODE = "042917"
POLICY = RetryPolicy(max_attempts=3, backoff_s=5.0)


def _message(ref: str = "p17/w3", phone: str = PHONE) -> Message:
    return cart_at_stop(phone, CODE, "Dorm 3", at(3600), ref=ref)


def test_enqueue_stores_phone_and_text_encrypted(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """The phone and the text (with the pickup code) are stored only encrypted; operators get the
    masked phone and the redacted text; the entry waits to go out now."""
    with sessions.begin() as session:
        entry = Outbox(session, cipher, clock).enqueue(_message())
    assert entry.status is OutboxStatus.PENDING and entry.attempts == 0
    assert entry.kind is MessageKind.SMS and entry.dedupe_key == "cart_at_stop/p17/w3"
    assert entry.to_masked == "138****1234"
    assert CODE not in entry.text_masked and "******" in entry.text_masked
    assert entry.next_attempt_at == entry.created_at == at(0) and entry.sent_at is None
    with sessions() as session:
        row = session.get(OutboxRow, entry.id)
        assert row is not None
        assert PHONE.encode() not in row.to_enc and CODE.encode() not in row.text_enc
        assert "取件码".encode() not in row.text_enc
        assert cipher.decrypt(row.to_enc, "outbox.to/cart_at_stop/p17/w3") == PHONE


def test_enqueue_is_idempotent_on_the_dedupe_key(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """Enqueueing under a key that exists returns the existing entry, unchanged, even after it went out."""
    with sessions.begin() as session:
        first = Outbox(session, cipher, clock).enqueue(_message())
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        again = outbox.enqueue(_message())
        other_text = outbox.enqueue(cart_at_stop(PHONE, "999999", "Gym", at(60), ref="p17/w3"), at(500))
    assert again == first and other_text == first
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        [claim] = outbox.claim_due(limit=10, lease_s=60, max_attempts=3)
        outbox.record(claim, ProviderResult.sent(), POLICY)
    with sessions.begin() as session:
        after_sending = Outbox(session, cipher, clock).enqueue(_message())
        count = session.scalar(select(func.count()).select_from(OutboxRow))
    assert after_sending.id == first.id and after_sending.status is OutboxStatus.SENT and count == 1


def test_enqueue_racing_another_transaction_keeps_one_row(
    sessions: sessionmaker[Session],
    cipher: PersonalDataCipher,
    clock: VirtualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the key appears between the check and the insert (another writer), the unique rule wins:
    the other writer's entry is returned and the caller's transaction stays usable."""
    with sessions.begin() as session:
        winner = Outbox(session, cipher, clock).enqueue(_message())
    real_by_key = Outbox._by_key
    blind = iter([True])
    monkeypatch.setattr(
        Outbox, "_by_key", lambda self, key: None if next(blind, False) else real_by_key(self, key)
    )
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        assert outbox.enqueue(_message()).id == winner.id
        assert outbox.enqueue(_message("p18/w3")).id != winner.id  # the transaction goes on
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxRow)) == 2


def test_enqueue_later_and_refuse_naive_times(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """``not_before`` sets when the entry falls due; it is not claimed before; naive times are refused."""
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        entry = outbox.enqueue(_message(), at(900))
        assert entry.next_attempt_at == at(900)
        assert outbox.next_due() == at(900)
        assert outbox.claim_due(limit=10, lease_s=60, max_attempts=3) == []
        with pytest.raises(ValueError, match="no time zone"):
            outbox.enqueue(_message("p18/w3"), datetime(2027, 1, 15, 12))


def test_enqueue_all_takes_a_plan(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """A plan's messages are enqueued each at its time."""
    plan = window_delivery_notices(
        PHONE, CODE, "Dorm 3", at(3600), ref="p17/w3", now=at(0), reminder_before_end_s=900
    )
    with sessions.begin() as session:
        entries = Outbox(session, cipher, clock).enqueue_all(plan)
    assert [e.next_attempt_at for e in entries] == [at(0), at(2700)]


def test_cancel_stops_messages_not_yet_sent(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """After the pickup the reminder is cancelled; the code SMS already sent and unknown keys are
    left alone."""
    plan = window_delivery_notices(
        PHONE, CODE, "Dorm 3", at(3600), ref="p17/w3", now=at(0), reminder_before_end_s=900
    )
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        outbox.enqueue_all(plan)
        [claim] = outbox.claim_due(limit=10, lease_s=60, max_attempts=3)
        outbox.record(claim, ProviderResult.sent(), POLICY)
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        cancelled = outbox.cancel([*pickup_cancels("p17/w3"), plan[0].message.dedupe_key, "unknown/key"])
        assert cancelled == 1
        assert outbox.get_by_key("window_ending/p17/w3").status is OutboxStatus.CANCELLED
        assert outbox.get_by_key("cart_at_stop/p17/w3").status is OutboxStatus.SENT
        assert outbox.cancel([]) == 0
    clock.advance(3600)
    with sessions.begin() as session:
        assert Outbox(session, cipher, clock).claim_due(limit=10, lease_s=60, max_attempts=3) == []


def test_list_pages_newest_first_and_counts_every_status(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """Listing pages backwards by id and filters by status; counts name every status."""
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        ids = [outbox.enqueue(_message(f"p{i}")).id for i in range(5)]
        outbox.cancel(["cart_at_stop/p0"])
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        first_page = outbox.list(limit=2)
        assert [e.id for e in first_page] == ids[:2:-1][:2]
        assert [e.id for e in outbox.list(limit=10, before_id=first_page[-1].id)] == ids[2::-1]
        assert [e.id for e in outbox.list(status="cancelled")] == [ids[0]]
        counts = outbox.counts()
        assert counts[OutboxStatus.PENDING] == 4 and counts[OutboxStatus.CANCELLED] == 1
        assert set(counts) == set(OutboxStatus) and sum(counts.values()) == 5
        with pytest.raises(ValueError, match="limit"):
            outbox.list(limit=0)


def test_retry_is_for_dead_or_retrying_entries_only(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """Retrying a missing entry is 'not found'; a pending or sent one is a conflict; a dead one goes
    back to pending with a fresh set of attempts, its last error kept."""
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        entry = outbox.enqueue(_message())
        with pytest.raises(OutboxEntryNotFoundError, match="does not exist") as missing:
            outbox.retry(entry.id + 100)
        assert isinstance(missing.value, NotFoundError)
        with pytest.raises(OutboxStateError, match="is pending") as pending:
            outbox.retry(entry.id)
        assert isinstance(pending.value, ConflictError)
        [claim] = outbox.claim_due(limit=10, lease_s=60, max_attempts=3)
        outbox.record(claim, ProviderResult.failed("HTTP 400: unknown number"), POLICY)
        clock.advance(30)
        again = outbox.retry(entry.id)
        assert again.status is OutboxStatus.PENDING and again.attempts == 0
        assert again.next_attempt_at == at(30)
        assert again.last_error == "permanent failure: HTTP 400: unknown number"
        [claim] = outbox.claim_due(limit=10, lease_s=60, max_attempts=3)
        outbox.record(claim, ProviderResult.sent(), POLICY)
        with pytest.raises(OutboxStateError, match="is sent"):
            outbox.retry(entry.id)


def test_purge_deletes_finished_entries_before_the_cutoff(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """The retention job removes sent, dead and cancelled entries older than the cutoff, nothing else."""
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        old_sent, old_waiting, old_cancelled = (outbox.enqueue(_message(f"old{i}")) for i in range(3))
        [claim, _] = outbox.claim_due(limit=2, lease_s=60, max_attempts=3)
        outbox.record(claim, ProviderResult.sent(), POLICY)
        outbox.cancel([old_cancelled.dedupe_key])
    clock.advance(86_400)
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        recent = outbox.enqueue(_message("recent"))
        outbox.cancel([recent.dedupe_key])
        assert outbox.purge(at(86_400)) == 2
        remaining = {e.id for e in outbox.list()}
    assert old_sent.id not in remaining and old_cancelled.id not in remaining
    assert remaining == {old_waiting.id, recent.id}


def test_a_claim_hides_the_entry_for_its_lease(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """A claimed entry is not claimed again until its lease runs out; then the late result is dropped."""
    with sessions.begin() as session:
        Outbox(session, cipher, clock).enqueue(_message())
    with sessions.begin() as session:
        [first] = Outbox(session, cipher, clock).claim_due(limit=10, lease_s=60, max_attempts=3)
    assert first.message.to_phone == PHONE and first.message.text.count(CODE) == 2
    assert first.message.redacted_text.count("******") == 2  # secrets survive the round trip
    with sessions.begin() as session:
        assert Outbox(session, cipher, clock).claim_due(limit=10, lease_s=60, max_attempts=3) == []
    clock.advance(60)
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        [second] = outbox.claim_due(limit=10, lease_s=60, max_attempts=3)
        assert second.attempt == 2
        assert outbox.record(first, ProviderResult.sent(), POLICY) is None  # too late: not ours any more
        assert outbox.record(second, ProviderResult.sent(), POLICY) is OutboxStatus.SENT


# PostgreSQL only: SQLite has a single writer, so two claims cannot overlap there at all
@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.integration)], indirect=True
)
def test_concurrent_claims_skip_each_others_rows(
    outbox_engine: Engine, sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """Two workers claiming at the same time on PostgreSQL get different messages (SKIP LOCKED)."""
    assert outbox_engine.dialect.name == "postgresql"
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        for ref in ("a", "b"):
            outbox.enqueue(_message(ref))
    with sessions.begin() as one, sessions.begin() as two:
        first = Outbox(one, cipher, clock).claim_due(limit=1, lease_s=60, max_attempts=3)
        second = Outbox(two, cipher, clock).claim_due(limit=5, lease_s=60, max_attempts=3)
    assert len(first) == 1 and len(second) == 1 and first[0].id != second[0].id


def test_retry_policy_schedule_and_checks() -> None:
    """Delays double from the base, are capped, honour a longer Retry-After; bad settings are refused."""
    policy = RetryPolicy(max_attempts=6, backoff_s=5.0, backoff_cap_s=60.0)
    assert [policy.delay(n) for n in range(1, 7)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert policy.delay(1, retry_after_s=30.0) == 30.0 and policy.delay(3, retry_after_s=1.0) == 20.0
    assert policy.delay(1, retry_after_s=10_000.0) == 60.0 and policy.delay(500) == 60.0
    for kwargs, error in (
        ({"max_attempts": 0}, "max_attempts"),
        ({"backoff_s": 0.0}, "backoff_s"),
        ({"backoff_s": 10.0, "backoff_cap_s": 5.0}, "backoff_cap_s"),
    ):
        with pytest.raises(ValueError, match=error):
            RetryPolicy(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="failures"):
        policy.delay(0)


def test_entries_expose_no_personal_data() -> None:
    """An outbox entry, what operators and the API see, has no field for the phone or the full text."""
    names = {f.name for f in dataclasses.fields(OutboxEntry)}
    assert {"to_masked", "text_masked"} <= names
    assert not names & {"to_phone", "text", "to_enc", "text_enc"}


def test_a_held_message_waits_for_its_release(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """The code SMS enqueued held at loading (the code is known in clear only then) is never claimed
    until released at the stop; releasing again is harmless; the reminder is planned at release."""
    with sessions.begin() as session:
        held = Outbox(session, cipher, clock).enqueue(_message(), hold=True)
    assert held.status is OutboxStatus.HELD
    clock.advance(1800)
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        assert outbox.claim_due(limit=10, lease_s=60, max_attempts=3) == []
        assert outbox.next_due() is None
    clock.advance(600)  # the cart reaches the stop
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        assert outbox.release([held.dedupe_key]) == 1
        assert outbox.release([held.dedupe_key, "unknown/key"]) == 0
        reminder = reminder_notice(
            PHONE, "Dorm 3", at(3600), ref="p17/w3", now=at(2400), reminder_before_end_s=900
        )
        assert reminder is not None and reminder.not_before == at(2700)
        outbox.enqueue(reminder.message, reminder.not_before)
        [claim] = outbox.claim_due(limit=10, lease_s=60, max_attempts=3)
    assert claim.id == held.id and CODE in claim.message.text


def test_release_at_a_later_time_and_withdrawal(
    sessions: sessionmaker[Session], cipher: PersonalDataCipher, clock: VirtualClock
) -> None:
    """A held call can be released for later; a parcel leaving its window cancels every unsent message
    about it, held or planned, and leaves other parcels' messages alone."""
    with sessions.begin() as session:
        outbox = Outbox(session, cipher, clock)
        outbox.enqueue(_message(), hold=True)
        other = outbox.enqueue(_message("p18/w3"), hold=True)
        assert outbox.release([other.dedupe_key], at(300)) == 1
        assert outbox.get(other.id).next_attempt_at == at(300)
        reminder = reminder_notice(
            PHONE, "Dorm 3", at(3600), ref="p17/w3", now=at(0), reminder_before_end_s=900
        )
        assert reminder is not None
        outbox.enqueue(reminder.message, reminder.not_before)
        assert outbox.cancel(withdrawal_cancels("p17/w3")) == 2
        counts = outbox.counts()
    assert counts[OutboxStatus.CANCELLED] == 2 and counts[OutboxStatus.PENDING] == 1
