"""Signed partner requests: vectors; unknown partners, bad signatures, stale and replayed requests."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from interfaces.clock import VirtualClock
from orchestrator.security import (
    BadSignature,
    MalformedRequest,
    ReplayedNonce,
    SignatureVerifier,
    StaleTimestamp,
    TooManyRequests,
    UnknownPartner,
    canonical,
    sign,
)

T0 = 1_717_000_000
BODY = b'{"a":1}'
SECRETS = {"mp": "partner-secret", "other": "s3cret"}


def _verifier(clock: VirtualClock, **kwargs: Any) -> SignatureVerifier:
    return SignatureVerifier(SECRETS, clock, max_skew_s=300, **kwargs)


def _signed(
    ts: int = T0, nonce: str = "nonce-0001", body: bytes = BODY, partner: str = "mp"
) -> dict[str, Any]:
    return {
        "partner_id": partner,
        "method": "POST",
        "path_with_query": "/v1/orders?x=1",
        "timestamp": str(ts),
        "nonce": nonce,
        "body": body,
        "signature": sign(SECRETS[partner], "post", "/v1/orders?x=1", ts, nonce, body),
    }


def test_canonical_form() -> None:
    """Method upper-cased, path, timestamp, nonce and the body's hex SHA-256, joined by newlines."""
    body_hash = hashlib.sha256(BODY).hexdigest()
    assert body_hash == "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
    expected = f"POST\n/v1/orders?x=1\n1717000000\nnonce-0001\n{body_hash}".encode()
    assert canonical("post", "/v1/orders?x=1", 1717000000, "nonce-0001", BODY) == expected


@pytest.mark.parametrize(
    ("secret", "method", "path", "nonce", "body", "signature"),
    [
        (
            "partner-secret",
            "POST",
            "/v1/orders?x=1",
            "nonce-0001",
            b'{"a":1}',
            "d1a7e7b068601ef39c051e90064a5ef29d5722e62dc1471ac2da1103eaea0cd7",
        ),
        (
            "s3cret",
            "get",
            "/v1/orders/o-1",
            "abcdefgh",
            b"",
            "8f653a077e63f49f1fc12f783ee690cd8ca6da3ece4f77bc07b96ab9c97aa17d",
        ),
    ],
)
def test_signature_vectors(
    secret: str, method: str, path: str, nonce: str, body: bytes, signature: str
) -> None:
    """Signatures equal those computed independently with ``openssl dgst -sha256 -hmac``."""
    assert sign(secret, method, path, "1717000000", nonce, body) == signature


def test_good_request_is_accepted_and_upper_case_hex_too() -> None:
    """A correctly signed fresh request passes; the signature's hex case does not matter."""
    verifier = _verifier(VirtualClock(T0))
    assert verifier.verify(**_signed()) == "mp"
    request = _signed(nonce="nonce-0002")
    request["signature"] = str(request["signature"]).upper()
    verifier.verify(**request)
    assert verifier.live_nonces == 2


def test_verify_headers() -> None:
    """The four X-Robopost-* headers carry the signature; a missing one is named."""
    request = _signed()
    headers = {
        "X-Robopost-Partner": "mp",
        "X-Robopost-Timestamp": request["timestamp"],
        "X-Robopost-Nonce": request["nonce"],
        "X-Robopost-Signature": request["signature"],
    }
    verifier = _verifier(VirtualClock(T0))
    assert verifier.verify_headers("POST", "/v1/orders?x=1", headers, BODY) == "mp"
    del headers["X-Robopost-Nonce"]
    with pytest.raises(MalformedRequest, match="the X-Robopost-Nonce header is missing"):
        verifier.verify_headers("POST", "/v1/orders?x=1", headers, BODY)


@pytest.mark.parametrize("field", ["partner_id", "timestamp", "nonce", "signature"])
def test_missing_header(field: str) -> None:
    """A missing (None) or empty header value is a malformed request, not a crash."""
    for value in (None, ""):
        request = _signed()
        request[field] = value
        with pytest.raises(MalformedRequest, match="header is missing"):
            _verifier(VirtualClock(T0)).verify(**request)


def test_unknown_partner() -> None:
    """A partner id that is not configured is refused."""
    request = _signed()
    request["partner_id"] = "stranger"
    with pytest.raises(UnknownPartner, match="'stranger' is not known"):
        _verifier(VirtualClock(T0)).verify(**request)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method", "PUT"),
        ("path_with_query", "/v1/orders?x=2"),
        ("nonce", "nonce-0009"),
        ("body", b'{"a":2}'),
        ("signature", "0" * 64),
        ("signature", "not hex"),
        ("partner_id", "other"),
    ],
)
def test_bad_signature(field: str, value: object) -> None:
    """Changing the method, path, nonce, body, signature or signer makes the signature not match."""
    request = _signed()
    request[field] = value
    with pytest.raises(BadSignature, match="does not match"):
        _verifier(VirtualClock(T0)).verify(**request)


@pytest.mark.parametrize(("offset", "ok"), [(-300, True), (300, True), (-301, False), (301, False)])
def test_skew(offset: int, ok: bool) -> None:
    """Timestamps up to 300 s from the server clock pass, either way; further ones are stale."""
    verifier = _verifier(VirtualClock(T0))
    request = _signed(ts=T0 + offset)
    if ok:
        verifier.verify(**request)
    else:
        with pytest.raises(StaleTimestamp, match=r"301 s away from server time \(allowed 300 s\)"):
            verifier.verify(**request)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timestamp", "1717000000.5"),
        ("timestamp", "soon"),
        ("timestamp", "١٧١٧٠٠٠٠٠٠"),
        ("nonce", "short"),
        ("nonce", "has space 123"),
        ("nonce", "x" * 129),
    ],
)
def test_malformed_headers(field: str, value: str) -> None:
    """Timestamps that are not whole seconds and nonces outside the allowed form are refused."""
    request = _signed()
    request[field] = value
    with pytest.raises(MalformedRequest):
        _verifier(VirtualClock(T0)).verify(**request)


def test_replay_is_refused_per_partner() -> None:
    """The same signed request twice is refused; another partner may use the same nonce."""
    verifier = _verifier(VirtualClock(T0))
    verifier.verify(**_signed())
    with pytest.raises(ReplayedNonce, match="already used by partner 'mp'"):
        verifier.verify(**_signed())
    verifier.verify(**_signed(partner="other"))


def test_replay_is_refused_for_as_long_as_the_timestamp_is_fresh() -> None:
    """A request stamped 300 s ahead stays fresh for 600 s: its nonce is remembered that long."""
    clock = VirtualClock(T0)
    verifier = _verifier(clock)
    verifier.verify(**_signed(ts=T0 + 300))
    clock.advance(600)
    with pytest.raises(ReplayedNonce):
        verifier.verify(**_signed(ts=T0 + 300))
    clock.advance(1)
    with pytest.raises(StaleTimestamp):
        verifier.verify(**_signed(ts=T0 + 300))
    assert verifier.live_nonces == 0


def test_refused_requests_do_not_burn_nonces() -> None:
    """A badly signed request does not record its nonce, so it cannot block the real one."""
    verifier = _verifier(VirtualClock(T0))
    forged = _signed()
    forged["signature"] = "f" * 64
    with pytest.raises(BadSignature):
        verifier.verify(**forged)
    verifier.verify(**_signed())


def test_nonce_memory_is_bounded() -> None:
    """With ``max_nonces`` live nonces, new requests are refused until old nonces expire."""
    clock = VirtualClock(T0)
    verifier = _verifier(clock, max_nonces=3)
    for i in range(3):
        verifier.verify(**_signed(nonce=f"nonce-000{i}"))
    with pytest.raises(TooManyRequests, match="retry later"):
        verifier.verify(**_signed(nonce="nonce-0003"))
    clock.advance(601)
    verifier.verify(**_signed(ts=T0 + 601, nonce="nonce-0003"))
    assert verifier.live_nonces == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_skew_s": 0}, "max_skew_s must be > 0"),
        ({"max_skew_s": 300, "nonce_ttl_s": 599}, "nonce_ttl_s must be >= 2 \\* max_skew_s"),
        ({"max_nonces": 0}, "max_nonces must be >= 1"),
    ],
)
def test_bad_parameters(kwargs: dict[str, Any], message: str) -> None:
    """Parameters that would let replays through or store nothing are refused."""
    with pytest.raises(ValueError, match=message):
        SignatureVerifier(SECRETS, VirtualClock(T0), **kwargs)
