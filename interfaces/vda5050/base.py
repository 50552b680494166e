"""What every VDA 5050 model shares: naming, the extra-field policy, timestamps and the version.

Naming: Python attributes are snake_case, JSON keys are the schema's camelCase (an alias generator,
with explicit aliases where the schema's key is not plain camelCase, e.g. ``"order.nodes"``). Both
spellings are accepted on input; output uses the JSON names by default (``serialize_by_alias``).

Unknown fields (``extra="allow"``): VDA 5050 tells receivers to tolerate fields they do not know
(vendor extensions, newer minor versions). They are kept in ``model_extra`` and written back out
unchanged, so nothing a robot sends is silently lost. None of the official 2.1 schemas forbids
additional properties, so forwarding them keeps the output valid.

Timestamps are timezone-aware ``datetime`` objects in UTC; a timestamp without zone is read as UTC
(some 2.0 robots send them so); they are cut to whole milliseconds, so a message equals itself after a
JSON round trip. In JSON they are written ISO 8601 with milliseconds and ``Z``
(``2024-05-01T12:00:00.123Z``), the form the schema's examples use.

Floats: NaN and infinities are refused (JSON has none, and they would serialise as ``null``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel

SUPPORTED_MAJOR = "2"
"""Major protocol version we speak: 2.0.x and 2.1.x messages parse, 1.x and 3.x do not."""

DEFAULT_VERSION = "2.1.0"
"""The header ``version`` we send unless a robot is configured otherwise."""


def _as_utc(value: datetime) -> datetime:
    """Read naive datetimes as UTC and convert aware ones to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _to_millisecond(value: datetime) -> datetime:
    """UTC, cut to whole milliseconds: the model holds exactly what its JSON says."""
    utc = _as_utc(value)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def format_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``: ``2024-05-01T12:00:00.123Z``."""
    utc = _as_utc(value)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def timestamp_from_epoch(seconds: float) -> datetime:
    """The UTC datetime of ``seconds`` since the Unix epoch (``Clock.now()``), cut to milliseconds."""
    return _to_millisecond(datetime.fromtimestamp(seconds, UTC))


def check_version(value: str) -> str:
    """Accept ``2.x`` / ``2.x.y`` versions only (VDA 5050 §6.1: [Major].[Minor].[Patch])."""
    if value.split(".", 1)[0] != SUPPORTED_MAJOR or "." not in value:
        raise ValueError(f"protocol version {value!r} is not 2.x (we speak VDA 5050 2.0 and 2.1)")
    return value


Timestamp = Annotated[
    datetime,
    AfterValidator(_to_millisecond),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]
"""A UTC datetime cut to milliseconds, written to JSON as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""

ProtocolVersion = Annotated[str, AfterValidator(check_version)]
"""The header ``version``: any ``2.x[.y]`` string."""


class Vda5050Model(BaseModel):
    """Base of all VDA 5050 objects: camelCase JSON names, unknown fields kept, finite floats only."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="allow",
        allow_inf_nan=False,
        use_enum_values=False,
    )
