"""Operator passwords: argon2id round trip, rehash detection, unknown users."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from orchestrator.security import (
    PasswordHashError,
    PasswordHashing,
    dummy_verify,
    hash_password,
    needs_rehash,
    verify_password,
)


@pytest.fixture
def cheap() -> PasswordHashing:
    """Hashing with tiny argon2 parameters, to keep the tests fast."""
    return PasswordHashing(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def test_default_round_trip() -> None:
    """The default (RFC 9106) argon2id hash verifies the right password only and needs no rehash."""
    stored = hash_password("correct horse 电池 staple")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(stored, "correct horse 电池 staple")
    assert not verify_password(stored, "correct horse 电池 stapler")
    assert not needs_rehash(stored)


def test_hashes_are_salted(cheap: PasswordHashing) -> None:
    """The same password hashes differently each time; both verify."""
    a, b = cheap.hash("pw"), cheap.hash("pw")
    assert a != b and cheap.verify(a, "pw") and cheap.verify(b, "pw")


def test_weaker_parameters_need_a_rehash(cheap: PasswordHashing) -> None:
    """A hash made with other parameters still verifies but is flagged for rehashing."""
    stored = cheap.hash("pw")
    assert verify_password(stored, "pw")
    assert needs_rehash(stored)


@pytest.mark.parametrize("stored", ["", "plaintext", "$2b$12$abcdefghijklmnopqrstuv"])
def test_malformed_stored_hash(cheap: PasswordHashing, stored: str) -> None:
    """A stored value that is not an argon2 hash is an error, not a silent refusal."""
    with pytest.raises(PasswordHashError, match="not a valid argon2 hash"):
        cheap.verify(stored, "pw")
    with pytest.raises(PasswordHashError):
        cheap.needs_rehash(stored)


def test_dummy_verify_always_refuses(cheap: PasswordHashing) -> None:
    """The unknown-user path refuses every password, including an empty one."""
    assert cheap.dummy_verify("anything") is False
    assert cheap.dummy_verify("") is False
    assert dummy_verify("anything") is False


def test_empty_password_is_refused(cheap: PasswordHashing) -> None:
    """An empty password cannot be set."""
    with pytest.raises(ValueError, match="must not be empty"):
        cheap.hash("")
