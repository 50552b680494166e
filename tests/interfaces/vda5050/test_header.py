"""HeaderFactory: header ids per topic, timestamps from the clock, the robot's identity and version."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from vda5050_samples import START, sample_order

from interfaces.clock import VirtualClock
from interfaces.vda5050 import (
    Connection,
    ConnectionState,
    HeaderFactory,
    InstantActions,
    Order,
    State,
    TopicKind,
    Vda5050Error,
    Vda5050Model,
    kind_of,
    parse,
    to_bytes,
)


def test_header_ids_increase_per_topic_independently() -> None:
    """Each topic counts its own headerIds from 0, one per message made."""
    factory = HeaderFactory("acme", "cart-01", clock=VirtualClock(start=START))
    ids = [factory.fields(kind)["header_id"] for kind in ("state", "state", "order", "state", "order")]
    assert ids == [0, 1, 0, 2, 1]


def test_timestamp_comes_from_the_clock() -> None:
    """The timestamp is the clock's now() as a UTC datetime, and moves when the clock moves."""
    clock = VirtualClock(start=START)
    factory = HeaderFactory("acme", "cart-01", clock=clock)
    first = factory.make(Connection, connection_state=ConnectionState.ONLINE)
    clock.advance(2.5)
    second = factory.make(Connection, connection_state=ConnectionState.OFFLINE)
    assert first.timestamp == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert (second.timestamp - first.timestamp).total_seconds() == 2.5


def test_make_fills_identity_and_version() -> None:
    """make() sets manufacturer, serial number and the configured version on the message."""
    factory = HeaderFactory("acme", "indoor-07", "2.0.0", clock=VirtualClock(start=START))
    message = factory.make(InstantActions, actions=[])
    assert (message.manufacturer, message.serial_number, message.version) == ("acme", "indoor-07", "2.0.0")


def test_stamp_gives_a_resend_a_new_header_and_the_same_body() -> None:
    """Resending an identical order: stamp() changes headerId/timestamp only."""
    clock = VirtualClock(start=START)
    factory = HeaderFactory("acme", "cart-01", clock=clock)
    order = sample_order(factory)
    clock.advance(1)
    resent = factory.stamp(order)
    assert resent.header_id == order.header_id + 1
    assert resent.timestamp > order.timestamp
    body = {"header_id", "timestamp"}
    assert resent.model_dump(exclude=body) == order.model_dump(exclude=body)


def test_kind_of_knows_every_message_model() -> None:
    """Each message model maps to its topic kind; other models are refused."""
    assert kind_of(Order) is TopicKind.ORDER
    assert kind_of(State) is TopicKind.STATE
    with pytest.raises(Vda5050Error, match="not a VDA 5050 message"):
        kind_of(Vda5050Model)


def test_unsupported_version_is_refused_at_construction() -> None:
    """A factory for a protocol version we do not speak cannot be made."""
    with pytest.raises(Vda5050Error, match=r"not 2\.x"):
        HeaderFactory("acme", "cart-01", "3.0.0", clock=VirtualClock())


def test_sub_millisecond_times_survive_a_json_round_trip() -> None:
    """Timestamps are cut to milliseconds, so a message made at any instant equals its parsed JSON."""
    clock = VirtualClock(start=START + 0.1234567)
    factory = HeaderFactory("acme", "cart-01", clock=clock)
    made = factory.make(Connection, connection_state=ConnectionState.ONLINE)
    clock.advance(0.0004449)
    stamped = factory.stamp(made)
    for message in (made, stamped):
        assert parse(TopicKind.CONNECTION, to_bytes(message)) == message
    assert made.timestamp.microsecond == 123000
