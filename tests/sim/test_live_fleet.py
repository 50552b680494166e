"""The live fleet file's ``carts:`` and ``people:`` sections (``sim.live.fleet``): what they load to,
the problems they are refused for (one line each, exit code 2), and a fleet with a cart and people
started and stopped for real (Mosquitto, a pty pair, the SMS gateway on loopback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cart_testkit import SAMPLE_CAMPUS, STOP, STOP_LABEL

from interfaces.clock import ScaledClock
from sim.live.fleet import EXIT_BAD_CONFIG, LiveConfigError, LiveFleet, load_live, load_live_config, main
from sim.mosquitto import MosquittoBroker

TOKEN = "cart-1-token-0123456789abcdef"


def write_agent(folder: Path, serial: str, port: int = 1884) -> Path:
    """An agent file of a simulated robot ``serial``."""
    path = folder / "robots" / f"{serial}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "manufacturer": "acme",
        "serial_number": serial,
        "map_id": "m",
        "mqtt": {"host": "127.0.0.1", "port": port, "keepalive": 5},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def write_live(folder: Path, **data: Any) -> Path:
    path = folder / "live.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def cart_entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "agent": "robots/cart1.yaml",
        "cart": "cart_1",
        "data_dir": "var/cart_1",
        "orchestrator": {"url": "http://127.0.0.1:8080", "token": TOKEN},
    }
    entry.update(changes)
    return entry


def test_carts_and_people_load_with_paths_from_the_files_folder(tmp_path: Path) -> None:
    """Carts get their agent, data folder (relative to the live file), 50 compartments by default,
    the campus's stop labels; people their gateway and shares."""
    write_agent(tmp_path, "cart1")
    write_agent(tmp_path, "adm1")
    live = write_live(
        tmp_path,
        campus=str(SAMPLE_CAMPUS),
        robots=["robots/adm1.yaml"],
        carts=[cart_entry(screen_port=18091)],
        people={"secret": "s3cret", "gateway": {"port": 18095}, "seed": 4, "forget_share": 0.2},
    )
    loaded = load_live(live)
    assert [r.serial_number for r in loaded.robots] == ["adm1"]
    (cart,) = loaded.carts
    assert cart.cart == "cart_1" and cart.compartments == 50 and cart.data_dir == tmp_path / "var/cart_1"
    assert cart.agent is not None and cart.agent.serial_number == "cart1"
    assert (cart.orchestrator_url, cart.token, cart.screen_port) == ("http://127.0.0.1:8080", TOKEN, 18091)
    assert cart.stop_labels[STOP].zh == STOP_LABEL.zh
    people = loaded.config.people
    assert people is not None and people.gateway.port == 18095
    assert people.settings().forget_share == 0.2 and people.settings().seed == 4
    config, agents = load_live_config(live)  # every agent the file runs, the carts' last
    assert config == loaded.config and [a.serial_number for a in agents] == ["adm1", "cart1"]


def test_problems_are_named_one_per_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cart's agent also listed under robots, two carts with one id and one port are refused, each
    on its own line; a share above 1, a people section without a secret, too many compartments and
    people with carts but no campus likewise; exit code 2."""
    write_agent(tmp_path, "cart1")
    clash = write_live(
        tmp_path,
        robots=["robots/cart1.yaml"],
        carts=[cart_entry(screen_port=18091), cart_entry(data_dir="var/other", screen_port=18091)],
    )
    with pytest.raises(LiveConfigError) as refused:
        load_live(clash)
    lines = str(refused.value).splitlines()
    assert any("agents also listed under robots: cart1" in line for line in lines)
    assert any("cart ids used more than once: cart_1" in line for line in lines)
    assert any("ports (screens, SMS gateway) used more than once: 18091" in line for line in lines)
    bad = write_live(tmp_path, people={"forget_share": 1.5}, carts=[cart_entry(compartments=65)])
    assert main(["--config", str(bad)]) == EXIT_BAD_CONFIG
    err = capsys.readouterr().err.splitlines()
    assert any("people.forget_share" in line for line in err)
    assert any("people.secret" in line for line in err)
    assert any("carts.0.compartments" in line for line in err)
    assert len(err) == 3
    unplaced = write_live(tmp_path, people={"secret": "s"}, carts=[cart_entry()])
    assert main(["--config", str(unplaced)]) == EXIT_BAD_CONFIG
    (line,) = capsys.readouterr().err.splitlines()
    assert "campus: needed with people and carts" in line


@pytest.mark.integration
async def test_a_fleet_with_a_cart_and_people_starts_and_stops(
    tmp_path: Path, mqtt_broker: MosquittoBroker
) -> None:
    """The cart (board, service, agent, screen) and the SMS gateway are up once ``start`` returns: the
    screen serves the kiosk's API and the gateway refuses an unsigned SMS; ``stop`` takes them down."""
    write_agent(tmp_path, "cart1", mqtt_broker.port)
    live = write_live(
        tmp_path,
        time_factor=20,
        campus=str(SAMPLE_CAMPUS),
        mqtt={"host": mqtt_broker.host, "port": mqtt_broker.port},
        carts=[cart_entry(orchestrator=None, screen_port=0, compartments=8)],
        people={"secret": "s3cret", "gateway": {"port": 0}},
    )
    loaded = load_live(live)
    fleet = LiveFleet(loaded.config, loaded.robots, ScaledClock(20), carts=loaded.carts)
    await fleet.start()
    try:
        cart = fleet.carts["cart_1"]
        assert fleet.people is not None and cart.screen is not None and cart.agent is not None
        async with httpx.AsyncClient() as http:
            screen = await http.get(cart.screen.url + "/api/screen")
            sms = await http.post(fleet.people.gateway_url, content=b"{}")
        assert screen.status_code == 200 and screen.json()["cart"] == "cart_1"
        assert sms.status_code == 401
        port = Path(cart.board.port)
        assert port.exists()
    finally:
        await fleet.stop()
    assert not port.exists() and fleet.carts == {} and fleet.people is None
