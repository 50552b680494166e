"""The cart with its orchestrator gone: codes typed on the cart still open compartments (checked against
the synced hashes), the pickups wait on disk, and once the orchestrator is back each reaches it exactly
once — real orchestrator over loopback HTTP, simulated locker board on a real pty, real driver."""

from __future__ import annotations

import time
from pathlib import Path

from cart_testkit import CART, STAFF_PIN, STOP, WINDOW, OrchestratorServer, cart_stack, until

from orchestrator.domain import ParcelState
from robots.cart.locker.model import BoardHealth

PHONE, PHONE_2 = "13812341234", "13900001111"


async def pick_up(stack, code: str, compartment: int) -> None:  # type: ignore[no-untyped-def]
    """Type ``code``, take the parcel out of the opened compartment, close the door."""
    answer = await stack.service.enter_code(code)
    assert answer.result == "open" and answer.compartment == compartment, answer
    await stack.board.wait_for(lambda: stack.board.door_open(compartment))
    await until(
        stack.service, lambda v: any(c.number == compartment and c.phase == "open" for c in v.compartments)
    )
    stack.board.take(compartment)
    stack.board.close_door(compartment)


async def test_codes_work_offline_and_pickups_arrive_once_when_the_orchestrator_is_back(
    tmp_path: Path,
) -> None:
    """Sync, orchestrator stopped, two pickups on the cart, orchestrator started again: both parcels are
    picked up there, each with exactly one pickup event, and nothing is left in the cart's queue."""
    orchestrator = OrchestratorServer(tmp_path)
    await orchestrator.start()
    try:
        codes = await orchestrator.load(
            [("SF1", PHONE, 3), ("SF2", PHONE_2, 4)], window_end=time.time() + 3600
        )
        async with cart_stack(tmp_path, orchestrator.base_url) as stack:
            stack.board.load(3, "SF1")
            stack.board.load(4, "SF2")
            assert await stack.service.sync_now()
            await until(stack.service, lambda v: v.board is BoardHealth.OK)

            await orchestrator.stop()
            stack.service.arrive(STOP, WINDOW)
            await pick_up(stack, codes["SF1"], 3)
            await pick_up(stack, codes["SF2"], 4)
            view = await until(stack.service, lambda v: v.pending_events == 3 and not v.compartments)
            assert not view.online
            assert orchestrator.services is not None  # the old app's services: the store is the same file

            await orchestrator.start()
            await until(stack.service, lambda v: v.pending_events == 0 and v.online)
            for parcel in ("SF1", "SF2"):
                assert orchestrator.state(parcel) is ParcelState.PICKED_UP
                history = [e.kind for e in orchestrator.events(parcel)]
                assert history.count("pick_up") == 1, history
            assert all(e.status == "delivered" for e in stack.queue.events())
    finally:
        await orchestrator.stop()


async def test_codes_survive_a_cart_reboot_without_network(tmp_path: Path) -> None:
    """The last sync is kept on disk: a cart restarted with no orchestrator at all still opens."""
    orchestrator = OrchestratorServer(tmp_path)
    await orchestrator.start()
    try:
        codes = await orchestrator.load([("SF1", PHONE, 5)], window_end=time.time() + 3600)
        async with cart_stack(tmp_path, orchestrator.base_url) as stack:
            assert await stack.service.sync_now()
    finally:
        await orchestrator.stop()
    async with cart_stack(tmp_path, orchestrator.base_url) as stack:
        await until(stack.service, lambda v: v.board is BoardHealth.OK)
        stack.service.arrive(STOP, WINDOW)
        answer = await stack.service.enter_code(codes["SF1"])
        assert answer.result == "open" and answer.compartment == 5


async def test_doors_and_occupancy_reach_the_orchestrator(tmp_path: Path) -> None:
    """A door opened by staff shows as open on the orchestrator's picture of the cart."""
    orchestrator = OrchestratorServer(tmp_path)
    await orchestrator.start()
    try:
        async with cart_stack(tmp_path, orchestrator.base_url) as stack:
            stack.board.load(6, "SF9")
            await until(stack.service, lambda v: v.board is BoardHealth.OK)
            token = await stack.service.staff_login(STAFF_PIN)
            await stack.service.staff_open(token, [6])
            await until(
                stack.service, lambda v: any(c.number == 6 and c.phase == "open" for c in v.compartments)
            )
            assert await stack.service.report_compartments()
            assert orchestrator.services is not None
            reported = {c.id: c for c in orchestrator.services.carts.compartments(CART)}
            assert reported["6"].door_open and reported["6"].occupied
            assert not reported["5"].door_open and not reported["5"].occupied
    finally:
        await orchestrator.stop()
