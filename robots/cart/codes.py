"""The offline pickup-code check: typed digits against the keyed hashes synced from the orchestrator.

The orchestrator's ``GET /v1/carts/{cart}/codes`` gives the cart its key and, per live parcel, the HMAC
of its code (and of code + phone tail); ``interfaces.pickup_codes.hash_code`` recomputes them from what
a student types. A check costs one HMAC per delivery window on the sheet (usually one) and a dict lookup,
so it answers in microseconds whether or not the orchestrator is reachable.

A code opens its compartment only while the cart is at the parcel's stop (``stop=None`` on the sheet:
anywhere, e.g. an indoor robot at a door), before the code expires, and until the cart has seen the
parcel taken (``mark_picked``): a parcel picked up offline is not offered again even if a sync made
before the orchestrator heard of it lists it once more.

Every wrong entry, whatever the reason (no such code, another stop, expired, already taken), is the same
``None`` to the caller, so the screen cannot tell a guesser which codes exist.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from interfaces.pickup_codes import hash_code, parse_code, parse_tail

HASH_PATTERN = r"^[0-9a-f]{64}$"


class SyncError(ValueError):
    """A code sync the cart cannot use (malformed, for another cart, a key that is not 32 bytes)."""


class _SyncEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    parcel: str = Field(min_length=1, max_length=64)
    compartment: str | None
    window: str = Field(min_length=1, max_length=128)
    stop: str | None
    state: Literal["loaded", "at_stop"]
    code_hash: str = Field(pattern=HASH_PATTERN)
    tail_hash: str | None = Field(default=None, pattern=HASH_PATTERN)
    expires_at: AwareDatetime


class _SyncBody(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    cart: str
    algorithm: Literal["HMAC-SHA256"]
    cart_key: str
    generated_at: AwareDatetime
    codes: list[_SyncEntry]


@dataclass(frozen=True, slots=True)
class CodeEntry:
    """One parcel's code, as hashes: which compartment it opens, where and until when."""

    parcel: str
    compartment: str | None
    window: str
    stop: str | None
    code_hash: str
    tail_hash: str | None
    expires_at: float


@dataclass(frozen=True, slots=True)
class CodeSheet:
    """The synced codes of one cart: its key and its live parcels. ``generated_at`` in epoch seconds."""

    cart: str
    cart_key: bytes
    generated_at: float
    entries: tuple[CodeEntry, ...]

    @classmethod
    def from_sync(cls, body: Mapping[str, Any] | bytes | str, cart: str) -> CodeSheet:
        """Parse the orchestrator's sync answer (JSON text or decoded); ``SyncError`` when unusable."""
        try:
            if isinstance(body, bytes | str):
                parsed = _SyncBody.model_validate_json(body)
            else:
                parsed = _SyncBody.model_validate(body)
        except ValidationError as exc:
            raise SyncError(f"code sync is malformed: {exc.error_count()} invalid field(s)") from None
        if parsed.cart != cart:
            raise SyncError(f"code sync is for cart {parsed.cart!r}, not {cart!r}")
        key = _decode_key(parsed.cart_key)
        entries = tuple(
            CodeEntry(
                e.parcel, e.compartment, e.window, e.stop, e.code_hash, e.tail_hash, _epoch(e.expires_at)
            )
            for e in parsed.codes
        )
        return cls(cart, key, _epoch(parsed.generated_at), entries)

    def to_json(self) -> dict[str, Any]:
        """The sheet as the sync's JSON (to keep it on disk across a reboot)."""
        return {
            "cart": self.cart,
            "algorithm": "HMAC-SHA256",
            "cart_key": base64.urlsafe_b64encode(self.cart_key).rstrip(b"=").decode(),
            "generated_at": _iso(self.generated_at),
            "codes": [
                {
                    "parcel": e.parcel,
                    "compartment": e.compartment,
                    "window": e.window,
                    "stop": e.stop,
                    "state": "loaded",
                    "code_hash": e.code_hash,
                    "tail_hash": e.tail_hash,
                    "expires_at": _iso(e.expires_at),
                }
                for e in self.entries
            ],
        }


@dataclass(frozen=True, slots=True)
class Match:
    """A typed code that opens ``entry``; ``code_hash`` is the hash that matched (for the pickup event)."""

    entry: CodeEntry
    code_hash: str


class CodeChecker:
    """Checks typed codes against the current ``CodeSheet`` (replace it with ``load`` after each sync)."""

    def __init__(self, cart: str) -> None:
        self.cart = cart
        self._sheet: CodeSheet | None = None
        self._by_hash: dict[str, CodeEntry] = {}
        self._windows: tuple[str, ...] = ()
        self._picked: set[str] = set()

    @property
    def sheet(self) -> CodeSheet | None:
        """The sheet in use (None before the first sync)."""
        return self._sheet

    def load(self, sheet: CodeSheet) -> None:
        """Use ``sheet`` from now on (parcels seen taken stay taken)."""
        if sheet.cart != self.cart:
            raise SyncError(f"code sheet is for cart {sheet.cart!r}, not {self.cart!r}")
        self._sheet = sheet
        self._by_hash = {}
        for entry in sheet.entries:
            self._by_hash[entry.code_hash] = entry
            if entry.tail_hash is not None:
                self._by_hash[entry.tail_hash] = entry
        self._windows = tuple(sorted({e.window for e in sheet.entries}))

    def mark_picked(self, parcels: Iterable[str]) -> None:
        """These parcels were taken: their codes open nothing any more."""
        self._picked.update(parcels)

    def entry_for(self, compartment: str) -> CodeEntry | None:
        """The live parcel in ``compartment`` (None when the sheet has none there)."""
        if self._sheet is None:
            return None
        for entry in self._sheet.entries:
            if entry.compartment == compartment and entry.parcel not in self._picked:
                return entry
        return None

    def check(self, code: str, tail: str | None, *, stop: str | None, now: float) -> Match | None:
        """The parcel ``code`` (with ``tail``: the step-up check) opens at ``stop`` now, or None.

        ``InvalidCode`` (a ``ValueError``) when the text is not 6 digits (or the tail not 4): a typo
        the screen should point out, not a wrong code.
        """
        code = parse_code(code)
        tail = parse_tail(tail) if tail is not None else None
        sheet = self._sheet
        if sheet is None:
            return None
        for window in self._windows:
            digest = hash_code(sheet.cart_key, self.cart, window, code, tail)
            entry = self._by_hash.get(digest)
            if entry is not None and self._opens(entry, stop, now):
                return Match(entry, digest)
        return None

    def _opens(self, entry: CodeEntry, stop: str | None, now: float) -> bool:
        return (
            entry.compartment is not None
            and entry.parcel not in self._picked
            and now < entry.expires_at
            and (entry.stop is None or entry.stop == stop)
        )


def _decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SyncError("code sync's cart key is not url-safe base64") from None
    if len(key) != 32:
        raise SyncError(f"code sync's cart key must be 32 bytes, got {len(key)}")
    return key


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
