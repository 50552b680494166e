"""The one exception tree of ``orchestrator.security``.

::

    SecurityError
    ├── KeyConfigError         a key (settings or keys file) is malformed, or the keys file is unusable
    ├── DecryptionError        a personal-data blob is malformed, tampered with or from another key
    │   └── UnknownKeyError    the blob names a data key id this process does not have
    ├── InvalidPhone           (also a ValueError) text that is not a Chinese mobile number
    ├── CodeSpaceExhausted     every 6-digit code is already taken for that cart and window
    ├── PasswordHashError      a stored password hash is not an argon2 hash
    └── SignatureError         a signed partner request is refused
        ├── UnknownPartner     the partner id is not configured
        ├── MalformedRequest   a signature header is missing or unusable (timestamp, nonce)
        ├── StaleTimestamp     the timestamp is further than the allowed skew from now
        ├── BadSignature       the signature does not match the request
        ├── ReplayedNonce      the nonce was already used within its lifetime
        └── TooManyRequests    the replay cache is full: retry later

Also raised here, defined in ``interfaces.pickup_codes`` (the cart raises them too) and re-exported:
``InvalidCode`` (a ``ValueError``: text that is not a 6-digit code or a 4-digit phone tail) and
``Locked`` (code entry on a cart screen is locked until ``until``, epoch seconds).

Messages are one sentence and never contain a key, a secret, a code or personal data in clear.
HTTP layers map them to RFC 9457 problem+json (``SignatureError`` → 401, ``TooManyRequests`` → 429,
``Locked`` → 423 or 429 with ``Retry-After``).
"""

from __future__ import annotations

from interfaces.pickup_codes import InvalidCode, Locked, LockReason

__all__ = [  # the classes defined below, and the pickup-code errors re-exported
    "BadSignature",
    "CodeSpaceExhausted",
    "DecryptionError",
    "InvalidCode",
    "InvalidPhone",
    "KeyConfigError",
    "LockReason",
    "Locked",
    "MalformedRequest",
    "PasswordHashError",
    "ReplayedNonce",
    "SecurityError",
    "SignatureError",
    "StaleTimestamp",
    "TooManyRequests",
    "UnknownKeyError",
    "UnknownPartner",
]


class SecurityError(Exception):
    """Base of every error of ``orchestrator.security``."""


class KeyConfigError(SecurityError):
    """A key is malformed or the keys file cannot be read or written."""


class DecryptionError(SecurityError):
    """A personal-data blob cannot be decrypted: malformed, tampered with, or under another key."""


class UnknownKeyError(DecryptionError):
    """The blob was encrypted under a data key id this process does not know."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"personal data was encrypted with unknown data key {key_id!r}")
        self.key_id = key_id


class InvalidPhone(SecurityError, ValueError):
    """The text is not a Chinese mobile number (11 digits starting with 1, optional +86)."""


class CodeSpaceExhausted(SecurityError):
    """No pickup code is left for a cart and window (all 10^6 taken)."""


class PasswordHashError(SecurityError):
    """A stored password hash is not a valid argon2 hash."""


class SignatureError(SecurityError):
    """A signed partner request is refused."""


class UnknownPartner(SignatureError):
    """The partner id in the request is not configured."""


class MalformedRequest(SignatureError):
    """A signature header is missing or unusable (timestamp not integer seconds, bad nonce)."""


class StaleTimestamp(SignatureError):
    """The request's timestamp is further from now than the allowed clock skew."""


class BadSignature(SignatureError):
    """The request's signature does not match its method, path, timestamp, nonce and body."""


class ReplayedNonce(SignatureError):
    """The request's nonce was already used by this partner within the nonce lifetime."""


class TooManyRequests(SignatureError):
    """The replay cache is full of live nonces; the partner should retry later."""
