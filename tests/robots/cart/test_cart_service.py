"""The cart service on the real locker driver and a simulated board on a pty (no orchestrator): the
guard's step-up and lockout, a jammed lock, a board that is gone, a parcel left inside, staff mode."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from cart_testkit import CART, STAFF_PIN, STOP, WINDOW, cart_settings, cart_stack, until

from orchestrator.security.codes import CodeBook
from robots.cart.codes import CodeSheet
from robots.cart.locker.model import BoardHealth, OpenResult
from robots.cart.service import StaffError

BOOK = CodeBook(b"s" * 32)
CODE, CODE_2, TAIL = "042917", "555001", "1234"


def sheet() -> CodeSheet:
    expires = time.time() + 3600
    entries = [
        {
            "parcel": parcel,
            "compartment": str(n),
            "window": WINDOW,
            "stop": STOP,
            "state": "loaded",
            "code_hash": BOOK.code_hmac(CART, WINDOW, code),
            "tail_hash": BOOK.code_hmac(CART, WINDOW, code, TAIL),
            "expires_at": expires,
        }
        for parcel, n, code in (("SF1", 2, CODE), ("SF2", 3, CODE_2))
    ]
    key = base64.urlsafe_b64encode(BOOK.cart_key(CART)).decode()
    return CodeSheet.from_sync(
        {
            "cart": CART,
            "algorithm": "HMAC-SHA256",
            "cart_key": key,
            "generated_at": time.time(),
            "codes": entries,
        },
        CART,
    )


@pytest.fixture
async def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with cart_stack(tmp_path, None) as started:
        started.board.load(2, "SF1")
        started.board.load(3, "SF2")
        started.service.load_codes(sheet())
        started.service.arrive(STOP, WINDOW)
        await until(started.service, lambda v: v.board is BoardHealth.OK)
        yield started


async def test_step_up_then_lockout_after_five_wrong_codes(stack) -> None:  # type: ignore[no-untyped-def]
    """One wrong code → the screen asks for the phone tail too; five wrong → locked with a time, and even
    the right code is refused until then; an operator alarm is raised."""
    service = stack.service
    assert (await service.enter_code("000000")).result == "wrong"
    answer = await service.enter_code(CODE)
    assert answer.result == "need_tail" and answer.challenge == "code+phone_tail"
    for _ in range(3):
        assert (await service.enter_code("000000", TAIL)).result == "wrong"
    locked = await service.enter_code("000001", TAIL)
    assert locked.result == "locked" and locked.locked_until is not None
    assert locked.locked_until > time.time() + 500 and "Too many wrong codes" in locked.message.en
    assert (await service.enter_code(CODE, TAIL)).result == "locked"
    assert stack.board.pulses(2) == 0
    assert [a.kind for a in service.alarms()] == ["code_lockout"]


async def test_a_malformed_code_is_not_counted(stack) -> None:  # type: ignore[no-untyped-def]
    """Five letters are 'a code is 6 digits', and the next right code still opens."""
    for _ in range(6):
        assert (await stack.service.enter_code("12345")).result == "invalid"
    assert (await stack.service.enter_code(CODE)).result == "open"


async def test_a_jammed_lock_is_reported_and_the_code_stays_valid(stack) -> None:  # type: ignore[no-untyped-def]
    """The lock is pulsed but the door never opens: a lock_jammed alarm and a message saying whom to
    call; once fixed, the same code opens."""
    stack.board.jam(2)
    answer = await stack.service.enter_code(CODE)
    assert answer.result == "open"
    view = await until(stack.service, lambda v: any(a.kind == "lock_jammed" for a in v.alarms))
    assert view.notice is not None and "400-820-1234" in view.notice.message.en
    stack.board.jam(2, False)
    assert (await stack.service.enter_code(CODE)).result == "open"
    await until(stack.service, lambda v: not any(a.kind == "lock_jammed" for a in v.alarms))


async def test_parcel_left_inside_stays_reserved(stack) -> None:  # type: ignore[no-untyped-def]
    """Open, close without taking: told it stays reserved, no pickup queued, the code opens again."""
    service = stack.service
    assert (await service.enter_code(CODE)).result == "open"
    await until(service, lambda v: any(c.number == 2 and c.phase == "open" for c in v.compartments))
    stack.board.close_door(2)
    view = await until(service, lambda v: not v.compartments)
    assert view.notice is not None and "stays reserved" in view.notice.message.en
    assert [e.kind for e in stack.queue.events()] == ["arrival"]
    assert (await service.enter_code(CODE)).result == "open"


async def test_an_unplugged_board_says_so_and_counts_nothing(stack) -> None:  # type: ignore[no-untyped-def]
    """Cable pulled: board_down answer and a board_offline alarm; no wrong code counted; back when
    replugged."""
    await stack.board.unplug()
    view = await until(stack.service, lambda v: v.board is BoardHealth.LINK_DOWN)
    assert view.board_detail and any(a.kind == "board_offline" for a in view.alarms)
    answer = await stack.service.enter_code("000000")
    assert answer.result == "board_down" and "not responding" in answer.message.en
    await stack.board.replug()
    await until(stack.service, lambda v: v.board is BoardHealth.OK and not v.alarms)
    assert (await stack.service.enter_code(CODE)).result == "open"  # no step-up: nothing was counted


async def test_staff_mode_needs_the_pin_and_opens_chosen_or_all(stack) -> None:  # type: ignore[no-untyped-def]
    """Wrong PIN refused (three lock staff mode); the right PIN opens chosen compartments, then all."""
    service = stack.service
    with pytest.raises(StaffError, match="wrong staff PIN"):
        await service.staff_login("000000")
    token = await service.staff_login(STAFF_PIN)
    assert await service.staff_open(token, [5]) == {5: OpenResult.SENT}
    await stack.board.wait_for(lambda: stack.board.door_open(5))
    everything = await service.staff_open(token)
    assert set(everything) == set(range(1, 13)) and set(everything.values()) == {OpenResult.SENT}
    service.staff_logout(token)
    with pytest.raises(StaffError, match="session has ended"):
        await service.staff_open(token, [1])
    for _ in range(2):
        with pytest.raises(StaffError):
            await service.staff_login("111111")
    with pytest.raises(StaffError, match="locked"):
        await service.staff_login(STAFF_PIN)


async def test_a_silent_board_raises_the_alarm_and_recovers(stack) -> None:  # type: ignore[no-untyped-def]
    """A board that stops answering (a dead transmitter, a line full of noise): the screen says the
    lockers do not respond, operators get board_offline, and all is normal once it answers again."""
    stack.board.silent = True
    view = await until(stack.service, lambda v: v.board is BoardHealth.NO_REPLY)
    alarm = next(a for a in view.alarms if a.kind == "board_offline")
    assert alarm.message.zh.startswith("柜门控制板无响应") and "does not answer" in alarm.message.en
    assert (await stack.service.enter_code(CODE)).result == "board_down"
    stack.board.silent = False
    await until(stack.service, lambda v: v.board is BoardHealth.OK and not v.alarms)
    assert (await stack.service.enter_code(CODE)).result == "open"


async def test_garbage_and_bad_crc_on_the_line_do_not_stop_a_pickup(stack) -> None:  # type: ignore[no-untyped-def]
    """Noise and a frame with a wrong CRC arrive between requests: they are counted and skipped, and
    the next code still opens its compartment."""
    stack.board.inject(b"\x00\xff\x13\x37garbage")
    stack.board.inject(bytes([1, 2, 1, 0, 0xDE, 0xAD]))  # a reply-shaped frame with a wrong CRC
    await stack.driver.wait_polls(3)
    assert stack.driver.stats.garbage_bytes > 0
    assert stack.service.screen().board is BoardHealth.OK
    assert (await stack.service.enter_code(CODE)).result == "open"
    await stack.board.wait_for(lambda: stack.board.door_open(2))


async def test_the_lockout_alarm_clears_when_the_lock_ends(tmp_path: Path) -> None:
    """With a short lock window the code_lockout alarm goes away by itself when entry reopens."""
    async with cart_stack(tmp_path, None, settings=cart_settings(attempts=2, attempts_window_s=0.3)) as stack:
        stack.service.load_codes(sheet())
        stack.service.arrive(STOP, WINDOW)
        await until(stack.service, lambda v: v.board is BoardHealth.OK)
        assert (await stack.service.enter_code("000000")).result == "wrong"
        assert (await stack.service.enter_code("000001", TAIL)).result == "locked"
        assert [a.kind for a in stack.service.alarms()] == ["code_lockout"]
        await until(stack.service, lambda v: not v.alarms and v.locked_until is None)
        assert (await stack.service.enter_code(CODE, TAIL)).result == "open"
