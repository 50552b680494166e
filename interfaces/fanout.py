"""Hand every published value to each open stream: the reports of a driver to all its listeners.

A driver keeps one ``Fanout[T]``; each listener takes a ``Stream[T]`` (``fanout.stream()``), reads it
with ``async for`` or ``await stream.get()`` and closes it when done (``close()``, or
``async with contextlib.aclosing(stream)``). ``publish`` never blocks: a stream that falls
``maxsize`` values behind loses its oldest ones. Everything runs on one event loop (no thread-safety).

This module imports nothing of ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Fanout(Generic[T]):
    """The latest published value (``latest``) and one queue per open stream."""

    def __init__(self, latest: T | None = None, maxsize: int = 1000) -> None:
        if maxsize < 1:
            raise ValueError(f"Fanout: maxsize must be >= 1, got {maxsize}")
        self.latest: T | None = latest
        self._maxsize = maxsize
        self._queues: set[asyncio.Queue[T]] = set()

    def publish(self, value: T) -> None:
        """Record ``value`` as the latest and queue it for every open stream."""
        self.latest = value
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(value)

    def stream(self) -> Stream[T]:
        """A stream of the values published from now on."""
        queue: asyncio.Queue[T] = asyncio.Queue(self._maxsize)
        self._queues.add(queue)
        return Stream(queue, self._queues.discard)

    @property
    def listeners(self) -> int:
        """How many streams are open."""
        return len(self._queues)


class Stream(Generic[T]):
    """Values in order; ``async for`` over it, or ``await get()``; ``close()`` to stop receiving."""

    def __init__(self, queue: asyncio.Queue[T], on_close: Callable[[asyncio.Queue[T]], None]) -> None:
        self._queue = queue
        self._on_close = on_close

    def __aiter__(self) -> Stream[T]:
        return self

    async def __anext__(self) -> T:
        return await self._queue.get()

    async def get(self) -> T:
        """The next value (waits for it)."""
        return await self._queue.get()

    async def until(self, predicate: Callable[[T], bool]) -> T:
        """The first coming value for which ``predicate`` holds (earlier ones are consumed)."""
        while not predicate(value := await self._queue.get()):
            pass
        return value

    def close(self) -> None:
        """Stop receiving values."""
        self._on_close(self._queue)

    async def aclose(self) -> None:
        """``close()``, so that ``contextlib.aclosing(fanout.stream())`` works."""
        self.close()
