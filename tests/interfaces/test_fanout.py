"""The fan-out of reports to listeners: order, a slow listener, closing."""

from __future__ import annotations

import contextlib

import pytest

from interfaces.fanout import Fanout


async def test_every_stream_gets_every_value_in_order() -> None:
    """Two streams both get 1, 2, 3; ``latest`` is the last published."""
    fanout: Fanout[int] = Fanout()
    a, b = fanout.stream(), fanout.stream()
    for value in (1, 2, 3):
        fanout.publish(value)
    assert [await a.get() for _ in range(3)] == [1, 2, 3]
    assert await b.until(lambda v: v > 1) == 2
    assert fanout.latest == 3


async def test_a_slow_stream_loses_its_oldest_values_and_a_closed_one_gets_none() -> None:
    """With room for 2, a stream that read nothing keeps the newest two; a closed stream is dropped."""
    fanout: Fanout[str] = Fanout(maxsize=2)
    slow, gone = fanout.stream(), fanout.stream()
    gone.close()
    for value in "abc":
        fanout.publish(value)
    assert [await slow.get(), await slow.get()] == ["b", "c"]
    assert fanout.listeners == 1


def test_a_fanout_needs_room() -> None:
    """maxsize 0 is refused."""
    with pytest.raises(ValueError, match="maxsize"):
        Fanout(maxsize=0)


async def test_a_stream_closes_with_aclosing() -> None:
    """Leaving ``aclosing(stream)`` closes the stream: the fan-out forgets it."""
    fanout: Fanout[int] = Fanout()
    async with contextlib.aclosing(fanout.stream()) as stream:
        fanout.publish(1)
        assert await stream.get() == 1
        assert fanout.listeners == 1
    assert fanout.listeners == 0
