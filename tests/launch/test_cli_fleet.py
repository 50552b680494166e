"""``robopost fleet broker-config``, ``robopost fleet status`` and ``robopost bench fleet``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_robot import SAMPLE_FLEET
from typer.testing import CliRunner

from launch.cli import app
from orchestrator.fleet import parse_fleet
from orchestrator.fleet.digest import read_state
from orchestrator.fleet.picture import FleetPicture
from sim.mosquitto import free_port

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_broker_config_writes_three_files(tmp_path: Path) -> None:
    """broker-config writes passwd, acl and mosquitto.conf for every account of the fleet file."""
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(SAMPLE_FLEET), encoding="utf-8")
    res = runner.invoke(
        app, ["fleet", "broker-config", "--fleet", str(fleet_file), "-o", str(tmp_path / "out")]
    )
    assert res.exit_code == 0, res.output
    assert "(2 robots)" in res.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["acl", "mosquitto.conf", "passwd"]
    assert len((tmp_path / "out" / "passwd").read_text().splitlines()) == 3


def test_broker_config_refuses_a_bad_fleet_file(tmp_path: Path) -> None:
    """A fleet file with a bad serial and a missing password: exit 2, one line per problem naming
    the robot."""
    bad = {
        **SAMPLE_FLEET,
        "robots": [{"manufacturer": "acme", "serial": "r/1", "kind": "cart", "password": "x"}],
    }
    bad["robots"].append({"manufacturer": "acme", "serial": "r2", "kind": "cart"})
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(bad), encoding="utf-8")
    res = runner.invoke(
        app, ["fleet", "broker-config", "--fleet", str(fleet_file), "-o", str(tmp_path / "out")]
    )
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert "robots[0] (r/1)" in lines[0] and "contains '/'" in lines[0]
    assert "robots[1] (r2).password: Field required" in lines[1]
    assert not (tmp_path / "out").exists()


def _fleet_body() -> dict[str, Any]:
    """A GET /v1/fleet body made from real views: r1 online with a state, r2 never heard."""
    picture = FleetPicture.of(parse_fleet(SAMPLE_FLEET).robots)
    state = {
        "headerId": 1,
        "timestamp": "2027-01-15T08:00:00.000Z",
        "version": "2.1.0",
        "manufacturer": "acme",
        "serialNumber": "r1",
        "orderId": "order-123456789abcdef",
        "orderUpdateId": 2,
        "lastNodeId": "stop_c",
        "lastNodeSequenceId": 4,
        "nodeStates": [],
        "edgeStates": [],
        "driving": True,
        "actionStates": [],
        "batteryState": {"batteryCharge": 81.5, "charging": False},
        "operatingMode": "AUTOMATIC",
        "errors": [{"errorType": "orderUpdateError", "errorLevel": "WARNING"}],
        "safetyState": {"eStop": "NONE", "fieldViolation": False},
        "agvPosition": {"x": 1.25, "y": -3.5, "theta": 0.0, "mapId": "outdoor", "positionInitialized": True},
    }
    now = datetime(2027, 1, 15, 8, 0, 1, tzinfo=UTC).timestamp()
    picture.robots["r1"].on_state(read_state(json.dumps(state).encode()), now - 0.5, 0.0)
    return {"robots": [v.to_json() for v in picture.views(now)], "stats": {}}


@pytest.fixture
def orchestrator_stub() -> Iterator[tuple[str, dict[str, Any]]]:
    """A loopback HTTP server answering GET /v1/fleet with ``_fleet_body()`` (503 on /off/v1/fleet)."""
    body = _fleet_body()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            off = self.path.startswith("/off")
            data = json.dumps({"detail": "fleet master not running"} if off else body).encode()
            self.send_response(503 if off else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", body
    server.shutdown()
    server.server_close()
    thread.join()


def test_status_prints_the_fleet(orchestrator_stub: tuple[str, dict[str, Any]]) -> None:
    """status shows a table row per robot (link, battery, order/update, last node, position, errors);
    --json prints the body as it came."""
    url, body = orchestrator_stub
    res = runner.invoke(app, ["fleet", "status", "--url", url], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "fleet: 1/2 online" in res.stdout
    r1 = next(line for line in res.stdout.splitlines() if " r1 " in line)
    for text in (
        "ONLINE",
        "0.5 s",
        "82%",
        "order-123456/2",
        "stop_c",
        "AUTOMATIC",
        "driving",
        "1.2,-3.5 @outdoor",
    ):
        assert text in r1, text
    assert "1: orderUpdateError" in r1
    r2 = next(line for line in res.stdout.splitlines() if " r2 " in line)
    assert "UNKNOWN" in r2
    res = runner.invoke(app, ["fleet", "status", "--url", url, "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout) == body


def test_status_reports_an_unavailable_orchestrator(orchestrator_stub: tuple[str, dict[str, Any]]) -> None:
    """A 503 prints the server's detail; nothing listening prints 'cannot reach'; both exit 1."""
    url, _ = orchestrator_stub
    res = runner.invoke(app, ["fleet", "status", "--url", f"{url}/off"])
    assert res.exit_code == 1 and "503 fleet master not running" in res.stderr
    res = runner.invoke(app, ["fleet", "status", "--url", f"http://127.0.0.1:{free_port()}"])
    assert res.exit_code == 1 and "cannot reach the orchestrator" in res.stderr


def test_status_url_from_the_settings(tmp_path: Path, orchestrator_stub: tuple[str, dict[str, Any]]) -> None:
    """Without --url the orchestrator is found at the settings' http host and port."""
    url, _ = orchestrator_stub
    port = int(url.rsplit(":", 1)[1])
    settings = tmp_path / "robopost.yaml"
    settings.write_text(yaml.safe_dump({"http": {"host": "127.0.0.1", "port": port}}), encoding="utf-8")
    res = runner.invoke(app, ["fleet", "status", "--config", str(settings), "--json"])
    assert res.exit_code == 0 and len(json.loads(res.stdout)["robots"]) == 2


def test_bench_fleet_runs_small(tmp_path: Path) -> None:
    """bench fleet with 5 robots for a second: every robot reports and the JSON has the keys."""
    out = tmp_path / "bench.json"
    args = ["bench", "fleet", "--robots", "5", "--seconds", "1", "--warmup", "0.5", "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, "-c", "from launch.cli import main; main()", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert {"robots", "msgs_per_s", "state_age_p50_ms", "state_age_p99_ms", "cpu_percent"} <= set(result)
    assert result["robots"] == 5 and result["robots_reporting"] == 5 and result["msgs_per_s"] > 0
    assert REPO.joinpath("benchmarks", "fleet").is_dir()
