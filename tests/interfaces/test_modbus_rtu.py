"""The shared Modbus RTU master's pure parts: reply lengths and finding register replies in a buffer
(the link itself is exercised over real ptys by the relay-board and locker-board tests)."""

from __future__ import annotations

import logging

import pytest
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import ReadInputRegistersResponse

from interfaces.clock import RealClock
from interfaces.modbus_rtu import LinkStats, RtuLink, count_bad_frames, reply_length, scan_reply


def registers_reply(values: list[int], device_id: int = 1) -> bytes:
    """A well-formed FC04 reply frame."""
    pdu = ReadInputRegistersResponse(registers=values, dev_id=device_id)
    return FramerRTU(DecodePDU(is_server=True)).buildFrame(pdu)


def test_reply_lengths_follow_the_function_code() -> None:
    """Bit reads round up to whole bytes, register reads take two bytes each, writes echo 8 bytes."""
    assert reply_length(2, 76) == 5 + 10
    assert reply_length(1, 8) == 6
    assert reply_length(4, 3) == 11
    assert reply_length(5) == reply_length(15) == 8
    with pytest.raises(ValueError, match="function code 43"):
        reply_length(43)


def test_a_register_reply_is_found_behind_noise_and_a_bad_copy() -> None:
    """An FC04 reply is found after garbage and after a copy with a wrong CRC (counted); a reply of
    the wrong size is not taken for it."""
    good = registers_reply([0x0100, 7, 12])
    bad = good[:-1] + bytes([good[-1] ^ 0x01])
    buf = b"\xaa\x00" + bad + good
    found = scan_reply(buf, 1, 4, reply_length(4, 3))
    assert found.start == 2 + len(bad) and found.crc_errors == 1
    assert scan_reply(registers_reply([1, 2]), 1, 4, reply_length(4, 3)).start is None
    assert count_bad_frames(bad + good, 1) == 1


async def test_request_sizes_beyond_the_protocol_are_refused_before_sending() -> None:
    """Reading 126 registers or 2001 bits is refused with a ValueError (nothing is sent)."""
    stats = LinkStats()
    link = RtuLink(
        "/nonexistent",
        device_id=1,
        baudrate=19200,
        parity="N",
        timeout_s=0.1,
        clock=RealClock(),
        stats=stats,
        logger=logging.getLogger("test"),
    )
    with pytest.raises(ValueError, match=r"1\.\.125"):
        await link.read_input_registers(0, 126)
    with pytest.raises(ValueError, match=r"1\.\.2000"):
        await link.read_discrete_inputs(0, 2001)
    assert stats.requests == 0
