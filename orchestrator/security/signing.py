"""Signed partner requests (the mini-program backend): HMAC-SHA256 over method, path, time, nonce, body.

A partner sends four headers with every request:

==========================  =========================================================================
``X-Robopost-Partner``      its partner id (a key of ``security.partners``)
``X-Robopost-Timestamp``    Unix time in whole seconds, e.g. ``1717000000``
``X-Robopost-Nonce``        a fresh random string per request, 8-128 of ``A-Z a-z 0-9 - _ . ~``
``X-Robopost-Signature``    lowercase hex HMAC-SHA256, keyed with the partner secret's UTF-8 bytes,
                            of the canonical request below
==========================  =========================================================================

The canonical request is five lines joined by ``\\n`` (no trailing newline)::

    POST                                         method, upper case
    /v1/orders?x=1                               path with the query string exactly as sent
    1717000000                                   the timestamp header
    3f1c9a2b7e                                   the nonce header
    <hex sha256 of the raw body bytes>           (of b"" for an empty body)

The receiver refuses an unknown partner, a timestamp more than ``max_skew_s`` from its clock, a
signature that does not match (compared in constant time) and a nonce already used by that partner
within ``nonce_ttl_s``. The same ``sign`` serves our outgoing status webhooks.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
from collections.abc import Mapping

from interfaces.clock import Clock
from orchestrator.security.errors import (
    BadSignature,
    MalformedRequest,
    ReplayedNonce,
    StaleTimestamp,
    TooManyRequests,
    UnknownPartner,
)

PARTNER_HEADER = "X-Robopost-Partner"
TIMESTAMP_HEADER = "X-Robopost-Timestamp"
NONCE_HEADER = "X-Robopost-Nonce"
SIGNATURE_HEADER = "X-Robopost-Signature"
SIGNATURE_HEADERS = (PARTNER_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)

_NONCE = re.compile(r"[A-Za-z0-9\-_.~]{8,128}")
_TIMESTAMP = re.compile(r"-?[0-9]{1,12}")


def canonical(method: str, path_with_query: str, timestamp: str | int, nonce: str, body: bytes) -> bytes:
    """What a signature covers: method (upper), path, timestamp, nonce, hex sha256(body), by ``\\n``."""
    parts = (method.upper(), path_with_query, str(timestamp), nonce, hashlib.sha256(body).hexdigest())
    return "\n".join(parts).encode("utf-8")


def sign(
    secret: str, method: str, path_with_query: str, timestamp: str | int, nonce: str, body: bytes
) -> str:
    """Lowercase hex HMAC-SHA256 of the canonical request, keyed with ``secret`` as UTF-8."""
    message = canonical(method, path_with_query, timestamp, nonce, body)
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


class SignatureVerifier:
    """Checks signed partner requests and remembers their nonces to refuse replays.

    ``nonce_ttl_s`` defaults to twice ``max_skew_s``, the least that refuses every replay a fresh
    timestamp would still allow. At most ``max_nonces`` live nonces are kept; when that many are live
    a new request is refused with ``TooManyRequests`` rather than forgetting a live nonce (only
    correctly signed requests are remembered, so only a partner can fill it). Not thread-safe: use it
    from the event loop.
    """

    def __init__(
        self,
        secrets: Mapping[str, str],
        clock: Clock,
        max_skew_s: float = 300.0,
        nonce_ttl_s: float | None = None,
        max_nonces: int = 200_000,
    ) -> None:
        ttl = 2 * max_skew_s if nonce_ttl_s is None else nonce_ttl_s
        if max_skew_s <= 0:
            raise ValueError(f"SignatureVerifier: max_skew_s must be > 0, got {max_skew_s}")
        if ttl < 2 * max_skew_s:
            raise ValueError(f"SignatureVerifier: nonce_ttl_s must be >= 2 * max_skew_s, got {ttl}")
        if max_nonces < 1:
            raise ValueError(f"SignatureVerifier: max_nonces must be >= 1, got {max_nonces}")
        self._secrets = {pid: secret.encode("utf-8") for pid, secret in secrets.items()}
        self._clock = clock
        self._max_skew_s = max_skew_s
        self._nonce_ttl_s = ttl
        self._max_nonces = max_nonces
        self._nonces: dict[tuple[str, str], float] = {}
        self._expiries: list[tuple[float, str, str]] = []

    @property
    def live_nonces(self) -> int:
        """How many nonces are remembered now (expired ones are dropped first)."""
        self._expire(self._clock.now())
        return len(self._nonces)

    def verify(
        self,
        partner_id: str | None,
        method: str,
        path_with_query: str,
        timestamp: str | None,
        nonce: str | None,
        body: bytes,
        signature: str | None,
    ) -> str:
        """The partner id if the request is authentic, else the ``SignatureError`` that says why not.

        Remembers the nonce of an accepted request. Header values may be ``None`` (header missing):
        that is a ``MalformedRequest`` naming the header.
        """
        partner_id = _required(PARTNER_HEADER, partner_id)
        timestamp = _required(TIMESTAMP_HEADER, timestamp)
        nonce = _required(NONCE_HEADER, nonce)
        signature = _required(SIGNATURE_HEADER, signature)
        secret = self._secrets.get(partner_id)
        if secret is None:
            raise UnknownPartner(f"partner {partner_id[:64]!r} is not known")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise MalformedRequest(f"{TIMESTAMP_HEADER} must be Unix time in whole seconds")
        if not _NONCE.fullmatch(nonce):
            raise MalformedRequest(f"{NONCE_HEADER} must be 8-128 characters of A-Z a-z 0-9 - _ . ~")
        now = self._clock.now()
        if abs(now - int(timestamp)) > self._max_skew_s:
            raise StaleTimestamp(
                f"{TIMESTAMP_HEADER} is {abs(now - int(timestamp)):.0f} s away from server time "
                f"(allowed {self._max_skew_s:.0f} s)"
            )
        expected = hmac.new(
            secret, canonical(method, path_with_query, timestamp, nonce, body), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("utf-8")):
            raise BadSignature("the request signature does not match")
        self._remember(partner_id, nonce, now)
        return partner_id

    def verify_headers(
        self, method: str, path_with_query: str, headers: Mapping[str, str], body: bytes
    ) -> str:
        """``verify`` with the four ``X-Robopost-*`` headers read from ``headers``; returns the partner id.

        ``headers`` must look names up case-insensitively (Starlette's ``Headers`` does) or use the
        exact spellings of ``SIGNATURE_HEADERS``.
        """
        return self.verify(
            headers.get(PARTNER_HEADER),
            method,
            path_with_query,
            headers.get(TIMESTAMP_HEADER),
            headers.get(NONCE_HEADER),
            body,
            headers.get(SIGNATURE_HEADER),
        )

    def _remember(self, partner_id: str, nonce: str, now: float) -> None:
        """Record the nonce, refusing it if it is still live from an earlier request."""
        self._expire(now)
        key = (partner_id, nonce)
        if key in self._nonces:
            raise ReplayedNonce(f"nonce already used by partner {partner_id!r}")
        if len(self._nonces) >= self._max_nonces:
            raise TooManyRequests("too many signed requests in the replay window; retry later")
        expiry = now + self._nonce_ttl_s
        self._nonces[key] = expiry
        heapq.heappush(self._expiries, (expiry, partner_id, nonce))

    def _expire(self, now: float) -> None:
        """Forget nonces whose lifetime has ended (a nonce is still live at exactly its expiry)."""
        while self._expiries and self._expiries[0][0] < now:
            _, partner_id, nonce = heapq.heappop(self._expiries)
            self._nonces.pop((partner_id, nonce), None)


def _required(name: str, value: str | None) -> str:
    """A header value, or ``MalformedRequest`` when it is missing or empty."""
    if not value:
        raise MalformedRequest(f"the {name} header is missing")
    return value
