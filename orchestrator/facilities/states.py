"""Every lift's state as the elevator bridges publish it (retained), for whoever follows them all.

``lift_states(mqtt)`` subscribes to ``lift/+/+/state`` (``interfaces.lift``) and yields ``(building,
lift, LiftState)`` for each message, the retained ones first; an unreadable message is logged and
skipped. The subscription ends with the iteration. The fire-alarm policy (``orchestrator.api.control``)
and the live dispatch loop (lifts closing and reopening) both follow the lifts this way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from pydantic import ValidationError

from interfaces.lift import LIFT_TOPIC_ROOT, LiftState, parse_lift_topic
from interfaces.mqtt import MqttClient

_log = logging.getLogger("robopost.facilities")


async def lift_states(
    mqtt: MqttClient, *, logger: logging.Logger | None = None
) -> AsyncIterator[tuple[str, str, LiftState]]:
    """``(building, lift, state)`` of every lift state message from now on (retained ones first)."""
    log = logger or _log
    sub = mqtt.subscribe(f"{LIFT_TOPIC_ROOT}/+/+/state", qos=1)
    try:
        async for message in sub:
            where = parse_lift_topic(message.topic)
            if where is None:
                continue
            try:
                state = LiftState.model_validate_json(message.payload)
            except (ValidationError, ValueError):
                log.warning("unreadable lift state on %s", message.topic)
                continue
            yield where[0], where[1], state
    finally:
        mqtt.unsubscribe(sub)
