"""Personal data at rest: AES-256-GCM blobs, tampering, key rotation, phone lookup hashes."""

from __future__ import annotations

import pytest

from orchestrator.security import (
    DecryptionError,
    InvalidPhone,
    Keys,
    PersonalDataCipher,
    UnknownKeyError,
    key_id_of,
)

CODE_KEY = b"\x07" * 32
OLD = Keys({"k1": b"\x01" * 32}, "k1", CODE_KEY)
ROTATED = Keys({"k1": b"\x01" * 32, "k2": b"\x02" * 32}, "k2", CODE_KEY)
NEW_ONLY = Keys({"k2": b"\x02" * 32}, "k2", CODE_KEY)


def test_round_trip_and_fresh_nonces() -> None:
    """Text comes back unchanged; the same text encrypts to different blobs; the blob names its key."""
    cipher = PersonalDataCipher(OLD)
    a, b = cipher.encrypt("张三 13812341234"), cipher.encrypt("张三 13812341234")
    assert a != b
    assert cipher.decrypt(a) == cipher.decrypt(b) == "张三 13812341234"
    assert a[:4] == b"\x01\x02k1" and key_id_of(a) == ("k1", b"\x01\x02k1")
    assert len(a) == 4 + 12 + len("张三 13812341234".encode()) + 16
    assert b"13812341234" not in a


def test_every_changed_byte_is_refused() -> None:
    """Flipping any single byte of a blob (header, nonce, ciphertext or tag) fails decryption."""
    cipher = PersonalDataCipher(ROTATED)
    blob = cipher.encrypt("欧阳娜娜")
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(DecryptionError):
            cipher.decrypt(bytes(tampered))


def test_key_id_swapped_to_another_known_key_is_refused() -> None:
    """The key id is authenticated: relabelling a k2 blob as k1 does not decrypt under k1."""
    cipher = PersonalDataCipher(ROTATED)
    blob = cipher.encrypt("secret")
    relabelled = blob[:3] + b"1" + blob[4:]
    assert key_id_of(relabelled)[0] == "k1"
    with pytest.raises(DecryptionError, match="tampered"):
        cipher.decrypt(relabelled)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "unknown format version"),
        (b"\x02\x02k1" + b"\x00" * 40, "unknown format version"),
        (b"\x01\x02k1" + b"\x00" * 27, "truncated"),
        (b"\x01\x00" + b"\x00" * 40, "truncated"),
        (b"\x01\x02\xff\xfe" + b"\x00" * 40, "malformed key id"),
    ],
)
def test_malformed_blobs(blob: bytes, message: str) -> None:
    """Blobs that are too short, of another version or with a broken key id are refused clearly."""
    with pytest.raises(DecryptionError, match=message):
        PersonalDataCipher(OLD).decrypt(blob)


def test_context_is_bound() -> None:
    """A blob encrypted for one context does not decrypt in another (no swapping columns or rows)."""
    cipher = PersonalDataCipher(OLD)
    blob = cipher.encrypt("13812341234", context="recipient.phone")
    assert cipher.decrypt(blob, context="recipient.phone") == "13812341234"
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, context="recipient.name")


def test_rotation() -> None:
    """Old blobs decrypt once a new key is active, re-encrypt under it, and need the old key until then."""
    old_blob = PersonalDataCipher(OLD).encrypt("李四", context="c")
    rotated = PersonalDataCipher(ROTATED)
    assert rotated.decrypt(old_blob, context="c") == "李四"
    assert rotated.needs_reencrypt(old_blob)
    new_blob = rotated.reencrypt(old_blob, context="c")
    assert key_id_of(new_blob)[0] == "k2" and not rotated.needs_reencrypt(new_blob)
    assert rotated.reencrypt(new_blob, context="c") is new_blob
    assert PersonalDataCipher(NEW_ONLY).decrypt(new_blob, context="c") == "李四"
    with pytest.raises(UnknownKeyError, match="unknown data key 'k1'") as info:
        PersonalDataCipher(NEW_ONLY).decrypt(old_blob, context="c")
    assert info.value.key_id == "k1"


def test_phone_lookup_hash() -> None:
    """Every spelling of a phone gives one hash; other phones and other code keys give others; data
    key rotation does not change it."""
    cipher = PersonalDataCipher(OLD)
    h = cipher.hmac_phone("13812341234")
    assert len(h) == 64 and int(h, 16) >= 0
    assert cipher.hmac_phone("+86 138-1234-1234") == cipher.hmac_phone("86 13812341234") == h
    assert PersonalDataCipher(ROTATED).hmac_phone("13812341234") == h
    assert cipher.hmac_phone("13812341235") != h
    assert PersonalDataCipher(Keys({"k1": b"\x01" * 32}, "k1", b"\x08" * 32)).hmac_phone("13812341234") != h
    with pytest.raises(InvalidPhone):
        cipher.hmac_phone("12345")
