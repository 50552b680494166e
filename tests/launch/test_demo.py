"""``robopost demo`` (launch/demo.py): the generated files, the supervisor, and the whole demo live.

The live tests start the real thing (``python -m launch.demo_cli``) in a work folder of their own, on
free ports, and wait on what it says and on the orchestrator's API — never on a fixed sleep. A
reader thread hands every output line to the test, which waits for a line with a time-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psutil
import pytest
from typer.testing import CliRunner
from websockets.sync.client import connect as ws_connect

from elevator_bridge.config import load_config as load_bridge
from launch.demo import (
    LIVE_READY_LINE,
    DemoError,
    DemoOptions,
    Supervisor,
    line_printed,
    load_layout,
    write_demo_files,
)
from launch.demo_cli import app as demo_app
from maps.io import load_map
from orchestrator.fleet.config import load_fleet
from orchestrator.settings import Settings
from sim.campus_day import campus_day
from sim.live.fleet import READY_LINE, LiveConfigError, load_live_config
from sim.live.fleet import main as live_main
from sim.mosquitto import free_port

REPO = Path(__file__).resolve().parents[2]
START_BOUND_S = 60.0
STOP_BOUND_S = 30.0
DELIVERY_BOUND_S = 120.0
"""Real seconds the smoke test gives the first delivery (about 10 at 50x)."""
ROBOTS = 9


# ---- the generated files ------------------------------------------------------------------------------


def _write(tmp_path: Path, factor: float = 10.0) -> tuple[DemoOptions, object]:
    options = DemoOptions(time_factor=factor, port=18123, workdir=tmp_path / "demo")
    layout = load_layout()
    passwords = iter(f"secret-{i}" for i in range(100))
    files = write_demo_files(
        options, layout, mqtt_port=18124, origin=1_800_000_000.0, password=lambda: next(passwords)
    )
    return options, files


def test_generated_files_load_with_each_process_s_own_loader(tmp_path: Path) -> None:
    """Settings, fleet, bridge, live and robot files all load; ports and the fleet are consistent."""
    _options, files = _write(tmp_path)
    assert isinstance(files.serials, tuple)
    settings = Settings.load(files.settings, env={})
    assert (settings.http.port, settings.mqtt.port, settings.fleet.enabled) == (18123, 18124, True)
    fleet = load_fleet(settings.fleet.config)  # type: ignore[arg-type]
    assert sorted(r.serial for r in fleet.robots) == sorted(files.serials)
    assert len(fleet.robots) == ROBOTS
    for building, path in files.bridges.items():
        bridge = load_bridge(path)
        assert (bridge.building, bridge.mqtt.port) == (building, 18124)
    lifts, _ = load_live_config(files.lifts_live)
    live, robots = load_live_config(files.robots_live)
    assert (live.time_factor, live.origin, live.mqtt.port) == (10.0, 1_800_000_000.0, 18124)
    assert sorted(r.serial_number for r in robots) == sorted(files.serials)
    assert {lift.name for lift in lifts.lifts} == {"ADM-L1", "ADM-L2", "TEA-L1", "TEA-L2"}


def test_robots_follow_the_campus_day_and_start_at_home(tmp_path: Path) -> None:
    """3 carts at the station (outdoor map) and 6 indoor robots at their building's hand-off point."""
    _options, files = _write(tmp_path)
    layout = load_layout()
    site = load_map(layout.campus)
    day = campus_day(site, parcels=0, requests=0, carts=3, indoor=6)
    assert files.serials == tuple(r.id for r in day.snapshot.robots)
    assert files.serials[:3] == ("cart_1", "cart_2", "cart_3")
    assert all(re.fullmatch(r"indoor_(adm|tea)_[123]", s) for s in files.serials[3:])
    _live, robots = load_live_config(files.robots_live)
    by_serial = {r.serial_number: r for r in robots}
    station = site.nodes[site.places["post_station"].node]
    cart = by_serial["cart_1"]
    assert cart.map_id == "outdoor"
    assert (cart.driver.start.x, cart.driver.start.y) == (station.x, station.y)  # type: ignore[union-attr]
    assert by_serial["indoor_adm_1"].map_id == "ADM-1F"
    assert by_serial["indoor_tea_2"].map_id == "TEA-1F"


def test_time_factor_keeps_real_rates(tmp_path: Path) -> None:
    """At 10x, a 1-real-second visualization is 10 virtual seconds and the control tick 0.5."""
    _options, files = _write(tmp_path, factor=10.0)
    _live, robots = load_live_config(files.robots_live)
    robot = robots[0]
    assert robot.visualization_period == 10.0
    assert robot.safety.period == 0.5
    assert robot.state_period == 30.0  # VDA 5050's limit, in the robot's (virtual) time


def test_start_at_sets_the_virtual_time_of_day_in_the_campus_zone(tmp_path: Path) -> None:
    """--start-at 07:25: the simulated parts' clock reads 07:25 Asia/Shanghai at the start instant."""
    options = DemoOptions(port=18123, workdir=tmp_path / "demo", start_at="07:25")
    origin = 1_800_000_000.0  # 2027-01-15 08:00 UTC, 16:00 in Shanghai
    files = write_demo_files(options, load_layout(), mqtt_port=18124, origin=origin, password=lambda: "pw")
    live, _ = load_live_config(files.robots_live)
    assert (live.origin, live.epoch) == (origin, files.epoch)
    assert datetime.fromtimestamp(files.epoch, ZoneInfo("Asia/Shanghai")).isoformat() == (
        "2027-01-15T07:25:00+08:00"
    )


def test_modbus_lift_gets_a_pty_in_the_work_folder(tmp_path: Path) -> None:
    """TEA-L2's relay board is a pty under the work folder, and its bridge opens that very line."""
    _options, files = _write(tmp_path)
    lifts, _ = load_live_config(files.lifts_live)
    relay = next(lift for lift in lifts.lifts if lift.kind == "modbus_relay")
    bridge = load_bridge(files.bridges["TEA"])
    assert bridge.lifts["TEA-L2"].driver.port == str(relay.directory / "line")  # type: ignore[union-attr]
    assert str(files.workdir) in str(relay.directory)


def test_the_supervisor_waits_for_the_line_the_fleet_prints() -> None:
    """launch.demo keeps its own copy of sim.live.fleet's ready line (not to import the fleet): same text."""
    assert LIVE_READY_LINE == READY_LINE


def test_broken_demo_file_names_the_key(tmp_path: Path) -> None:
    """A demo file without ``carts`` is refused naming the file and the key."""
    bad = tmp_path / "demo.yaml"
    bad.write_text("campus: neijiang.yaml\nindoor: 2\nbridges: []\n", encoding="utf-8")
    with pytest.raises(DemoError, match=re.escape(f"{bad}: bad or missing key: 'carts'")):
        load_layout(bad)


def test_broken_live_file_names_the_setting(tmp_path: Path) -> None:
    """A live file with an unknown key or a bad factor is refused with the file and the setting."""
    bad = tmp_path / "live.yaml"
    bad.write_text("time_factor: 0\nspeed: 3\n", encoding="utf-8")
    with pytest.raises(LiveConfigError) as caught:
        load_live_config(bad)
    message = str(caught.value)
    assert f"{bad}: time_factor:" in message
    assert f"{bad}: speed: Extra inputs are not permitted" in message


def test_live_fleet_command_refuses_a_bad_file_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m sim.live.fleet`` with a robot file that does not exist: exit 2, the file named."""
    live = tmp_path / "live.yaml"
    live.write_text("robots: [nowhere.yaml]\n", encoding="utf-8")
    assert live_main(["--config", str(live)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sim.live.fleet: {tmp_path / 'nowhere.yaml'}: cannot read")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--broker", "bogus"], "--broker must be auto, mosquitto or embedded"),
        (["--time-factor", "0"], "--time-factor must be within (0, 1000]"),
        (["--port", "70000"], "--port must be within 1..65535"),
        (["--start-at", "7:25pm"], "--start-at must be a time of day HH:MM"),
    ],
)
def test_bad_options_are_one_line_errors(args: list[str], message: str) -> None:
    """Bad command-line values exit 2 with one line naming the option, before anything starts."""
    result = CliRunner().invoke(demo_app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_busy_console_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """A console port already taken stops the demo at once with a line naming --port."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(demo_app, ["--port", str(port), "--workdir", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert f"--port: 127.0.0.1:{port} is not free" in result.output
    assert "started" not in result.output


# ---- the supervisor ------------------------------------------------------------------------------------

PY = sys.executable


def _supervisor(lines: list[str], grace_s: float = 5.0) -> Supervisor:
    return Supervisor(grace_s=grace_s, out=lines.append, ready_lines=("go",))


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    """SIGTERM first; a child that ignores it is SIGKILLed once ``grace_s`` has passed."""
    lines: list[str] = []
    sup = _supervisor(lines, grace_s=0.3)
    code = (
        "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('go', flush=True);signal.pause()"
    )
    child = await sup.start("stubborn", [PY, "-c", code])
    await sup.until_ready(child, "go", line_printed(child, "go"), 10.0)
    await sup.stop_all()
    assert child.proc.returncode == -signal.SIGKILL
    assert any("did not stop within 0.3 s: SIGKILL" in line for line in lines)
    assert sup.failure is None


HELPER = (
    "import signal,subprocess,sys;"
    "p = subprocess.Popen([sys.executable, '-c', 'import signal; signal.pause()']);"
    "print(p.pid, flush=True); print('go', flush=True);"
)


async def test_what_a_child_left_in_its_group_is_stopped_too() -> None:
    """A helper the child started (like socat under the lifts) does not outlive the stop."""
    lines: list[str] = []
    sup = _supervisor(lines)
    child = await sup.start("parent", [PY, "-c", HELPER + "signal.pause()"])
    await sup.until_ready(child, "go", line_printed(child, "go"), 10.0)
    helper = psutil.Process(int(child.tail[0]))
    await sup.stop_all()
    assert _all_gone([helper]) == []


async def test_a_helper_holding_the_output_does_not_hide_a_death() -> None:
    """A child that dies while its helper keeps the output pipe open is still reported at once."""
    sup = _supervisor([])
    child = await sup.start("leaky", [PY, "-c", HELPER + "sys.exit(5)"])
    await asyncio.wait_for(sup.failed.wait(), 10.0)
    assert sup.failure is not None and "leaky" in sup.failure and "code 5" in sup.failure
    helper = psutil.Process(int(child.tail[0]))
    assert helper.is_running()  # still there: only the stop ends it
    await sup.stop_all()
    assert _all_gone([helper]) == []


async def test_an_unexpected_exit_is_reported_with_its_last_lines() -> None:
    """A child that dies while it should run fails the supervisor, naming it, its code and its output."""
    lines: list[str] = []
    sup = _supervisor(lines)
    await sup.start("fragile", [PY, "-c", "import sys; print('about to fail', flush=True); sys.exit(3)"])
    await asyncio.wait_for(sup.failed.wait(), 10.0)
    await sup.stop_all()
    assert sup.failure is not None and re.search(
        r"fragile \(pid \d+\) exited unexpectedly with code 3", sup.failure
    )
    assert any("about to fail" in line and "demo |" in line for line in lines)  # the tail was shown


async def test_a_restartable_child_is_started_again_until_its_restarts_run_out() -> None:
    """A child given restarts (the broker) that dies is started again, said on the supervisor's
    output; once its restarts are used up its next death fails the demo as any other."""
    lines: list[str] = []
    sup = _supervisor(lines)
    child = await sup.start(
        "flaky", [PY, "-c", "import sys; print('go', flush=True); sys.exit(7)"], restarts=2
    )
    await asyncio.wait_for(sup.failed.wait(), 10.0)
    await sup.stop_all()
    restarted = [line for line in lines if "flaky" in line and "restarted it" in line]
    assert len(restarted) == 2 and child.restarts == 2
    assert "restart 1" in restarted[0] and "restart 2" in restarted[1]
    assert sup.failure is not None and re.search(
        r"flaky \(pid \d+\) exited unexpectedly with code 7", sup.failure
    )


async def test_a_child_dying_during_start_up_fails_the_readiness_wait() -> None:
    """Waiting for a child that dies gives a DemoError naming it, not a time-out."""
    sup = _supervisor([])
    child = await sup.start("short", [PY, "-c", "raise SystemExit(4)"])
    with pytest.raises(DemoError, match=r"short \(pid \d+\) exited unexpectedly with code 4"):
        await sup.until_ready(child, "go", line_printed(child, "go"), 30.0)
    await sup.stop_all()


async def test_readiness_time_out_names_what_was_awaited() -> None:
    """A child that never gets ready is reported with what was waited for."""
    sup = _supervisor([])
    child = await sup.start("mute", [PY, "-c", "import signal; signal.pause()"])
    with pytest.raises(DemoError, match=re.escape("mute was not ready within 0.2 s: the go line")):
        await sup.until_ready(child, "the go line", line_printed(child, "go"), 0.2)
    await sup.stop_all()
    assert child.proc.returncode == -signal.SIGTERM


# ---- the whole demo --------------------------------------------------------------------------------------


class DemoRun:
    """``python -m launch.demo_cli`` as a child of the test, its output read by a thread."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.port = free_port()
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        command = [PY, "-m", "launch.demo_cli", "--workdir", str(workdir), "--port", str(self.port), *args]
        self.proc = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = START_BOUND_S) -> re.Match[str]:
        """The first line (from now on) matching ``pattern``; fails on exit or after ``timeout``."""
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(
                    f"no line matching {pattern!r} within {timeout} s:\n" + "\n".join(self.lines[-60:])
                )
            if line is None:
                pytest.fail(f"demo ended before {pattern!r}:\n" + "\n".join(self.lines[-60:]))
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def finish(self, timeout: float = STOP_BOUND_S) -> int:
        """Wait for the demo to exit (at most ``timeout`` s) and collect the rest of its output."""
        code = self.proc.wait(timeout=timeout)
        self._close()
        return code

    def _close(self) -> None:
        self._reader.join(timeout=STOP_BOUND_S)
        while not self._queue.empty():
            line = self._queue.get_nowait()
            if line is not None:
                self.lines.append(line)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._close()


@pytest.fixture
def demo_run() -> Iterator[list[DemoRun]]:
    """The demos a test starts; whatever is left of them is killed after the test."""
    runs: list[DemoRun] = []
    yield runs
    for run in runs:  # a failed test must not leave the demo running
        leftovers = run.descendants() if run.proc.poll() is None else []
        run.kill()
        for process in leftovers:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def _all_gone(processes: list[psutil.Process]) -> list[str]:
    """The processes of ``processes`` still alive (zombies count as gone)."""
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{process.pid} {' '.join(process.cmdline())}")
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.integration
def test_demo_brings_every_robot_online_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, demo_run: list[DemoRun]
) -> None:
    """The whole demo (Mosquitto) comes up, all 9 robots are ONLINE in /v1/fleet, Ctrl-C exits 0 and
    leaves no process behind."""
    run = DemoRun(tmp_path / "demo", "--time-factor", "50", "--broker", "mosquitto", "--grace", "5")
    demo_run.append(run)
    took = float(run.wait_for(r"all up in ([0-9.]+) s").group(1))
    answer = httpx.get(f"http://127.0.0.1:{run.port}/v1/fleet", timeout=5.0)
    robots = answer.json()["robots"]
    assert len(robots) == ROBOTS
    assert all(r["online"] for r in robots), robots
    assert {r["kind"] for r in robots} == {"cart", "indoor"}
    assert httpx.get(f"http://127.0.0.1:{run.port}/healthz", timeout=5.0).status_code == 200
    login = (tmp_path / "demo" / "console-login.txt").read_text()
    assert login.startswith("user: demo\npassword: ")
    assert oct((tmp_path / "demo" / "console-login.txt").stat().st_mode & 0o777) == "0o600"
    children = run.descendants()
    names = " ".join(" ".join(p.cmdline()) for p in children)
    for part in ("mosquitto", "launch.cli serve", "elevator-bridge", "sim.live.fleet", "socat"):
        assert part in names
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 0, "\n".join(run.lines[-40:])
    assert _all_gone(children) == []
    assert run.lines[-1].endswith("demo | stopped")
    print(f"demo start-up to all online: {took:.1f} s")


def _fleet(run: DemoRun) -> dict[str, dict[str, Any]]:
    """The orchestrator's fleet picture by serial (``GET /v1/fleet``)."""
    robots = httpx.get(f"http://127.0.0.1:{run.port}/v1/fleet", timeout=5.0).json()["robots"]
    return {r["serial"]: r for r in robots}


@pytest.mark.integration
def test_the_demo_resumes_after_the_broker_dies(tmp_path: Path, demo_run: list[DemoRun]) -> None:
    """Mosquitto killed under the running demo is started again on its port; every robot reconnects
    and its states reach the orchestrator again, all ONLINE; Ctrl-C still stops everything cleanly."""
    run = DemoRun(tmp_path / "demo", "--time-factor", "50", "--broker", "mosquitto", "--grace", "5")
    demo_run.append(run)
    run.wait_for(r"all up in ([0-9.]+) s")
    children = run.descendants()
    broker = next(p for p in children if "mosquitto" in " ".join(p.cmdline()))
    before = {serial: r["states_received"] for serial, r in _fleet(run).items()}
    broker.send_signal(signal.SIGKILL)
    run.wait_for(rf"broker \(pid {broker.pid}\) exited unexpectedly with code -9.*restarted it")
    # States come every 30 virtual s (0.6 real s at 50x) once a robot has reconnected: wait, through
    # the API, until each robot's count has moved past what it was before the broker died.
    deadline = time.monotonic() + START_BOUND_S
    while True:
        fleet = _fleet(run)
        resumed = [s for s, r in fleet.items() if r["states_received"] > before[s] and r["online"]]
        if len(resumed) == ROBOTS:
            break
        assert time.monotonic() < deadline, f"only {sorted(resumed)} resumed:\n" + "\n".join(run.lines[-40:])
        run.wait_for(r".", timeout=START_BOUND_S)  # the next output line (our GET is logged too)
    now_running = run.descendants()
    assert any("mosquitto" in " ".join(p.cmdline()) for p in now_running)
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 0, "\n".join(run.lines[-40:])
    assert _all_gone([*children, *now_running]) == []


@pytest.mark.integration
def test_a_dying_process_stops_the_demo_with_an_error_on_the_embedded_broker(
    tmp_path: Path, demo_run: list[DemoRun]
) -> None:
    """On the embedded broker the demo comes up too; when the robots' process is killed the supervisor
    says so, stops the rest and exits 1, leaving nothing behind."""
    run = DemoRun(tmp_path / "demo", "--time-factor", "50", "--broker", "embedded", "--grace", "5")
    demo_run.append(run)
    run.wait_for(r"broker embedded on")
    run.wait_for(r"all up in ([0-9.]+) s")
    robots = httpx.get(f"http://127.0.0.1:{run.port}/v1/fleet", timeout=5.0).json()["robots"]
    assert sum(r["online"] for r in robots) == ROBOTS
    children = run.descendants()
    fleet = next(p for p in children if "robots.yaml" in " ".join(p.cmdline()))
    assert any("launch.demo embedded-broker" in " ".join(p.cmdline()) for p in children)
    fleet.send_signal(signal.SIGKILL)
    message = run.wait_for(r"ERROR: robots \(pid (\d+)\) exited unexpectedly with code -9 \(signal SIGKILL\)")
    assert int(message.group(1)) == fleet.pid
    assert run.finish() == 1, "\n".join(run.lines[-40:])
    assert _all_gone(children) == []
    assert "stopped after a failure" in run.lines[-1]


def _console_token(run: DemoRun, workdir: Path) -> str:
    """Log in as the demo's console admin (``console-login.txt``); the bearer token."""
    login = dict(line.split(": ", 1) for line in (workdir / "console-login.txt").read_text().splitlines())
    answer = httpx.post(
        f"http://127.0.0.1:{run.port}/v1/console/login",
        json={"username": login["user"], "password": login["password"]},
        timeout=5.0,
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


@pytest.mark.integration
def test_make_run_smoke_the_first_delivery_completes_and_ctrl_c_stops_everything(
    tmp_path: Path, demo_run: list[DemoRun]
) -> None:
    """What ``make run`` starts, at 50x from 07:10 campus time: the station's first batch is imported,
    the dispatch loop sends the carts out, window w1 opens at 07:30 (24 real seconds in), the simulated
    students type their codes, and the console stream (the API, not a sleep) reports the first
    completed delivery — a parcel picked up at a cart or delivered at an office door. Then Ctrl-C
    exits 0 and leaves no process behind."""
    workdir = tmp_path / "demo"
    run = DemoRun(
        workdir, "--time-factor", "50", "--start-at", "07:10", "--broker", "mosquitto", "--grace", "5"
    )
    demo_run.append(run)
    run.wait_for(r"all up in ([0-9.]+) s")
    children = run.descendants()
    token = _console_token(run, workdir)
    seen: list[dict[str, Any]] = []
    with ws_connect(f"ws://127.0.0.1:{run.port}/v1/console/stream?token={token}", open_timeout=5) as ws:
        deadline = time.monotonic() + DELIVERY_BOUND_S
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no delivery completed; parcel events seen: {seen[-10:]}\n" + "\n".join(
                run.lines[-40:]
            )
            event = json.loads(ws.recv(timeout=left))
            if event.get("type") != "parcel":
                continue
            seen.append(event)
            if event["kind"] in ("pick_up", "deliver"):
                break
    done = seen[-1]
    parcel = httpx.get(
        f"http://127.0.0.1:{run.port}/v1/console/parcels/{done['id']}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5.0,
    ).json()
    kinds = [e["kind"] for e in parcel["events"]]
    assert kinds[0] == "receive" and kinds[-1] == done["kind"] and "load" in " ".join(kinds), kinds
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 0, "\n".join(run.lines[-40:])
    assert _all_gone(children) == []
    print(f"first delivery: {done['id']} {done['kind']} at {done['at']}")
