"""Operator session tokens, CSRF tokens and cart API tokens.

A session token is 32 random bytes (url-safe base64) given to the browser; the store keeps only its
``token_hash`` (SHA-256), so a leaked table does not let anyone log in. CSRF protection is the signed
double-submit pattern: the console sends ``csrf_token(session_token, key)`` in a header (the page
reads it from a non-HttpOnly cookie or the login answer) and the server recomputes it — an attacker's
page can neither read it nor derive it without ``key`` (``Keys.subkey("csrf")``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

TOKEN_BYTES = 32
CSRF_PURPOSE = "csrf"
_CSRF_LABEL = b"robopost/csrf/v1\n"


def new_token() -> str:
    """A fresh session or API token: 32 random bytes, url-safe base64 (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token: what the store keeps and looks sessions up by."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token(session_token: str, key: bytes) -> str:
    """The CSRF token bound to ``session_token``: url-safe base64 HMAC-SHA256 under ``key``."""
    digest = hmac.new(key, _CSRF_LABEL + session_token.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_csrf(session_token: str, key: bytes, presented: str | None) -> bool:
    """Whether ``presented`` (the request's CSRF header) is the token for this session; constant time."""
    if not presented or not session_token:
        return False
    expected = csrf_token(session_token, key)
    return hmac.compare_digest(expected.encode("ascii"), presented.encode("utf-8"))


def check_cart_token(carts: Mapping[str, str], cart_id: str, token: str | None) -> bool:
    """Whether ``token`` is ``cart_id``'s API token (``security.carts``), compared in constant time.

    A cart without a token (unknown, or configured empty) never authenticates; that cart ids exist is
    not a secret, so only the token comparison needs to be constant-time.
    """
    expected = carts.get(cart_id) or ""
    same = hmac.compare_digest(expected.encode("utf-8"), (token or "").encode("utf-8"))
    return bool(expected) and same
