"""The cart's offline code check: the same hashes as the orchestrator's CodeBook (test vectors from the
orchestrator's own functions), and the rules of where and when a code opens."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from interfaces.pickup_codes import InvalidCode
from orchestrator.security.codes import CodeBook
from robots.cart.codes import CodeChecker, CodeSheet, SyncError

CART, WINDOW, STOP = "cart_1", "w-1600", "stop_dorm_1"
T0 = 1_800_000_000.0
BOOK = CodeBook(b"k" * 32)
KEY = BOOK.cart_key(CART)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def sync(*parcels: tuple[str, str, str, str | None], window: str = WINDOW, cart: str = CART) -> dict:
    """A sync body as the orchestrator sends it: ``(parcel, compartment, code, phone tail)``."""
    return {
        "cart": cart,
        "algorithm": "HMAC-SHA256",
        "cart_key": base64.urlsafe_b64encode(BOOK.cart_key(cart)).rstrip(b"=").decode(),
        "formats": {},
        "generated_at": _iso(T0),
        "codes": [
            {
                "parcel": parcel,
                "compartment": compartment,
                "window": window,
                "stop": STOP,
                "state": "loaded",
                "code_hash": BOOK.code_hmac(cart, window, code),
                "tail_hash": BOOK.code_hmac(cart, window, code, tail) if tail else None,
                "expires_at": _iso(T0 + 3600),
            }
            for parcel, compartment, code, tail in parcels
        ],
    }


@pytest.fixture
def checker() -> CodeChecker:
    checker = CodeChecker(CART)
    checker.load(
        CodeSheet.from_sync(sync(("SF1", "7", "042917", "1234"), ("SF2", "8", "555001", "9876")), CART)
    )
    return checker


def test_a_right_code_matches_its_parcel_with_the_orchestrators_hash(checker: CodeChecker) -> None:
    """The hash the cart computes from typed digits is the orchestrator's CodeBook hash."""
    match = checker.check("042917", None, stop=STOP, now=T0)
    assert match is not None
    assert match.entry.parcel == "SF1" and match.entry.compartment == "7"
    assert match.code_hash == BOOK.code_hmac(CART, WINDOW, "042917")


def test_typing_forms_fold_to_the_same_code(checker: CodeChecker) -> None:
    """Spaces and full-width digits are folded before hashing."""
    assert checker.check("042 917", None, stop=STOP, now=T0) is not None
    assert checker.check("０４２９１７", None, stop=STOP, now=T0) is not None


def test_step_up_checks_code_and_phone_tail_together(checker: CodeChecker) -> None:
    """With a phone tail the code+tail hash must match: a right code with a wrong tail opens nothing."""
    match = checker.check("042917", "1234", stop=STOP, now=T0)
    assert match is not None and match.code_hash == BOOK.code_hmac(CART, WINDOW, "042917", "1234")
    assert checker.check("042917", "1235", stop=STOP, now=T0) is None


def test_a_code_opens_only_at_its_stop_before_it_expires_and_until_taken(checker: CodeChecker) -> None:
    """Elsewhere, while driving, after the window and once taken, the right code is just wrong."""
    assert checker.check("042917", None, stop="stop_other", now=T0) is None
    assert checker.check("042917", None, stop=None, now=T0) is None
    assert checker.check("042917", None, stop=STOP, now=T0 + 3600) is None
    checker.mark_picked(["SF1"])
    assert checker.check("042917", None, stop=STOP, now=T0) is None
    assert checker.entry_for("7") is None and checker.entry_for("8") is not None


def test_wrong_and_malformed_codes(checker: CodeChecker) -> None:
    """A wrong code is None; text that is not 6 digits (or a tail not 4) is InvalidCode."""
    assert checker.check("000000", None, stop=STOP, now=T0) is None
    with pytest.raises(InvalidCode):
        checker.check("12345", None, stop=STOP, now=T0)
    with pytest.raises(InvalidCode):
        checker.check("042917", "12", stop=STOP, now=T0)


def test_a_sheet_survives_its_json_round_trip() -> None:
    """What the cart keeps on disk reads back to the same sheet (codes still work after a reboot)."""
    sheet = CodeSheet.from_sync(sync(("SF1", "7", "042917", "1234")), CART)
    again = CodeSheet.from_sync(json.dumps(sheet.to_json()), CART)
    assert again == sheet


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed"),
        (json.dumps({**sync(), "cart": "cart_2"}), "for cart 'cart_2'"),
        (json.dumps({**sync(), "cart_key": "c2hvcnQ"}), "32 bytes"),
        (json.dumps({**sync(("SF1", "7", "042917", None)), "codes": [{"parcel": "SF1"}]}), "malformed"),
    ],
)
def test_unusable_syncs_are_refused_with_a_reason(body: bytes | str, message: str) -> None:
    """Malformed JSON, another cart's sync, a short key, missing fields: SyncError, nothing loaded."""
    with pytest.raises(SyncError, match=message):
        CodeSheet.from_sync(body, CART)
