"""Small simulated days for the tests (a full day is the benchmark's: ``benchmarks/sim/day.py``).

Fixtures ``small`` (a factory: the small day's ``Scenario`` with changes) and ``write_small`` (the same
as a scenario file).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.day.scenario import Scenario, scenario_from_dict

CAMPUS = Path(__file__).resolve().parents[3] / "maps" / "campuses" / "neijiang.yaml"

SMALL: dict[str, Any] = {
    "campus": str(CAMPUS),
    "parcels": 200,
    "carts": 2,
    "indoor": 4,
    "requests": 40,
    "iterations": 100,
    "name": "small",
}


def _small(**changes: Any) -> Scenario:
    """The small day (200 parcels, 2 carts, 4 indoor robots, 40 orders) with ``changes``."""
    return scenario_from_dict({**SMALL, **changes}, base=CAMPUS.parent, source="small")


def _write(path: Path, **changes: Any) -> Path:
    """The small day as a scenario file at ``path``."""
    path.write_text(yaml.safe_dump({**SMALL, **changes}), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def small() -> Callable[..., Scenario]:
    """``small(**changes)``: the small day's scenario."""
    return _small


@pytest.fixture(scope="session")
def write_small() -> Callable[..., Path]:
    """``write_small(path, **changes)``: the small day as a scenario file."""
    return _write
