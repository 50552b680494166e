"""Phone normalisation and masking of names and phones for every response and log line.

``mask_phone`` and ``mask_name`` never raise: anything they cannot read masks to ``"***"``, so a
bad row can never leak through an error message.
"""

from __future__ import annotations

import re
import unicodedata

from orchestrator.security.errors import InvalidPhone

MASK = "***"
_SEPARATORS = re.compile(r"[\s\-()]+")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_PREFIXES = ("+86", "0086", "86")


def normalise_phone(text: str) -> str:
    """The 11-digit Chinese mobile number in ``text``: ``"+86 138-1234-1234"`` → ``"13812341234"``.

    Accepts spaces, dashes and brackets, full-width digits, and a ``+86``/``0086``/``86`` prefix.
    Raises ``InvalidPhone`` for anything else (the number must be 11 digits starting 13-19).
    """
    if not isinstance(text, str):
        raise InvalidPhone("a phone number must be text")
    digits = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text))
    for prefix in _PREFIXES:
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    if not digits.isascii() or not _MOBILE.fullmatch(digits):
        raise InvalidPhone("not a Chinese mobile number (11 digits starting with 13-19, optional +86)")
    return digits


def mask_phone(phone: object) -> str:
    """``"13812341234"`` → ``"138****1234"`` (first three, last four digits); ``"***"`` if unreadable."""
    if not isinstance(phone, str):
        return MASK
    try:
        digits = normalise_phone(phone)
    except InvalidPhone:
        return MASK
    return f"{digits[:3]}****{digits[-4:]}"


def mask_name(name: object) -> str:
    """The first character, then one ``*`` per remaining character: ``"欧阳娜娜"`` → ``"欧***"``.

    A one-character name still gets one ``*`` (``"张"`` → ``"张*"``); empty or non-text input gives
    ``"***"``.
    """
    if not isinstance(name, str):
        return MASK
    text = " ".join(unicodedata.normalize("NFC", name).split())
    if not text or not text[0].isprintable():
        return MASK
    return text[0] + "*" * max(1, len(text) - 1)
