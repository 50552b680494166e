"""Crash safety: the orchestrator, a real uvicorn child process, SIGKILLed during a parcel import and
during order creation, on a SQLite file and on PostgreSQL.

The kill lands at a known point without sleeping: the child runs with ``TEST_ROBOPOST_PAUSE`` and
blocks there after writing a line to a FIFO the test waits on (``orchestrator.api.intake.PausePoint``).
After a restart every accepted row or order exists exactly once, nothing is half-written, and a retry
with the same ``Idempotency-Key`` gets the original answer (or, if the first attempt never committed,
a fresh one, once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_testkit import (
    PARTNER,
    PARTNER_SECRET,
    PHONE,
    STATION_TOKEN,
    PauseSignal,
    ServerProcess,
    sign_request,
    station_headers,
)
from sqlalchemy import create_engine, func, select

from orchestrator.store.domain_tables import (
    IdempotencyKeyRow,
    OrderEventRow,
    OrderRow,
    ParcelEventRow,
    ParcelRow,
)

HEADER = "tracking_number,recipient_name,phone,building,room,dorm,size"
PAUSE = "TEST_ROBOPOST_PAUSE"
FIFO = "TEST_ROBOPOST_PAUSE_FIFO"


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    """A server process (not started) on ``database_url`` with its keys in ``tmp_path``."""
    env = {
        "ROBOPOST_DATABASE__URL": database_url,
        "ROBOPOST_SECURITY__KEYS_FILE": str(tmp_path / "keys.yaml"),
        f"ROBOPOST_SECURITY__PARTNERS__{PARTNER.upper()}": PARTNER_SECRET,
        "ROBOPOST_SECURITY__PARTNERS__STATION": STATION_TOKEN,
        "ROBOPOST_LOG_LEVEL": "WARNING",
        "TEST_ROBOPOST_ROBOTS": "1",
    }
    process = ServerProcess(env, tmp_path / "server.log")
    try:
        yield process
    finally:
        process.close()


def _csv(first: int, last: int) -> bytes:
    """Rows CR{first}..CR{last-1}, alternating dorm stops and offices."""
    rows = [HEADER]
    for i in range(first, last):
        where = f",,DORM{i % 6 + 1}" if i % 2 else "ADM,201,"
        rows.append(f"CR{i:05d},收件人{i},{PHONE},{where},S")
    return ("\n".join(rows) + "\n").encode()


def _import(base_url: str, body: bytes) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=60.0) as http:
        headers = {"Content-Type": "text/csv", **station_headers()}
        return http.post("/v1/parcels:import", content=body, headers=headers)


def _body(ref: str) -> dict[str, Any]:
    """A pickup order promised 10 to 40 minutes from now (a retry sends this same body again)."""
    start = datetime.now(tz=UTC) + timedelta(minutes=10)
    return {
        "kind": "pickup",
        "ref": ref,
        "place": "adm_201",
        "earliest": start.isoformat(),
        "latest": (start + timedelta(minutes=30)).isoformat(),
        "contact": {"name": "张三", "phone": PHONE},
    }


def _order(base_url: str, body: dict[str, Any], key: str) -> httpx.Response:
    """POST the order signed (fresh nonce, current time) with ``Idempotency-Key: key``."""
    with httpx.Client(base_url=base_url, timeout=60.0) as http:
        request = http.build_request("POST", "/v1/orders", json=body, headers={"Idempotency-Key": key})
        return http.send(sign_request(request, timestamp=time.time()))


def _counts(database_url: str) -> dict[str, Any]:
    """Rows in the tables that matter, read without taking SQLite's write lock."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:

            def count(table: Any) -> int:
                return int(conn.scalar(select(func.count()).select_from(table)) or 0)

            events = conn.execute(
                select(OrderRow.partner_ref, func.count(OrderEventRow.id))
                .join(OrderEventRow, OrderEventRow.order_id == OrderRow.id)
                .group_by(OrderRow.partner_ref)
            ).all()
            return {
                "parcels": count(ParcelRow),
                "parcel_events": count(ParcelEventRow),
                "distinct_parcels": int(
                    conn.scalar(select(func.count(func.distinct(ParcelRow.tracking_number)))) or 0
                ),
                "orders": count(OrderRow),
                "order_events": {ref: n for ref, n in events},
                "answers": count(IdempotencyKeyRow),
            }
    finally:
        engine.dispose()


def _killed_during(server: ServerProcess, signal: PauseSignal, send: Callable[[], httpx.Response]) -> str:
    """Send a request that will pause, wait for the pause, SIGKILL the server: the pause line.

    The request itself must fail on the client's side (the connection dies with the process).
    """
    with ThreadPoolExecutor(1) as pool:
        pending: Future[httpx.Response] = pool.submit(send)
        try:
            line = signal.wait(server.alive)
        except AssertionError:
            raise AssertionError(f"no pause; server log:\n{server.log()}") from None
        server.kill()
        with pytest.raises(httpx.TransportError):
            pending.result(timeout=60)
    signal.close()
    return line


def test_kill_during_import_keeps_committed_rows_and_nothing_half_written(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    """A first import commits 500 parcels; a second one of 3,000 (overlapping) is killed after 1,000
    new rows were written: none of them is visible, the 500 are intact; the station's retry imports
    the rest exactly once, and a further retry only finds duplicates."""
    signal = PauseSignal(tmp_path / "import.fifo")
    server.start({PAUSE: "import:1000", FIFO: str(signal.path)})
    first = _import(server.base_url, _csv(0, 500))
    assert first.status_code == 200, server.log()
    assert first.json()["created"] == 500
    line = _killed_during(server, signal, lambda: _import(server.base_url, _csv(0, 3000)))
    assert line.strip() == "paused import 1000"
    assert _counts(database_url) | {"order_events": {}} == {
        "parcels": 500,
        "parcel_events": 500,
        "distinct_parcels": 500,
        "orders": 0,
        "order_events": {},
        "answers": 0,
    }
    server.start()
    retry = _import(server.base_url, _csv(0, 3000)).json()
    assert (retry["created"], retry["duplicate"], retry["refused"]) == (2500, 500, 0)
    again = _import(server.base_url, _csv(0, 3000)).json()
    assert (again["created"], again["duplicate"]) == (0, 3000)
    counts = _counts(database_url)
    assert counts["parcels"] == counts["distinct_parcels"] == counts["parcel_events"] == 3000


def test_kill_during_order_creation_and_before_the_answer(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    """Killed with order 3 written but not committed: it does not exist, and its retry creates it
    once. Killed with order 4 committed but not answered: its retry gets the stored answer. Every
    earlier answer replays byte for byte; every order has exactly its two events."""
    bodies = {ref: _body(ref) for ref in ("o1", "o2", "o3", "o4")}

    def order(ref: str) -> httpx.Response:
        return _order(server.base_url, bodies[ref], f"key-{ref}")

    mid = PauseSignal(tmp_path / "order.fifo")
    server.start({PAUSE: "order:3", FIFO: str(mid.path)})
    answers = {ref: order(ref) for ref in ("o1", "o2")}
    assert [a.status_code for a in answers.values()] == [201, 201], server.log()
    assert _killed_during(server, mid, lambda: order("o3")).strip() == "paused order 3"
    after_first = _counts(database_url)
    assert (after_first["orders"], after_first["order_events"], after_first["answers"]) == (
        2,
        {"o1": 2, "o2": 2},
        2,
    )

    committed = PauseSignal(tmp_path / "committed.fifo")
    server.start({PAUSE: "order-committed:2", FIFO: str(committed.path)})
    answers["o3"] = order("o3")
    assert answers["o3"].status_code == 201
    assert "idempotent-replayed" not in answers["o3"].headers  # the first attempt never committed
    line = _killed_during(server, committed, lambda: order("o4"))
    assert line.strip() == "paused order-committed 2"

    server.start()
    o4 = order("o4")
    assert o4.status_code == 201 and o4.headers["idempotent-replayed"] == "true"
    assert o4.json()["ref"] == "o4" and o4.json()["state"] in ("accepted", "refused")
    assert order("o4").content == o4.content
    for ref, original in answers.items():
        replay = order(ref)
        assert replay.status_code == 201 and replay.content == original.content, ref
        assert replay.headers["idempotent-replayed"] == "true"
    final = _counts(database_url)
    assert final["orders"] == 4 and final["answers"] == 4
    assert final["order_events"] == {"o1": 2, "o2": 2, "o3": 2, "o4": 2}
