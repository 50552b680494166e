"""MQTT topics of VDA 5050 (§6.3): ``{interface}/{majorVersion}/{manufacturer}/{serialNumber}/{kind}``.

``Topic`` is a small frozen value: build it, ``str()`` it, ``Topic.parse`` it back, match it against a
subscription pattern without a broker. ``subscription(kind)`` gives the patterns master control
subscribes to, e.g. every robot's state: ``robopost/v2/+/+/state``.

Levels may not be empty and may not contain ``/``, ``+``, ``#`` or NUL (MQTT would misread them).
The serial number is further limited to ``A-Z a-z 0-9 _ . : -`` as VDA 5050 §6.3 asks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from interfaces.mqtt import topic_matches
from interfaces.vda5050.base import SUPPORTED_MAJOR
from interfaces.vda5050.errors import TopicError

DEFAULT_INTERFACE = "robopost"
DEFAULT_MAJOR_VERSION = f"v{SUPPORTED_MAJOR}"

_SERIAL = re.compile(r"[A-Za-z0-9_.:\-]+")
_FORBIDDEN = ("/", "+", "#", "\x00")


class TopicKind(StrEnum):
    """The last topic level: the six VDA 5050 topics and our own ``teleop``."""

    ORDER = "order"
    INSTANT_ACTIONS = "instantActions"
    STATE = "state"
    VISUALIZATION = "visualization"
    CONNECTION = "connection"
    FACTSHEET = "factsheet"
    TELEOP = "teleop"  # robopost's own: velocity + sequence number, watched by a dead-man timer


def major_version_of(version: str) -> str:
    """The topic's major-version level for a header version: ``"2.1.0"`` → ``"v2"``."""
    major = version.split(".", 1)[0]
    if not major.isdigit():
        raise TopicError(f"cannot take a major version from protocol version {version!r}")
    return f"v{major}"


def _check_level(name: str, value: str) -> None:
    """Refuse a topic level MQTT could not carry as one literal level."""
    if not value:
        raise TopicError(f"topic {name} is empty")
    bad = next((c for c in _FORBIDDEN if c in value), None)
    if bad is not None:
        raise TopicError(f"topic {name} {value!r} contains {bad!r}")


def _kind(value: str) -> TopicKind:
    """The ``TopicKind`` named ``value`` or a ``TopicError``."""
    try:
        return TopicKind(value)
    except ValueError:
        known = ", ".join(k.value for k in TopicKind)
        raise TopicError(f"unknown topic kind {value!r} (known: {known})") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Topic:
    """One robot's topic, e.g. ``Topic(manufacturer="acme", serial_number="cart-01", kind="state")``."""

    manufacturer: str
    serial_number: str
    kind: TopicKind
    interface: str = DEFAULT_INTERFACE
    major_version: str = DEFAULT_MAJOR_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _kind(self.kind))
        for name in ("interface", "major_version", "manufacturer", "serial_number"):
            _check_level(name, getattr(self, name))
        if not _SERIAL.fullmatch(self.serial_number):
            raise TopicError(f"serial number {self.serial_number!r} has characters outside A-Za-z0-9_.:-")

    def __str__(self) -> str:
        return f"{self.interface}/{self.major_version}/{self.manufacturer}/{self.serial_number}/{self.kind}"

    @classmethod
    def parse(cls, text: str) -> Topic:
        """The topic written ``text``; ``TopicError`` unless it has exactly five valid levels."""
        parts = text.split("/")
        if len(parts) != 5:
            raise TopicError(
                f"topic {text!r} has {len(parts)} levels, expected 5 (interface/vN/mfr/serial/kind)"
            )
        interface, major, manufacturer, serial, kind = parts
        return cls(
            interface=interface,
            major_version=major,
            manufacturer=manufacturer,
            serial_number=serial,
            kind=_kind(kind),
        )

    def sibling(self, kind: TopicKind | str) -> Topic:
        """The same robot's topic of another kind (e.g. ``state`` → ``order``)."""
        return Topic(
            interface=self.interface,
            major_version=self.major_version,
            manufacturer=self.manufacturer,
            serial_number=self.serial_number,
            kind=_kind(kind),
        )

    def matches(self, pattern: str) -> bool:
        """Whether this topic matches the MQTT subscription ``pattern`` (``+``/``#`` wildcards)."""
        return topic_matches(pattern, str(self))


def subscription(
    kind: TopicKind | str | None = None,
    *,
    manufacturer: str | None = None,
    serial_number: str | None = None,
    interface: str = DEFAULT_INTERFACE,
    major_version: str = DEFAULT_MAJOR_VERSION,
) -> str:
    """A subscription pattern; ``None`` levels become ``+`` (``kind=None`` matches every kind).

    ``subscription("state")`` → ``robopost/v2/+/+/state`` (every robot's state);
    ``subscription(manufacturer="acme", serial_number="cart-01")`` → ``robopost/v2/acme/cart-01/+``.
    """
    levels = [interface, major_version, manufacturer or "+", serial_number or "+"]
    for name, value in zip(
        ("interface", "major_version", "manufacturer", "serial_number"), levels, strict=True
    ):
        if value != "+":
            _check_level(name, value)
    return "/".join([*levels, _kind(kind).value if kind is not None else "+"])
