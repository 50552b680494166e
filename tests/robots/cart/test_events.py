"""The cart's durable event queue and its forwarder: on disk before acted on, sent in order, exactly once
to a receiver that is idempotent on the event id, whatever the link does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from interfaces.clock import VirtualClock
from robots.cart.events import CartEvent, EventQueue, EventStatus, Forwarder, Refused, Unreachable


class Receiver:
    """An idempotent receiver (like the orchestrator's cart routes) whose link can be down."""

    def __init__(self) -> None:
        self.up = False
        self.refuse: set[str] = set()
        self.lose_answer_once: set[str] = set()
        self.taken: dict[str, dict] = {}
        self.attempts = 0
        self.got = asyncio.Event()

    async def send(self, event: CartEvent) -> None:
        self.attempts += 1
        if not self.up:
            raise Unreachable("connection refused")
        if event.body["parcel"] in self.refuse:
            raise Refused("HTTP 409: not this parcel's code")
        self.taken.setdefault(event.event_id, event.body)  # idempotent on the id
        self.got.set()
        if event.event_id in self.lose_answer_once:
            self.lose_answer_once.discard(event.event_id)
            raise Unreachable("read timeout")  # taken, but the answer was lost


def test_events_are_on_disk_and_survive_a_reopen(tmp_path: Path) -> None:
    """Put, close, reopen: the pending events are there, in order, with the same ids (a reboot)."""
    queue = EventQueue(tmp_path / "q.db", "cart_1")
    first = queue.put("pickup", {"parcel": "SF1"}, 1.0)
    second = queue.put("pickup", {"parcel": "SF2"}, 2.0)
    queue.remember("codes", {"x": 1})
    queue.close()
    again = EventQueue(tmp_path / "q.db", "cart_1")
    assert [e.event_id for e in again.pending()] == [first, second]
    assert again.pending()[0].body == {"event_id": first, "parcel": "SF1"}
    assert again.recall("codes") == {"x": 1}
    third = again.put("pickup", {"parcel": "SF3"}, 3.0)
    assert third not in (first, second) and third.startswith("cart_1-")


def test_a_new_file_never_reuses_an_event_id(tmp_path: Path) -> None:
    """A replaced disk starts a new sequence but with another file id, so ids never collide."""
    a = EventQueue(tmp_path / "a.db", "cart_1").put("pickup", {}, 1.0)
    b = EventQueue(tmp_path / "b.db", "cart_1").put("pickup", {}, 1.0)
    assert a != b


async def test_offline_events_are_delivered_once_in_order_when_the_link_returns(tmp_path: Path) -> None:
    """Down: nothing is lost; up: every event arrives once, in order, even when an answer is lost."""
    clock = VirtualClock(start=0.0)
    queue = EventQueue(tmp_path / "q.db", "cart_1")
    receiver = Receiver()
    forwarder = Forwarder(queue, receiver.send, clock, retry_s=1.0, max_retry_s=4.0)
    ids = [queue.put("pickup", {"parcel": f"SF{i}"}, float(i)) for i in range(5)]
    receiver.lose_answer_once.add(ids[2])
    assert not await forwarder.flush()
    assert queue.count() == 5 and not forwarder.online
    receiver.up = True
    assert not await forwarder.flush()  # the lost answer: SF2 stays pending
    assert await forwarder.flush()
    assert list(receiver.taken) == ids
    assert queue.count() == 0 and queue.count(EventStatus.DELIVERED) == 5 and forwarder.online


async def test_a_refused_event_is_kept_aside_and_the_rest_go_on(tmp_path: Path) -> None:
    """A 4xx refusal settles the event as rejected with its reason; later events are still sent."""
    clock = VirtualClock(start=0.0)
    queue = EventQueue(tmp_path / "q.db", "cart_1")
    receiver = Receiver()
    receiver.up = True
    receiver.refuse.add("SF1")
    forwarder = Forwarder(queue, receiver.send, clock)
    queue.put("pickup", {"parcel": "SF1"}, 1.0)
    ok = queue.put("pickup", {"parcel": "SF2"}, 2.0)
    assert await forwarder.flush()
    rejected = queue.events(EventStatus.REJECTED)
    assert [e.body["parcel"] for e in rejected] == ["SF1"] and "not this parcel" in (
        rejected[0].last_error or ""
    )
    assert list(receiver.taken) == [ok]


async def test_the_forwarder_retries_with_back_off_on_the_clock(tmp_path: Path) -> None:
    """While the link is down the forwarder waits retry_s, doubling; once up, the event goes through."""
    clock = VirtualClock(start=0.0)
    queue = EventQueue(tmp_path / "q.db", "cart_1")
    receiver = Receiver()
    forwarder = Forwarder(queue, receiver.send, clock, retry_s=1.0, max_retry_s=4.0)
    task = asyncio.create_task(forwarder.run())
    try:
        queue.put("pickup", {"parcel": "SF1"}, 0.0)
        await clock.settle()
        assert receiver.attempts == 1
        await clock.run_for(0.9)
        assert receiver.attempts == 1  # still waiting out the first back-off
        await clock.run_for(0.1)
        assert receiver.attempts == 2
        await clock.run_for(2.0)
        assert receiver.attempts == 3  # the back-off doubled
        receiver.up = True
        await clock.run_for(4.0)
        assert len(receiver.taken) == 1 and queue.count() == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
