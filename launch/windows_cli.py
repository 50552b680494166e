"""``robopost windows recommend``: the daily delivery windows that serve the most pickups.

Demand comes from one of two sources:

- ``--pickups FILE.csv``: recorded or simulated pickups, one a row, with a header. The time column is
  ``--column`` or, by default, the first of ``preferred_s`` (when the student would have liked to
  come: the simulator's ``pickups.csv``), ``picked_up_s`` and ``picked_up_at``. A column whose name
  ends in ``_at`` holds ISO-8601 timestamps, converted to seconds since local midnight in ``--tz``
  (a timestamp without an offset is taken as local time there); any other holds seconds since
  midnight (values past 86400, from a run of several days, are taken modulo a day). Rows with an
  empty time are skipped (a parcel never picked up). An optional ``weight`` column weighs each row
  (empty: 1); an optional ``stop`` column gives the per-stop figures and ``--stop`` filters on it.
- ``--database-url URL`` or ``--config FILE`` (``database.url`` of the orchestrator's settings): the
  ``pick_up`` events of the parcels in the store (``parcel_events``; the stop from ``parcels``) of the
  last ``--since`` days, read without writing (SQLite opened read-only, PostgreSQL in a READ ONLY
  transaction). These are the times students *did* come, inside the current windows: good for
  shifting windows a little, weaker for moving them far (the simulator's preferred times are not
  censored that way).

The result is a table (window, start–end, demand, served, share; the current windows' figures with
``--current``, which defaults to the settings' ``campus.windows`` when ``--config`` is given), a YAML
``windows:`` snippet (``- {id: w1, start: "07:30", end: "08:30"}``) in the shape of both the
orchestrator's ``campus.windows`` setting and a simulator scenario (``sim/day/scenario.py``), to paste
into either, and with ``--json OUT`` the whole result as JSON. Bad input prints one line naming the
file, line and column, or the option, and exits with code 2.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from orchestrator.dispatch.campus import Window
    from orchestrator.dispatch.windows import Recommendation, WindowRules
    from orchestrator.settings import Settings

EXIT_BAD_INPUT = 2
DAY_S = 86_400.0
MINUTE = 60.0
TIME_COLUMNS = ("preferred_s", "picked_up_s", "picked_up_at")
"""The time columns tried in order when ``--column`` is not given."""

windows_app = typer.Typer(help="Daily delivery windows (投递时段): recommend them from pickups.")


@windows_app.callback(no_args_is_help=True)
def _group() -> None:
    """Daily delivery windows (投递时段)."""


class InputError(Exception):
    """Demand that cannot be read: the message is one line naming the file, line and column."""


@dataclass
class Demand:
    """Pickup times (seconds since local midnight), their weights and stops (``None`` when unknown);
    ``source`` says where they came from. The readers append to the lists."""

    times: list[float]
    weights: list[float]
    stops: list[str | None]
    source: str

    def only(self, stops: list[str]) -> Demand:
        """The rows at the given stops."""
        keep = [i for i, stop in enumerate(self.stops) if stop in stops]
        return Demand(
            [self.times[i] for i in keep],
            [self.weights[i] for i in keep],
            [self.stops[i] for i in keep],
            self.source,
        )


# ---- CSV --------------------------------------------------------------------------------------------


def seconds_of_day(moment: datetime, tz: tzinfo) -> float:
    """Seconds since midnight of ``moment`` in ``tz`` (a naive ``moment`` is already local there)."""
    local = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


def read_csv(path: Path, column: str | None, tz: tzinfo) -> Demand:
    """The demand in a pickups CSV (see the module docstring); ``InputError`` for anything unusable."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames
            if not header:
                raise InputError(f"{path}: empty file, expected a header row")
            name = _time_column(path, header, column)
            demand = Demand([], [], [], f"{path} ({name})")
            for row in reader:
                _read_row(path, reader.line_num, row, name, tz, demand)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a UTF-8 CSV file: {exc}") from exc
    return demand


def _time_column(path: Path, header: Sequence[str], column: str | None) -> str:
    if column is not None:
        if column not in header:
            raise InputError(f"{path}: no column {column!r} (columns: {', '.join(header)})")
        return column
    for name in TIME_COLUMNS:
        if name in header:
            return name
    raise InputError(
        f"{path}: no time column: expected one of {', '.join(TIME_COLUMNS)} or --column (columns: "
        f"{', '.join(header)})"
    )


def _read_row(path: Path, line: int, row: dict[str, str | None], name: str, tz: tzinfo, out: Demand) -> None:
    if None in row:  # more cells than header names
        raise InputError(f"{path}:{line}: more cells than the header has columns")
    cell = (row.get(name) or "").strip()
    if not cell:
        return
    out.times.append(_time_cell(path, line, name, cell, tz))
    weight = (row.get("weight") or "").strip()
    out.weights.append(_weight_cell(path, line, weight) if weight else 1.0)
    stop = (row.get("stop") or "").strip()
    out.stops.append(stop or None)


def _time_cell(path: Path, line: int, name: str, cell: str, tz: tzinfo) -> float:
    where = f"{path}:{line}: column {name}"
    if name.endswith("_at"):
        try:
            return seconds_of_day(datetime.fromisoformat(cell), tz)
        except ValueError:
            raise InputError(f"{where}: {cell!r} is not an ISO-8601 timestamp") from None
    try:
        value = float(cell)
    except ValueError:
        raise InputError(f"{where}: {cell!r} is not a number of seconds since midnight") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{where}: {cell!r} is not a number of seconds since midnight (>= 0)")
    return value % DAY_S if value > DAY_S else value


def _weight_cell(path: Path, line: int, cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"{path}:{line}: column weight: {cell!r} is not a number >= 0")
    return value


# ---- the store --------------------------------------------------------------------------------------


def read_store(url: str, *, since_days: float, now: float, tz: tzinfo) -> Demand:
    """The ``pick_up`` events of the last ``since_days`` days before ``now`` (epoch seconds) in the
    orchestrator's store at ``url``, read without writing; ``InputError`` when it cannot be read."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from orchestrator.domain import ParcelEvent
    from orchestrator.store.domain_tables import ParcelEventRow, ParcelRow

    cutoff = datetime.fromtimestamp(now, tz=UTC) - timedelta(days=since_days)
    query = (
        select(ParcelEventRow.at, ParcelRow.stop)
        .join(ParcelRow, ParcelRow.id == ParcelEventRow.parcel_id)
        .where(ParcelEventRow.kind == ParcelEvent.PICK_UP.value, ParcelEventRow.at >= cutoff)
        .order_by(ParcelEventRow.at, ParcelEventRow.id)
    )
    engine = _read_only_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"database {_shown(url)}: cannot read pick-ups ({first})") from exc
    finally:
        engine.dispose()
    return Demand(
        [seconds_of_day(at, tz) for at, _ in rows],
        [1.0] * len(rows),
        [stop for _, stop in rows],
        f"{_shown(url)} (pick_up events since {cutoff:%Y-%m-%d %H:%M} UTC)",
    )


def _read_only_engine(url: str) -> Engine:
    """An engine that cannot write: SQLite through a ``mode=ro`` URI, others through the store's
    ``make_engine`` (the caller opens a READ ONLY transaction on PostgreSQL)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from orchestrator.store import StoreError, make_engine

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InputError(f"database url {url!r} cannot be parsed") from exc
    if parsed.get_backend_name() != "sqlite":
        try:
            return make_engine(parsed)
        except StoreError as exc:
            raise InputError(str(exc)) from exc
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise InputError(f"database url {url!r}: give the SQLite file of the orchestrator's store")
    if not Path(database).is_file():
        raise InputError(f"database {database}: no such file")
    return create_engine(f"sqlite:///file:{Path(database).resolve()}?mode=ro&uri=true")


def _shown(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


# ---- the command ------------------------------------------------------------------------------------


def _fail(message: str) -> NoReturn:
    print(f"robopost: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_BAD_INPUT)


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        _fail(f"--tz: {name!r} is not a time zone (e.g. Asia/Shanghai)")


def _settings(config: Path) -> Settings:
    from orchestrator.settings import Settings, SettingsError

    try:
        return Settings.load(config)
    except SettingsError as exc:
        _fail(str(exc))


def _database_url(database_url: str | None, config: Path | None) -> str:
    if database_url:
        return database_url
    if config is None:
        _fail("give --database-url URL or --config FILE")
    return _settings(config).database.url


def _configured_windows(config: Path) -> tuple[Window, ...]:
    """The settings' ``campus.windows`` (the windows in force), as dispatch windows."""
    from orchestrator.dispatch.campus import Window

    return tuple(Window(w.id, w.start_s, w.end_s) for w in _settings(config).campus.windows)


def _rules(
    count: int,
    min_length: float,
    max_length: float,
    min_gap: float,
    hours: str,
    capacity: float | None,
    step: float | None,
) -> WindowRules:
    from orchestrator.dispatch.windows import WindowRules, parse_span

    try:
        start, end = parse_span(hours)
    except ValueError as exc:
        _fail(f"--hours: {exc}")
    try:
        return WindowRules(
            count=count,
            min_length_s=min_length * MINUTE,
            max_length_s=max_length * MINUTE,
            min_gap_s=min_gap * MINUTE,
            service_start_s=start,
            service_end_s=end,
            capacity=capacity,
            step_s=step * MINUTE if step else None,
        )
    except ValueError as exc:
        _fail(str(exc))


@windows_app.command("recommend")
def windows_recommend(
    pickups: Annotated[Path | None, typer.Option("--pickups", help="CSV of pickup times")] = None,
    column: Annotated[
        str | None, typer.Option(help="time column (default: preferred_s, picked_up_s or picked_up_at)")
    ] = None,
    tz: Annotated[
        str, typer.Option("--tz", help="time zone of the campus (for timestamps)")
    ] = "Asia/Shanghai",
    database_url: Annotated[
        str | None, typer.Option(help="read recorded pick-ups from this store (SQLAlchemy URL)")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="settings YAML: read pick-ups from its database.url")
    ] = None,
    since: Annotated[float, typer.Option(help="days of recorded pick-ups to read")] = 28.0,
    stop: Annotated[
        list[str] | None, typer.Option("--stop", help="only pickups at this stop (repeatable)")
    ] = None,
    windows: Annotated[int, typer.Option("--windows", help="how many windows a day")] = 4,
    min_length: Annotated[float, typer.Option(help="shortest window, minutes")] = 60.0,
    max_length: Annotated[float, typer.Option(help="longest window, minutes")] = 90.0,
    min_gap: Annotated[float, typer.Option(help="least time between windows, minutes")] = 120.0,
    hours: Annotated[str, typer.Option(help="service hours HH:MM-HH:MM")] = "07:00-22:30",
    capacity: Annotated[
        float | None, typer.Option(help="parcels a window can serve (carts × ~50 × trips)")
    ] = None,
    step: Annotated[
        float, typer.Option(help="window bounds on multiples of this many minutes (0: any)")
    ] = 5.0,
    current: Annotated[
        str | None, typer.Option(help="current windows to compare, e.g. 07:30-08:30,12:00-13:30")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the result as JSON here")] = None,
) -> None:
    """Propose the daily delivery windows that serve the most pickups (exact optimum under the rules)."""
    from orchestrator.dispatch.windows import parse_windows, recommend

    rules = _rules(windows, min_length, max_length, min_gap, hours, capacity, step)
    zone = _zone(tz)
    if (pickups is None) == (database_url is None and config is None):
        _fail("give either --pickups FILE.csv or --database-url URL / --config FILE")
    if since <= 0:
        _fail(f"--since must be > 0 days, got {since:g}")
    try:
        current_windows = parse_windows(current) if current is not None else None
    except ValueError as exc:
        _fail(f"--current: {exc}")
    if current_windows is None and config is not None:
        current_windows = _configured_windows(config)
    try:
        if pickups is not None:
            demand = read_csv(pickups, column, zone)
        else:
            from interfaces.clock import RealClock

            url = _database_url(database_url, config)
            demand = read_store(url, since_days=since, now=RealClock().now(), tz=zone)
    except InputError as exc:
        _fail(str(exc))
    if stop:
        known = sorted({s for s in demand.stops if s is not None})
        demand = demand.only(stop)
        if not demand.times:
            _fail(f"--stop: no pickups at {', '.join(stop)} (stops: {', '.join(known) or 'none given'})")
    try:
        result = recommend(
            demand.times, rules, weights=demand.weights, stops=demand.stops, current=current_windows
        )
    except ValueError as exc:
        _fail(str(exc))
    if json_out is not None:
        data = {"source": demand.source, "rows": len(demand.times), **result.to_dict()}
        try:
            json_out.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            _fail(f"--json {json_out}: cannot write: {exc.strerror}")
        print(f"wrote {json_out}")
    _print(result, demand)


def _print(result: Recommendation, demand: Demand) -> None:
    from orchestrator.dispatch.windows import config_snippet

    console = Console()
    weight = "" if all(w == 1.0 for w in demand.weights) else f", weight {result.total:g}"
    console.print(f"{demand.source}: {len(demand.times)} pickups{weight}")
    table = Table(title="recommended windows")
    for name in ("window", "start–end", "demand", "served", "share", "by stop"):
        table.add_column(name, justify="right" if name in ("demand", "served", "share") else "left")
    for c in result.windows:
        stops = ", ".join(f"{k} {v:g}" for k, v in sorted(c.by_stop.items(), key=lambda kv: -kv[1])[:3])
        table.add_row(c.id, c.label(), f"{c.demand:g}", f"{c.served:g}", f"{c.share:.1%}", stops or "-")
    table.add_section()
    table.add_row(
        "total",
        "",
        f"{result.total - result.outside_hours:g}",
        f"{result.served:g}",
        f"{result.share:.1%}",
        "",
    )
    if result.current_share is not None:
        table.add_section()
        for c in result.current:
            table.add_row(f"now {c.id}", c.label(), f"{c.demand:g}", f"{c.served:g}", f"{c.share:.1%}", "")
        table.add_row("now total", "", "", f"{result.current_served:g}", f"{result.current_share:.1%}", "")
    console.print(table)
    if result.outside_hours:
        console.print(f"outside the service hours: {result.outside_hours:g}")
    for problem in result.current_violations:
        console.print(f"[yellow]current windows break the rules[/yellow]: {problem}")
    if result.current_share is not None:
        gain = result.served - (result.current_served or 0.0)
        console.print(
            f"gain over the current windows: {gain:+g} ({result.share - result.current_share:+.1%})"
        )
    console.print("\nfor the settings' campus.windows, or a scenario file (robopost sim compare):")
    print(config_snippet(result.windows), end="")
