"""The console's shell, map and remote driving in a real headless Chromium, on the real app with the
fleet master and the live dispatch loop, a real Mosquitto and three simulated carts (real VDA 5050
agents on SimDriver, on the app's ScaledClock).

An operator logs in, sees a cart drive on the map (its drawn position changes), opens its details,
switches the language, stops the whole fleet (the robots report the e-stop and stand; the page shows
the standing stop), takes a cart into remote driving (mode switch with confirmation), releases the
fleet and drives the cart a few metres with Space + W. Every state is saved as a screenshot to
``build/screenshots/console/``.
"""

from __future__ import annotations

import math

import pytest
from live_console_kit import LiveConsole, log_in, shot
from playwright.async_api import Page

pytestmark = pytest.mark.integration

WAIT_MS = 30_000


async def _map_ready(page: Page, robots: int = 3) -> None:
    await page.wait_for_selector('.view-map[data-ready="1"]', timeout=WAIT_MS)
    await page.wait_for_function(
        f"window.__robopostMap && window.__robopostMap.robots >= {robots}", timeout=WAIT_MS
    )


async def _drawn_at(page: Page, serial: str) -> list[float]:
    point: list[float] = await page.evaluate(f"window.__robopostMap.positions[{serial!r}]")
    return point


async def _click_robot(page: Page, serial: str) -> None:
    """Click the robot where the map's canvas drew it."""
    box = await page.locator("#map").bounding_box()
    assert box is not None
    x, y = await _drawn_at(page, serial)
    await page.mouse.click(box["x"] + x, box["y"] + y)


async def _confirm(page: Page, dialog: str) -> None:
    await page.click(f'#{dialog} [data-act="ok"]')
    await page.wait_for_selector(f"#{dialog}", state="detached")


async def test_operator_sees_carts_move_opens_one_and_switches_language(
    live_console: LiveConsole, page: Page
) -> None:
    """After login the map shows the three carts; once parcels are imported cart_1 drives and its drawn
    position moves; clicking it opens its details, where it is paused and resumed; the language toggle
    turns the shell English."""
    await page.goto(f"{live_console.url}/")
    await page.wait_for_selector('body[data-screen="login"] #login-username')
    await shot(page, "00-login")
    await log_in(page, live_console.url)
    await _map_ready(page)
    tabs = [t.strip() for t in await page.locator("#tabs .tab").all_inner_texts()]
    assert tabs[:3] == ["地图", "配送窗口", "包裹与订单"] and tabs[3].startswith("告警")
    assert await page.locator("#stop-all").text_content() == "全部急停"
    await page.wait_for_selector('#conn[data-state="open"]', timeout=WAIT_MS)

    await live_console.import_parcels()
    await live_console.until(lambda: live_console.view("cart_1").driving is True)
    before = await _drawn_at(page, "cart_1")
    await page.wait_for_function(
        f"""(() => {{ const p = window.__robopostMap.positions['cart_1'];
            return p && Math.hypot(p[0] - {before[0]}, p[1] - {before[1]}) > 80; }})()""",
        timeout=WAIT_MS,
    )
    await shot(page, "01-map-driving")

    await _click_robot(page, "cart_1")
    drawer = page.locator('#robot-drawer[data-serial="cart_1"]')
    await drawer.wait_for(timeout=WAIT_MS)
    assert await drawer.locator("h2").text_content() == "cart_1"
    await page.wait_for_selector('#robot-drawer [data-action="estop"]')
    await shot(page, "02-robot-details")

    await page.click('#robot-drawer [data-action="pause"]')
    await live_console.until(lambda: live_console.view("cart_1").paused is True)
    await page.wait_for_selector('#robot-drawer[data-state="paused"] [data-action="resume"]', timeout=WAIT_MS)
    await page.click('#robot-drawer [data-action="resume"]')
    await live_console.until(lambda: live_console.view("cart_1").paused is False)
    await page.wait_for_selector('#robot-drawer [data-action="pause"]', timeout=WAIT_MS)

    await page.click("#lang")
    await page.wait_for_selector('#tabs .tab[data-view="windows"]:has-text("Windows")')
    await page.wait_for_selector('.view-map[data-ready="1"]', timeout=WAIT_MS)
    assert await page.locator("#stop-all").text_content() == "Stop all"
    assert await page.locator(".map-side h3 span").first.text_content() == "Floors"
    await shot(page, "03-map-english")
    await page.click("#lang")
    await page.wait_for_selector('#tabs .tab[data-view="map"]:has-text("地图")')


async def test_stop_all_stops_the_fleet_and_a_cart_is_driven_by_keyboard(
    live_console: LiveConsole, page: Page
) -> None:
    """Stop all (confirmed) e-stops every cart, which stands; remote drive switches cart_2 to
    SEMIAUTOMATIC (confirmed); after Release all, holding Space + W drives it at least 2 m."""
    live = live_console
    await log_in(page, live.url)
    await _map_ready(page)
    await live.import_parcels()
    await live.until(lambda: live.view("cart_1").driving is True)

    await page.click("#stop-all")
    await page.wait_for_selector("#stop-dialog")
    await shot(page, "04-stop-all-confirm")
    await _confirm(page, "stop-dialog")
    await live.until(
        lambda: all(live.view(s).e_stop and not live.view(s).driving for s in ("cart_1", "cart_2", "cart_3"))
    )
    await page.wait_for_selector('#stop-all[data-active="true"]', timeout=WAIT_MS)
    assert await page.locator("#stop-all").text_content() == "解除全部急停"
    assert await page.locator("#stop-banner").is_visible()
    await page.click('.robot-row[data-serial="cart_1"]')
    await page.wait_for_selector('#robot-drawer[data-serial="cart_1"][data-state="estop"]', timeout=WAIT_MS)
    await shot(page, "05-stopped")

    await page.click('.robot-row[data-serial="cart_2"]')
    await page.wait_for_selector('#robot-drawer[data-serial="cart_2"]')
    await page.click('#robot-drawer [data-action="remote"]')
    await page.wait_for_selector("#remote-dialog")
    await _confirm(page, "remote-dialog")
    await live.until(lambda: live.view("cart_2").operating_mode == "SEMIAUTOMATIC")
    await page.wait_for_selector('#teleop[data-ready="1"]', timeout=WAIT_MS)

    await page.click("#stop-all")
    await _confirm(page, "stop-dialog")
    await live.until(lambda: not live.view("cart_2").e_stop)
    await page.wait_for_selector('#stop-all[data-active="false"]', timeout=WAIT_MS)

    start = live.view("cart_2").position
    assert start is not None
    await page.locator("#teleop").focus()
    await page.keyboard.down("Space")
    await page.keyboard.down("w")
    try:
        await live.until(lambda: _moved(live, "cart_2", start.x, start.y) >= 2.0)
        await page.wait_for_function(
            "Number(document.querySelector('#teleop').dataset.acks) > 3", timeout=WAIT_MS
        )
        await shot(page, "06-remote-driving")
    finally:
        await page.keyboard.up("w")
        await page.keyboard.up("Space")
    assert await page.locator('#teleop [data-stat="vx"]').text_content() == "0.00 m/s"
    assert live.view("cart_2").operating_mode == "SEMIAUTOMATIC"


def _moved(live: LiveConsole, serial: str, x: float, y: float) -> float:
    p = live.view(serial).position
    return 0.0 if p is None else math.hypot(p.x - x, p.y - y)
