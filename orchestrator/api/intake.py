"""Parcel intake from the station's sorting system: ``POST /v1/parcels:import``.

The sorting system sends a batch of parcels as CSV (``text/csv``, UTF-8 with or without a BOM, or the
charset the ``Content-Type`` names, e.g. ``gbk``) with the header line::

    tracking_number,recipient_name,phone,building,room,dorm,size

or as JSON (``application/json``): ``{"parcels": [{"tracking_number": ..., "recipient_name": ...,
"phone": ..., "building": ..., "room": ..., "dorm": ..., "size": "S"}, ...]}``. Extra columns or
members are ignored; empty cells count as absent.

The answer is a per-row report (``ImportReport``): every row is ``created``, ``duplicate`` (its tracking
number is already stored, or repeats an earlier row of the batch: the stored parcel is kept as it is,
never a second one) or ``refused`` with the reason (bad phone, unknown building, room or dorm, bad
size, ...). Good rows are kept even when others are refused. Rows are numbered from 1 in the order
sent (for CSV, row 1 is the line after the header).

Destinations are resolved against the campus map (``services.site``): a ``dorm`` (a building id such
as ``DORM1``) goes to the stop whose tag ``serves`` names it; a ``building`` with a ``room`` goes to
that office or room place of the building (the place's name, ``<building>_<room>`` as in ``adm_201``,
or its ``room`` tag); a ``building`` without a room goes to the stop that serves the building.
Imported parcels are ``received``; sorting them into windows is the dispatcher's job.

The whole batch is written in one transaction: a crash mid-import leaves nothing of it, and the
station sends it again (idempotent on tracking numbers).

Authentication (``station_auth``): for now ``Authorization: Bearer <token>`` where the token is the
secret configured for partner id ``station`` in ``security.partners``. This is a stop-gap until station
staff log in as console operators (``orchestrator.api.operators``); only ``station_auth`` changes then.

Test hook: ``PausePoint.from_env`` reads ``TEST_ROBOPOST_PAUSE`` (``import:N``, ``order:N`` or
``order-committed:N``) and ``TEST_ROBOPOST_PAUSE_FIFO`` (a FIFO path). When the point is reached the
request writes one line to the FIFO and blocks for good, so a crash test can SIGKILL the process at a
known moment without sleeping. Unset (always, outside those tests), it does nothing.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import hmac
import io
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, Field

from maps.model import PlaceKind, Site
from orchestrator.api.live_operations import operations_of
from orchestrator.api.problems import Problem, problem_responses
from orchestrator.api.services import Services, services_of
from orchestrator.domain.parcel import ParcelEvent
from orchestrator.store.domain_records import ImportOutcome, ImportStatus, ParcelIntake
from orchestrator.store.domain_repositories import ParcelRepository

log = logging.getLogger(__name__)

STATION_ID = "station"
"""The ``security.partners`` id whose secret is the station's bearer token (until operator login)."""

COLUMNS = ("tracking_number", "recipient_name", "phone", "building", "room", "dorm", "size")
"""The CSV header (and JSON members) of an import row, in order."""

MAX_IMPORT_ROWS = 10_000
"""Most rows one import may hold (a day at a large station is ~3,000)."""

MAX_IMPORT_BYTES = 5 * 1024 * 1024
"""Largest import body accepted (about 40,000 typical CSV rows)."""

CHUNK_ROWS = 500
"""Rows written per repository call inside the import's one transaction."""

PAUSE_ENV = "TEST_ROBOPOST_PAUSE"
PAUSE_FIFO_ENV = "TEST_ROBOPOST_PAUSE_FIFO"


# --- Test hook -------------------------------------------------------------------------------------


class PausePoint:
    """Blocks a request for good at a named point, after telling a test through a FIFO (crash tests).

    ``point`` is ``import`` (after at least ``after`` rows of one import are written, before the
    commit), ``order`` (the ``after``-th order of this process is written, before the commit) or
    ``order-committed`` (the ``after``-th order is committed, before the answer is sent). Fires once.
    """

    POINTS = ("import", "order", "order-committed")

    def __init__(self, point: str, after: int, fifo: Path) -> None:
        if point not in self.POINTS:
            raise ValueError(f"{PAUSE_ENV}: point must be one of {', '.join(self.POINTS)}, got {point!r}")
        if after < 1:
            raise ValueError(f"{PAUSE_ENV}: the count must be >= 1, got {after}")
        self.point = point
        self.after = after
        self.fifo = fifo
        self._lock = threading.Lock()
        self._fired = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PausePoint | None:
        """The pause ``TEST_ROBOPOST_PAUSE=point:N`` with ``TEST_ROBOPOST_PAUSE_FIFO=path`` asks for."""
        spec = env.get(PAUSE_ENV)
        if not spec:
            return None
        point, _, count = spec.partition(":")
        fifo = env.get(PAUSE_FIFO_ENV)
        if not fifo or not count.isdigit():
            raise ValueError(f"{PAUSE_ENV} must be point:N and {PAUSE_FIFO_ENV} a FIFO path")
        return cls(point, int(count), Path(fifo))

    def reached(self, point: str, count: int) -> None:
        """Block for good if this is the point and ``count`` reached ``after`` (the first time)."""
        if point != self.point or count < self.after:
            return
        with self._lock:
            if self._fired:
                return
            self._fired = True
        log.warning("test pause at %s after %d: waiting to be killed", point, count)
        with self.fifo.open("w", encoding="utf-8") as fifo:
            fifo.write(f"paused {point} {count}\n")
        threading.Event().wait()  # until SIGKILL: this hook exists only for the crash-safety tests


def _pause_of(request: Request) -> PausePoint | None:
    pause: PausePoint | None = getattr(request.app.state, "pause_point", None)
    return pause


def install_pause_point(state: Any, env: Mapping[str, str]) -> None:
    """Put the test pause from ``env`` (if any) on ``state`` (``app.state``), once per app."""
    if not hasattr(state, "pause_point"):
        state.pause_point = PausePoint.from_env(env)


# --- Authentication --------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="The station's token (security.partners.station).")


async def station_auth(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """FastAPI dependency: the station's id if ``Authorization: Bearer`` carries the station token.

    Stop-gap until operator sessions (``orchestrator.api.operators``): the token is the secret of
    partner id ``station`` in ``security.partners``; compared in constant time. 401 otherwise.
    """
    services: Services = services_of(request)
    expected = services.settings.security.partners.get(STATION_ID)
    if expected is None:
        raise _unauthorized("station import is not configured (no station token)")
    if credentials is None:
        raise _unauthorized("an Authorization: Bearer token is required")
    if not hmac.compare_digest(credentials.credentials.encode("utf-8"), expected.encode("utf-8")):
        raise _unauthorized("the station token is not valid")
    return STATION_ID


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, type_="urn:robopost:unauthorized", headers={"WWW-Authenticate": "Bearer"})


# --- Wire models -----------------------------------------------------------------------------------


class RowStatus(StrEnum):
    """What became of one import row."""

    CREATED = "created"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


class RowReport(BaseModel):
    """The fate of one row: ``row`` (from 1), its tracking number as sent, status, reason, place."""

    row: int = Field(ge=1)
    tracking_number: str
    status: RowStatus
    reason: str | None = None
    place: str | None = Field(default=None, description="The campus-map place the row resolved to.")


class ImportReport(BaseModel):
    """Counts per status and one report per row, in the order sent."""

    created: int = Field(ge=0)
    duplicate: int = Field(ge=0)
    refused: int = Field(ge=0)
    rows: list[RowReport]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "created": 1,
                    "duplicate": 1,
                    "refused": 1,
                    "rows": [
                        {"row": 1, "tracking_number": "SF1001", "status": "created", "place": "stop_dorm_1"},
                        {
                            "row": 2,
                            "tracking_number": "SF1001",
                            "status": "duplicate",
                            "reason": "repeats row 1",
                            "place": "stop_dorm_1",
                        },
                        {
                            "row": 3,
                            "tracking_number": "SF1003",
                            "status": "refused",
                            "reason": "unknown dorm 'DORM9': no stop serves it",
                        },
                    ],
                }
            ]
        }
    }


IMPORT_DESCRIPTION = (
    "CSV (text/csv, header tracking_number,recipient_name,phone,building,room,dorm,size) or JSON "
    '({"parcels": [...]}) from the sorting system. Answers one report per row: created, duplicate '
    "(tracking number already stored or repeated in the batch) or refused with the reason. Good rows "
    "are kept even when others are refused; the batch is written in one transaction. Destinations: "
    "a dorm goes to the stop serving it, a building with a room to that office or room, a building "
    "alone to its stop. Authorization: Bearer <station token>."
)

_TEXT = {"type": ["string", "null"], "maxLength": 256}
_ROW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["tracking_number", "recipient_name", "phone", "size"],
    "properties": {
        "tracking_number": {"type": "string", "maxLength": 64, "examples": ["SF1001"]},
        "recipient_name": {"type": "string", "maxLength": 64, "examples": ["张三"]},
        "phone": {"type": "string", "maxLength": 32, "examples": ["13812341234"]},
        "building": {**_TEXT, "examples": ["ADM"]},
        "room": {**_TEXT, "examples": ["201"]},
        "dorm": {**_TEXT, "examples": ["DORM1"]},
        "size": {"type": "string", "enum": ["S", "M", "L"]},
    },
}
_CSV_EXAMPLE = (
    "tracking_number,recipient_name,phone,building,room,dorm,size\n"
    "SF1001,张三,13812341234,,,DORM1,S\n"
    "SF1002,李四,13912345678,ADM,201,,M\n"
)
IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE},
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["parcels"],
                    "properties": {
                        "parcels": {"type": "array", "maxItems": MAX_IMPORT_ROWS, "items": _ROW_SCHEMA}
                    },
                },
                "example": {
                    "parcels": [
                        {
                            "tracking_number": "SF1001",
                            "recipient_name": "张三",
                            "phone": "13812341234",
                            "dorm": "DORM1",
                            "size": "S",
                        }
                    ]
                },
            },
        },
    }
}


# --- Parsing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawRow:
    """One row as sent: text fields (``None`` when absent or empty), or why it cannot be read."""

    tracking_number: str
    recipient_name: str | None = None
    phone: str | None = None
    building: str | None = None
    room: str | None = None
    dorm: str | None = None
    size: str | None = None
    unreadable: str | None = None


def parse_batch(content_type: str | None, body: bytes) -> list[RawRow]:
    """The rows of an import body (CSV or JSON, by ``content_type``); ``Problem`` 415/422 if unusable."""
    media, charset = _media_type(content_type)
    if media == "text/csv":
        rows = _csv_rows(_decode(body, charset or "utf-8"))
    elif media == "application/json" or media.endswith("+json"):
        rows = _json_rows(body)
    else:
        raise Problem(
            415,
            "send the parcels as text/csv or application/json",
            type_="urn:robopost:unsupported-media-type",
        )
    if len(rows) > MAX_IMPORT_ROWS:
        raise _invalid(f"an import holds at most {MAX_IMPORT_ROWS} rows, this one has {len(rows)}")
    return rows


def _media_type(content_type: str | None) -> tuple[str, str | None]:
    """``("text/csv", "gbk")`` from ``text/csv; charset=gbk``."""
    media, *params = (content_type or "").split(";")
    charset = None
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return media.strip().lower(), charset


def _decode(body: bytes, charset: str) -> str:
    try:
        codec = codecs.lookup(charset)
    except LookupError:
        raise Problem(
            415, f"unknown charset {charset[:40]!r}", type_="urn:robopost:unsupported-media-type"
        ) from None
    if codec.name == "utf-8":
        codec = codecs.lookup("utf-8-sig")  # a BOM from spreadsheet exports is not part of the header
    try:
        return codec.decode(body)[0]
    except UnicodeDecodeError:
        raise _invalid(f"the body is not valid {charset} text") from None


def _csv_rows(text: str) -> list[RawRow]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise _invalid("the CSV is empty: it needs the header line " + ",".join(COLUMNS))
        names = [h.strip().lower() for h in header]
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise _invalid(f"the CSV header lacks column(s) {', '.join(missing)}")
        rows = []
        for cells in _bounded(reader):
            if not any(c.strip() for c in cells):
                continue  # blank line
            if len(cells) != len(names):
                tn = (
                    cells[names.index("tracking_number")].strip()
                    if len(cells) > names.index("tracking_number")
                    else ""
                )
                rows.append(
                    RawRow(tn, unreadable=f"the row has {len(cells)} fields, the header {len(names)}")
                )
                continue
            rows.append(_raw_row(dict(zip(names, cells, strict=True))))
        return rows
    except csv.Error as exc:
        raise _invalid(f"the CSV cannot be read: {exc}") from None


def _bounded(reader: Iterable[list[str]]) -> Iterator[list[str]]:
    """The reader's rows, refusing a batch with more than ``MAX_IMPORT_ROWS`` (counting blank lines)."""
    for count, cells in enumerate(reader, 1):
        if count > MAX_IMPORT_ROWS * 2:
            raise _invalid(f"an import holds at most {MAX_IMPORT_ROWS} rows")
        yield cells


def _json_rows(body: bytes) -> list[RawRow]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _invalid("the body is not valid JSON") from None
    except RecursionError:
        raise _invalid("the JSON is nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("parcels"), list):
        raise _invalid('the JSON must be an object with a "parcels" array')
    rows = []
    for item in data["parcels"]:
        if not isinstance(item, dict):
            rows.append(RawRow("", unreadable="the row is not a JSON object"))
        else:
            rows.append(_raw_row(item))
    return rows


def _raw_row(fields: Mapping[str, object]) -> RawRow:
    """A row from its named fields (strings, or numbers for phone and room)."""
    values: dict[str, str | None] = {}
    for name in COLUMNS:
        value = fields.get(name)
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and name in ("phone", "room", "tracking_number")
        ):
            value = str(value)
        if value is not None and not isinstance(value, str):
            tn = fields.get("tracking_number")
            return RawRow(tn if isinstance(tn, str) else "", unreadable=f"{name} must be text")
        text = value.strip() if isinstance(value, str) else None
        values[name] = text or None
    tn = values.pop("tracking_number") or ""
    return RawRow(tn, **values)


def _invalid(detail: str) -> Problem:
    return Problem(422, detail, type_="urn:robopost:invalid-request")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or ``Problem`` 413 once it grows beyond ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(
                413, f"the body is larger than {limit} bytes", type_="urn:robopost:payload-too-large"
            )
        chunks.append(chunk)
    return b"".join(chunks)


# --- Destinations ----------------------------------------------------------------------------------


class Refused(ValueError):
    """A row that cannot be imported; the message is the reason reported for it."""


@dataclass(frozen=True)
class Destinations:
    """Resolves a row's building/room or dorm to a campus-map place (see the module docstring)."""

    buildings: Mapping[str, str]  # upper-case id -> id
    stops: Mapping[str, str]  # upper-case served building -> stop place
    rooms: Mapping[tuple[str, str], str]  # (building id, lower-case room key) -> office/room place

    @classmethod
    def of(cls, site: Site) -> Destinations:
        """The index of ``site``'s buildings, stops and offices/rooms."""
        stops: dict[str, str] = {}
        rooms: dict[tuple[str, str], str] = {}
        for place in sorted(site.places.values(), key=lambda p: p.name):
            if place.kind is PlaceKind.STOP and place.tags.get("serves"):
                stops.setdefault(place.tags["serves"].upper(), place.name)
            if place.kind in (PlaceKind.OFFICE, PlaceKind.ROOM):
                building = place.tags.get("building") or site.building_of(place.node)
                if building is None:
                    continue
                for key in _room_keys(place.name, building, place.tags.get("room")):
                    rooms.setdefault((building, key), place.name)
        return cls({b.upper(): b for b in site.buildings}, stops, rooms)

    def resolve(
        self, building: str | None, room: str | None, dorm: str | None
    ) -> tuple[str | None, str | None, str]:
        """``(building id, dorm id, place)`` for a row; ``Refused`` with the reason if it has none."""
        if building is not None and dorm is not None:
            raise Refused("give a building (with its room) or a dorm, not both")
        if dorm is not None:
            stop = self.stops.get(dorm.upper())
            if stop is None:
                raise Refused(f"unknown dorm {_short(dorm)}: no stop serves it")
            return None, self.buildings.get(dorm.upper(), dorm), stop
        if building is None:
            raise Refused("the row needs a building (with a room) or a dorm")
        canonical = self.buildings.get(building.upper())
        if canonical is None:
            raise Refused(f"unknown building {_short(building)}")
        if room is None:
            stop = self.stops.get(canonical.upper())
            if stop is None:
                raise Refused(f"building {canonical!r} needs a room: no stop serves the building")
            return canonical, None, stop
        place = self.rooms.get((canonical, room.lower()))
        if place is None:
            raise Refused(f"unknown room {_short(room)} in building {canonical!r}")
        return canonical, None, place


def _room_keys(name: str, building: str, tag: str | None) -> Iterator[str]:
    yield name.lower()
    prefix = f"{building.lower()}_"
    if name.lower().startswith(prefix):
        yield name.lower()[len(prefix) :]
    if tag:
        yield tag.lower()


def _short(text: str) -> str:
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


def destinations_of(request: Request, site: Site) -> Destinations:
    """The app's ``Destinations`` (built once, kept on ``app.state``)."""
    state = request.app.state
    cached: tuple[Site, Destinations] | None = getattr(state, "intake_destinations", None)
    if cached is None or cached[0] is not site:
        cached = (site, Destinations.of(site))
        state.intake_destinations = cached
    return cached[1]


# --- Import ----------------------------------------------------------------------------------------


def _check_text(row: RawRow) -> None:
    for name in COLUMNS:
        value = row.tracking_number if name == "tracking_number" else getattr(row, name)
        if value is None:
            continue
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise Refused(f"{name} holds control characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Refused(f"{name} is not valid text") from None


def _intake(row: RawRow, destinations: Destinations) -> ParcelIntake:
    """The repository's intake for a row; ``Refused`` for what the store would not be told about."""
    if row.unreadable is not None:
        raise Refused(row.unreadable)
    _check_text(row)
    if not row.tracking_number:
        raise Refused("tracking_number is missing")
    for name in ("recipient_name", "phone", "size"):
        if getattr(row, name) is None:
            raise Refused(f"{name} is missing")
    building, dorm, place = destinations.resolve(row.building, row.room, row.dorm)
    return ParcelIntake(
        tracking_number=row.tracking_number,
        size=(row.size or "").upper(),
        recipient_name=row.recipient_name or "",
        recipient_phone=row.phone or "",
        building=building,
        room=row.room,
        dorm=dorm,
        place=place,
    )


def import_batch(
    services: Services, destinations: Destinations, rows: Sequence[RawRow], pause: PausePoint | None = None
) -> ImportReport:
    """Resolve and store the rows in one transaction; the per-row report (blocking: run in a thread)."""
    reports: list[RowReport | None] = [None] * len(rows)
    first_of: dict[str, int] = {}
    pending: list[tuple[int, ParcelIntake]] = []
    for index, row in enumerate(rows):
        try:
            intake = _intake(row, destinations)
        except Refused as exc:
            reports[index] = RowReport(
                row=index + 1, tracking_number=row.tracking_number, status=RowStatus.REFUSED, reason=str(exc)
            )
            continue
        if intake.tracking_number in first_of:  # the repository would report it too, but by chunk
            first = first_of[intake.tracking_number]
            reports[index] = RowReport(
                row=index + 1,
                tracking_number=row.tracking_number,
                status=RowStatus.DUPLICATE,
                reason=f"repeats row {first + 1}",
                place=intake.place,
            )
            continue
        first_of[intake.tracking_number] = index
        pending.append((index, intake))
    written = 0
    with services.sessions.begin() as session:
        parcels = ParcelRepository(session, services.clock, services.personal)
        for start in range(0, len(pending), CHUNK_ROWS):
            chunk = pending[start : start + CHUNK_ROWS]
            outcomes = parcels.import_rows([intake for _, intake in chunk])
            for (index, intake), outcome in zip(chunk, outcomes, strict=True):
                reports[index] = _report(index, rows[index], intake, outcome)
                written += outcome.status is ImportStatus.CREATED
            if pause is not None:
                pause.reached("import", written)
    done = [r for r in reports if r is not None]
    return ImportReport(
        created=sum(r.status is RowStatus.CREATED for r in done),
        duplicate=sum(r.status is RowStatus.DUPLICATE for r in done),
        refused=sum(r.status is RowStatus.REFUSED for r in done),
        rows=done,
    )


def _report(index: int, row: RawRow, intake: ParcelIntake, outcome: ImportOutcome) -> RowReport:
    status = RowStatus(outcome.status.value)
    place = intake.place if status is not RowStatus.REFUSED else None
    return RowReport(
        row=index + 1, tracking_number=row.tracking_number, status=status, reason=outcome.reason, place=place
    )


# --- Router ----------------------------------------------------------------------------------------


def intake_router(env: Mapping[str, str] | None = None) -> APIRouter:
    """``POST /v1/parcels:import``. ``env`` (default ``os.environ``) is read for the test pause only."""
    router = APIRouter(tags=["intake"])
    environment = os.environ if env is None else env

    @router.post(
        "/v1/parcels:import",
        response_model=ImportReport,
        summary="Import a batch of parcels from the station's sorting system",
        description=IMPORT_DESCRIPTION,
        responses=problem_responses(401, 413, 415, 422),
        openapi_extra=IMPORT_BODY,
    )
    async def import_parcels(
        request: Request,
        _station: Annotated[str, Depends(station_auth)],
        services: Annotated[Services, Depends(services_of)],
    ) -> ImportReport:
        install_pause_point(request.app.state, environment)
        body = await read_body(request, MAX_IMPORT_BYTES)
        rows = parse_batch(request.headers.get("content-type"), body)
        destinations = destinations_of(request, services.site)
        report = await asyncio.to_thread(import_batch, services, destinations, rows, _pause_of(request))
        operations = operations_of(request.app)
        if operations is not None:  # the live dispatch loop plans them (stored first, then acted on)
            await operations.parcels_imported(r.tracking_number for r in report.rows if r.status == "created")
        return report

    @router.post(
        "/v1/parcels/{tracking_number}:sort",
        response_model=StationParcel,
        summary="Put a parcel in a delivery window and at a stop (or mark it for its building's hand-off)",
        responses=problem_responses(401, 404, 409, 422),
    )
    async def sort_parcel(
        tracking_number: str,
        body: SortIn,
        _station: Annotated[str, Depends(station_auth)],
        services: Annotated[Services, Depends(services_of)],
    ) -> StationParcel:
        def work() -> StationParcel:
            with services.sessions.begin() as session:
                parcels = ParcelRepository(session, services.clock, services.personal)
                record, _ = parcels.transition(
                    tracking_number, ParcelEvent.SORT, window=body.window, stop=body.stop, office=body.office
                )
                return StationParcel.of(record)

        return await asyncio.to_thread(work)

    @router.post(
        "/v1/parcels/{tracking_number}:load",
        response_model=StationParcel,
        summary="Load a sorted parcel into a cart's compartment (its pickup code is issued and texted)",
        description=(
            "Station staff put the parcel in the compartment. A window parcel gets its one-use pickup code "
            "now, valid until `window_end`; the SMS with the code waits and goes out when the cart reaches "
            "the stop. The code itself is never in an answer."
        ),
        responses=problem_responses(401, 404, 409, 422),
    )
    async def load_parcel(
        tracking_number: str,
        body: LoadIn,
        _station: Annotated[str, Depends(station_auth)],
        services: Annotated[Services, Depends(services_of)],
    ) -> StationParcel:
        from orchestrator.api.delivery import Delivery

        loaded = await Delivery.from_services(services).load(
            tracking_number, body.cart, body.compartment, window_end=body.window_end.timestamp()
        )
        return StationParcel.of(loaded.record, code_issued=loaded.code is not None)

    return router


class SortIn(BaseModel):
    """Where a parcel goes: its delivery window and stop (``office``: via its building's hand-off)."""

    model_config = {"json_schema_extra": {"examples": [{"window": "w2", "stop": "stop_dorm_1"}]}}

    window: str = Field(min_length=1, max_length=64)
    stop: str = Field(min_length=1, max_length=128)
    office: bool = False


class LoadIn(BaseModel):
    """Which cart compartment the parcel went into, and when its window ends (RFC 3339 with offset)."""

    model_config = {
        "json_schema_extra": {
            "examples": [{"cart": "cart_1", "compartment": "S07", "window_end": "2026-11-27T13:30:00+08:00"}]
        }
    }

    cart: str = Field(min_length=1, max_length=64)
    compartment: str = Field(min_length=1, max_length=32)
    window_end: AwareDatetime


class StationParcel(BaseModel):
    """A parcel as the station sees it (no personal data)."""

    tracking_number: str
    state: str
    window: str | None = None
    stop: str | None = None
    cart: str | None = None
    compartment: str | None = None
    code_issued: bool = False

    @classmethod
    def of(cls, record: Any, *, code_issued: bool = False) -> StationParcel:
        parcel = record.parcel
        return cls(
            tracking_number=record.tracking_number,
            state=str(parcel.state.value),
            window=parcel.window,
            stop=parcel.stop,
            cart=parcel.cart,
            compartment=parcel.compartment,
            code_issued=code_issued,
        )


__all__ = [
    "COLUMNS",
    "MAX_IMPORT_BYTES",
    "MAX_IMPORT_ROWS",
    "STATION_ID",
    "Destinations",
    "ImportReport",
    "PausePoint",
    "RowReport",
    "RowStatus",
    "import_batch",
    "intake_router",
    "parse_batch",
    "read_body",
    "station_auth",
]
