"""The kiosk page in a real headless Chromium, on the whole cart: the kiosk app under uvicorn on
loopback, the cart service on the real ``LockerDriver`` talking Modbus RTU over a real pty to the
simulated locker board, and the service's uplink on the real orchestrator (loopback HTTP).

A student types codes by clicking the keypad; the simulated board opens the compartment, the simulated
student takes the parcel and shuts the door, and the pickup reaches the orchestrator. Wrong codes step
up to the phone tail and then lock the keypad; staff open compartments from a grid; a pulled cable and
a jammed lock are explained. Every screen is saved to ``tests/artifacts/cart/`` for people to look at.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cart_testkit import (
    STAFF_PIN,
    STOP,
    WINDOW,
    CartStack,
    OrchestratorServer,
    cart_settings,
    cart_stack,
    until,
)
from console_testkit import serving
from playwright.async_api import Browser, Page, ViewportSize, WebSocketRoute, async_playwright

from orchestrator.domain import ParcelState
from robots.cart.hmi import create_kiosk_app
from robots.cart.locker.model import BoardHealth

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "tests" / "artifacts" / "cart"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]  # loopback only
SCREEN: ViewportSize = {"width": 1280, "height": 800}
PHONE = "400-820-1234"
# (tracking number, recipient's phone, compartment)
PARCELS = [("SF1001", "13812341234", 3), ("SF1002", "13900005678", 5)]
WAIT_MS = 10_000


@dataclass
class Kiosk:
    """The running cart (board sim, driver, service), its orchestrator, the codes and the page."""

    orchestrator: OrchestratorServer
    cart: CartStack
    codes: dict[str, str]
    page: Page
    url: str

    async def open_page(self) -> None:
        """Load the kiosk page (with a controllable page clock) and wait for the code pad."""
        await self.page.clock.install()
        await self.page.goto(self.url)
        await self.page.wait_for_selector('body[data-screen="entry"]')

    async def type(self, digits: str) -> None:
        """Click the keypad's buttons, one per digit."""
        for digit in digits:
            await self.page.click(f'#keypad [data-key="{digit}"]')

    async def submit(self, answers: int) -> None:
        """Click the big button and wait for the page's ``answers``-th answer."""
        await self.page.click("#submit")
        await self.page.wait_for_selector(f'body[data-answers="{answers}"]', state="attached")

    async def shot(self, name: str) -> Path:
        """Save the screen as ``tests/artifacts/cart/{name}.png``."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path))
        return path

    async def text(self, selector: str) -> str:
        return await self.page.inner_text(selector)


def _window_end() -> float:
    """The next full hour at least half an hour away: a window end as a person would set it."""
    return math.ceil((time.time() + 1800) / 3600) * 3600


def _wrong(codes: dict[str, str]) -> str:
    """A 6-digit code that opens nothing."""
    candidate = 111111
    while f"{candidate:06d}" in codes.values():
        candidate += 1
    return f"{candidate:06d}"


HANDLED = ("status of 401 (Unauthorized)", "status of 423 (Locked)")
"""Answers the page expects and shows (a wrong PIN, staff mode locked): Chromium logs them anyway."""


def _console_error(kind: str, text: str) -> list[str]:
    """A console message that fails the test: any error but the answers the page handles."""
    return [text] if kind == "error" and not text.endswith(HANDLED) else []


@asynccontextmanager
async def kiosk_on_cart(tmp_path: Path, browser: Browser, **settings: Any) -> AsyncIterator[Kiosk]:
    """Orchestrator with two parcels loaded on the cart; the cart at their stop, synced and online; the
    kiosk app served on a free loopback port; a fresh page (its own browser context) failing the test on
    page errors. ``settings`` change the cart's ``CartSettings``."""
    orchestrator = OrchestratorServer(tmp_path)
    await orchestrator.start()
    try:
        codes = await orchestrator.load(PARCELS, window_end=_window_end())
        async with cart_stack(tmp_path, orchestrator.base_url, settings=cart_settings(**settings)) as cart:
            for parcel, _, compartment in PARCELS:
                cart.board.load(compartment, parcel)
            cart.service.arrive(STOP, WINDOW)
            assert await cart.service.sync_now()
            await until(
                cart.service, lambda v: v.board is BoardHealth.OK and v.online and v.pending_events == 0
            )
            async with serving(create_kiosk_app(cart.service)) as host:
                errors: list[str] = []
                page = await browser.new_page(viewport=SCREEN)
                try:
                    page.set_default_timeout(WAIT_MS)
                    page.on("pageerror", lambda exc: errors.append(str(exc)))
                    page.on("console", lambda msg: errors.extend(_console_error(msg.type, msg.text)))
                    yield Kiosk(orchestrator, cart, codes, page, f"http://{host}/")
                finally:
                    await page.close()
                assert errors == [], f"errors in the page: {errors}"
    finally:
        await orchestrator.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the module (each test gets its own context and page)."""
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def kiosk(tmp_path: Path, browser: Browser) -> AsyncIterator[Kiosk]:
    """The kiosk of a cart at its stop with two parcels (compartments 3 and 5)."""
    async with kiosk_on_cart(tmp_path, browser) as started:
        yield started


# --- the acceptance flow --------------------------------------------------------------------------------


async def test_right_code_opens_the_compartment_and_the_pickup_reaches_the_orchestrator(kiosk: Kiosk) -> None:
    """Typing the right code on the keypad pulses compartment 3's lock through the pty; the page shows
    the big compartment number; once the student takes the parcel and shuts the door the pickup reaches
    the orchestrator (picked_up there), the page thanks them and returns to the keypad by itself."""
    page, board = kiosk.page, kiosk.cart.board
    await kiosk.open_page()
    assert "1号学生公寓停靠点" in await kiosk.text(".place")
    assert "Dorm 1 stop" in await kiosk.text(".place")
    assert "结束" in await kiosk.text("#window") and "Window ends" in await kiosk.text("#window")
    await page.wait_for_selector('#link[data-state="online"]')
    await page.wait_for_selector('body[data-live="socket"]', state="attached")  # live, not polling
    assert PHONE in await kiosk.text("#support")

    code = kiosk.codes["SF1001"]
    await kiosk.type(code[:4])
    await kiosk.shot("keypad")
    assert await page.is_disabled("#submit")
    await kiosk.type(code[4:])
    await kiosk.submit(1)

    await board.wait_for(lambda: board.door_open(3), timeout=5)
    assert board.pulses(3) == 1 and board.pulses(5) == 0
    await page.wait_for_selector('body[data-screen="success"]')
    assert await kiosk.text("#success-number") == "3"
    assert "3号格口已打开，取件后请关好柜门" in await kiosk.text("#success")
    assert "Compartment 3 is open — please close the door" in await kiosk.text("#success")
    await kiosk.shot("success")

    assert board.take(3) == "SF1001"
    board.close_door(3)
    await until(kiosk.cart.service, lambda v: not v.compartments and v.pending_events == 0 and v.online)
    assert kiosk.orchestrator.state("SF1001") is ParcelState.PICKED_UP
    assert kiosk.orchestrator.state("SF1002") is not ParcelState.PICKED_UP

    await page.wait_for_selector('#success[data-phase="closed"]')
    assert "取件成功" in await kiosk.text("#success")
    await kiosk.shot("picked-up")
    await page.clock.fast_forward(7_000)  # the thank-you stays a few seconds
    await page.wait_for_selector('body[data-screen="entry"]')
    assert (await kiosk.text("#code-boxes")).strip() == ""


async def test_wrong_codes_step_up_to_the_phone_tail_then_lock_the_keypad(kiosk: Kiosk) -> None:
    """A wrong code gets the neutral answer and the phone-tail field appears; four more wrong codes
    (with a tail, typed on a USB keypad) lock the keypad: the lockout screen counts down to when it
    reopens. Nothing opened."""
    page, board = kiosk.page, kiosk.cart.board
    wrong = _wrong(kiosk.codes)
    await kiosk.open_page()
    assert await page.is_hidden("#tail-field")

    await kiosk.type(wrong)
    await kiosk.submit(1)
    await page.wait_for_selector("#tail-field:not([hidden])")
    assert "取件码不正确" in await kiosk.text("#entry-message")
    assert (await kiosk.text("#code-boxes")).strip() == ""  # cleared for the next try
    await kiosk.type(kiosk.codes["SF1002"] + "56")
    await kiosk.shot("step-up")
    assert await page.is_disabled("#submit")  # the tail is not complete yet

    await kiosk.page.click('#keypad [data-key="clear"]')
    for answers in range(2, 6):  # on the cart's USB keypad this time: digits, then Enter
        await page.keyboard.type(wrong + "0000")
        await page.keyboard.press("Enter")
        await page.wait_for_selector(f'body[data-answers="{answers}"]', state="attached")
    await page.wait_for_selector('body[data-screen="locked"]')
    assert "输错次数过多" in await kiosk.text("#locked")
    assert "Too many wrong codes" in await kiosk.text("#locked")
    until_s = kiosk.cart.service.screen().locked_until
    assert until_s is not None  # 10 minutes after the first wrong code
    left = await page.get_attribute("#locked-left", "data-seconds")
    assert left is not None and abs(int(left) - (until_s - time.time())) < 3
    assert " 分 " in await kiosk.text("#locked-left") and " min " in await kiosk.text("#locked-left")
    await kiosk.shot("lockout")
    assert board.pulses(3) == board.pulses(5) == 0


# --- staff ----------------------------------------------------------------------------------------------


async def test_staff_open_compartments_from_the_grid_and_leave(kiosk: Kiosk) -> None:
    """The discreet staff button asks for the PIN; the grid shows every compartment with its parcel and
    door; tapping one opens it through the board, "open all" (after a confirmation) opens every one;
    Exit returns to the code pad and ends the session."""
    page, board = kiosk.page, kiosk.cart.board
    await kiosk.open_page()
    await page.click("#staff-button")
    await page.wait_for_selector('body[data-screen="staff-pin"]')
    await kiosk.type("1357")
    await kiosk.page.click("#submit")
    await page.wait_for_selector("#pin-message:not([hidden])")
    assert "密码不正确" in await kiosk.text("#pin-message")
    await kiosk.type(STAFF_PIN)
    await kiosk.shot("staff-pin")
    await kiosk.page.click("#submit")
    await page.wait_for_selector('body[data-screen="staff"] .cell[data-number="12"]')
    assert await page.locator(".cell").count() == 12
    assert await page.locator('.cell[data-occupied="1"]').count() == 2

    await page.click('.cell[data-number="7"]')
    await board.wait_for(lambda: board.door_open(7), timeout=5)
    await page.wait_for_selector('.cell[data-number="7"][data-door="open"]')
    await page.wait_for_selector('#staff-note:has-text("7号格口已打开")')  # the open's answer
    await kiosk.shot("staff-grid")
    assert [k for k in range(1, 13) if board.door_open(k)] == [7]

    await page.click("#staff-open-all")
    await page.wait_for_selector("#confirm:not([hidden])")
    assert "12" in await kiosk.text("#confirm")
    await page.click("#confirm-yes")
    await board.wait_for(lambda: all(board.door_open(k) for k in range(1, 13)), timeout=5)
    await page.wait_for_selector('#staff-note[data-kind="ok"]:has-text("已打开全部 12 个格口")')

    await page.click("#staff-exit")
    await page.wait_for_selector('body[data-screen="entry"]')
    assert kiosk.orchestrator.state("SF1001") is not ParcelState.PICKED_UP  # staff openings are no pickup


# --- trouble --------------------------------------------------------------------------------------------


async def test_pulled_cable_and_jammed_lock_are_explained_with_the_help_line(
    tmp_path: Path, browser: Browser
) -> None:
    """The board's cable pulled: the page says the lockers do not respond and shows the help line, and
    returns to the keypad when the cable is back. A jammed lock: the right code pulses it, the door
    stays shut, and the page says the compartment did not open, the code still works, whom to call."""
    async with kiosk_on_cart(tmp_path, browser, open_timeout_s=1.0) as kiosk:
        page, board = kiosk.page, kiosk.cart.board
        await kiosk.open_page()

        await board.unplug()
        await page.wait_for_selector('#trouble[data-kind="board_down"]:not([hidden])')
        assert "柜门控制暂时不可用" in await kiosk.text("#trouble")
        assert PHONE in await kiosk.text("#trouble-phone")
        assert await page.is_hidden("#trouble-back")  # nothing to go back to while it lasts
        await kiosk.shot("board-down")
        await board.replug()
        await page.wait_for_selector('body[data-screen="entry"]')

        board.jam(5)
        await kiosk.type(kiosk.codes["SF1002"])
        await kiosk.submit(1)
        await board.wait_for(lambda: board.pulses(5) == 1, timeout=5)
        await page.wait_for_selector('#trouble[data-kind="jammed"]:not([hidden])')
        assert "5号格口未能打开" in await kiosk.text("#trouble")
        assert "取件码仍然有效" in await kiosk.text("#trouble")
        assert not board.door_open(5)
        await kiosk.shot("jammed")
        await page.click("#trouble-back")
        await page.wait_for_selector('body[data-screen="entry"]')


async def test_door_left_open_and_offline_are_told_gently(tmp_path: Path, browser: Browser) -> None:
    """A door left open brings a reminder banner until it is shut; with the orchestrator gone a right
    code still opens, the header says the cart is offline but pickup still works, and the pickup waits
    on the cart until the orchestrator is back."""
    async with kiosk_on_cart(tmp_path, browser, door_alarm_s=0.5) as kiosk:
        page, board = kiosk.page, kiosk.cart.board
        await kiosk.open_page()
        await kiosk.orchestrator.stop()

        await kiosk.type(kiosk.codes["SF1001"])
        await kiosk.submit(1)
        await board.wait_for(lambda: board.door_open(3), timeout=5)
        await page.wait_for_selector('body[data-screen="success"]')
        assert board.take(3) == "SF1001"
        await page.wait_for_selector("#banner:not([hidden])")
        assert "3号格口未关闭，请关好柜门" in await kiosk.text("#banner")
        await kiosk.shot("door-open")

        board.close_door(3)
        await page.wait_for_selector("#banner", state="hidden")
        await page.wait_for_selector('#success[data-phase="closed"]')
        await page.click("#success-done")
        await until(kiosk.cart.service, lambda v: not v.online and v.pending_events == 1)
        await page.wait_for_selector('#link[data-state="offline"]')
        assert "离线模式" in await kiosk.text("#link")
        await page.wait_for_selector('body[data-screen="entry"]')
        await kiosk.shot("offline")

        await kiosk.orchestrator.start()
        await until(kiosk.cart.service, lambda v: v.pending_events == 0 and v.online)
        assert kiosk.orchestrator.state("SF1001") is ParcelState.PICKED_UP
        await page.wait_for_selector('#link[data-state="online"]')


async def test_without_its_websocket_the_page_polls_and_reconnects(kiosk: Kiosk) -> None:
    """The live socket refused: the page falls back to polling /api/screen and still follows the cart
    (a pulled cable shows up); once the socket is allowed again the page reconnects by itself."""
    page, board = kiosk.page, kiosk.cart.board
    allowed = False

    async def live(route: WebSocketRoute) -> None:
        if allowed:
            route.connect_to_server()
        else:
            await route.close()

    await page.route_web_socket("**/api/live", live)
    await kiosk.open_page()
    await page.wait_for_selector('body[data-live="polling"]', state="attached")

    await board.unplug()
    await until(kiosk.cart.service, lambda v: v.board is BoardHealth.LINK_DOWN)
    await page.clock.fast_forward(3_000)  # the next poll
    await page.wait_for_selector('#trouble[data-kind="board_down"]:not([hidden])')
    await board.replug()
    await until(kiosk.cart.service, lambda v: v.board is BoardHealth.OK)

    allowed = True
    await page.clock.fast_forward(10_000)  # the reconnect back-off, at most 10 s
    await page.wait_for_selector('body[data-live="socket"]', state="attached")
    await page.wait_for_selector('body[data-screen="entry"]')
