"""Operator passwords: argon2id hashes (argon2-cffi, RFC 9106 low-memory profile by default).

Hashing and verifying cost about a quarter of a second of CPU by design: call them off the event loop
(``asyncio.to_thread`` / Starlette's ``run_in_threadpool``). For an unknown user name call
``dummy_verify`` so the answer takes as long as for a known one and does not reveal which names exist.
"""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from orchestrator.security.errors import PasswordHashError


class PasswordHashing:
    """argon2id hashing with one set of parameters (``PasswordHasher()``'s RFC 9106 profile by default)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        """The argon2id hash (PHC string, salt included) to store for ``password``."""
        if not password:
            raise ValueError("a password must not be empty")
        return self._hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches ``stored``; ``PasswordHashError`` if ``stored`` is not argon2."""
        try:
            return self._hasher.verify(stored, password)
        except InvalidHashError:
            raise PasswordHashError("the stored password hash is not a valid argon2 hash") from None
        except VerificationError:
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters: after a good login, store ``hash(password)``."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except (InvalidHashError, ValueError):
            raise PasswordHashError("the stored password hash is not a valid argon2 hash") from None

    def dummy_verify(self, password: str) -> bool:
        """Verify against a hash of a random password, at the same cost; always ``False``."""
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        self.verify(self._dummy, password)
        return False


@cache
def default_hashing() -> PasswordHashing:
    """The shared ``PasswordHashing`` with default parameters (made on first use, not on import)."""
    return PasswordHashing()


def hash_password(password: str) -> str:
    """``default_hashing().hash(password)``."""
    return default_hashing().hash(password)


def verify_password(stored: str, password: str) -> bool:
    """``default_hashing().verify(stored, password)``."""
    return default_hashing().verify(stored, password)


def needs_rehash(stored: str) -> bool:
    """``default_hashing().needs_rehash(stored)``."""
    return default_hashing().needs_rehash(stored)


def dummy_verify(password: str) -> bool:
    """``default_hashing().dummy_verify(password)``: always ``False``, as slow as a real check."""
    return default_hashing().dummy_verify(password)
