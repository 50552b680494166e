"""Message headers for one robot: ``headerId`` per topic, timestamps from a ``Clock``.

VDA 5050 §6.2: every message carries ``headerId`` (per topic, +1 with each message *sent*),
``timestamp``, ``version``, ``manufacturer`` and ``serialNumber``. Master control keeps one
``HeaderFactory`` per robot it talks to (manufacturer/serial are the robot's); a robot keeps its own.
Header ids start at 0 when the factory is made.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, TypeVar

from interfaces.clock import Clock
from interfaces.vda5050.base import DEFAULT_VERSION, Vda5050Model, check_version, timestamp_from_epoch
from interfaces.vda5050.errors import Vda5050Error
from interfaces.vda5050.factsheet import Factsheet
from interfaces.vda5050.order import InstantActions, Order
from interfaces.vda5050.state import Connection, State, Visualization
from interfaces.vda5050.topics import TopicKind

M = TypeVar("M", bound=Vda5050Model)

_KIND_OF_MODEL: dict[type[Vda5050Model], TopicKind] = {
    Order: TopicKind.ORDER,
    InstantActions: TopicKind.INSTANT_ACTIONS,
    State: TopicKind.STATE,
    Visualization: TopicKind.VISUALIZATION,
    Connection: TopicKind.CONNECTION,
    Factsheet: TopicKind.FACTSHEET,
}


class HeaderFactory:
    """Headers for one robot: ``make(State, order_id=..., ...)`` or ``stamp(msg)`` at send time."""

    def __init__(
        self, manufacturer: str, serial_number: str, version: str = DEFAULT_VERSION, *, clock: Clock
    ):
        try:
            check_version(version)
        except ValueError as exc:
            raise Vda5050Error(f"HeaderFactory: {exc}") from None
        self.manufacturer = manufacturer
        self.serial_number = serial_number
        self.version = version
        self._clock = clock
        self._next_id: defaultdict[TopicKind, int] = defaultdict(int)

    def fields(self, kind: TopicKind | str) -> dict[str, Any]:
        """The five header fields (snake_case keys) for the next message on ``kind``; uses one id."""
        topic = TopicKind(kind)
        header_id = self._next_id[topic]
        self._next_id[topic] = header_id + 1
        return {
            "header_id": header_id,
            "timestamp": timestamp_from_epoch(self._clock.now()),
            "version": self.version,
            "manufacturer": self.manufacturer,
            "serial_number": self.serial_number,
        }

    def make(self, model: type[M], **body: Any) -> M:
        """A new ``model`` message with the next header of its topic and the given body fields."""
        return model(**self.fields(kind_of(model)), **body)

    def stamp(self, msg: M) -> M:
        """A copy of ``msg`` with the next header of its topic (e.g. to resend an identical order)."""
        return msg.model_copy(update=self.fields(kind_of(type(msg))))


def kind_of(model: type[Vda5050Model]) -> TopicKind:
    """The topic kind a message model travels on (``State`` → ``state``)."""
    for cls in model.__mro__:
        if cls in _KIND_OF_MODEL:
            return _KIND_OF_MODEL[cls]
    raise Vda5050Error(f"{model.__name__} is not a VDA 5050 message model")
