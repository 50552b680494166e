"""Station staff sort and load parcels over HTTP: the code is issued and its SMS held, never answered."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from api_testkit import T0, make_settings, running_app, station_headers

from interfaces.clock import VirtualClock
from orchestrator.notify import OutboxStatus
from orchestrator.notify.outbox import Outbox

CART, CART_TOKEN = "cart_1", "cart-1-token-0123456789abcdef"
PARCEL = {
    "tracking_number": "SF1",
    "recipient_name": "张三",
    "phone": "13812341234",
    "dorm": "DORM1",
    "size": "S",
}


async def test_import_sort_load_issues_a_code_the_cart_can_check(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, security={"carts": {CART: CART_TOKEN}})
    window_end = datetime.fromtimestamp(T0 + 3600, UTC).isoformat()
    async with running_app(settings, VirtualClock(T0)) as api:
        station = station_headers()
        imported = await api.http.post("/v1/parcels:import", json={"parcels": [PARCEL]}, headers=station)
        assert imported.json()["created"] == 1
        sorted_ = await api.http.post(
            "/v1/parcels/SF1:sort", json={"window": "w1", "stop": "stop_dorm_1"}, headers=station
        )
        assert sorted_.status_code == 200 and sorted_.json()["state"] == "sorted"
        body = {"cart": CART, "compartment": "S07", "window_end": window_end}
        loaded = await api.http.post("/v1/parcels/SF1:load", json=body, headers=station)
        assert loaded.status_code == 200, loaded.text
        answer = loaded.json()
        assert (answer["state"], answer["cart"], answer["compartment"], answer["code_issued"]) == (
            "loaded",
            CART,
            "S07",
            True,
        )
        assert all(len(v) != 6 or not v.isdigit() for v in map(str, answer.values()))  # no code in clear
        again = await api.http.post("/v1/parcels/SF1:load", json=body, headers=station)
        assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
        unknown = await api.http.post("/v1/parcels/NOPE:load", json=body, headers=station)
        assert unknown.status_code == 404
        refused = await api.http.post("/v1/parcels/SF1:sort", json={"window": "w1", "stop": "x"})
        assert refused.status_code == 401
        sync = await api.http.get(
            f"/v1/carts/{CART}/codes", headers={"Authorization": f"Bearer {CART_TOKEN}"}
        )
        assert [c["parcel"] for c in sync.json()["codes"]] == ["SF1"]
        services = api.app.state.services
        with services.sessions.begin() as session:
            held = Outbox(session, services.cipher, services.clock).list(status=OutboxStatus.HELD)
        assert len(held) == 1 and "138****1234" in held[0].to_masked
