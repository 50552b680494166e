"""The post station's sorting system in live mode: van batches of parcels sent to the orchestrator.

The station receives parcels twice a day (``../shared/SCENARIO.md``: a post van by a direct route,
about 700 parcels a day for one point). ``StationFeeder`` plays the sorting system: at each van's
local time on its clock it draws the batch with the fast-mode simulator's generator
(``sim.campus_day.campus_day``: sizes and destinations, dorm stops and office rooms, with the day
simulator's shares) and sends it as JSON to ``POST /v1/parcels:import`` (``orchestrator.api.intake``)
with the station's bearer token, then logs the report's counts (created / duplicate / refused).

The live file's section (``StationSection``)::

    station:
      url: http://127.0.0.1:8000      # the orchestrator
      token: <security.partners.station of the orchestrator's settings>
      campus: ../maps/campuses/neijiang.yaml   # relative to the live file (StationSection.resolved)
      seed: 0
      time_zone: Asia/Shanghai        # the vans' times are local times there
      start_parcels: 50               # a batch right at start, so a demo has parcels at once (0: none)
      vans:                           # default: the scenario's two vans, 55 % of 700 in the morning
        - {at: "06:30", parcels: 385}
        - {at: "15:30", parcels: 315}

Decisions:

- **Schedule.** The start batch goes at once. Then every van in time order, day after day; the vans
  whose time on the start day is already past when the feeder starts are skipped (the station does
  not replay a morning it did not see). A batch that takes long to deliver (the orchestrator is
  down) does not skip the next van: its time is still kept, only late.
- **Tracking numbers** are ``<prefix>-<YYYYMMDD>-<batch>-<index>`` (``RP-20270115-V1-00001``; the
  start batch is ``S``, the vans ``V1``, ``V2``, ... in time order, the index counts from 1), and
  each batch's contents come from a seed derived from (seed, date, batch). So a restarted process
  with the same seed on the same day sends the same parcels again, which the import reports as
  duplicates (it is idempotent on tracking numbers): harmless. Two processes with different seeds
  on one day would collide on the numbers; give them different prefixes.
- **Recipients** are not in the day simulator (its parcels carry a destination and a size only):
  names and 11-digit mobile numbers are drawn here from the batch's seed. They are made up, so a
  live run must not send SMS through a real provider.
- **Addresses.** The simulator gives map places; the intake wants what the sorting system prints:
  a dorm stop becomes ``dorm: <the building its stop serves>``, an office or room becomes
  ``building`` + ``room`` (the place name without its ``<building>_`` prefix, else its ``room``
  tag, else the name). A place with no such address is sent without one and comes back refused.
- **Failures.** Unreachable orchestrator (connection refused, time-out, a broken answer) or a 5xx
  or 429: the batch is sent again after a back-off on the feeder's clock (``retry_min_s`` doubling
  up to ``retry_max_s``), until it gets through or the feeder stops: the orchestrator may start
  later than the feeder, or restart. Any other 4xx (wrong token, 422) will not get better by
  trying again: it is logged once as an error with the problem's detail, and the batch is given up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from interfaces.clock import Clock
from interfaces.tasks import cancel_and_wait
from maps.io import load_map
from maps.model import PlaceKind, Site
from orchestrator.api.intake import ImportReport, RowStatus
from orchestrator.operations.timebase import zone as time_zone_of
from sim.campus_day import AFTERNOON_VAN_S, MORNING_SHARE, MORNING_VAN_S, campus_day
from sim.day.scenario import parse_time

log = logging.getLogger("robopost.sim.live.station")

IMPORT_PATH = "/v1/parcels:import"
START_TAG = "S"
"""The batch name of the start batch in tracking numbers (vans are ``V1``, ``V2``, ...)."""

DAY_PARCELS = 700
"""Parcels a day at one pickup point (SCENARIO.md), split between the two vans like the simulator."""

_PREFIX = re.compile(r"^[A-Z0-9]{1,12}$")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
_GIVEN = "伟芳娜敏静丽强磊洋艳勇军杰娟涛明超秀霞平刚英华玉萍红鹏宇浩欣怡婷雪晨佳涵然"


def _hhmm(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --- Configuration ---------------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VanSection(_Section):
    """One van a day: its local arrival time ``at`` (``"HH:MM"``) and how many parcels it brings."""

    at: str
    parcels: int = Field(ge=0, le=10_000)

    @field_validator("at", mode="before")
    @classmethod
    def _time(cls, value: Any) -> str:
        seconds = parse_time(value)
        if seconds >= 86400:
            raise ValueError(f"{value!r} is not a time of day (00:00..23:59)")
        return _hhmm(seconds)

    @property
    def seconds(self) -> float:
        """Seconds after local midnight."""
        return parse_time(self.at)


def _default_vans() -> tuple[VanSection, ...]:
    morning = round(DAY_PARCELS * MORNING_SHARE)
    return (
        VanSection(at=_hhmm(MORNING_VAN_S), parcels=morning),
        VanSection(at=_hhmm(AFTERNOON_VAN_S), parcels=DAY_PARCELS - morning),
    )


class StationSection(_Section):
    """The station feeder's part of a live file (see the module docstring). Times of ``retry_*`` are
    seconds of the feeder's clock; ``timeout_s`` is real seconds per HTTP request."""

    url: str = "http://127.0.0.1:8000"
    token: SecretStr = Field(min_length=1)
    campus: Path | None = None
    seed: int = 0
    time_zone: str = "Asia/Shanghai"
    start_parcels: int = Field(default=50, ge=0, le=10_000)
    vans: tuple[VanSection, ...] = Field(default_factory=_default_vans)
    prefix: str = "RP"
    retry_min_s: float = Field(default=5.0, gt=0)
    retry_max_s: float = Field(default=120.0, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        time_zone_of(value)  # TimebaseError (a ValueError) naming it if unknown
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError("prefix must be 1-12 capital letters or digits")
        return value

    @field_validator("vans")
    @classmethod
    def _vans(cls, value: tuple[VanSection, ...]) -> tuple[VanSection, ...]:
        times = [van.at for van in value]
        twice = sorted({t for t in times if times.count(t) > 1})
        if twice:
            raise ValueError(f"two vans at {', '.join(twice)}")
        return tuple(sorted(value, key=lambda van: van.seconds))

    @model_validator(mode="after")
    def _retry(self) -> StationSection:
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("retry_max_s must be >= retry_min_s")
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The time zone of the vans' times."""
        return time_zone_of(self.time_zone)

    def resolved(self, base: Path) -> StationSection:
        """This section with a relative ``campus`` taken from ``base`` (the live file's folder)."""
        if self.campus is None or self.campus.is_absolute():
            return self
        return self.model_copy(update={"campus": base / self.campus})


# --- Batches ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRow:
    """One row of an import as the sorting system sends it; ``place`` is the map place the simulator
    chose (not sent: the orchestrator resolves the address itself, tests compare)."""

    tracking_number: str
    recipient_name: str
    phone: str
    size: str
    place: str
    building: str | None = None
    room: str | None = None
    dorm: str | None = None

    def row(self) -> dict[str, str | None]:
        """The JSON row of ``POST /v1/parcels:import``."""
        return {
            "tracking_number": self.tracking_number,
            "recipient_name": self.recipient_name,
            "phone": self.phone,
            "building": self.building,
            "room": self.room,
            "dorm": self.dorm,
            "size": self.size,
        }


def tracking_number(prefix: str, day: dt.date, batch: str, index: int) -> str:
    """``<prefix>-<YYYYMMDD>-<batch>-<index:05d>``: unique per (date, batch, index)."""
    return f"{prefix}-{day:%Y%m%d}-{batch}-{index:05d}"


def batch_seed(seed: int, day: dt.date, batch: str) -> int:
    """The generator seed of one batch: stable across processes (not Python's salted ``hash``)."""
    digest = hashlib.sha256(f"robopost-station:{seed}:{day.isoformat()}:{batch}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def address_of(site: Site, place_name: str) -> tuple[str | None, str | None, str | None]:
    """``(building, room, dorm)`` the sorting system prints for a map place (module docstring)."""
    place = site.places[place_name]
    if place.kind is PlaceKind.STOP:
        return None, None, place.tags.get("serves")
    building = place.tags.get("building") or site.building_of(place.node)
    if building is None:
        return None, None, None
    prefix = f"{building.lower()}_"
    if place_name.lower().startswith(prefix):
        room = place_name[len(prefix) :]
    else:
        room = place.tags.get("room") or place_name
    return building, room, None


def generate_batch(
    site: Site, *, seed: int, day: dt.date, batch: str, count: int, prefix: str = "RP"
) -> tuple[ImportRow, ...]:
    """The ``count`` parcels of batch ``batch`` on ``day``: the same for the same arguments.

    Sizes and destinations come from the day simulator's generator (``campus_day`` with only
    parcels); recipients are drawn here from the same derived seed.
    """
    if count <= 0:
        return ()
    derived = batch_seed(seed, day, batch)
    drawn = campus_day(site, seed=derived, parcels=count, carts=0, indoor=0, requests=0).snapshot.parcels
    rng = random.Random(derived)
    out = []
    for index, parcel in enumerate(drawn, 1):
        building, room, dorm = address_of(site, parcel.destination)
        out.append(
            ImportRow(
                tracking_number=tracking_number(prefix, day, batch, index),
                recipient_name=_name(rng),
                phone="1" + rng.choice("3456789") + "".join(rng.choices("0123456789", k=9)),
                size=parcel.size.name,
                place=parcel.destination,
                building=building,
                room=room,
                dorm=dorm,
            )
        )
    return tuple(out)


def _name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2, 2))))


# --- Outcomes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchOutcome:
    """What became of one batch: the report's counts, or ``error`` (the 4xx it was given up on)."""

    label: str
    sent: int
    attempts: int
    created: int = 0
    duplicate: int = 0
    refused: int = 0
    error: str | None = None

    @property
    def imported(self) -> bool:
        """The orchestrator answered with a report."""
        return self.error is None


class _Rejected(Exception):
    """The orchestrator refused the batch for good (a 4xx other than 429, or an unreadable 2xx)."""


class _Unavailable(Exception):
    """The orchestrator cannot take the batch now (unreachable, 5xx, 429): try again later."""


# --- The feeder ------------------------------------------------------------------------------------


class StationFeeder:
    """Sends the station's van batches to the orchestrator on ``clock`` (see the module docstring).

    ``site`` defaults to the map in ``section.campus``. ``client`` is used as given (and left open);
    without one the feeder opens its own on ``start`` and closes it on ``stop``.

    ``outcomes`` lists the finished batches in order and ``failed_attempts`` counts the sends that
    will be retried; ``wait_until(predicate)`` waits until a change makes the predicate true.
    """

    def __init__(
        self,
        section: StationSection,
        *,
        clock: Clock,
        site: Site | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if site is None:
            if section.campus is None:
                raise ValueError("StationFeeder: give a site or a campus map path in the section")
            site = load_map(section.campus)
        self.section = section
        self.site = site
        self.clock = clock
        self.outcomes: list[BatchOutcome] = []
        self.failed_attempts = 0
        self._client = client
        self._own_client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    # ---- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin: the start batch at once, then the vans (in a background task)."""
        if self._task is not None:
            raise RuntimeError("StationFeeder already started")
        if self._client is None:
            self._own_client = httpx.AsyncClient(timeout=self.section.timeout_s)
        self._task = asyncio.get_running_loop().create_task(self._run(self.clock.now()), name="station")

    async def stop(self) -> None:
        """Stop sending (a batch in flight or in back-off is dropped) and close the feeder's own client."""
        task, self._task = self._task, None
        try:
            if task is not None:
                await cancel_and_wait([task])
        finally:
            client, self._own_client = self._own_client, None
            if client is not None:
                await client.aclose()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, checked after every attempt (bound it with a timeout)."""
        while not predicate():
            await self._changed.wait()

    # ---- batches -------------------------------------------------------------------------------

    def batch(self, day: dt.date, name: str, count: int) -> tuple[ImportRow, ...]:
        """The parcels of batch ``name`` (``S``, ``V1``, ...) on ``day`` for this feeder's seed."""
        s = self.section
        return generate_batch(self.site, seed=s.seed, day=day, batch=name, count=count, prefix=s.prefix)

    def schedule(self, since: float) -> Iterator[tuple[float, dt.date, str, int]]:
        """The vans due at or after epoch ``since``: ``(due epoch, local date, batch name, count)``."""
        vans = self.section.vans
        if not vans:
            return
        zone = self.section.zone
        day = dt.datetime.fromtimestamp(since, zone).date()
        while True:
            midnight = dt.datetime.combine(day, dt.time(), zone)
            for number, van in enumerate(vans, 1):
                due = (midnight + dt.timedelta(seconds=van.seconds)).timestamp()
                if due >= since:
                    yield due, day, f"V{number}", van.parcels
            day += dt.timedelta(days=1)

    async def _run(self, started: float) -> None:
        if self.section.start_parcels:
            today = dt.datetime.fromtimestamp(started, self.section.zone).date()
            await self._deliver(today, START_TAG, self.section.start_parcels)
        for due, day, name, count in self.schedule(started):
            await self.clock.sleep(due - self.clock.now())
            await self._deliver(day, name, count)

    async def _deliver(self, day: dt.date, name: str, count: int) -> None:
        parcels = self.batch(day, name, count)
        if parcels:
            await self.import_batch(parcels, label=f"{day.isoformat()} {name}")

    async def import_batch(self, parcels: Sequence[ImportRow], *, label: str = "batch") -> BatchOutcome:
        """Send ``parcels`` until the orchestrator answers (back-off on the clock while it cannot); the
        outcome is also appended to ``outcomes``. A 4xx is logged once and given up on."""
        body = {"parcels": [p.row() for p in parcels]}
        delay = self.section.retry_min_s
        attempts = 0
        while True:
            attempts += 1
            try:
                report = await self._post(body)
            except _Unavailable as exc:
                self.failed_attempts += 1
                self._notify()
                if attempts == 1:
                    log.warning(
                        "station: %s: %s; retrying every %g..%g s",
                        label,
                        exc,
                        delay,
                        self.section.retry_max_s,
                    )
                else:
                    log.debug("station: %s: attempt %d: %s", label, attempts, exc)
                await self.clock.sleep(delay)
                delay = min(delay * 2, self.section.retry_max_s)
                continue
            except _Rejected as exc:
                log.error(
                    "station: %s: the orchestrator refused the batch of %d: %s", label, len(parcels), exc
                )
                return self._finish(BatchOutcome(label, len(parcels), attempts, error=str(exc)))
            return self._finish(self._reported(label, len(parcels), attempts, report))

    def _reported(self, label: str, sent: int, attempts: int, report: ImportReport) -> BatchOutcome:
        after = f" (after {attempts} attempts)" if attempts > 1 else ""
        log.info(
            "station: %s: %d parcels: %d created, %d duplicate, %d refused%s",
            label, sent, report.created, report.duplicate, report.refused, after,
        )  # fmt: skip
        refused = [r for r in report.rows if r.status is RowStatus.REFUSED]
        for row in refused[:5]:
            log.warning("station: %s: %s refused: %s", label, row.tracking_number, row.reason)
        return BatchOutcome(label, sent, attempts, report.created, report.duplicate, report.refused)

    def _finish(self, outcome: BatchOutcome) -> BatchOutcome:
        self.outcomes.append(outcome)
        self._notify()
        return outcome

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _post(self, body: dict[str, Any]) -> ImportReport:
        client = self._client or self._own_client
        if client is None:
            raise RuntimeError("StationFeeder: start() it first")
        url = self.section.url + IMPORT_PATH
        headers = {"Authorization": f"Bearer {self.section.token.get_secret_value()}"}
        try:
            response = await client.post(url, json=body, headers=headers, timeout=self.section.timeout_s)
        except httpx.TransportError as exc:
            raise _Unavailable(f"cannot reach {url}: {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status >= 500 or status == 429:
            raise _Unavailable(f"{url} answered {status}: {_detail(response)}")
        if status >= 400:
            raise _Rejected(f"{status}: {_detail(response)}")
        try:
            return ImportReport.model_validate_json(response.content)
        except ValidationError:
            raise _Rejected(f"{status} without an import report: {response.text[:200]!r}") from None


def _detail(response: httpx.Response) -> str:
    """The problem's ``detail`` (or ``title``) of an error answer, else the start of its text."""
    try:
        problem = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(problem, dict):
        text = problem.get("detail") or problem.get("title")
        if isinstance(text, str):
            return text
    return response.text[:200]


__all__ = [
    "DAY_PARCELS",
    "IMPORT_PATH",
    "START_TAG",
    "BatchOutcome",
    "ImportRow",
    "StationFeeder",
    "StationSection",
    "VanSection",
    "address_of",
    "batch_seed",
    "generate_batch",
    "tracking_number",
]
