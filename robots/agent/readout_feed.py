"""Fan-out of a driver's ``Readout`` snapshots to every reader (``RobotDriver.readouts()``).

Each ``ReadoutStream`` has its own bounded queue and is registered the moment it is made, so a reader
sees every readout published after its ``readouts()`` call. A slow reader loses the *oldest* snapshots
(the newest is what matters); a reader that is dropped without ``close()`` is forgotten with it.
Runs on the asyncio loop only (drivers hop there first).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator

from robots.agent.driver import Readout

DEFAULT_BACKLOG = 256
"""Readouts a stream keeps for a reader that falls behind (about 12 s of 20 Hz odometry)."""


class ReadoutStream(AsyncIterator[Readout]):
    """One reader's view of a ``ReadoutFeed``: ``await stream.get()`` or ``async for``."""

    def __init__(self, feed: ReadoutFeed, backlog: int) -> None:
        self._feed = feed
        self._queue: asyncio.Queue[Readout] = asyncio.Queue(maxsize=backlog)

    def put(self, readout: Readout) -> None:
        """Queue a readout, dropping the oldest one when the reader is ``backlog`` behind."""
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(readout)

    async def get(self) -> Readout:
        """The next readout (waits for one)."""
        return await self._queue.get()

    def drain(self) -> list[Readout]:
        """Every readout queued now, oldest first, without waiting."""
        readouts = []
        while not self._queue.empty():
            readouts.append(self._queue.get_nowait())
        return readouts

    def close(self) -> None:
        """Stop receiving readouts."""
        self._feed.unsubscribe(self)

    def __aiter__(self) -> ReadoutStream:
        return self

    async def __anext__(self) -> Readout:
        return await self.get()


class ReadoutFeed:
    """Publishes each new ``Readout`` to every open ``ReadoutStream``."""

    def __init__(self, backlog: int = DEFAULT_BACKLOG) -> None:
        if backlog < 1:
            raise ValueError(f"ReadoutFeed: backlog must be >= 1, got {backlog}")
        self._backlog = backlog
        self._streams: weakref.WeakSet[ReadoutStream] = weakref.WeakSet()

    def subscribe(self) -> ReadoutStream:
        """A new stream that receives every readout published from now on."""
        stream = ReadoutStream(self, self._backlog)
        self._streams.add(stream)
        return stream

    def unsubscribe(self, stream: ReadoutStream) -> None:
        """Stop feeding ``stream`` (no error if it was not subscribed)."""
        self._streams.discard(stream)

    def publish(self, readout: Readout) -> None:
        """Hand ``readout`` to every open stream."""
        for stream in list(self._streams):
            stream.put(readout)
