"""ROS 2 test environment: a ROS domain of this test run and a namespace of each test.

``ros_env`` sets ``ROS_DOMAIN_ID`` (1..101; higher ids collide with the OS's client ports) and
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (DDS traffic stays on 127.0.0.1) for the test, and gives
it a namespace nobody else uses, so tests and parallel runs on the same machine never hear each other.
Each pytest-xdist worker gets its own domain id: one random base per run (derived from xdist's
``testrunuid``, the same in every worker) plus the worker number. Without xdist the id is random.
Registered for every test by tests/conftest.py.
"""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

DOMAIN_IDS = 101
"""Usable domain ids are 1..101 (see ../shared/RECIPES.md)."""


@dataclass(frozen=True)
class RosEnv:
    """What a ROS test runs in: the domain id (already in the environment) and its own namespace."""

    domain_id: int
    namespace: str


def worker_domain_id() -> int:
    """The ROS domain id of this pytest process: distinct for each xdist worker of a run."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        return 1 + random.randrange(DOMAIN_IDS)
    base = int.from_bytes(hashlib.sha256(run.encode()).digest()[:8], "big")
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    return 1 + (base + worker) % DOMAIN_IDS


@pytest.fixture(scope="session")
def ros_domain_id() -> int:
    """The ROS domain id of this test process (one per xdist worker)."""
    return worker_domain_id()


@pytest.fixture
def ros_env(ros_domain_id: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[RosEnv]:
    """ROS 2 environment variables set for this test, and a namespace of its own."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(ros_domain_id))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.delenv("ROS_LOCALHOST_ONLY", raising=False)
    yield RosEnv(ros_domain_id, f"/test_{uuid.uuid4().hex[:12]}")
