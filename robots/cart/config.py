"""The cart process's configuration (``robopost cart --config CART.yaml``) and its composition root.

::

    cart: cart_1
    orchestrator: {url: "http://10.0.0.2:8080", token: "<the cart's token from security.carts>"}
    locker: {port: /dev/ttyUSB0, compartments: 48}
    screen: {host: 127.0.0.1, port: 8090}
    data_dir: /var/lib/robopost-cart            # the event queue and the last code sync
    staff_pin_hash: "$argon2id$..."             # robopost cart hash-pin
    support_phone: 400-000-0000
    campus: maps/campuses/neijiang.yaml         # optional: stop names for the screen
    agent: launch/robots/cart_1.yaml            # optional: the cart's VDA 5050 agent in this process

``run(config)`` runs the locker driver, the cart service, the kiosk page and (with ``agent``) the cart's
VDA 5050 agent on its driver wrapped in ``robots.cart.agent.CartDriver``, until SIGINT/SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from interfaces.clock import Clock, RealClock

if TYPE_CHECKING:
    from robots.agent.agent import Agent
    from robots.agent.config import AgentConfig
    from robots.cart.service import CartService

log = logging.getLogger("robopost.cart")


class CartConfigError(ValueError):
    """The configuration file cannot be read or is invalid (one line per problem)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrchestratorSection(_Section):
    url: str = Field(min_length=1)
    token: str = Field(min_length=16)


class LockerSection(_Section):
    port: str = Field(min_length=1)
    compartments: int = Field(ge=1, le=64)
    device_id: int = Field(default=1, ge=1, le=247)
    baudrate: int = Field(default=19200, gt=0)


class ScreenSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)


class CartConfig(_Section):
    cart: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    orchestrator: OrchestratorSection | None = None
    locker: LockerSection
    screen: ScreenSection = Field(default_factory=ScreenSection)
    data_dir: Path = Path("var/cart")
    staff_pin_hash: str | None = None
    support_phone: str = "400-000-0000"
    campus: Path | None = None
    agent: Path | None = None
    """The robot file of the cart's VDA 5050 agent (``robopost agent``'s format)."""
    door_alarm_s: float = Field(default=30.0, gt=0)
    sync_s: float = Field(default=30.0, gt=0)


def load_config(path: Path) -> CartConfig:
    """The ``CartConfig`` in the YAML file ``path``; ``CartConfigError`` if it is unusable."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CartConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CartConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise CartConfigError(f"{path}: the configuration must be a mapping")
    try:
        return CartConfig(**data)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise CartConfigError("\n".join(lines)) from None


def stop_labels(campus: Path) -> dict[str, Any]:
    """Chinese and English names of the campus's stops (for the screen's header)."""
    from maps.io import load_site
    from robots.cart.service import Text

    site = load_site(campus)
    return {
        place_id: Text(place.label or place.name, place.name.replace("_", " ").title())
        for place_id, place in site.places.items()
        if place.kind.value == "stop"
    }


def run(config: CartConfig, *, setup: Callable[[Agent], object] | None = None) -> None:
    """Run the cart (locker driver, cart service, kiosk page) until SIGINT/SIGTERM (blocking);
    ``setup(agent)`` is called before the cart's agent starts (``launch`` adds simulated sensors)."""
    import uvicorn

    from robots.cart.events import EventQueue
    from robots.cart.hmi.app import create_kiosk_app
    from robots.cart.locker import LockerConfig, LockerDriver
    from robots.cart.service import CartService, CartSettings
    from robots.cart.uplink import HttpUplink

    clock = RealClock()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    locker = config.locker
    driver = LockerDriver(
        LockerConfig(
            port=locker.port,
            compartments=locker.compartments,
            device_id=locker.device_id,
            baudrate=locker.baudrate,
        ),
        clock,
    )
    queue = EventQueue(config.data_dir / "events.db", config.cart)
    link = config.orchestrator
    uplink = HttpUplink(link.url, config.cart, link.token) if link is not None else None
    settings = CartSettings(
        cart=config.cart,
        support_phone=config.support_phone,
        staff_pin_hash=config.staff_pin_hash,
        stop_labels=stop_labels(config.campus) if config.campus else {},
        door_alarm_s=config.door_alarm_s,
        sync_s=config.sync_s,
    )
    service = CartService(settings, driver, queue, clock, uplink)
    app = create_kiosk_app(service)
    robot = _agent_config(config.agent) if config.agent is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(_app: object) -> AsyncIterator[None]:
        await service.start()
        agent = await _start_agent(robot, service, clock, setup) if robot is not None else None
        log.info("cart %s: screen on http://%s:%d", config.cart, config.screen.host, config.screen.port)
        try:
            yield
        finally:
            if agent is not None:
                await agent.stop()
            await service.stop()
            queue.close()

    app.router.lifespan_context = lifespan
    uvicorn.run(app, host=config.screen.host, port=config.screen.port, log_level="info")


def _agent_config(path: Path) -> AgentConfig:
    from robots.agent.config import AgentConfigError
    from robots.agent.config import load_config as load_agent

    try:
        return load_agent(path)
    except AgentConfigError as exc:
        raise CartConfigError(str(exc)) from None


async def _start_agent(
    robot: AgentConfig, service: CartService, clock: Clock, setup: Callable[[Agent], object] | None = None
) -> Agent:
    """The cart's VDA 5050 agent on its configured driver, with the locker actions and alarms added."""
    from robots.agent.agent import Agent, make_driver, make_mqtt_client
    from robots.cart.agent import CartDriver

    driver = CartDriver(make_driver(robot, clock), service)
    agent = Agent(robot, driver, make_mqtt_client(robot, clock), clock)
    if setup is not None:
        setup(agent)
    await agent.start()
    return agent
