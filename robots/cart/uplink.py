"""The cart's link to the orchestrator's cart API (``/v1/carts/{cart}/...``, bearer token per cart).

``HttpUplink`` fetches the code sync, sends the queued events (``pickup`` → ``POST .../pickups``,
``arrival`` → ``POST .../stops:arrive``) and reports compartments (``PUT .../compartments``). Failures
come out as ``robots.cart.events.Unreachable`` (try later) or ``Refused`` (the orchestrator said no for
good); see ``robots.cart.events`` for which answer is which. The httpx transport is a constructor
argument, so tests can talk to the app in memory as well as over loopback.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import httpx

from robots.cart.events import CartEvent, Refused, Unreachable

RETRYABLE = frozenset({401, 408, 425, 429})
"""4xx answers that say "not now" rather than "never" (401: a token being rotated)."""

ROUTES = {"pickup": ("POST", "/pickups"), "arrival": ("POST", "/stops:arrive")}
"""Where each kind of event goes, under ``/v1/carts/{cart}``."""


class Uplink(Protocol):
    """What the cart service needs from the orchestrator."""

    async def fetch_codes(self) -> bytes:
        """The code sync as JSON bytes; ``Unreachable``/``Refused`` when it cannot be had."""

    async def send(self, event: CartEvent) -> None:
        """Deliver one event; returns once the orchestrator took it (new or replayed)."""

    async def report_compartments(self, compartments: Sequence[dict[str, Any]]) -> None:
        """Report doors and occupancy (``[{"id", "door", "occupied"}]``)."""

    async def close(self) -> None:
        """Release the connection pool."""


class HttpUplink:
    """``Uplink`` over HTTP(S) with httpx."""

    def __init__(
        self,
        base_url: str,
        cart: str,
        token: str,
        *,
        timeout_s: float = 3.0,
        transport: httpx.AsyncBaseTransport | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.cart = cart
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            transport=transport,
        )
        self._log = logger or logging.getLogger("robopost.cart.uplink")

    async def fetch_codes(self) -> bytes:
        response = await self._request("GET", "/codes")
        return response.content

    async def send(self, event: CartEvent) -> None:
        try:
            method, path = ROUTES[event.kind]
        except KeyError:
            raise Refused(f"unknown event kind {event.kind!r}") from None
        body = (
            event.body if event.kind == "pickup" else {k: v for k, v in event.body.items() if k != "event_id"}
        )
        await self._request(method, path, body)

    async def report_compartments(self, compartments: Sequence[dict[str, Any]]) -> None:
        await self._request("PUT", "/compartments", {"compartments": list(compartments)})

    async def close(self) -> None:
        await self._client.aclose()

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = await self._client.request(method, f"/v1/carts/{self.cart}{path}", json=body)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status < 300:
            return response
        detail = _detail(response)
        if status >= 500 or status in RETRYABLE:
            raise Unreachable(f"{method} {path}: HTTP {status}: {detail}")
        raise Refused(f"{method} {path}: HTTP {status}: {detail}")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail", ""))[:200] if isinstance(body, dict) else str(body)[:200]
