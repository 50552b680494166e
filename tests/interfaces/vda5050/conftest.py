"""Fixtures of the VDA 5050 tests: the official 2.1.0 schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
from vda5050_samples import OfficialSchemas


@pytest.fixture(scope="session")
def schemas(shared_data: Path) -> OfficialSchemas:
    """Validators of the six official VDA 5050 2.1.0 JSON schemas (../shared/data/vda5050/v2.1.0)."""
    return OfficialSchemas(shared_data)
