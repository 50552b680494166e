"""The console's windows, parcels and alarms views in headless Debian Chromium against the real app.

The views are ES modules mounted by the console shell; these tests mount them through a small test
page (``HARNESS``, served from a temporary folder beside the real app) that does what the shell does:
logs in with the console's own ``api.js``, opens its ``stream.js`` WebSocket and calls
``mount(root, {api, stream, t, user})``, with a ``t`` that knows no key, so the views' own string
tables are exercised. When the shell (``orchestrator/console/app.js``) is there, one test also goes
through it: log in on its form, click the tabs.

Parcels and alarms need no robots: parcels are imported and moved through their states with the
repository (one returned, one failed — each an alarm), with a dead notification for a third alarm.
The windows view runs on the live dispatch loop with three simulated carts (``conftest.live_console``).
The browser runs in the campus's time zone. Screenshots go to ``build/screenshots/console/``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from console_testkit import (
    FAST_HASHING,
    PASSWORD,
    PHONES,
    add_users_to,
    console_settings,
    order_draft,
    parcel_rows,
    serving,
    start_app,
)
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from playwright.async_api import Browser, Page, expect

from interfaces.clock import VirtualClock
from orchestrator.notify import Message, Outbox, ProviderResult, RetryPolicy
from orchestrator.store.domain_repositories import OrderRepository, ParcelRepository

pytestmark = pytest.mark.integration

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots" / "console"
TIMEZONE = "Asia/Shanghai"
WAIT_MS = 30_000
UNMASK_REASON = "收件人来电：柜内找不到包裹"
ACK_NOTE = "已联系办公室，明天重新投递"

HARNESS = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>robopost views</title>
<style>html, body { margin: 0; background: #f1f4f8; } #root { min-height: 100vh; }</style></head>
<body><main id="root"></main>
<script type="module">
  import { api } from "/console/api.js";
  import { createStream } from "/console/stream.js";
  const args = new URLSearchParams(location.hash.slice(1));
  if (args.get("lang") === "en") document.documentElement.lang = "en";
  api.forget();
  const user = await api.login(args.get("user"), args.get("password"));
  const stream = createStream(api.token);
  const opened = new Promise((resolve) => stream.on("snapshot", resolve));
  stream.connect();
  await opened;
  const view = await import(`/console/views/${args.get("view")}.js`);
  view.mount(document.getElementById("root"), { api, stream, t: (key) => key, user });
  document.body.dataset.mounted = args.get("view");
</script>
</body>
</html>
"""


def add_harness(app: FastAPI, folder: Path) -> None:
    """Serve the test page at ``/views-test/`` of ``app`` (from ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(HARNESS, encoding="utf-8")
    app.mount("/views-test", StaticFiles(directory=folder, html=True), name="views-test")


async def open_view(page: Page, url: str, view: str, user: str, lang: str = "zh") -> None:
    """Open ``view`` on the test page as ``user`` and wait until it is mounted (a fresh page load:
    only the fragment of the address changes between views)."""
    await page.goto("about:blank")
    await page.goto(f"{url}/views-test/#view={view}&user={user}&password={PASSWORD}&lang={lang}")
    await page.wait_for_selector(f'body[data-mounted="{view}"]', timeout=WAIT_MS)


async def shot(page: Page, name: str) -> Path:
    """Save the page as ``build/screenshots/console/{name}.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


@dataclass
class Desk:
    """The app without robots, served on loopback with the test page, a client on it, users."""

    app: FastAPI
    url: str
    client: httpx.AsyncClient

    async def bearer(self, username: str) -> dict[str, str]:
        """The Authorization header of a fresh session of ``username``."""
        answer = await self.client.post(
            "/v1/console/login", json={"username": username, "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}


def _seed(app: FastAPI) -> None:
    """Three parcels (SF1002 returned, SF1003 failed at the office), an order, a dead notification."""
    services = app.state.services
    with services.sessions.begin() as session:
        parcels = ParcelRepository(session, services.clock, services.personal)
        parcels.import_rows(parcel_rows())
        parcels.transition("SF1001", "sort", window="w1", stop="s1")
        parcels.transition("SF1001", "load", cart="cart_2", compartment="7")
        for tn, office in (("SF1002", False), ("SF1003", True)):
            parcels.transition(tn, "sort", window="w1", stop="s2", office=office)
            parcels.transition(tn, "load", cart="cart_1", compartment="3")
        parcels.transition("SF1002", "arrive")
        parcels.transition("SF1002", "return", reason="无人取件 not picked up")
        parcels.transition("SF1003", "hand_off")
        parcels.transition("SF1003", "fail", reason="办公室无人 office closed")
        OrderRepository(session, services.clock, services.personal).create(order_draft())
        outbox = Outbox(session, services.cipher, services.clock)
        outbox.enqueue(Message("sms", PHONES[2], "您的快递已到 / your parcel is here", "views:dead:1"))
        (claim,) = outbox.claim_due(limit=1, lease_s=60, max_attempts=1)
        outbox.record(claim, ProviderResult.failed("number unknown"), RetryPolicy(max_attempts=1))


@pytest_asyncio.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    """The real app (no fleet) on SQLite, its clock standing at the real time of the test's start,
    with viewer/operator/admin, seeded parcels and alarms, and the test page."""
    settings = console_settings(f"sqlite:///{tmp_path / 'robopost.db'}", tmp_path)
    app = start_app(settings, VirtualClock(start=time.time()))
    add_harness(app, tmp_path / "harness")
    async with serving(app) as host, httpx.AsyncClient(base_url=f"http://{host}") as client:
        assert (await client.get("/healthz")).status_code == 200
        app.state.services.passwords = FAST_HASHING
        await asyncio.to_thread(add_users_to, app)
        await asyncio.to_thread(_seed, app)
        yield Desk(app, f"http://{host}", client)


@pytest_asyncio.fixture
async def campus_page(browser: Browser) -> AsyncIterator[Page]:
    """A 1440 × 900 page in the campus's time zone that fails the test on any error in the page."""
    errors: list[str] = []
    context = await browser.new_context(
        viewport={"width": 1440, "height": 900}, locale="zh-CN", timezone_id=TIMEZONE
    )
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        await context.close()
    assert errors == [], f"errors in the page: {errors}"


def _row(page: Page, alarm_id: str) -> Any:
    return page.locator(f'tr[data-alarm-id="{alarm_id}"]')


# --- alarms -----------------------------------------------------------------------------------------------


async def test_an_operator_acknowledges_an_alarm_with_a_comment(desk: Desk, campus_page: Page) -> None:
    """The open alarms are listed most severe first with their severity colour; acknowledging the
    failed parcel's alarm with a comment shows it acknowledged by the operator (under the
    "acknowledged" filter), the API and the audit log say the same with the comment, and an
    acknowledgement by someone else reaches the open page over the stream."""
    page = campus_page
    await open_view(page, desk.url, "alarms", "operator")
    rows = page.locator("tr[data-alarm-id]")
    await expect(rows).to_have_count(3, timeout=WAIT_MS)
    kinds = [await r.get_attribute("data-kind") for r in await rows.all()]
    assert kinds == ["notification_dead", "parcel_failed", "parcel_returned"]  # warning, warning, info
    failed = page.locator('tr[data-kind="parcel_failed"]')
    alarm_id = await failed.get_attribute("data-alarm-id")
    assert alarm_id is not None
    await expect(failed).to_contain_text("SF1003")
    await expect(failed).to_contain_text("包裹投递失败")
    colour = await failed.locator(".rv-badge").evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour == "rgb(254, 243, 199)"  # warning amber
    await shot(page, "view_alarms")

    await failed.locator('[data-role="ack"]').click()
    dialog = page.locator("dialog.rv-ack-dialog")
    await expect(dialog).to_be_visible()
    await dialog.locator('[data-role="note"]').fill(ACK_NOTE)
    await shot(page, "view_alarms_ack_dialog")
    await dialog.locator('[data-role="confirm"]').click()
    await expect(dialog).to_have_count(0)
    await expect(_row(page, alarm_id)).to_have_count(0)  # the "open" filter no longer lists it
    await page.click('button[data-filter="acked"]')
    acked = _row(page, alarm_id).locator('[data-role="acked"]')
    await expect(acked).to_contain_text("已确认")
    await expect(acked).to_contain_text("operator")
    await expect(acked.locator('[data-role="ack-note"]')).to_have_text(ACK_NOTE)

    admin = await desk.bearer("admin")
    listed = (await desk.client.get("/v1/console/alarms?acked=true", headers=admin)).json()["alarms"]
    assert [(a["id"], a["acked_by"]) for a in listed] == [(alarm_id, "operator")]
    audit = (await desk.client.get("/v1/console/audit?action=ack", headers=admin)).json()["entries"]
    assert [(e["actor"], e["entity_id"], e["reason"]) for e in audit] == [("operator", alarm_id, ACK_NOTE)]

    # someone else acknowledges the returned parcel's alarm: the page shows it without a reload
    await page.click('button[data-filter="all"]')
    returned = page.locator('tr[data-kind="parcel_returned"]')
    other = await returned.get_attribute("data-alarm-id")
    answer = await desk.client.post(f"/v1/console/alarms/{other}:ack", json={"note": "ok"}, headers=admin)
    assert answer.status_code == 200, answer.text
    await expect(returned.locator('[data-role="acked"]')).to_contain_text("admin", timeout=WAIT_MS)
    await expect(page.locator('button[data-filter="open"] .rv-count')).to_have_text("1")
    await shot(page, "view_alarms_acknowledged")


async def test_a_viewer_sees_alarms_but_cannot_acknowledge(desk: Desk, campus_page: Page) -> None:
    """A viewer gets the same list, in English when the page is, without acknowledge buttons."""
    page = campus_page
    await open_view(page, desk.url, "alarms", "viewer", lang="en")
    await expect(page.locator("tr[data-alarm-id]")).to_have_count(3, timeout=WAIT_MS)
    await expect(page.locator("section.rv-alarms h2")).to_have_text("Alarms")
    await expect(page.locator('tr[data-kind="parcel_returned"]')).to_contain_text("Parcel returned")
    assert await page.locator('[data-role="ack"]').count() == 0
    await shot(page, "view_alarms_en")


async def test_a_robot_going_offline_appears_in_the_open_alarms_view(
    live_console: Any, campus_page: Page, tmp_path: Path
) -> None:
    """A cart that goes offline (its agent stops: VDA 5050 connection OFFLINE) shows up in the open
    alarms view without a reload (the stream's link change), and an operator acknowledges it there."""
    live = live_console
    add_harness(live.app, tmp_path / "harness")
    page = campus_page
    await open_view(page, live.url, "alarms", "operator")
    await expect(page.locator(".rv-alarms [data-role=empty]")).to_be_visible(timeout=WAIT_MS)
    await live.agents["cart_3"].stop()
    offline = page.locator('tr[data-kind="robot_offline"]')
    await expect(offline).to_have_count(1, timeout=WAIT_MS)
    await expect(offline).to_contain_text("cart_3")
    await expect(offline).to_contain_text("机器人离线")
    await offline.locator('[data-role="ack"]').click()
    await page.locator('dialog.rv-ack-dialog [data-role="note"]').fill("已派人到驿站检查 cart_3")
    await page.locator('dialog.rv-ack-dialog [data-role="confirm"]').click()
    await expect(offline).to_have_count(0)  # no longer open (the loop may raise its own alarm later)
    await page.click('button[data-filter="acked"]')
    await expect(offline.locator('[data-role="acked"]')).to_contain_text("operator")


# --- parcels ----------------------------------------------------------------------------------------------


async def test_parcels_are_searched_masked_and_unmasked_with_a_reason_found_in_the_audit(
    desk: Desk, campus_page: Page
) -> None:
    """The table lists the parcels with the recipients masked (no phone in clear anywhere on the
    page); a search by phone finds one; a parcel's details show its history; unmasking needs a
    reason of at least 3 characters, shows the clear phone with a note that the access is logged;
    the admin then finds the audit entry with that reason, on the page and over the API."""
    page = campus_page
    await open_view(page, desk.url, "parcels", "operator")
    rows = page.locator(".rv-results tbody tr")
    await expect(rows).to_have_count(3, timeout=WAIT_MS)
    body = await page.locator("body").inner_text()
    assert "138****1234" in body and not any(phone in body for phone in PHONES)

    await page.fill('input[name="phone"]', PHONES[1])
    await page.click('[data-role="search"]')
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("SF1002")
    await expect(rows.first).to_contain_text("已退回")
    await page.click("text=清除")
    await expect(rows).to_have_count(3)

    await page.click('tr[data-id="SF1003"]')
    history = page.locator('[data-role="history"] li')
    await expect(history).to_have_count(5)  # receive, sort, load, hand_off, fail (newest first)
    assert await history.first.get_attribute("data-kind") == "fail"
    await expect(page.locator('[data-role="detail"]')).to_contain_text("办公室无人")
    await shot(page, "view_parcels_details")

    await page.click('[data-role="unmask"]')
    dialog = page.locator("dialog.rv-unmask-dialog")
    await expect(dialog).to_contain_text("审计日志")
    await dialog.locator('[data-role="reason"]').fill("ab")
    await dialog.locator('[data-role="confirm"]').click()
    await expect(dialog.locator(".rv-dialog-error")).to_be_visible()
    await dialog.locator('[data-role="reason"]').fill(UNMASK_REASON)
    await shot(page, "view_parcels_unmask_dialog")
    await dialog.locator('[data-role="confirm"]').click()
    await expect(page.locator('[data-role="clear-phone"]')).to_have_text(PHONES[2])
    await expect(page.locator('[data-role="clear-name"]')).to_have_text("Jane Doe")
    await expect(page.locator('[data-role="logged"]')).to_contain_text(UNMASK_REASON)
    await shot(page, "view_parcels_unmasked")
    assert await page.locator('[data-role="audit-link"]').count() == 0  # operators have no audit log

    admin = await desk.bearer("admin")
    answer = await desk.client.get("/v1/console/audit?entity=parcel&entity_id=SF1003", headers=admin)
    entries = [(e["actor"], e["action"], e["reason"]) for e in answer.json()["entries"]]
    assert entries == [("operator", "unmask", UNMASK_REASON)]

    await open_view(page, desk.url, "parcels", "admin")
    await page.click('tr[data-id="SF1003"]')
    await page.click('[data-role="audit-link"]')
    entry = page.locator('[data-role="audit"] li')
    await expect(entry).to_have_count(1)
    await expect(entry).to_contain_text("operator")
    await expect(entry).to_contain_text(UNMASK_REASON)
    await shot(page, "view_parcels_audit")


async def test_orders_are_listed_masked_and_a_viewer_cannot_unmask(desk: Desk, campus_page: Page) -> None:
    """The orders tab lists the mini-program order with its contact masked; a viewer opening it gets
    no unmask button."""
    page = campus_page
    await open_view(page, desk.url, "parcels", "viewer")
    await page.click('button[data-mode="orders"]')
    rows = page.locator(".rv-results tbody tr")
    await expect(rows).to_have_count(1, timeout=WAIT_MS)
    await expect(rows.first).to_contain_text("上门取件")
    await expect(rows.first).to_contain_text("王*")
    await rows.first.click()
    await expect(page.locator('[data-role="history"] li')).to_have_count(1)
    await expect(page.locator('[data-role="person"]')).to_contain_text("138****1234")
    assert await page.locator('[data-role="unmask"]').count() == 0


# --- windows ----------------------------------------------------------------------------------------------


async def test_the_windows_timeline_shows_the_carts_stops_of_window_w1(
    live_console: Any, campus_page: Page, tmp_path: Path
) -> None:
    """Parcels imported before w1 opens are planned into it: the timeline shows w1 with a row per
    cart serving it and the carts' stops as blocks with their parcel counts, a "now" line, and
    refreshes itself (over the stream) as the carts load and drive; the console's windows tab shows
    the same."""
    live = live_console
    # first thing: w1 opens 6 virtual minutes (36 real seconds) after the fixture started, and the
    # parcels are planned into it only if they come early enough to be loaded and driven there
    await live.import_parcels(6)
    add_harness(live.app, tmp_path / "harness")
    page = campus_page
    await open_view(page, live.url, "windows", "viewer")
    await expect(page.locator('.wt-window[data-window="w1"]')).to_have_count(1, timeout=WAIT_MS)
    stops = page.locator('.wt-cart[data-window="w1"] .wt-stop')
    await expect(stops.first).to_be_visible(timeout=WAIT_MS)
    counts = [int(await s.get_attribute("data-parcels") or 0) for s in await stops.all()]
    assert sum(counts) == 6
    await expect(page.locator('[data-role="now"]')).to_have_count(1)
    moving = page.locator('.wt-stop[data-state="under_way"], .wt-stop[data-state="at_stop"]')
    await expect(moving.first).to_be_visible(timeout=WAIT_MS)
    await moving.first.click()
    await expect(page.locator('[data-role="stop-detail"] .wt-stat')).to_have_count(5)
    await shot(page, "view_windows")

    # the same in the console itself
    await log_in(page, live.url, "viewer")
    await page.click('#tabs a[data-view="windows"]')
    await expect(page.locator('.wt-cart[data-window="w1"] .wt-stop').first).to_be_visible(timeout=WAIT_MS)
    await shot(page, "view_console_windows")


# --- through the console's shell ------------------------------------------------------------------------


async def log_in(page: Page, url: str, username: str) -> None:
    """Open the console and log in on its form (forgetting a session of this tab, e.g. the test
    page's); returns once the shell is shown."""
    await page.goto(f"{url}/")
    await page.evaluate("sessionStorage.clear()")
    await page.reload()
    await page.fill("#login-username", username)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector('body[data-screen="shell"]', timeout=WAIT_MS)


async def test_the_views_work_inside_the_console(desk: Desk, campus_page: Page) -> None:
    """Logged in on the console, an operator clicks the alarms tab and acknowledges an alarm with a
    comment, the parcels tab and unmasks a phone with a reason, the windows tab (no fleet in this
    app: the windows have no carts); switching the console to English shows the views in English."""
    page = campus_page
    await log_in(page, desk.url, "operator")
    await page.click('#tabs a[data-view="alarms"]')
    failed = page.locator('tr[data-kind="parcel_failed"]')
    await expect(failed).to_have_count(1, timeout=WAIT_MS)
    await failed.locator('[data-role="ack"]').click()
    await page.locator('dialog.rv-ack-dialog [data-role="note"]').fill(ACK_NOTE)
    await page.locator('dialog.rv-ack-dialog [data-role="confirm"]').click()
    await page.click('button[data-filter="all"]')
    await expect(failed.locator('[data-role="acked"]')).to_contain_text("operator")
    await shot(page, "view_console_alarms")

    await page.click('#tabs a[data-view="parcels"]')
    await page.click('tr[data-id="SF1001"]')
    await page.click('[data-role="unmask"]')
    await page.locator('dialog.rv-unmask-dialog [data-role="reason"]').fill(UNMASK_REASON)
    await page.locator('dialog.rv-unmask-dialog [data-role="confirm"]').click()
    await expect(page.locator('[data-role="clear-phone"]')).to_have_text(PHONES[0])
    await shot(page, "view_console_parcels")
    admin = await desk.bearer("admin")
    audit = await desk.client.get("/v1/console/audit?action=unmask", headers=admin)
    assert [(e["entity_id"], e["reason"]) for e in audit.json()["entries"]] == [("SF1001", UNMASK_REASON)]

    await page.click('#tabs a[data-view="windows"]')
    w1 = page.locator('section.rv-windows .wt-window[data-window="w1"]')
    await expect(w1).to_contain_text("尚未安排车辆", timeout=WAIT_MS)  # no fleet: no cart planned
    await expect(page.locator("section.rv-windows")).to_have_count(1)
    await page.click("#lang")
    await expect(page.locator("section.rv-windows h2")).to_have_text("Delivery windows", timeout=WAIT_MS)
    await page.click('#tabs a[data-view="alarms"]')
    await expect(page.locator("section.rv-alarms h2")).to_have_text("Alarms", timeout=WAIT_MS)
    await expect(page.locator('tr[data-kind="parcel_returned"]')).to_contain_text("Parcel returned")
