"""Phone normalisation and the masks every response and log line uses."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.security import InvalidPhone, mask_name, mask_phone, normalise_phone


@pytest.mark.parametrize(
    "text",
    [
        "13812341234",
        "138 1234 1234",
        "138-1234-1234",
        "+86 138 1234 1234",
        "+8613812341234",
        "86-13812341234",
        "0086 13812341234",
        "(+86) 138-1234-1234",
        "１３８１２３４１２３４",
        " 13812341234\n",
    ],
)
def test_normalise_phone_accepts_usual_spellings(text: str) -> None:
    """Spaces, dashes, brackets, full-width digits and +86/86/0086 prefixes all give the bare number."""
    assert normalise_phone(text) == "13812341234"


@pytest.mark.parametrize(
    "text",
    ["", "1381234123", "138123412345", "12812341234", "23812341234", "+1 13812341234", "138a2341234", "٣٨"],
)
def test_normalise_phone_refuses_other_text(text: str) -> None:
    """Wrong length, a second digit below 3, another country or letters are not Chinese mobiles."""
    with pytest.raises(InvalidPhone, match="not a Chinese mobile number"):
        normalise_phone(text)


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812341234", "138****1234"),
        ("+86 159-0000-9876", "159****9876"),
        ("1381234", "***"),
        ("", "***"),
        (None, "***"),
        (13812341234, "***"),
        ("hello", "***"),
    ],
)
def test_mask_phone(phone: object, masked: str) -> None:
    """The first three and last four digits stay; anything unreadable masks to ``***``."""
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("欧阳娜娜", "欧***"),
        ("John Smith", "J*********"),
        ("张", "张*"),
        ("  李四 ", "李*"),
        ("阿卜杜拉·艾则孜", "阿*******"),
        ("", "***"),
        ("   ", "***"),
        ("\x00abc", "***"),
        (None, "***"),
        (42, "***"),
    ],
)
def test_mask_name(name: object, masked: str) -> None:
    """Only the first character stays, one ``*`` per other character; odd input masks to ``***``."""
    assert mask_name(name) == masked


@given(st.text())
def test_mask_name_never_reveals_more_than_the_first_character(name: str) -> None:
    """For any text the mask is ``***`` or one character followed only by stars."""
    masked = mask_name(name)
    assert masked == "***" or (len(masked) >= 2 and set(masked[1:]) == {"*"})


@given(st.one_of(st.text(), st.from_regex(r"1[3-9]\d{9}", fullmatch=True)))
def test_mask_phone_never_reveals_the_middle(phone: str) -> None:
    """For any text the mask is ``***`` or ``ddd****dddd``, never the middle four digits."""
    masked = mask_phone(phone)
    assert masked == "***" or re.fullmatch(r"1[3-9]\d\*{4}\d{4}", masked)
