"""Domain repositories on SQLite and on a real PostgreSQL server: parcels, orders, tasks, pickup codes,
idempotency keys, audit log, users, and the personal-data purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from interfaces.clock import VirtualClock
from orchestrator.domain import IllegalTransition, OrderState, ParcelState, TaskState
from orchestrator.security import DecryptionError, Keys, PersonalDataCipher, mask_name, mask_phone
from orchestrator.store import ConflictError, NotFoundError, session_factory
from orchestrator.store.domain_records import ImportStatus, OrderDraft, ParcelIntake, UserRole
from orchestrator.store.domain_repositories import (
    AuditRepository,
    CodeAlreadyUsed,
    CodeExpired,
    CodeTaken,
    IdempotencyConflict,
    IdempotencyRepository,
    OrderRepository,
    ParcelRepository,
    PersonalData,
    PersonalDataGone,
    PickupCodeRepository,
    TaskRepository,
    UserRepository,
    purge_personal_data,
)
from orchestrator.store.domain_tables import OrderEventRow, OrderRow, ParcelEventRow, ParcelRow

PHONE = "13812341234"


@pytest.fixture
def personal_data() -> PersonalData:
    """The real cipher, lookup hash and masks of orchestrator.security, under fixed test keys."""
    cipher = PersonalDataCipher(Keys({"k1": bytes(range(32))}, "k1", bytes(range(32, 64))))
    return PersonalData(cipher, cipher.hmac_phone, mask_name, mask_phone)


def _intake(tn: str, phone: str = PHONE, **kw: str) -> ParcelIntake:
    fields = {
        "size": "M",
        "recipient_name": "张三",
        "recipient_phone": phone,
        "dorm": "dorm-7",
        "room": "302",
    }
    fields.update(kw)
    return ParcelIntake(tn, **fields)  # type: ignore[arg-type]


def _parcels(session: Session, clock: VirtualClock, pd: PersonalData) -> ParcelRepository:
    return ParcelRepository(session, clock, pd)


def _count(session: Session, table: type) -> int:
    return int(session.scalar(select(func.count()).select_from(table)) or 0)


def _at(clock: VirtualClock) -> datetime:
    return datetime.fromtimestamp(clock.now(), tz=UTC)


# --- Parcels -----------------------------------------------------------------------------------------


def test_import_is_idempotent_on_the_tracking_number(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """New rows are created with a receive event; the same numbers again (or twice in a batch) are
    duplicates pointing at the stored parcel, which stays as it was."""
    parcels = _parcels(session, clock, personal_data)
    first = parcels.import_rows([_intake("SF1"), _intake("SF2"), _intake("SF1", recipient_name="李四")])
    assert [(o.index, o.tracking_number, o.status) for o in first] == [
        (0, "SF1", ImportStatus.CREATED),
        (1, "SF2", ImportStatus.CREATED),
        (2, "SF1", ImportStatus.DUPLICATE),
    ]
    assert first[2].parcel_id == first[0].parcel_id is not None
    assert (first[0].reason, first[2].reason) == (None, "repeats row 0")
    clock.advance(60)
    again = parcels.import_rows([_intake("SF3"), _intake("SF2", dorm="elsewhere")])
    assert [o.status for o in again] == [ImportStatus.CREATED, ImportStatus.DUPLICATE]
    assert (again[1].parcel_id, again[1].reason) == (first[1].parcel_id, "already imported")
    stored = parcels.get("SF2")
    assert stored.parcel.destination.dorm == "dorm-7"  # the duplicate changed nothing
    assert stored.state is ParcelState.RECEIVED and stored.parcel.size.value == "M"
    assert _count(session, ParcelRow) == 3 and _count(session, ParcelEventRow) == 3
    assert [e.kind for e in parcels.events("SF1")] == ["receive"]
    assert parcels.get("SF3").created_at == _at(clock)


def test_import_racing_another_writer_keeps_each_parcel_once(
    session: Session, clock: VirtualClock, personal_data: PersonalData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a number is stored by someone else between the look-up and the insert, the batch falls
    back to row by row: that row is a duplicate, the others are created."""
    parcels = _parcels(session, clock, personal_data)
    parcels.import_rows([_intake("SF2")])
    real = ParcelRepository._ids_of
    calls: list[int] = []

    def first_lookup_misses(self: ParcelRepository, tracking_numbers: object) -> dict[str, int]:
        calls.append(1)
        return {} if len(calls) == 1 else real(self, tracking_numbers)  # type: ignore[arg-type]

    monkeypatch.setattr(ParcelRepository, "_ids_of", first_lookup_misses)
    outcomes = parcels.import_rows([_intake("SF1"), _intake("SF2"), _intake("SF3")])
    assert [o.status for o in outcomes] == [
        ImportStatus.CREATED,
        ImportStatus.DUPLICATE,
        ImportStatus.CREATED,
    ]
    assert len({o.parcel_id for o in outcomes}) == 3 and len(calls) > 1
    assert _count(session, ParcelRow) == 3 and _count(session, ParcelEventRow) == 3


def test_malformed_rows_are_refused_with_a_reason_and_the_rest_kept(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """A bad tracking number, size, phone, name or destination refuses that row only."""
    outcomes = _parcels(session, clock, personal_data).import_rows(
        [
            _intake("SF 1"),
            _intake("SF2", size="XXL"),
            _intake("SF3", phone="12345"),
            _intake("SF4", recipient_name="  "),
            ParcelIntake("SF5", "S", "王五", PHONE),  # no destination
            _intake("SF6"),
        ]
    )
    assert [o.status for o in outcomes] == [ImportStatus.REFUSED] * 5 + [ImportStatus.CREATED]
    reasons = [o.reason or "" for o in outcomes[:5]]
    assert "may hold only letters" in reasons[0]
    assert "size class 'XXL'" in reasons[1]
    assert "not a Chinese mobile number" in reasons[2]
    assert "name must not be empty" in reasons[3]
    assert "either a building or a dorm" in reasons[4]
    assert all(o.parcel_id is None for o in outcomes[:5]) and _count(session, ParcelRow) == 1


def test_personal_data_is_stored_encrypted_masked_and_found_by_phone(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """The row holds no name or phone in clear; records show masks; search by phone finds any spelling."""
    parcels = _parcels(session, clock, personal_data)
    parcels.import_rows([_intake("SF1"), _intake("SF2", phone="13900001111")])
    row = session.scalars(select(ParcelRow).where(ParcelRow.tracking_number == "SF1")).one()
    raw = (row.recipient_name_enc or b"") + (row.recipient_phone_enc or b"")
    assert PHONE.encode() not in raw and "张三".encode() not in raw
    record = parcels.get("SF1")
    assert (record.recipient.name, record.recipient.phone) == ("张*", "138****1234")
    assert [r.tracking_number for r in parcels.search(phone="+86 138-1234-1234")] == ["SF1"]
    contact = parcels.contact("SF1")
    assert (contact.name, contact.phone) == ("张三", PHONE)
    assert PHONE not in repr(contact)


def test_a_blob_moved_to_another_parcel_does_not_decrypt(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """Ciphertexts are bound to their parcel: copying one row's blob into another fails to decrypt."""
    parcels = _parcels(session, clock, personal_data)
    parcels.import_rows([_intake("SF1"), _intake("SF2")])
    rows = {r.tracking_number: r for r in session.scalars(select(ParcelRow))}
    rows["SF2"].recipient_phone_enc = rows["SF1"].recipient_phone_enc
    session.flush()
    with pytest.raises(DecryptionError):
        parcels.contact("SF2")


def test_transition_stores_the_state_and_its_event(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """Each transition updates the parcel and appends exactly one event, in order."""
    parcels = _parcels(session, clock, personal_data)
    parcels.import_rows([_intake("SF1")])
    clock.advance(10)
    parcels.transition("SF1", "sort", window="w1", stop="stop-a")
    record, event = parcels.transition("SF1", "load", cart="cart-01", compartment="7")
    assert (record.state, record.parcel.cart, record.parcel.compartment) == (
        ParcelState.LOADED,
        "cart-01",
        "7",
    )
    assert record.updated_at == _at(clock)
    parcels.transition("SF1", "arrive")
    done, last = parcels.transition("SF1", "pick_up", at=clock.now() + 5)
    assert done.delivered_at == datetime.fromtimestamp(clock.now() + 5, tz=UTC)
    history = parcels.events("SF1")
    assert [e.kind for e in history] == ["receive", "sort", "load", "arrive", "pick_up"]
    assert [e.sequence for e in history] == [1, 2, 3, 4, 5]
    assert history[2] == event and history[-1] == last
    assert [r.tracking_number for r in parcels.search(state="picked_up")] == ["SF1"]


def test_an_illegal_transition_writes_nothing(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """IllegalTransition passes through; neither the state nor the history changes."""
    parcels = _parcels(session, clock, personal_data)
    parcels.import_rows([_intake("SF1")])
    with pytest.raises(IllegalTransition, match="cannot 'deliver' while 'received'"):
        parcels.transition("SF1", "deliver")
    assert parcels.get("SF1").state is ParcelState.RECEIVED
    assert len(parcels.events("SF1")) == 1
    with pytest.raises(NotFoundError, match="parcel 'nope' does not exist"):
        parcels.transition("nope", "sort", window="w", stop="s")


def test_an_exception_in_the_transaction_leaves_neither_state_nor_event(
    migrated: Engine, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """If the caller's transaction fails after a transition, the state and the event are both gone."""
    factory = session_factory(migrated)
    with factory.begin() as session:
        _parcels(session, clock, personal_data).import_rows([_intake("SF1")])
    with pytest.raises(RuntimeError, match="boom"), factory.begin() as session:
        _parcels(session, clock, personal_data).transition("SF1", "sort", window="w1", stop="s")
        raise RuntimeError("boom")
    with factory.begin() as session:
        parcels = _parcels(session, clock, personal_data)
        assert parcels.get("SF1").state is ParcelState.RECEIVED
        assert [e.kind for e in parcels.events("SF1")] == ["receive"]


def test_an_event_that_cannot_be_written_undoes_the_state_change(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """State and event go in one savepoint: when the event insert fails, the parcel keeps its state."""
    parcels = _parcels(session, clock, personal_data)
    parcel_id = parcels.import_rows([_intake("SF1")])[0].parcel_id
    session.execute(
        insert(ParcelEventRow).values(
            parcel_id=parcel_id, sequence=2, kind="x", to_state="sorted", at=_at(clock), data="{}"
        )
    )  # a stray event takes sequence 2
    with pytest.raises(ConflictError):
        parcels.transition("SF1", "sort", window="w1", stop="s")
    assert parcels.get("SF1").state is ParcelState.RECEIVED
    assert parcels.get("SF1").parcel.version == 1


def test_an_exception_during_import_leaves_no_parcel(
    migrated: Engine, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """A batch whose transaction fails stores no parcel and no event; a retry imports it all."""
    factory = session_factory(migrated)
    with pytest.raises(RuntimeError), factory.begin() as session:
        _parcels(session, clock, personal_data).import_rows([_intake("SF1"), _intake("SF2")])
        raise RuntimeError("killed")
    with factory.begin() as session:
        assert _count(session, ParcelRow) == 0 and _count(session, ParcelEventRow) == 0
        outcomes = _parcels(session, clock, personal_data).import_rows([_intake("SF1"), _intake("SF2")])
        assert {o.status for o in outcomes} == {ImportStatus.CREATED}


def test_search_filters_and_pages(session: Session, clock: VirtualClock, personal_data: PersonalData) -> None:
    """search() combines state, window, stop and cart filters and pages by row id."""
    parcels = _parcels(session, clock, personal_data)
    parcels.import_rows([_intake(f"SF{i}") for i in range(5)])
    for i, window in enumerate(["w1", "w1", "w2", "w2"]):
        parcels.transition(f"SF{i}", "sort", window=window, stop=f"stop-{i % 2}")
    parcels.transition("SF0", "load", cart="cart-01", compartment="1")
    assert [r.tracking_number for r in parcels.search(window="w1")] == ["SF0", "SF1"]
    assert [r.tracking_number for r in parcels.search(stop="stop-0", state="sorted")] == ["SF2"]
    assert [r.tracking_number for r in parcels.search(state=["received", "loaded"])] == ["SF0", "SF4"]
    assert [r.tracking_number for r in parcels.search(cart="cart-01")] == ["SF0"]
    page = parcels.search(limit=2)
    assert [r.tracking_number for r in parcels.search(after_id=page[-1].id, limit=2)] == ["SF2", "SF3"]
    with pytest.raises(ValueError, match="'lost' is not a valid ParcelState"):
        parcels.search(state="lost")


def test_unmasking_is_audited_and_needs_a_reason(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """reveal_contact returns the data in clear and writes who, role, reason; no reason, no data."""
    parcels = _parcels(session, clock, personal_data)
    parcels.import_rows([_intake("SF1")])
    with pytest.raises(ValueError, match="reason for unmasking"):
        parcels.reveal_contact("SF1", actor="alice", role="operator", reason=" ")
    contact = parcels.reveal_contact("SF1", actor="alice", role="operator", reason="recipient called")
    assert contact.phone == PHONE
    entries = AuditRepository(session, clock).list(entity="parcel", entity_id="SF1")
    assert [(e.actor, e.role, e.action, e.reason) for e in entries] == [
        ("alice", "operator", "unmask", "recipient called")
    ]


# --- Orders ------------------------------------------------------------------------------------------


def _draft(ref: str = "ref-1", **kw: object) -> OrderDraft:
    fields: dict[str, object] = {
        "partner": "ems", "partner_ref": ref, "kind": "pickup", "place": "dorm-7-302",
        "earliest_at": 1_800_000_600.0, "latest_at": 1_800_003_600.0,
        "contact_name": "Jane", "contact_phone": "13900001111",
    }  # fmt: skip
    fields.update(kw)
    return OrderDraft(**fields)  # type: ignore[arg-type]


def test_order_creation_is_idempotent_per_key(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """The same key returns the stored order; the key with another ref is a conflict; a ref is unique."""
    orders = OrderRepository(session, clock, personal_data, new_id=iter(["ord_a", "ord_b"]).__next__)
    made = orders.create(_draft(), idempotency_key="k1")
    assert made.created and made.record.id == "ord_a" and made.record.state is OrderState.CREATED
    assert made.event is not None and made.event.kind == "create"
    assert (made.record.contact.name, made.record.contact.phone) == ("J***", "139****1111")
    again = orders.create(_draft(), idempotency_key="k1")
    assert not again.created and again.record == made.record and again.event is None
    with pytest.raises(IdempotencyConflict, match="was used for order ref 'ref-1'"):
        orders.create(_draft("ref-2"), idempotency_key="k1")
    with pytest.raises(ConflictError, match="already has an order with ref 'ref-1'"):
        orders.create(_draft(), idempotency_key="k2")
    assert _count(session, OrderRow) == 1 and _count(session, OrderEventRow) == 1
    other = orders.create(_draft("ref-1", partner="sf"), idempotency_key="k1")
    assert other.created and other.record.id == "ord_b"


def test_order_transitions_and_cancel_rule(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """accept stores the ETA; a loaded order cannot be cancelled; the history holds every step."""
    orders = OrderRepository(session, clock, personal_data)
    order_id = orders.create(_draft()).record.id
    record, _ = orders.transition(order_id, "accept", eta=clock.now() + 900)
    assert record.order.eta == clock.now() + 900 and record.state is OrderState.ACCEPTED
    for event, data in [("assign", {"robot": "indoor-1"}), ("arrive", {}), ("load", {})]:
        orders.transition(order_id, event, **data)  # type: ignore[arg-type]
    with pytest.raises(IllegalTransition, match="cannot 'cancel' while 'loaded'"):
        orders.transition(order_id, "cancel", reason="too late")
    record, _ = orders.transition(order_id, "complete")
    assert record.order.finished_at == clock.now()
    assert [e.kind for e in orders.events(order_id)] == [
        "create",
        "accept",
        "assign",
        "arrive",
        "load",
        "complete",
    ]
    assert orders.get(order_id) == record
    assert [r.id for r in orders.search(partner="ems", state="done")] == [order_id]
    assert orders.find_by_ref("ems", "ref-1") == record


def test_an_order_is_not_found_by_another_partner(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """get(partner=...) hides other partners' orders."""
    orders = OrderRepository(session, clock, personal_data)
    order_id = orders.create(_draft()).record.id
    assert orders.get(order_id, partner="ems").id == order_id
    with pytest.raises(NotFoundError, match=f"order '{order_id}' does not exist"):
        orders.get(order_id, partner="sf")


# --- Tasks -------------------------------------------------------------------------------------------


def test_tasks_are_planned_per_robot_sequence_and_move_with_events(
    session: Session, clock: VirtualClock
) -> None:
    """plan stores the leg's links; sequences are unique per robot; transitions append events."""
    tasks = TaskRepository(session, clock)
    assert tasks.next_sequence("cart-01") == 0
    record, _ = tasks.plan(
        "cart-01", 0, "load", "station", window="w1", parcels=["SF1", "SF2"], start_at=clock.now()
    )
    assert record.id == "cart-01/0" and record.task.parcels == ("SF1", "SF2")
    tasks.plan("cart-01", 1, "dwell", "stop-a", window="w1", parcels=["SF1"], orders=["ord_1"])
    assert tasks.next_sequence("cart-01") == 2
    with pytest.raises(ConflictError, match="already has task 1"):
        tasks.plan("cart-01", 1, "dwell", "stop-b")
    tasks.transition("cart-01/0", "release")
    tasks.transition("cart-01/0", "start")
    done, _ = tasks.transition("cart-01/0", "finish")
    assert done.state is TaskState.DONE and done.task.finished_at == clock.now()
    assert [t.id for t in tasks.list(robot="cart-01", state="planned")] == ["cart-01/1"]
    assert tasks.get("cart-01/1").task.orders == ("ord_1",)
    assert [e.kind for e in tasks.events("cart-01/0")] == ["plan", "release", "start", "finish"]


# --- Idempotency keys, audit, users -------------------------------------------------------------------


def test_idempotency_keys_replay_and_conflict(session: Session, clock: VirtualClock) -> None:
    """A stored answer is replayed for the same request; another request with the key is a conflict."""
    keys = IdempotencyRepository(session, clock)
    assert keys.get("ems", "k1", "h1") is None
    stored = keys.put("ems", "k1", "h1", 201, '{"id": "ord_a"}')
    assert keys.get("ems", "k1", "h1") == stored
    assert (stored.status, stored.body, stored.media_type) == (201, '{"id": "ord_a"}', "application/json")
    assert keys.put("ems", "k1", "h1", 500, "later") == stored  # the first answer wins
    with pytest.raises(IdempotencyConflict, match="already used with a different request"):
        keys.get("ems", "k1", "h2")
    with pytest.raises(IdempotencyConflict):
        keys.put("ems", "k1", "h2", 201, "{}")
    assert keys.get("sf", "k1", "h2") is None  # keys are per client
    clock.advance(3600)
    keys.put("sf", "k9", "h", 200, "{}")
    assert keys.purge(_at(clock) - timedelta(minutes=1)) == 1
    assert keys.get("ems", "k1", "h1") is None and keys.get("sf", "k9", "h") is not None


def test_audit_log_lists_newest_first_with_filters(session: Session, clock: VirtualClock) -> None:
    """Entries come back newest first, filtered by actor or action, paged with before_id."""
    audit = AuditRepository(session, clock)
    for i, action in enumerate(["login", "unmask", "cancel"]):
        clock.advance(1)
        audit.append(actor="bob" if i else "alice", role="operator", action=action, entity="parcel",
                     entity_id=f"SF{i}", reason="why")  # fmt: skip
    entries = audit.list()
    assert [e.action for e in entries] == ["cancel", "unmask", "login"]
    assert entries[0].at == _at(clock)
    assert [e.action for e in audit.list(actor="bob")] == ["cancel", "unmask"]
    assert [e.action for e in audit.list(before_id=entries[1].id)] == ["login"]
    assert [e.entity_id for e in audit.list(action="unmask")] == ["SF1"]


def test_users(session: Session, clock: VirtualClock) -> None:
    """Usernames are unique; roles are checked; updates keep what is not given."""
    users = UserRepository(session, clock)
    alice = users.add("alice", "$argon2id$v=19$m=65536,t=3,p=4$abc$def", "operator")
    assert users.get_by_username("alice") == alice and alice.role is UserRole.OPERATOR
    assert "argon2" not in repr(alice)
    with pytest.raises(ConflictError, match="username 'alice' is already taken"):
        users.add("alice", "$argon2id$x", "viewer")
    with pytest.raises(ValueError, match="'root' is not a valid UserRole"):
        users.add("bob", "$argon2id$x", "root")
    clock.advance(5)
    changed = users.update(alice.id, role=UserRole.ADMIN, enabled=False)
    assert (changed.role, changed.enabled, changed.password_hash) == (
        UserRole.ADMIN,
        False,
        alice.password_hash,
    )
    assert changed.updated_at == _at(clock) and [u.username for u in users.list()] == ["alice"]
    with pytest.raises(NotFoundError):
        users.get(999)


# --- Pickup codes --------------------------------------------------------------------------------------


def _codes_setup(
    session: Session, clock: VirtualClock, pd: PersonalData, *numbers: str
) -> tuple[PickupCodeRepository, datetime]:
    _parcels(session, clock, pd).import_rows([_intake(n) for n in numbers])
    return PickupCodeRepository(session, clock), _at(clock) + timedelta(hours=2)


def test_a_pickup_code_opens_once(session: Session, clock: VirtualClock, personal_data: PersonalData) -> None:
    """redeem marks the code used; a second use fails with CodeAlreadyUsed, in a new session too."""
    codes, window_end = _codes_setup(session, clock, personal_data, "SF1")
    issued = codes.issue("SF1", "cart-01", "w1", "hash-a", window_end, tail_hmac="tail-a")
    assert issued.live and issued.tracking_number == "SF1"
    assert [c.code_hmac for c in codes.live_for_cart("cart-01", "w1")] == ["hash-a"]
    clock.advance(30)
    used = codes.redeem("cart-01", "w1", "hash-a")
    assert used.used_at == _at(clock) and not used.live
    with pytest.raises(CodeAlreadyUsed, match="already used"):
        codes.redeem("cart-01", "w1", "hash-a")
    with pytest.raises(CodeAlreadyUsed):
        codes.redeem("cart-01", "w1", "tail-a")  # the step-up hash names the same code
    assert codes.live_for_cart("cart-01") == []


def test_a_code_used_in_one_session_fails_in_the_next(
    migrated: Engine, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """Single use holds across transactions (the cart's retry after a commit)."""
    factory = session_factory(migrated)
    with factory.begin() as session:
        codes, end = _codes_setup(session, clock, personal_data, "SF1")
        codes.issue("SF1", "cart-01", "w1", "hash-a", end)
    with factory.begin() as session:
        assert PickupCodeRepository(session, clock).redeem("cart-01", "w1", "hash-a").used_at is not None
    with factory.begin() as session, pytest.raises(CodeAlreadyUsed):
        PickupCodeRepository(session, clock).redeem("cart-01", "w1", "hash-a")


def test_codes_are_unique_per_cart_and_window(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """The same hash twice on one cart in one window is CodeTaken; another window or cart is fine."""
    codes, end = _codes_setup(session, clock, personal_data, "SF1", "SF2")
    codes.issue("SF1", "cart-01", "w1", "hash-a", end)
    with pytest.raises(CodeTaken, match="already taken on cart 'cart-01' in window 'w1'"):
        codes.issue("SF2", "cart-01", "w1", "hash-a", end)
    assert codes.live_for_parcel("SF1") is not None  # the failed issue revoked nothing
    codes.issue("SF2", "cart-01", "w2", "hash-a", end)
    assert codes.hashes_in_use("cart-01", "w1") == frozenset({"hash-a"})
    with pytest.raises(NotFoundError):
        codes.issue("SF404", "cart-01", "w1", "hash-z", end)


def test_resend_replaces_the_code_and_codes_expire(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """A new code revokes the old one (which then opens nothing); after the window a code is expired."""
    codes, end = _codes_setup(session, clock, personal_data, "SF1")
    codes.issue("SF1", "cart-01", "w1", "hash-a", end)
    fresh = codes.issue("SF1", "cart-01", "w1", "hash-b", end)
    assert codes.live_for_parcel("SF1") == fresh
    old = codes.find("cart-01", "w1", "hash-a")
    assert old is not None and old.revoked_at is not None
    with pytest.raises(NotFoundError, match="no live pickup code"):
        codes.redeem("cart-01", "w1", "hash-a")
    with pytest.raises(NotFoundError):
        codes.redeem("cart-01", "w1", "never-issued")
    clock.advance(3 * 3600)
    assert codes.live_for_cart("cart-01") == []
    with pytest.raises(CodeExpired, match="expired with window 'w1'"):
        codes.redeem("cart-01", "w1", "hash-b")


# --- Retention ------------------------------------------------------------------------------------------


def test_purge_erases_personal_data_after_the_retention_period(
    session: Session, clock: VirtualClock, personal_data: PersonalData
) -> None:
    """Parcels delivered and orders finished before the cutoff lose name, phone, masks and lookup hash;
    newer or unfinished ones keep them; a second run purges nothing."""
    parcels = _parcels(session, clock, personal_data)
    orders = OrderRepository(session, clock, personal_data)
    parcels.import_rows([_intake("OLD"), _intake("NEW"), _intake("WAITING")])
    for tn in ("OLD", "NEW"):
        parcels.transition(tn, "sort", window="w1", stop="s")
        parcels.transition(tn, "load", cart="c", compartment=tn)
        parcels.transition(tn, "arrive")
    old_order = orders.create(_draft("old")).record.id
    open_order = orders.create(_draft("open")).record.id
    parcels.transition("OLD", "pick_up")
    orders.transition(old_order, "refuse", reason="no robot")
    clock.advance(40 * 86400)
    parcels.transition("NEW", "pick_up")
    cutoff = _at(clock) - timedelta(days=30)

    counts = purge_personal_data(session, clock, cutoff)
    assert (counts.parcels, counts.orders) == (1, 1)
    old = parcels.get("OLD")
    assert old.personal_data_purged_at == _at(clock)
    assert (old.recipient.name, old.recipient.phone) == ("", "")
    with pytest.raises(PersonalDataGone, match="purged"):
        parcels.contact("OLD")
    with pytest.raises(PersonalDataGone):
        orders.reveal_contact(old_order, actor="alice", role="admin", reason="check")
    assert [r.tracking_number for r in parcels.search(phone=PHONE)] == ["NEW", "WAITING"]
    assert parcels.contact("NEW").phone == PHONE and orders.contact(open_order).name == "Jane"
    assert [e.kind for e in parcels.events("OLD")][-1] == "pick_up"  # the history stays
    assert purge_personal_data(session, clock, cutoff) == counts.__class__(parcels=0, orders=0)
