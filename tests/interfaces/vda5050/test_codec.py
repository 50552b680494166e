"""parse refuses garbage with one clear line; to_json/to_bytes give compact schema JSON."""

from __future__ import annotations

import json

import pytest
from vda5050_samples import sample_connection, sample_state

from interfaces.vda5050 import (
    DEFAULT_MAX_BYTES,
    Connection,
    PayloadError,
    State,
    TopicKind,
    Vda5050Error,
    parse,
    parse_as,
    to_bytes,
)


def _one_line(exc: pytest.ExceptionInfo[PayloadError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_payload_error_is_a_value_error() -> None:
    """Callers may catch PayloadError, Vda5050Error or plain ValueError."""
    assert issubclass(PayloadError, Vda5050Error)
    assert issubclass(Vda5050Error, ValueError)


@pytest.mark.parametrize("payload", [b"hello", b"{", b'{"headerId": 1,}', b"\xff\xfe\x00", b""])
def test_not_json_is_refused(payload: bytes) -> None:
    """Bytes that are not JSON (including invalid UTF-8 and empty payloads) give 'not JSON'."""
    with pytest.raises(PayloadError) as exc:
        parse(TopicKind.STATE, payload)
    assert _one_line(exc).startswith("State: not JSON")


@pytest.mark.parametrize("payload", [b"[]", b"42", b'"state"', b"null"])
def test_json_that_is_not_an_object_is_refused(payload: bytes) -> None:
    """A JSON array/number/string/null where a message object belongs is refused."""
    with pytest.raises(PayloadError) as exc:
        parse(TopicKind.CONNECTION, payload)
    assert _one_line(exc).startswith("Connection: message:")


def test_wrong_types_are_refused_naming_the_field() -> None:
    """A state whose batteryCharge is a word names that field, and counts the other problems."""
    document = json.loads(to_bytes(sample_state()))
    document["batteryState"]["batteryCharge"] = "full"
    document["driving"] = "maybe"
    with pytest.raises(PayloadError) as exc:
        parse(TopicKind.STATE, json.dumps(document).encode())
    message = _one_line(exc)
    assert message.startswith("State: driving:") or message.startswith("State: batteryState.batteryCharge:")
    assert "(and 1 more)" in message


def test_unknown_enum_value_is_refused() -> None:
    """An unknown connectionState is refused with the allowed values in the reason."""
    document = json.loads(to_bytes(sample_connection())) | {"connectionState": "SLEEPING"}
    with pytest.raises(PayloadError, match="connectionState: Input should be 'ONLINE', 'OFFLINE' or"):
        parse(TopicKind.CONNECTION, json.dumps(document).encode())


def test_missing_required_field_is_refused() -> None:
    """A state without safetyState is refused naming it."""
    document = json.loads(to_bytes(sample_state()))
    del document["safetyState"]
    with pytest.raises(PayloadError, match="State: safetyState: Field required"):
        parse(TopicKind.STATE, json.dumps(document).encode())


def test_huge_payload_is_refused_before_parsing() -> None:
    """A payload above the default 1 MiB limit is refused by size, without reading it."""
    payload = b"[" * (DEFAULT_MAX_BYTES + 1)
    with pytest.raises(PayloadError) as exc:
        parse(TopicKind.STATE, payload)
    assert (
        _one_line(exc)
        == f"State: payload of {DEFAULT_MAX_BYTES + 1} bytes exceeds the limit of {DEFAULT_MAX_BYTES}"
    )


def test_size_limit_is_configurable() -> None:
    """max_bytes lowers (or raises) the limit: a valid 300-byte connection fails a 100-byte limit."""
    payload = to_bytes(sample_connection())
    with pytest.raises(PayloadError, match="exceeds the limit of 100"):
        parse(TopicKind.CONNECTION, payload, max_bytes=100)
    assert isinstance(parse(TopicKind.CONNECTION, payload, max_bytes=len(payload)), Connection)


@pytest.mark.parametrize("kind", ["teleop", "weather"])
def test_kinds_without_a_vda5050_message_are_refused(kind: str) -> None:
    """teleop is ours (not VDA 5050) and other names are unknown: parse refuses both."""
    with pytest.raises(PayloadError, match="no VDA 5050 message"):
        parse(kind, b"{}")


def test_parse_accepts_kind_names_and_text() -> None:
    """The kind may be given as its topic name and the payload as str."""
    assert isinstance(parse("state", to_bytes(sample_state()).decode()), State)


def test_parse_as_reads_a_chosen_model() -> None:
    """parse_as(State, payload) is typed as State and refuses like parse."""
    state = parse_as(State, to_bytes(sample_state()))
    assert state.order_id == "order-0001"
    with pytest.raises(PayloadError, match="not JSON"):
        parse_as(State, b"nope")


def test_to_bytes_is_compact_utf8() -> None:
    """to_bytes writes compact JSON (no spaces after separators) and keeps non-ASCII text readable."""
    state = sample_state().model_copy(update={"last_node_id": "图书馆"})
    payload = to_bytes(state)
    assert b", " not in payload and b'": ' not in payload
    assert "图书馆".encode() in payload
