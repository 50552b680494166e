"""Providers: the log provider keeps no personal data; the webhook provider against a real HTTP receiver."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

import httpx
import pytest
from notify_testkit import GATEWAY_SECRET, PHONE, GatewayStub, Reply, at

from orchestrator.notify.messages import MessageKind, cart_at_stop, office_delivery_call
from orchestrator.notify.providers import (
    LogProvider,
    ProviderResult,
    WebhookProvider,
    provider_from_settings,
    sign_body,
    webhook_body,
)
from orchestrator.settings import NotifySettings

MESSAGE = cart_at_stop(PHONE, "042917", "Dorm 3", at(3600), ref="p17/w3")


def _webhook(gateway: GatewayStub, client: httpx.AsyncClient, timeout_s: float = 5.0) -> WebhookProvider:
    return WebhookProvider(gateway.url, GATEWAY_SECRET, client, timeout_s=timeout_s)


async def test_webhook_posts_signed_json_and_reports_success(
    gateway: GatewayStub, http_client: httpx.AsyncClient
) -> None:
    """A 2xx answer is a success; the gateway gets kind, phone, text and the dedupe key as id, signed."""
    result = await _webhook(gateway, http_client).send(MESSAGE)
    assert result == ProviderResult(ok=True, permanent=False, detail="HTTP 200")
    [request] = gateway.requests
    assert request.method == "POST" and request.path == "/sms"
    assert request.json() == {"kind": "sms", "to": PHONE, "text": MESSAGE.text, "id": "cart_at_stop/p17/w3"}
    assert request.signed
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "cart_at_stop/p17/w3"
    assert "取件码" in request.body.decode("utf-8")  # UTF-8, not \\u escapes


async def test_the_signature_covers_the_body(gateway: GatewayStub, http_client: httpx.AsyncClient) -> None:
    """The signature is the HMAC of exactly these bytes: another body or secret does not match."""
    await _webhook(gateway, http_client).send(MESSAGE)
    [request] = gateway.requests
    signature = request.headers["x-robopost-signature"]
    assert signature == sign_body(GATEWAY_SECRET.encode(), webhook_body(MESSAGE))
    assert signature != sign_body(b"another secret", request.body)
    assert signature != sign_body(GATEWAY_SECRET.encode(), request.body.replace(b"042917", b"042918"))


@pytest.mark.parametrize(
    ("reply", "permanent", "retry_after"),
    [
        (Reply(status=503), False, None),
        (Reply(status=500), False, None),
        (Reply(status=408), False, None),
        (Reply(status=429, headers=(("Retry-After", "7"),)), False, 7.0),
        (Reply(status=502, headers=(("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),)), False, None),
        (Reply(status=400, body="bad number"), True, None),
        (Reply(status=401), True, None),
        (Reply(status=404), True, None),
        (Reply(status=302, headers=(("Location", "http://elsewhere/"),)), True, None),
    ],
)
async def test_gateway_statuses_map_to_retry_or_permanent_failure(
    gateway: GatewayStub,
    http_client: httpx.AsyncClient,
    reply: Reply,
    permanent: bool,
    retry_after: float | None,
) -> None:
    """5xx, 408 and 429 may work later (with Retry-After in seconds); other statuses never will."""
    gateway.then(reply)
    result = await _webhook(gateway, http_client).send(MESSAGE)
    assert not result.ok
    assert result.permanent is permanent
    assert result.retry_after_s == retry_after
    assert result.detail.startswith(f"HTTP {reply.status}")


async def test_the_gateway_answer_is_kept_in_the_detail(
    gateway: GatewayStub, http_client: httpx.AsyncClient
) -> None:
    """The operator sees why the gateway refused (its answer, on one line and shortened)."""
    gateway.then(Reply(status=400, body="invalid\nnumber " + "x" * 1000))
    result = await _webhook(gateway, http_client).send(MESSAGE)
    assert result.detail.startswith("HTTP 400: invalid number x")
    assert len(result.detail) < 350


async def test_a_dropped_connection_is_retryable(
    gateway: GatewayStub, http_client: httpx.AsyncClient
) -> None:
    """The gateway closing the connection without an answer is worth another try."""
    gateway.then(Reply(how="drop"))
    result = await _webhook(gateway, http_client).send(MESSAGE)
    assert not result.ok and not result.permanent
    assert "unreachable" in result.detail


async def test_a_timeout_is_retryable(gateway: GatewayStub, http_client: httpx.AsyncClient) -> None:
    """A gateway that does not answer within the timeout is worth another try."""
    gateway.then(Reply(how="hang"))
    result = await _webhook(gateway, http_client, timeout_s=0.2).send(MESSAGE)
    assert not result.ok and not result.permanent
    assert "timed out" in result.detail


async def test_connection_refused_is_retryable(http_client: httpx.AsyncClient) -> None:
    """Nothing listening at the gateway's address: try again later."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request: nothing listens there
    provider = WebhookProvider(f"http://127.0.0.1:{port}/sms", GATEWAY_SECRET, http_client)
    result = await provider.send(MESSAGE)
    assert not result.ok and not result.permanent
    assert "ConnectError" in result.detail


async def test_calls_go_through_the_same_webhook(
    gateway: GatewayStub, http_client: httpx.AsyncClient
) -> None:
    """A phone call is posted with kind ``call`` and the script as text."""
    call = office_delivery_call(PHONE, "731904", "A栋 5F", at(0) + timedelta(minutes=30), ref="p9")
    assert (await _webhook(gateway, http_client).send(call)).ok
    assert gateway.requests[0].json()["kind"] == "call"


@pytest.mark.parametrize(
    ("url", "secret", "timeout", "error"),
    [
        ("ftp://gateway/sms", "s", 1.0, "http"),
        ("gateway/sms", "s", 1.0, "http"),
        ("http://gateway/sms", "", 1.0, "secret"),
        ("http://gateway/sms", "s", 0.0, "timeout"),
    ],
)
async def test_webhook_refuses_bad_configuration(
    http_client: httpx.AsyncClient, url: str, secret: str, timeout: float, error: str
) -> None:
    """A bad URL, an empty secret or a zero timeout is refused when the provider is built."""
    with pytest.raises(ValueError, match=error):
        WebhookProvider(url, secret, http_client, timeout_s=timeout)


async def test_log_provider_keeps_and_logs_no_phone_or_code(caplog: pytest.LogCaptureFixture) -> None:
    """The demo provider succeeds and keeps the masked phone and the redacted text only."""
    provider = LogProvider(logging.getLogger("test.notify"))
    with caplog.at_level(logging.INFO, logger="test.notify"):
        result = await provider.send(MESSAGE)
    assert result.ok
    [kept] = provider.messages
    assert kept.kind is MessageKind.SMS and kept.to_masked == "138****1234"
    assert kept.dedupe_key == MESSAGE.dedupe_key
    assert "042917" not in kept.text and "******" in kept.text
    assert "138****1234" in caplog.text and PHONE not in caplog.text and "042917" not in caplog.text


async def test_provider_from_settings(http_client: httpx.AsyncClient) -> None:
    """``log`` gives a LogProvider; ``webhook`` a WebhookProvider, which needs the HTTP client."""
    assert isinstance(provider_from_settings(NotifySettings()), LogProvider)
    webhook = NotifySettings(provider="webhook", webhook_url="http://127.0.0.1:9/sms", webhook_secret="s")
    assert isinstance(provider_from_settings(webhook, http_client), WebhookProvider)
    with pytest.raises(ValueError, match=r"httpx\.AsyncClient"):
        provider_from_settings(webhook)
