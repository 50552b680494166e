"""Topic: build, print, parse, match; subscription patterns."""

from __future__ import annotations

import re

import pytest

from interfaces.vda5050 import Topic, TopicError, TopicKind, Vda5050Error, major_version_of, subscription


def test_topic_prints_the_five_levels() -> None:
    """str(topic) is interface/major/manufacturer/serial/kind with robopost and v2 by default."""
    topic = Topic(manufacturer="acme", serial_number="cart-01", kind=TopicKind.INSTANT_ACTIONS)
    assert str(topic) == "robopost/v2/acme/cart-01/instantActions"


def test_kind_may_be_given_as_text() -> None:
    """A kind given as its name becomes the TopicKind."""
    assert Topic(manufacturer="a", serial_number="b", kind="teleop").kind is TopicKind.TELEOP  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "robopost/v2/acme/cart-01/state",
        "uagv/v2/Vendor X/AMR:7.a_b/factsheet",
        "robopost/v2/acme/cart-01/teleop",
    ],
)
def test_parse_round_trips(text: str) -> None:
    """Topic.parse(str) gives a topic that prints back the same text."""
    assert str(Topic.parse(text)) == text


def test_parse_reads_every_level() -> None:
    """Each level lands in its field."""
    topic = Topic.parse("campus/v2/acme/cart-01/connection")
    assert (topic.interface, topic.major_version, topic.manufacturer, topic.serial_number, topic.kind) == (
        "campus",
        "v2",
        "acme",
        "cart-01",
        TopicKind.CONNECTION,
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("robopost/v2/acme/state", "has 4 levels"),
        ("robopost/v2/acme/cart/01/state", "has 6 levels"),
        ("robopost/v2/acme/cart-01/orders", "unknown topic kind 'orders'"),
        ("robopost/v2//cart-01/state", "manufacturer is empty"),
        ("robopost/v2/+/cart-01/state", "manufacturer '+' contains '+'"),
        ("robopost/v2/acme/cart 01/state", "serial number 'cart 01' has characters"),
        ("", "has 1 levels"),
    ],
)
def test_malformed_topics_are_refused(text: str, reason: str) -> None:
    """Wrong level counts, unknown kinds, empty levels, wildcards and bad serials raise TopicError."""
    with pytest.raises(TopicError, match=re.escape(reason)):
        Topic.parse(text)
    assert issubclass(TopicError, Vda5050Error)


def test_topics_are_frozen_values() -> None:
    """Topics compare by value, hash, and cannot be changed."""
    a = Topic.parse("robopost/v2/acme/cart-01/state")
    assert a == Topic(manufacturer="acme", serial_number="cart-01", kind=TopicKind.STATE)
    assert len({a, Topic.parse(str(a))}) == 1
    with pytest.raises(AttributeError):
        a.kind = TopicKind.ORDER  # type: ignore[misc]


def test_sibling_is_the_same_robots_other_topic() -> None:
    """sibling() swaps only the kind (state received → order to send)."""
    state = Topic.parse("robopost/v2/acme/cart-01/state")
    assert str(state.sibling("order")) == "robopost/v2/acme/cart-01/order"


def test_subscription_patterns() -> None:
    """Patterns for every robot's state, one robot's everything, and one vendor's connections."""
    assert subscription(TopicKind.STATE) == "robopost/v2/+/+/state"
    assert subscription(manufacturer="acme", serial_number="cart-01") == "robopost/v2/acme/cart-01/+"
    assert subscription("connection", manufacturer="acme", interface="uagv") == "uagv/v2/acme/+/connection"
    with pytest.raises(TopicError, match="unknown topic kind"):
        subscription("status")


def test_topics_match_patterns() -> None:
    """A robot's state matches the all-states pattern, not the all-orders one; '#' matches all."""
    topic = Topic.parse("robopost/v2/acme/cart-01/state")
    assert topic.matches(subscription(TopicKind.STATE))
    assert not topic.matches(subscription(TopicKind.ORDER))
    assert not topic.matches(subscription(TopicKind.STATE, manufacturer="other"))
    assert topic.matches("robopost/#")


def test_major_version_from_header_version() -> None:
    """'2.1.0' and '2.0.0' both travel under v2; a non-numeric version is refused."""
    assert major_version_of("2.1.0") == major_version_of("2.0.0") == "v2"
    with pytest.raises(TopicError):
        major_version_of("x.1")
