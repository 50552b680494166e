"""``robopost windows recommend``: demand from a pickups CSV or from the store, output, one-line errors."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from typer.testing import CliRunner

from interfaces.clock import VirtualClock
from launch.windows_cli import windows_app
from orchestrator.security import Keys, PersonalDataCipher, mask_name, mask_phone
from orchestrator.store import make_engine, session_factory, upgrade
from orchestrator.store.domain_records import ParcelIntake
from orchestrator.store.domain_repositories import ParcelRepository, PersonalData

runner = CliRunner()
SHANGHAI = ZoneInfo("Asia/Shanghai")
HEADER = "parcel,stop,window,preferred_s,picked_up_s\n"


def _csv(tmp_path: Path, text: str, name: str = "pickups.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _sim_rows(tmp_path: Path) -> Path:
    """A simulator-like file: 40 students wanting 08:00, 60 wanting 17:10; 10 never came."""
    lines = [HEADER]
    for i in range(100):
        preferred = 8 * 3600 + i if i < 40 else 17 * 3600 + 600 + i
        picked = "" if i % 10 == 0 else str(preferred + 120)
        lines.append(f"P{i},{'dorm_a' if i % 2 else 'centre'},w1,{preferred},{picked}\n")
    return _csv(tmp_path, "".join(lines))


def _recommend(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(windows_app, ["recommend", *args])
    return res.exit_code, res.stdout, res.stderr


def test_csv_preferred_times_give_windows_table_yaml_and_json(tmp_path: Path) -> None:
    """By default the preferred times are used; the table, the YAML snippet and the JSON agree."""
    out = tmp_path / "rec.json"
    code, stdout, _ = _recommend(
        "--pickups",
        str(_sim_rows(tmp_path)),
        "--windows",
        "2",
        "--current",
        "07:30-08:30,12:00-13:30",
        "--json",
        str(out),
    )
    assert code == 0, stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["rows"] == 100 and data["source"].endswith("(preferred_s)")
    assert data["served"] == 100 and data["share"] == 1.0
    assert data["current_served"] == 40
    assert [(w["start"], w["end"]) for w in data["windows"]] == [("07:30", "08:30"), ("16:40", "17:40")]
    assert data["windows"][1]["by_stop"] == {"centre": 30.0, "dorm_a": 30.0}
    assert "recommended windows" in stdout and "16:40–17:40" in stdout
    snippet = stdout[stdout.index("windows:\n") :]
    assert yaml.safe_load(snippet)["windows"] == [
        {"id": "w1", "start": "07:30", "end": "08:30"},
        {"id": "w2", "start": "16:40", "end": "17:40"},
    ]


def test_csv_column_choice_empty_cells_weights_and_stop_filter(tmp_path: Path) -> None:
    """--column picks the pick-up times (empty cells skipped); weights count; --stop filters."""
    out = tmp_path / "rec.json"
    path = _sim_rows(tmp_path)
    code, stdout, _ = _recommend("--pickups", str(path), "--column", "picked_up_s", "--json", str(out))
    assert code == 0, stdout
    assert json.loads(out.read_text(encoding="utf-8"))["rows"] == 90
    code, stdout, _ = _recommend("--pickups", str(path), "--stop", "dorm_a", "--json", str(out))
    assert code == 0 and json.loads(out.read_text(encoding="utf-8"))["rows"] == 50
    weighted = _csv(tmp_path, "preferred_s,weight\n30000,2.5\n30060,\n", "weighted.csv")
    code, stdout, _ = _recommend("--pickups", str(weighted), "--json", str(out))
    assert code == 0 and json.loads(out.read_text(encoding="utf-8"))["total"] == 3.5


def test_csv_fallback_columns_and_timestamps(tmp_path: Path) -> None:
    """Without preferred_s, picked_up_s is used; picked_up_at timestamps become local times in --tz."""
    out = tmp_path / "rec.json"
    path = _csv(tmp_path, "parcel,picked_up_s\nA,61200\nB,\n", "picked.csv")
    code, _, _ = _recommend("--pickups", str(path), "--windows", "1", "--json", str(out))
    assert code == 0 and json.loads(out.read_text(encoding="utf-8"))["source"].endswith("(picked_up_s)")
    stamps = _csv(
        tmp_path,
        "parcel,picked_up_at\nA,2026-11-20T09:00:00+00:00\nB,2026-11-20T17:00:00\nC,2026-11-21T09:00:00Z\n",
        "stamps.csv",
    )
    code, stdout, _ = _recommend("--pickups", str(stamps), "--windows", "1", "--json", str(out))
    assert code == 0, stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    (window,) = data["windows"]
    assert window["demand"] == 3 and window["start"] == "16:30"  # 09:00 UTC is 17:00 in Shanghai
    code, _, _ = _recommend("--pickups", str(stamps), "--tz", "UTC", "--windows", "1", "--json", str(out))
    assert code == 0 and json.loads(out.read_text(encoding="utf-8"))["windows"][0]["demand"] == 2


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        (
            HEADER + "P1,a,w1,28800,\nP2,a,w1,8 am,\n",
            [],
            "pickups.csv:3: column preferred_s: '8 am' is not a",
        ),
        (HEADER + "P1,a,w1,-4,\n", [], "pickups.csv:2: column preferred_s: '-4' is not a number"),
        ("parcel,picked_up_at\nP1,yesterday\n", [], "pickups.csv:2: column picked_up_at: 'yesterday' is not"),
        ("preferred_s,weight\n100,-1\n", [], "pickups.csv:2: column weight: '-1' is not a number >= 0"),
        (HEADER + "P1,a,w1,28800,,extra\n", [], "pickups.csv:2: more cells than the header"),
        ("parcel,stop\nP1,a\n", [], "pickups.csv: no time column"),
        (HEADER, ["--column", "at"], "pickups.csv: no column 'at' (columns: parcel, stop"),
        ("", [], "pickups.csv: empty file"),
    ],
)
def test_malformed_csv_gives_one_line(tmp_path: Path, text: str, args: list[str], message: str) -> None:
    """A broken file names the file, line and column in one line and exits with 2."""
    code, _, stderr = _recommend("--pickups", str(_csv(tmp_path, text)), *args)
    assert code == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hours", "07:00-12:00"], "need 10 h, but the service hours 07:00–12:00 give only 5 h"),
        (["--hours", "7-12"], "--hours: '7' is not a time of day"),
        (["--min-length", "100"], "window length must satisfy"),
        (["--current", "08:00-07:00"], "--current: '08:00-07:00': the end is not after the start"),
        (["--tz", "Mars/Olympus"], "--tz: 'Mars/Olympus' is not a time zone"),
        (["--since", "0", "--database-url", "sqlite:///x.db"], "--since must be > 0"),
        (["--current", "07:00-09:00,08:00-10:00"], "windows w1 and w2 overlap"),
    ],
)
def test_bad_options_give_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    """Rules that cannot hold and unreadable options are refused in one line, exit code 2."""
    path = _csv(tmp_path, HEADER + "P1,a,w1,28800,\n")
    pickups = [] if "--database-url" in args else ["--pickups", str(path)]
    code, _, stderr = _recommend(*pickups, *args)
    assert code == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1


def test_one_source_is_required(tmp_path: Path) -> None:
    """Neither or both of --pickups and the database is an error; so is a missing file or a stop
    without pickups."""
    path = _csv(tmp_path, HEADER + "P1,dorm_a,w1,28800,\n")
    assert _recommend()[0] == 2
    code, _, stderr = _recommend("--pickups", str(path), "--database-url", "sqlite:///x.db")
    assert code == 2 and "either --pickups" in stderr
    code, _, stderr = _recommend("--pickups", str(tmp_path / "none.csv"))
    assert code == 2 and "none.csv: cannot read: No such file" in stderr
    code, _, stderr = _recommend("--pickups", str(path), "--stop", "dorm_z")
    assert code == 2 and "--stop: no pickups at dorm_z (stops: dorm_a)" in stderr


# ---- the store --------------------------------------------------------------------------------------


def _local_epoch(days_ago: int, seconds: float) -> float:
    """Epoch seconds of ``seconds`` after Shanghai midnight ``days_ago`` days before today."""
    today = datetime.fromtimestamp(time.time(), tz=SHANGHAI).date()
    midnight = datetime.combine(today - timedelta(days=days_ago), datetime.min.time(), SHANGHAI)
    return midnight.timestamp() + seconds


def _store_with_pickups(url: str) -> None:
    """A migrated store at ``url``: parcels picked up at 12:15 (x3, 2 days ago, stop dorm_a) and 18:05
    (x2, 3 days ago, centre), one at 08:00 40 days ago, and one loaded but never picked up."""
    engine = make_engine(url)
    upgrade(engine)
    cipher = PersonalDataCipher(Keys({"k1": bytes(range(32))}, "k1", bytes(range(32, 64))))
    personal = PersonalData(cipher, cipher.hmac_phone, mask_name, mask_phone)
    picks = (
        [(2, 12.25 * 3600, "dorm_a")] * 3 + [(3, 18 * 3600 + 300, "centre")] * 2 + [(40, 8 * 3600, "dorm_a")]
    )
    clock = VirtualClock(start=_local_epoch(50, 0))
    with session_factory(engine).begin() as session:
        parcels = ParcelRepository(session, clock, personal)
        for i, (days_ago, seconds, stop) in enumerate([*picks, (1, 9 * 3600, "dorm_a")]):
            tn = f"SF{i}"
            parcels.import_rows([ParcelIntake(tn, "S", "张三", "13812341234", dorm="dorm-7")])
            at = _local_epoch(days_ago, seconds)
            parcels.transition(tn, "sort", at=at - 600, window="w2", stop=stop)
            parcels.transition(tn, "load", at=at - 500, cart="cart_1", compartment="3")
            parcels.transition(tn, "arrive", at=at - 100)
            if i < len(picks):
                parcels.transition(tn, "pick_up", at=at)
    engine.dispose()


def test_recorded_pickups_are_read_from_the_store(database_url: str, tmp_path: Path) -> None:
    """The store's pick_up events of the last --since days (local times, stops) are the demand, on
    SQLite and PostgreSQL; a SQLite file is opened read-only and left as it was."""
    url = database_url
    _store_with_pickups(url)
    path = Path(url.removeprefix("sqlite:///"))
    before = path.read_bytes() if url.startswith("sqlite") else b""
    out = tmp_path / "rec.json"
    code, stdout, stderr = _recommend("--database-url", url, "--windows", "2", "--json", str(out))
    assert code == 0, stdout + stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["rows"] == 5 and data["served"] == 5
    assert [(w["demand"], w["by_stop"]) for w in data["windows"]] == [
        (3.0, {"dorm_a": 3.0}),
        (2.0, {"centre": 2.0}),
    ]
    assert data["windows"][0]["start"] == "11:45"  # centred on 12:15
    if url.startswith("sqlite"):
        assert path.read_bytes() == before
    code, _, _ = _recommend("--database-url", url, "--since", "60", "--json", str(out))
    assert code == 0 and json.loads(out.read_text(encoding="utf-8"))["rows"] == 6


def test_store_from_the_settings_file(tmp_path: Path) -> None:
    """--config reads database.url from the orchestrator's settings, and compares with the windows in
    force there (``campus.windows``)."""
    path = tmp_path / "store.db"
    _store_with_pickups(f"sqlite:///{path}")
    config = tmp_path / "robopost.yaml"
    settings = {
        "database": {"url": f"sqlite:///{path}"},
        "campus": {"windows": [{"id": "noon", "start": "12:00", "end": "13:00"}]},
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    out = tmp_path / "rec.json"
    code, stdout, _ = _recommend("--config", str(config), "--json", str(out))
    assert code == 0, stdout
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["rows"] == 5
    assert [w["id"] for w in result["current"]] == ["noon"]


def test_unreadable_store_gives_one_line(tmp_path: Path) -> None:
    """A missing file, or a database without the store's tables, is one line and exit code 2."""
    code, _, stderr = _recommend("--database-url", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 2 and "no such file" in stderr
    empty = tmp_path / "empty.db"
    engine = make_engine(f"sqlite:///{empty}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    engine.dispose()
    code, _, stderr = _recommend("--database-url", f"sqlite:///{empty}")
    assert code == 2 and "cannot read pick-ups" in stderr and len(stderr.strip().splitlines()) == 1


def test_timestamps_in_the_store_are_utc() -> None:
    """Sanity of the helper the store test relies on: local 12:15 two days ago is 04:15 UTC."""
    at = datetime.fromtimestamp(_local_epoch(2, 12.25 * 3600), tz=UTC)
    assert (at.hour, at.minute) == (4, 15)
