"""Shared test fixtures: where the real data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data beside the repository (../shared/data)."""
    assert SHARED_DATA.is_dir(), f"{SHARED_DATA} is missing: the repo must sit beside shared/"
    return SHARED_DATA
