"""Session tokens, CSRF double-submit tokens, cart API tokens."""

from __future__ import annotations

import pytest

from orchestrator.security import check_cart_token, check_csrf, csrf_token, new_token, token_hash

KEY = b"\x05" * 32


def test_session_tokens() -> None:
    """Tokens are 43 url-safe characters, unique; the store keeps only their SHA-256."""
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) == 43 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)
    assert token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_csrf_token_is_bound_to_session_and_key() -> None:
    """The CSRF token is stable for one session and key and differs for another session or key."""
    token = csrf_token("session-1", KEY)
    assert token == csrf_token("session-1", KEY)
    assert token not in (csrf_token("session-2", KEY), csrf_token("session-1", b"\x06" * 32))
    assert "=" not in token and len(token) == 43


@pytest.mark.parametrize(
    ("session", "presented", "ok"),
    [
        ("session-1", "right", True),
        ("session-1", "wrong", False),
        ("session-2", "right", False),
        ("session-1", None, False),
        ("session-1", "", False),
        ("", "right", False),
        ("session-1", "ünïcode", False),
    ],
)
def test_check_csrf(session: str, presented: str | None, ok: bool) -> None:
    """Only the token derived from this session passes; missing or foreign tokens fail."""
    value = csrf_token("session-1", KEY) if presented == "right" else presented
    assert check_csrf(session, KEY, value) is ok


@pytest.mark.parametrize(
    ("cart", "token", "ok"),
    [
        ("cart_1", "tok-1", True),
        ("cart_1", "tok-2", False),
        ("cart_1", "", False),
        ("cart_1", None, False),
        ("cart_2", "tok-2", True),
        ("cart_9", "tok-1", False),
        ("cart_empty", "", False),
    ],
)
def test_check_cart_token(cart: str, token: str | None, ok: bool) -> None:
    """A cart passes only with its own configured token; unknown carts and empty tokens never pass."""
    carts = {"cart_1": "tok-1", "cart_2": "tok-2", "cart_empty": ""}
    assert check_cart_token(carts, cart, token) is ok
