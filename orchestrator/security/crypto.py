"""Personal data at rest: AES-256-GCM blobs under rotating data keys, and keyed phone lookup hashes.

A blob is ``version (1 byte) | key-id length (1 byte) | key id (UTF-8) | nonce (12 bytes) |
ciphertext + GCM tag (16 bytes)``. The header (version and key id) and an optional ``context`` are
authenticated as associated data, so changing any byte, or moving a blob to another context, fails
decryption. Nonces are random 96-bit values (NIST SP 800-38D §8.2.2); at our volumes (far below
2^32 encryptions per key) their collision risk is negligible.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestrator.security.errors import DecryptionError, UnknownKeyError
from orchestrator.security.keys import Keys
from orchestrator.security.masking import normalise_phone

BLOB_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
PHONE_LOOKUP_PURPOSE = "phone-lookup"


class PersonalDataCipher:
    """Encrypts names and phones with the active data key; decrypts with any known key (rotation)."""

    def __init__(self, keys: Keys) -> None:
        self._keys = keys
        self._aead = {key_id: AESGCM(key) for key_id, key in keys.data_keys.items()}
        self._lookup_key = keys.subkey(PHONE_LOOKUP_PURPOSE)

    def encrypt(self, text: str, context: str = "") -> bytes:
        """Encrypt ``text`` under the active key, bound to ``context`` (e.g. ``"recipient.phone"``)."""
        key_id = self._keys.active_data_key
        header = _header(key_id)
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead[key_id].encrypt(nonce, text.encode("utf-8"), header + context.encode("utf-8"))
        return header + nonce + sealed

    def decrypt(self, blob: bytes, context: str = "") -> str:
        """The text in ``blob``; ``context`` must equal the one given to ``encrypt``.

        Raises ``UnknownKeyError`` when the blob's key id is not known here and ``DecryptionError`` when
        the blob is malformed or was tampered with.
        """
        key_id, header = key_id_of(blob)
        blob = bytes(blob)
        aead = self._aead.get(key_id)
        if aead is None:
            raise UnknownKeyError(key_id)
        nonce = blob[len(header) : len(header) + NONCE_BYTES]
        try:
            plain = aead.decrypt(nonce, blob[len(header) + NONCE_BYTES :], header + context.encode("utf-8"))
        except InvalidTag:
            raise DecryptionError("personal data failed authentication: tampered or wrong context") from None
        return plain.decode("utf-8")

    def needs_reencrypt(self, blob: bytes) -> bool:
        """Whether ``blob`` is under a key other than the active one (a rotation job re-encrypts it)."""
        return key_id_of(blob)[0] != self._keys.active_data_key

    def reencrypt(self, blob: bytes, context: str = "") -> bytes:
        """``blob`` under the active key (unchanged when it already is)."""
        if not self.needs_reencrypt(blob):
            return blob
        return self.encrypt(self.decrypt(blob, context), context)

    def hmac_phone(self, phone: str) -> str:
        """Hex HMAC-SHA256 of the normalised phone under the phone-lookup key, for equality lookups.

        ``"+86 138-1234-1234"`` and ``"13812341234"`` give the same hash. Raises ``InvalidPhone`` for
        text that is not a Chinese mobile number.
        """
        return hmac.new(self._lookup_key, normalise_phone(phone).encode("ascii"), hashlib.sha256).hexdigest()


def key_id_of(blob: bytes) -> tuple[str, bytes]:
    """The key id a blob was encrypted under and the blob's header bytes; ``DecryptionError`` if malformed."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise DecryptionError("personal data blob must be bytes")
    blob = bytes(blob)
    if len(blob) < 2 or blob[0] != BLOB_VERSION:
        raise DecryptionError("personal data blob has an unknown format version")
    end = 2 + blob[1]
    if blob[1] == 0 or len(blob) < end + NONCE_BYTES + TAG_BYTES:
        raise DecryptionError("personal data blob is truncated")
    try:
        key_id = blob[2:end].decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError("personal data blob has a malformed key id") from None
    return key_id, blob[:end]


def _header(key_id: str) -> bytes:
    raw = key_id.encode("utf-8")
    return bytes([BLOB_VERSION, len(raw)]) + raw
