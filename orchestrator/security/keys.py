"""The orchestrator's secret keys: data keys (personal data at rest) and the code key (keyed hashes).

Keys are 32 random bytes written as url-safe base64 (padding optional). ``Keys.data_keys`` maps a key
id to a key; the ``active_data_key`` encrypts, every known id still decrypts (rotation: add a new key,
make it active, re-encrypt at leisure, then drop the old one). ``code_key`` keys the pickup-code
hashes and, through ``Keys.subkey``, the phone lookup hashes and CSRF tokens; rotating it invalidates
live pickup codes and phone lookup hashes, so it is meant to stay.

``load_or_create_keys(settings)`` takes every key set in ``SecuritySettings`` first; a missing one is
read from ``settings.keys_file`` (YAML, below) or, for a zero-setup demo, generated and written there
with mode 0600::

    data_keys: {k1: <base64>}
    active_data_key: k1
    code_key: <base64>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from orchestrator.security.errors import KeyConfigError
from orchestrator.settings import SecuritySettings

KEY_BYTES = 32
FIRST_KEY_ID = "k1"
_MAX_KEY_ID_BYTES = 64
_SUBKEY_LABEL = b"robopost/subkey/v1\n"


@dataclass(frozen=True)
class Keys:
    """Decoded keys: ``data_keys`` by id, the ``active_data_key`` id, and the ``code_key``."""

    data_keys: Mapping[str, bytes]
    active_data_key: str
    code_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.data_keys:
            raise KeyConfigError("security needs at least one data key")
        for key_id, key in self.data_keys.items():
            _check_key_id(key_id)
            _check_length(f"data key {key_id!r}", key)
        if self.active_data_key not in self.data_keys:
            raise KeyConfigError(f"security.active_data_key {self.active_data_key!r} is not a data key id")
        _check_length("security.code_key", self.code_key)
        object.__setattr__(self, "data_keys", MappingProxyType(dict(self.data_keys)))

    def __repr__(self) -> str:
        return f"Keys(data_keys=<{', '.join(self.data_keys)}>, active_data_key={self.active_data_key!r})"

    @property
    def active_key(self) -> bytes:
        """The data key that encrypts new personal data."""
        return self.data_keys[self.active_data_key]

    def subkey(self, purpose: str) -> bytes:
        """A 32-byte key for one ``purpose`` (e.g. ``"phone-lookup"``, ``"csrf"``), derived from the code key.

        Different purposes give independent keys (HMAC-SHA256 of a labelled purpose), so one leaked
        purpose key reveals nothing about the others or about the code key.
        """
        if not purpose:
            raise ValueError("Keys.subkey needs a non-empty purpose")
        return hmac.new(self.code_key, _SUBKEY_LABEL + purpose.encode(), hashlib.sha256).digest()


def new_key() -> str:
    """A fresh key: 32 random bytes as url-safe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def decode_key(text: str, what: str) -> bytes:
    """Decode a url-safe base64 key of 32 bytes; ``what`` names it in the error (never its value)."""
    if not isinstance(text, str) or not text.strip():
        raise KeyConfigError(f"{what} must be a non-empty url-safe base64 string")
    stripped = text.strip()
    try:
        raw = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"{what} is not url-safe base64") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != stripped.rstrip("=").encode("ascii", "replace"):
        raise KeyConfigError(f"{what} is not url-safe base64")
    _check_length(what, raw)
    return raw


def load_or_create_keys(settings: SecuritySettings) -> Keys:
    """The keys from ``settings``, then from ``settings.keys_file``, generating and saving the missing ones.

    Keys set in the settings win over the file. Whatever is neither set nor in the file is generated
    and written back to the file (mode 0600, parent folder created); keys already in the file are
    never replaced. A new file is created only if none appeared meanwhile: when two processes start
    at once, the second uses the first one's keys. Raises ``KeyConfigError`` for a malformed key or
    an unusable keys file.
    """
    path = Path(settings.keys_file)
    found = _read_keys_file(path)
    stored = found or {}
    additions: dict[str, Any] = {}

    data_texts = dict(settings.data_keys) or _str_map(stored.get("data_keys"), path)
    data_source = "security.data_keys" if settings.data_keys else f"{path}: data_keys"
    if not data_texts:
        data_texts = {FIRST_KEY_ID: new_key()}
        additions["data_keys"] = data_texts
    active = settings.active_data_key or _str(stored.get("active_data_key"), path, "active_data_key")
    if not active:
        active = _default_active(data_texts, data_source)
        if "data_keys" in additions:
            additions["active_data_key"] = active
    code_text = settings.code_key or _str(stored.get("code_key"), path, "code_key")
    code_source = "security.code_key" if settings.code_key else f"{path}: code_key"
    if not code_text:
        code_text = new_key()
        additions["code_key"] = code_text

    keys = Keys(
        data_keys={kid: decode_key(text, f"{data_source} {kid!r}") for kid, text in data_texts.items()},
        active_data_key=active,
        code_key=decode_key(code_text, code_source),
    )
    if additions and not _write_keys_file(path, {**stored, **additions}, replace=found is not None):
        return load_or_create_keys(settings)  # another process created the file first: use its keys
    return keys


def _default_active(data_texts: Mapping[str, str], source: str) -> str:
    """With one data key it is the active one; with several, the settings must say which."""
    if len(data_texts) == 1:
        return next(iter(data_texts))
    raise KeyConfigError(f"{source} holds several keys: set security.active_data_key to one of them")


def _read_keys_file(path: Path) -> dict[str, Any] | None:
    """The keys file as a mapping (empty for an empty file); ``None`` when there is no file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyConfigError(f"cannot read keys file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise KeyConfigError(f"keys file {path} is not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KeyConfigError(f"keys file {path} must hold a mapping")
    return data


def _str_map(value: object, path: Path) -> dict[str, str]:
    """``data_keys`` from the file: a mapping of id to key text, or nothing."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise KeyConfigError(f"keys file {path}: data_keys must map key ids to key strings")
    return dict(value)


def _str(value: object, path: Path, name: str) -> str:
    """A string entry of the file, or ``""`` when absent."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise KeyConfigError(f"keys file {path}: {name} must be a string")
    return value


def _write_keys_file(path: Path, content: Mapping[str, Any], replace: bool) -> bool:
    """Write the keys file atomically with mode 0600, creating its folder; False if it appeared meanwhile.

    ``replace`` overwrites an existing file (adding keys to it); otherwise the file is only created
    (a hard link of the finished temporary file, which fails if the name is taken).
    """
    text = "# robopost keys: secret, keep this file private (mode 0600)\n" + yaml.safe_dump(
        dict(content), sort_keys=True
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        raise KeyConfigError(f"cannot write keys file {path}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _check_key_id(key_id: str) -> None:
    """Key ids travel inside every blob: short, printable, no whitespace."""
    if (
        not isinstance(key_id, str)
        or not key_id
        or len(key_id.encode()) > _MAX_KEY_ID_BYTES
        or not key_id.isprintable()
        or any(ch.isspace() for ch in key_id)
    ):
        raise KeyConfigError(f"data key id {key_id!r} must be 1-64 printable characters without spaces")


def _check_length(what: str, key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise KeyConfigError(f"{what} must decode to {KEY_BYTES} bytes, got {len(key)}")
