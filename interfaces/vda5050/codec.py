"""Turning models into JSON and incoming payloads into models.

``to_json(msg)`` gives the JSON object (a ``dict``), ``to_bytes(msg)`` the compact UTF-8 payload to
publish; both drop ``None`` fields, so what we send validates against the official 2.1 schemas.
``parse(kind, payload)`` reads one payload of a topic kind and raises ``PayloadError`` (a
``Vda5050Error``, a ``ValueError``) with a one-line reason for anything it cannot accept: payloads over
``max_bytes`` (1 MiB by default), text that is not JSON, JSON of the wrong shape or types, and protocol
versions other than 2.x.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import ValidationError

from interfaces.vda5050.base import Vda5050Model
from interfaces.vda5050.errors import PayloadError
from interfaces.vda5050.factsheet import Factsheet
from interfaces.vda5050.order import InstantActions, Order
from interfaces.vda5050.state import Connection, State, Visualization
from interfaces.vda5050.topics import TopicKind

DEFAULT_MAX_BYTES = 1024 * 1024
"""Largest payload ``parse`` reads unless told otherwise (1 MiB)."""

Message = Order | InstantActions | State | Visualization | Connection | Factsheet
"""Any of the six VDA 5050 messages."""

M = TypeVar("M", bound=Vda5050Model)

MESSAGE_TYPES: Mapping[TopicKind, type[Message]] = MappingProxyType(
    {
        TopicKind.ORDER: Order,
        TopicKind.INSTANT_ACTIONS: InstantActions,
        TopicKind.STATE: State,
        TopicKind.VISUALIZATION: Visualization,
        TopicKind.CONNECTION: Connection,
        TopicKind.FACTSHEET: Factsheet,
    }
)
"""The model of each VDA 5050 topic kind (``teleop`` is not VDA 5050 and has none here)."""


def to_json(msg: Vda5050Model) -> dict[str, Any]:
    """The message as a JSON object with the schema's camelCase keys and no ``None`` fields."""
    return msg.model_dump(mode="json", exclude_none=True, by_alias=True)


def to_bytes(msg: Vda5050Model) -> bytes:
    """The message as a compact UTF-8 JSON payload, ready to publish."""
    return msg.model_dump_json(exclude_none=True, by_alias=True).encode()


def parse(kind: TopicKind | str, payload: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Message:
    """The message of topic ``kind`` in ``payload``; ``PayloadError`` with a one-line reason if refused."""
    try:
        model = MESSAGE_TYPES[TopicKind(kind)]
    except (KeyError, ValueError):
        raise PayloadError(f"no VDA 5050 message is carried on topic kind {kind!r}") from None
    return parse_as(model, payload, max_bytes=max_bytes)


def parse_as(model: type[M], payload: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> M:
    """``payload`` read as ``model`` (e.g. ``parse_as(State, data)``), refused as ``parse`` refuses."""
    size = len(payload.encode() if isinstance(payload, str) else payload)
    if size > max_bytes:
        raise PayloadError(f"{model.__name__}: payload of {size} bytes exceeds the limit of {max_bytes}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise PayloadError(describe(model.__name__, exc)) from None


def describe(name: str, exc: ValidationError) -> str:
    """One line naming the first problem of a validation error (and how many more there are)."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return f"{name}: not JSON ({first['msg'].removeprefix('Invalid JSON: ')})"
    where = ".".join(str(part) for part in first["loc"]) or "message"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{name}: {where}: {first['msg']}{more}"
