"""Notification providers: the one narrow interface through which messages leave robopost.

A ``Provider`` sends one ``Message`` and answers with a ``ProviderResult``: sent, failed for now (the
outbox tries again later) or failed for good (the outbox keeps it as a dead letter). Providers do not
raise for failed deliveries; they turn their transport's errors into results.

- ``LogProvider`` only writes each message down (phone masked, pickup code starred): the demo and
  tests use it.
- ``WebhookProvider`` POSTs each message to an SMS/voice gateway as JSON, signed with HMAC-SHA256.

The webhook request (what a gateway implements)::

    POST {url}
    Content-Type: application/json
    X-Robopost-Signature: sha256=<hex HMAC-SHA256 of the raw body, key = the shared secret>
    Idempotency-Key: <id>

    {"kind": "sms" | "call", "to": "+8613812341234", "text": "...", "id": "<dedupe key>"}

The outbox delivers at least once: after a crash between sending and recording, the same message is
sent again with the same ``id``; the gateway drops a repeated ``id``. Answers: 2xx = sent; 408 and 429
(honouring a ``Retry-After`` in seconds) and 5xx = try again; any other status = permanent failure;
timeouts and connection errors = try again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from orchestrator.notify.messages import Message, MessageKind
from orchestrator.settings import NotifySettings

SIGNATURE_HEADER = "X-Robopost-Signature"
"""The request header carrying ``sha256=<hex HMAC-SHA256 of the body>``."""

_RETRYABLE_4XX = frozenset({408, 429})
_DETAIL_LIMIT = 300


@dataclass(frozen=True, slots=True)
class ProviderResult:
    """How a send went: ``ok``; else ``permanent`` (do not retry) or not; ``detail`` says why.

    ``retry_after_s`` is the provider's wish for the earliest retry (e.g. HTTP ``Retry-After``).
    """

    ok: bool
    permanent: bool = False
    detail: str = ""
    retry_after_s: float | None = None

    @classmethod
    def sent(cls, detail: str = "") -> ProviderResult:
        """The message was handed over."""
        return cls(ok=True, detail=detail)

    @classmethod
    def retry(cls, detail: str, retry_after_s: float | None = None) -> ProviderResult:
        """The message did not go out this time; trying again may work."""
        return cls(ok=False, permanent=False, detail=detail, retry_after_s=retry_after_s)

    @classmethod
    def failed(cls, detail: str) -> ProviderResult:
        """The message can never go out as it is (refused by the gateway, bad number, ...)."""
        return cls(ok=False, permanent=True, detail=detail)


class Provider(Protocol):
    """Sends messages. ``send`` answers with a result instead of raising for a failed delivery."""

    async def send(self, message: Message) -> ProviderResult:
        """Hand ``message`` to the recipient's network and say how it went."""
        ...


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    """What ``LogProvider`` keeps of a message: no phone number in clear, no pickup code."""

    kind: MessageKind
    to_masked: str
    text: str
    dedupe_key: str


class LogProvider:
    """Writes each message to a logger (phone masked, secrets starred) and keeps it in ``messages``."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("robopost.notify")
        self.messages: list[LoggedMessage] = []

    async def send(self, message: Message) -> ProviderResult:
        """Record the message; always succeeds."""
        logged = LoggedMessage(message.kind, message.to_masked, message.redacted_text, message.dedupe_key)
        self.messages.append(logged)
        self._log.info(
            "%s to %s [%s]: %s", logged.kind.value, logged.to_masked, logged.dedupe_key, logged.text
        )
        return ProviderResult.sent("logged")


class WebhookProvider:
    """POSTs each message as signed JSON to an SMS/voice gateway (see the module docstring).

    ``client`` is the caller's ``httpx.AsyncClient`` (its lifetime is the caller's; tests give one
    with their own transport). ``timeout_s`` bounds each request.
    """

    def __init__(self, url: str, secret: str, client: httpx.AsyncClient, *, timeout_s: float = 10.0) -> None:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ValueError(f"webhook url must be an http(s) URL, got {url!r}")
        if not secret:
            raise ValueError("webhook secret must not be empty: the gateway checks every request with it")
        if timeout_s <= 0:
            raise ValueError(f"webhook timeout_s must be > 0, got {timeout_s}")
        self._url = url
        self._secret = secret.encode()
        self._client = client
        self._timeout = timeout_s

    async def send(self, message: Message) -> ProviderResult:
        """POST the message; map the answer or the transport error to a result."""
        body = webhook_body(message)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign_body(self._secret, body),
            "Idempotency-Key": message.dedupe_key,
        }
        try:
            response = await self._client.post(
                self._url, content=body, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            return ProviderResult.retry(f"gateway timed out: {type(exc).__name__}")
        except httpx.UnsupportedProtocol as exc:
            return ProviderResult.failed(f"gateway url is not usable: {exc}")
        except httpx.HTTPError as exc:  # connection refused or reset, protocol errors, ...
            return ProviderResult.retry(f"gateway unreachable: {type(exc).__name__}: {exc}")
        return _result_of(response)


def webhook_body(message: Message) -> bytes:
    """The JSON body a gateway receives for ``message`` (UTF-8, compact)."""
    payload = {
        "kind": message.kind.value,
        "to": message.to_phone,
        "text": message.text,
        "id": message.dedupe_key,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def sign_body(secret: bytes, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=`` and the hex HMAC-SHA256 under ``secret``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _result_of(response: httpx.Response) -> ProviderResult:
    """Map the gateway's HTTP status to a result (see the module docstring)."""
    status = response.status_code
    detail = f"HTTP {status}"
    if 200 <= status < 300:
        return ProviderResult.sent(detail)
    text = " ".join(response.text.split())[:_DETAIL_LIMIT]
    detail = f"{detail}: {text}" if text else detail
    if status in _RETRYABLE_4XX:
        return ProviderResult.retry(detail, _retry_after(response))
    if status >= 500:
        return ProviderResult.retry(detail, _retry_after(response))
    return ProviderResult.failed(detail)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, if the gateway sent one as a number (HTTP dates are ignored)."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def provider_from_settings(
    settings: NotifySettings, client: httpx.AsyncClient | None = None, logger: logging.Logger | None = None
) -> Provider:
    """The provider ``settings.provider`` names; ``webhook`` needs the service's ``client``."""
    if settings.provider == "log":
        return LogProvider(logger)
    if client is None:
        raise ValueError("the webhook notification provider needs an httpx.AsyncClient")
    if settings.webhook_url is None:  # NotifySettings refuses this already; kept for the type checker
        raise ValueError("notify.provider webhook needs notify.webhook_url")
    return WebhookProvider(settings.webhook_url, settings.webhook_secret, client)
