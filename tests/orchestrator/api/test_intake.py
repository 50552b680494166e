"""POST /v1/parcels:import through httpx against the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from api_testkit import PHONE, T0, make_settings, running_app, station_headers
from sqlalchemy import func, select

from interfaces.clock import VirtualClock
from maps.io import load_map
from orchestrator.api.intake import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS, Destinations, Refused
from orchestrator.settings import default_campus_map
from orchestrator.store import make_engine, session_factory
from orchestrator.store.domain_tables import ParcelEventRow, ParcelRow

HEADER = "tracking_number,recipient_name,phone,building,room,dorm,size"
CSV_TYPE = {"Content-Type": "text/csv; charset=utf-8"}

MIXED = "\n".join(
    [
        HEADER,
        f"SF1001,张三,{PHONE},,,DORM1,S",  # 1 dorm → its stop
        "SF1002,李四,+86 139-1234-5678,ADM,201,,m",  # 2 office (size case-insensitive)
        "SF1003,王五,13712345678,ACT,,,L",  # 3 building without room → its stop
        "SF1004,赵六,12345,,,DORM2,S",  # 4 bad phone
        "SF1005,钱七,13812340000,,,DORM9,S",  # 5 unknown dorm
        "SF1006,孙八,13812340001,LAB,101,,S",  # 6 unknown building
        "SF1007,周九,13812340002,ADM,999,,S",  # 7 unknown room
        "SF1008,吴十,13812340003,ADM,201,DORM1,S",  # 8 both
        "SF1009,郑一,13812340004,,,DORM3,",  # 9 missing size
        "SF1010,冯二,13812340005,,,DORM3,XL",  # 10 bad size
        f"SF1001,张三,{PHONE},,,DORM1,S",  # 11 repeats row 1
        "SF1012,陈三,13812340006,,,DORM3",  # 12 too few fields
        "SF 1013,褚四,13812340007,,,DORM3,S",  # 13 bad tracking number
        ",卫五,13812340008,,,DORM3,S",  # 14 no tracking number
        "SF1015,,13812340009,,,DORM3,S",  # 15 no name
        "SF1016,蒋六,13812340010,tea,tea_305,,S",  # 16 building case-insensitive, room by place name
    ]
)


def _settings(tmp_path: Path, database_url: str, **kw: Any) -> Any:
    return make_settings(tmp_path, database_url, **kw)


def _count(database_url: str, table: Any) -> int:
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            return int(session.scalar(select(func.count()).select_from(table)) or 0)
    finally:
        engine.dispose()


def _by_status(report: dict[str, Any]) -> dict[int, tuple[str, str | None, str | None]]:
    return {r["row"]: (r["status"], r.get("reason"), r.get("place")) for r in report["rows"]}


async def test_csv_import_reports_every_row_and_keeps_the_good_ones(
    tmp_path: Path, database_url: str
) -> None:
    """Each row is created, duplicate or refused with its reason; good rows are stored as received."""
    async with running_app(_settings(tmp_path, database_url), VirtualClock(T0)) as api:
        resp = await api.http.post(
            "/v1/parcels:import", content=MIXED.encode(), headers={**CSV_TYPE, **station_headers()}
        )
    assert resp.status_code == 200, resp.text
    report = resp.json()
    rows = _by_status(report)
    assert (report["created"], report["duplicate"], report["refused"]) == (4, 1, 11)
    assert rows[1] == ("created", None, "stop_dorm_1")
    assert rows[2] == ("created", None, "adm_201")
    assert rows[3] == ("created", None, "stop_activity_centre")
    assert rows[16] == ("created", None, "tea_305")
    assert rows[11] == ("duplicate", "repeats row 1", "stop_dorm_1")
    reasons = {n: rows[n][1] or "" for n in rows if rows[n][0] == "refused"}
    assert "Chinese mobile number" in reasons[4]
    assert reasons[5] == "unknown dorm 'DORM9': no stop serves it"
    assert reasons[6] == "unknown building 'LAB'"
    assert reasons[7] == "unknown room '999' in building 'ADM'"
    assert reasons[8] == "give a building (with its room) or a dorm, not both"
    assert reasons[9] == "size is missing"
    assert "XL" in reasons[10]
    assert reasons[12] == "the row has 6 fields, the header 7"
    assert "tracking number" in reasons[13]
    assert reasons[14] == "tracking_number is missing"
    assert reasons[15] == "recipient_name is missing"
    assert all(PHONE not in r for r in reasons.values())
    assert _count(database_url, ParcelRow) == 4
    assert _count(database_url, ParcelEventRow) == 4


async def test_stored_parcels_are_received_with_personal_data_encrypted(
    tmp_path: Path, database_url: str
) -> None:
    """An imported parcel is 'received' at its resolved place; name and phone only encrypted and masked."""
    body = f"{HEADER}\nSF2001,张三,{PHONE},ADM,201,,M\n"
    async with running_app(_settings(tmp_path, database_url), VirtualClock(T0)) as api:
        resp = await api.http.post(
            "/v1/parcels:import", content=body.encode(), headers={**CSV_TYPE, **station_headers()}
        )
    assert resp.json()["created"] == 1
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            row = session.scalars(select(ParcelRow)).one()
    finally:
        engine.dispose()
    assert (row.state, row.building, row.room, row.place, row.size) == (
        "received",
        "ADM",
        "201",
        "adm_201",
        "M",
    )
    assert (row.name_masked, row.phone_masked) == ("张*", "138****1234")
    assert row.recipient_phone_enc is not None and PHONE.encode() not in row.recipient_phone_enc
    assert row.recipient_name_enc is not None and "张三".encode() not in row.recipient_name_enc


async def test_reimport_is_duplicate_and_never_a_second_parcel(tmp_path: Path, database_url: str) -> None:
    """Sending the same batch again reports every stored row as a duplicate; nothing new is written."""
    async with running_app(_settings(tmp_path, database_url), VirtualClock(T0)) as api:
        first = await api.http.post(
            "/v1/parcels:import", content=MIXED.encode(), headers={**CSV_TYPE, **station_headers()}
        )
        again = await api.http.post(
            "/v1/parcels:import", content=MIXED.encode(), headers={**CSV_TYPE, **station_headers()}
        )
    created = {r["row"] for r in first.json()["rows"] if r["status"] == "created"}
    rows = _by_status(again.json())
    assert again.json()["created"] == 0
    assert all(rows[n][:2] == ("duplicate", "already imported") for n in created)
    assert _count(database_url, ParcelRow) == len(created)
    assert _count(database_url, ParcelEventRow) == len(created)


async def test_json_import_takes_the_same_rows(tmp_path: Path, database_url: str) -> None:
    """A JSON batch is read like CSV; numbers are accepted for phone and room, a non-object row is refused."""
    batch = {
        "parcels": [
            {
                "tracking_number": "JS1",
                "recipient_name": "Alice",
                "phone": 13812341234,
                "dorm": "dorm4",
                "size": "S",
            },
            {
                "tracking_number": "JS2",
                "recipient_name": "Bob",
                "phone": "13912345678",
                "building": "ADM",
                "room": 202,
                "size": "L",
            },
            "not a row",
            {
                "tracking_number": "JS4",
                "recipient_name": ["x"],
                "phone": "13912345678",
                "dorm": "DORM1",
                "size": "S",
            },
        ]
    }
    async with running_app(_settings(tmp_path, database_url), VirtualClock(T0)) as api:
        resp = await api.http.post("/v1/parcels:import", json=batch, headers=station_headers())
    rows = _by_status(resp.json())
    assert rows[1] == ("created", None, "stop_dorm_4")
    assert rows[2] == ("created", None, "adm_202")
    assert rows[3] == ("refused", "the row is not a JSON object", None)
    assert rows[4] == ("refused", "recipient_name must be text", None)


async def test_gbk_csv_is_read_with_its_charset(tmp_path: Path, database_url: str) -> None:
    """A CSV in the charset its Content-Type names (GBK exports are common) is decoded with it."""
    body = f"{HEADER}\nGB1,张三,{PHONE},,,DORM1,S\n".encode("gbk")
    headers = {"Content-Type": "text/csv; charset=gbk", **station_headers()}
    async with running_app(_settings(tmp_path, database_url), VirtualClock(T0)) as api:
        resp = await api.http.post("/v1/parcels:import", content=body, headers=headers)
    assert resp.json()["created"] == 1


async def test_import_needs_the_station_token(tmp_path: Path) -> None:
    """No token or a wrong one is a 401 problem asking for a bearer token; nothing is stored."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    async with running_app(_settings(tmp_path, url), VirtualClock(T0)) as api:
        missing = await api.http.post("/v1/parcels:import", content=MIXED.encode(), headers=CSV_TYPE)
        wrong = await api.http.post(
            "/v1/parcels:import", content=MIXED.encode(), headers={**CSV_TYPE, **station_headers("nope")}
        )
    for resp in (missing, wrong):
        assert resp.status_code == 401
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.headers["www-authenticate"] == "Bearer"
    assert wrong.json()["detail"] == "the station token is not valid"
    assert _count(url, ParcelRow) == 0


async def test_import_refused_when_no_station_token_is_configured(tmp_path: Path) -> None:
    """Without a station secret in security.partners, every import is a 401 saying so."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    settings = make_settings(tmp_path, url, security={"partners": {"mp": "x" * 32}})
    async with running_app(settings, VirtualClock(T0)) as api:
        resp = await api.http.post(
            "/v1/parcels:import", content=MIXED.encode(), headers={**CSV_TYPE, **station_headers()}
        )
    assert resp.status_code == 401
    assert resp.json()["detail"] == "station import is not configured (no station token)"


@pytest.mark.parametrize(
    ("content_type", "body", "status", "detail"),
    [
        ("text/plain", b"x", 415, "send the parcels as text/csv or application/json"),
        ("text/csv; charset=klingon", b"x", 415, "unknown charset 'klingon'"),
        ("text/csv", b"", 422, "the CSV is empty: it needs the header line " + HEADER),
        (
            "text/csv",
            b"tracking_number,phone\nA,1\n",
            422,
            "the CSV header lacks column(s) recipient_name, building, room, dorm, size",
        ),
        ("text/csv", b"\xff\xfe\x00", 422, "the body is not valid utf-8 text"),
        ("application/json", b"{", 422, "the body is not valid JSON"),
        ("application/json", b'{"rows": []}', 422, 'the JSON must be an object with a "parcels" array'),
    ],
)
async def test_unusable_bodies_are_problems(
    tmp_path: Path, content_type: str, body: bytes, status: int, detail: str
) -> None:
    """A body that cannot be read as a batch is refused whole, with a problem saying why."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    async with running_app(_settings(tmp_path, url), VirtualClock(T0)) as api:
        resp = await api.http.post(
            "/v1/parcels:import", content=body, headers={"Content-Type": content_type, **station_headers()}
        )
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["detail"] == detail


async def test_batches_beyond_the_limits_are_refused(tmp_path: Path) -> None:
    """More rows than MAX_IMPORT_ROWS is a 422; a body over MAX_IMPORT_BYTES a 413; nothing stored."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    rows = "\n".join(f"T{i},A,{PHONE},,,DORM1,S" for i in range(MAX_IMPORT_ROWS + 1))
    big = json.dumps({"parcels": [], "pad": "x" * MAX_IMPORT_BYTES}).encode()
    async with running_app(_settings(tmp_path, url), VirtualClock(T0)) as api:
        many = await api.http.post(
            "/v1/parcels:import",
            content=f"{HEADER}\n{rows}".encode(),
            headers={**CSV_TYPE, **station_headers()},
        )
        huge = await api.http.post(
            "/v1/parcels:import",
            content=big,
            headers={"Content-Type": "application/json", **station_headers()},
        )
    assert many.status_code == 422
    assert (
        many.json()["detail"]
        == f"an import holds at most {MAX_IMPORT_ROWS} rows, this one has {MAX_IMPORT_ROWS + 1}"
    )
    assert huge.status_code == 413
    assert _count(url, ParcelRow) == 0


async def test_control_characters_refuse_the_row_not_the_batch(tmp_path: Path, database_url: str) -> None:
    """A NUL in a name (which PostgreSQL cannot store) refuses that row only."""
    batch = {
        "parcels": [
            {
                "tracking_number": "C1",
                "recipient_name": "A\x00B",
                "phone": PHONE,
                "dorm": "DORM1",
                "size": "S",
            },
            {"tracking_number": "C2", "recipient_name": "AB", "phone": PHONE, "dorm": "DORM1", "size": "S"},
        ]
    }
    async with running_app(_settings(tmp_path, database_url), VirtualClock(T0)) as api:
        resp = await api.http.post("/v1/parcels:import", json=batch, headers=station_headers())
    rows = _by_status(resp.json())
    assert rows[1] == ("refused", "recipient_name holds control characters", None)
    assert rows[2][0] == "created"


@pytest.fixture(scope="module")
def destinations() -> Destinations:
    """The sample campus's destination index."""
    return Destinations.of(load_map(default_campus_map()))


@pytest.mark.parametrize(
    ("building", "room", "dorm", "expected"),
    [
        (None, None, "DORM6", (None, "DORM6", "stop_dorm_6")),
        (None, "3-201", "dorm2", (None, "DORM2", "stop_dorm_2")),
        ("adm", "ADM_1001", None, ("ADM", None, "adm_1001")),
        ("TEA", "101", None, ("TEA", None, "tea_101")),
        ("ADM", None, None, ("ADM", None, "stop_adm")),
    ],
)
def test_destinations_resolve_to_map_places(
    destinations: Destinations,
    building: str | None,
    room: str | None,
    dorm: str | None,
    expected: tuple[str | None, str | None, str],
) -> None:
    """Dorms go to the stop serving them, rooms to their office/room place, a lone building to its stop."""
    assert destinations.resolve(building, room, dorm) == expected


def test_destinations_refuse_what_the_map_does_not_have(destinations: Destinations) -> None:
    """Unknown names, a dorm that is a building without a stop, and empty destinations are refused."""
    with pytest.raises(Refused, match="needs a building"):
        destinations.resolve(None, "101", None)
    with pytest.raises(Refused, match="unknown dorm 'LIB'"):
        destinations.resolve(None, None, "LIB")
    with pytest.raises(Refused, match="building 'LIB' needs a room"):
        destinations.resolve("LIB", None, None)
