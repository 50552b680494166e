"""Issuing pickup codes and deriving each cart's code key (the orchestrator's side).

The code format, the keyed hash, the screen guard and the lockout policy live in
``interfaces.pickup_codes`` (the cart checks codes offline with the same functions); they are
re-exported here for the orchestrator's callers.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Set

from interfaces.pickup_codes import (
    CODE_DIGITS,
    CODE_FORMATS,
    CODE_SPACE,
    DAY_S,
    TAIL_DIGITS,
    TAIL_SPACE,
    Challenge,
    CodeGuard,
    ScreenStatus,
    check_id,
    guess_success_probability,
    hash_code,
    parse_code,
    parse_tail,
)
from orchestrator.security.errors import CodeSpaceExhausted
from orchestrator.security.masking import normalise_phone

__all__ = [
    "CODE_DIGITS",
    "CODE_FORMATS",
    "CODE_SPACE",
    "DAY_S",
    "TAIL_DIGITS",
    "TAIL_SPACE",
    "Challenge",
    "CodeBook",
    "CodeGuard",
    "ScreenStatus",
    "guess_success_probability",
    "hash_code",
    "parse_code",
    "parse_tail",
    "phone_tail",
]

_CART_KEY_LABEL = b"robopost/cart-code-key/v1\n"


def phone_tail(phone: str) -> str:
    """The last four digits of a Chinese mobile number (``InvalidPhone`` if it is not one)."""
    return normalise_phone(phone)[-TAIL_DIGITS:]


class CodeBook:
    """Issues pickup codes and computes their keyed hashes from the server's ``code_key``."""

    def __init__(self, code_key: bytes) -> None:
        if len(code_key) < 32:
            raise ValueError(f"CodeBook: code_key must be at least 32 bytes, got {len(code_key)}")
        self._code_key = code_key

    def new_code(self, rng: random.Random, taken: Set[str]) -> str:
        """A 6-digit code drawn uniformly from those not in ``taken`` (codes on the cart in the window).

        ``taken`` must hold only 6-digit codes: a set of 10^6 entries means none is left.
        Pass ``secrets.SystemRandom()`` in production (tests pass a seeded ``random.Random``). Raises
        ``CodeSpaceExhausted`` when every code is taken.
        """
        if len(taken) >= CODE_SPACE:
            raise CodeSpaceExhausted("every 6-digit pickup code is taken for this cart and window")
        while True:  # rejection sampling keeps the draw uniform over the free codes
            code = f"{rng.randrange(CODE_SPACE):0{CODE_DIGITS}d}"
            if code not in taken:
                return code

    def cart_key(self, cart: str) -> bytes:
        """The 32-byte key a cart uses to check codes offline (derived from the code key and the cart id)."""
        check_id("cart", cart)
        return hmac.new(self._code_key, _CART_KEY_LABEL + cart.encode("utf-8"), hashlib.sha256).digest()

    def code_hmac(self, cart: str, window: str, code: str, tail: str | None = None) -> str:
        """The stored/synced hash of ``code`` on ``cart`` in ``window`` (with ``tail``: the step-up hash)."""
        return hash_code(self.cart_key(cart), cart, window, code, tail)
