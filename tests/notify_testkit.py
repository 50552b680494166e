"""Test kit of the notification tests: ``GatewayStub`` (a real HTTP/1.1 SMS gateway on 127.0.0.1 that
can be told to fail), an inline blocking runner, a real cipher and time helpers."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from interfaces.clock import Clock
from orchestrator.notify.messages import Message
from orchestrator.notify.providers import SIGNATURE_HEADER, ProviderResult, sign_body
from orchestrator.security.crypto import PersonalDataCipher
from orchestrator.security.keys import Keys

T = TypeVar("T")

T0 = 1_800_000_000.0
"""Where the virtual clock starts (2027-01-15 08:00:00 UTC, 16:00 in China)."""

GATEWAY_SECRET = "gateway-test-secret"
PHONE = "13812341234"


def at(seconds: float) -> datetime:
    """The aware UTC datetime ``seconds`` after ``T0``."""
    return datetime.fromtimestamp(T0 + seconds, tz=UTC)


async def inline(func: Callable[[], T], /) -> T:
    """A ``BlockingRunner`` that runs the database work right in the loop: deterministic in tests."""
    return func()


def make_cipher() -> PersonalDataCipher:
    """The real personal-data cipher under fresh random keys."""
    return PersonalDataCipher(Keys({"k1": secrets.token_bytes(32)}, "k1", secrets.token_bytes(32)))


# --- A real HTTP gateway on loopback -----------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What the stub does with one request: answer ``status``, close without answering, or hang."""

    how: Literal["answer", "drop", "hang"] = "answer"
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: str = "queued"


@dataclass(frozen=True)
class Received:
    """One request the stub read."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, str]:
        data: dict[str, str] = json.loads(self.body)
        return data

    @property
    def signed(self) -> bool:
        """Whether the signature header matches the body under ``GATEWAY_SECRET``."""
        return self.headers.get(SIGNATURE_HEADER.lower()) == sign_body(GATEWAY_SECRET.encode(), self.body)


@dataclass
class GatewayStub:
    """A minimal HTTP/1.1 server on 127.0.0.1 playing an SMS gateway.

    It records every request, answers from ``script`` (then 200), closes each connection after one
    exchange, and, like a real gateway, delivers a message id once: ``delivered`` holds the ids sent
    on to phones, ``duplicates`` counts accepted requests whose id was already delivered (dropped).
    """

    requests: list[Received] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    duplicates: int = 0
    script: deque[Reply] = field(default_factory=deque)
    _server: asyncio.Server | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for_requests(self, count: int) -> None:
        """Return once ``count`` requests have arrived (no polling: woken by each arrival)."""
        while len(self.requests) < count:
            self._arrived.clear()
            await self._arrived.wait()

    def then(self, reply: Reply, times: int = 1) -> GatewayStub:
        """Answer the next ``times`` requests with ``reply``."""
        self.script.extend([reply] * times)
        return self

    def fail(self, times: int, status: int = 503) -> GatewayStub:
        """Answer the next ``times`` requests with ``status``."""
        return self.then(Reply(status=status, body="gateway busy"), times)

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/sms"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _deliver(self, message_id: str) -> None:
        if message_id in self.delivered:
            self.duplicates += 1
        else:
            self.delivered.append(message_id)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            self.requests.append(request)
            self._arrived.set()
            reply = self.script.popleft() if self.script else Reply()
            if reply.how == "hang":
                await self._release.wait()
            elif reply.how == "answer":
                if 200 <= reply.status < 300:
                    self._deliver(request.json()["id"])
                writer.write(_response(reply))
                await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> Received:
    """Read one request: request line, headers, a ``Content-Length`` body."""
    method, path, _version = (await reader.readline()).decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (line := (await reader.readline()).decode("latin-1").strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(method, path, headers, body)


def _response(reply: Reply) -> bytes:
    body = reply.body.encode()
    head = [f"HTTP/1.1 {reply.status} Status", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in reply.headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class ScriptedProvider:
    """A provider answering from ``results`` (then success); keeps each message and the clock time."""

    def __init__(self, clock: Clock, results: Iterable[ProviderResult | Exception] = ()) -> None:
        self._clock = clock
        self.results: deque[ProviderResult | Exception] = deque(results)
        self.sent: list[tuple[float, Message]] = []

    @property
    def times(self) -> list[float]:
        """When each message was sent, in seconds after ``T0``."""
        return [when - T0 for when, _ in self.sent]

    async def send(self, message: Message) -> ProviderResult:
        self.sent.append((self._clock.now(), message))
        result = self.results.popleft() if self.results else ProviderResult.sent("ok")
        if isinstance(result, Exception):
            raise result
        return result


class FailingSessions:
    """Sessions whose ``begin()`` calls numbered in ``fail_on`` (from 1) fail as a lost database would."""

    def __init__(self, sessions: sessionmaker[Session], fail_on: Iterable[int]) -> None:
        self._sessions = sessions
        self._fail_on = set(fail_on)
        self.calls = 0

    def begin(self) -> AbstractContextManager[Session]:
        self.calls += 1
        if self.calls in self._fail_on:
            raise OperationalError("COMMIT", {}, ConnectionError("the database went away"))
        return self._sessions.begin()
