"""Readers of the Solomon, Li & Lim and best-known-solution files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.dispatch.errors import InstanceFormatError
from orchestrator.dispatch.instances import read_bks_text, read_lilim_text, read_solomon_text


def _solomon(shared_data: Path) -> Path:
    return shared_data / "vrptw" / "solomon"


def _lilim(shared_data: Path) -> Path:
    return shared_data / "pdptw" / "lilim"


def test_every_solomon_instance_reads_with_its_fleet(shared_data: Path) -> None:
    """Each Solomon file gives 100 customers plus the depot, the file's fleet, and a BKS entry."""
    bks = read_bks_text((_solomon(shared_data) / "bks.json").read_text())
    files = sorted(_solomon(shared_data).glob("*.txt"))
    assert len(files) == 28
    for path in files:
        problem = read_solomon_text(path.read_text(), str(path))
        assert problem.name == path.stem
        assert len(problem.customers) == 100
        assert problem.name in bks
        assert problem.vehicles >= bks[problem.name].vehicles
        assert not problem.is_pdptw


def test_c101_values_are_read_exactly(shared_data: Path) -> None:
    """C101: 25 vehicles of 200, depot at (40, 50) open 0..1236, customer 1 as in the file."""
    problem = read_solomon_text((_solomon(shared_data) / "C101.txt").read_text())
    assert (problem.vehicles, problem.capacity) == (25, 200)
    assert (problem.depot.x, problem.depot.y, problem.depot.due) == (40, 50, 1236)
    first = problem.nodes[1]
    assert (first.x, first.y, first.demand, first.ready, first.due, first.service) == (
        45,
        68,
        10,
        912,
        967,
        90,
    )
    assert problem.dist[0][1] == pytest.approx((5**2 + 18**2) ** 0.5)


def test_every_lilim_instance_reads_with_consistent_pairs(shared_data: Path) -> None:
    """Each Li & Lim file gives pickup-delivery pairs naming each other, with opposite demands."""
    bks = read_bks_text((_lilim(shared_data) / "bks.json").read_text())
    files = sorted(_lilim(shared_data).glob("*.txt"))
    assert len(files) == 28
    for path in files:
        problem = read_lilim_text(path.read_text(), path.stem, str(path))
        assert problem.name in bks
        assert problem.is_pdptw
        assert 2 * len(problem.pairs) == len(problem.customers)
        for pickup, delivery in problem.pairs:
            assert problem.nodes[delivery].pickup == pickup
            assert problem.nodes[pickup].demand == -problem.nodes[delivery].demand > 0


def _broken(tmp_path: Path, source: Path, line: int, replacement: str) -> Path:
    lines = source.read_text().splitlines()
    lines[line - 1] = replacement
    target = tmp_path / source.name
    target.write_text("\n".join(lines) + "\n")
    return target


@pytest.mark.parametrize(
    ("line", "replacement", "message"),
    [
        (11, "    1      45         68         10        912        967", ":11: expected 7 numbers, found 6"),
        (11, "    1      45         68         ten       912        967  90", ":11: not a number"),
        (11, "    1      45         68         10.5      912        967  90", ":11: demand must be a whole"),
        (11, "    7      45         68         10        912        967  90", "node 1 has id 7"),
        (11, "    1      45         68         10        999        967  90", "due 967.0 before ready 999.0"),
        (5, "VEHICLES GONE", ":10: expected the VEHICLE line"),
    ],
)
def test_a_broken_solomon_file_fails_with_one_line(
    shared_data: Path, tmp_path: Path, line: int, replacement: str, message: str
) -> None:
    """A malformed Solomon copy raises InstanceFormatError naming the file and (where known) the line."""
    broken = _broken(tmp_path, _solomon(shared_data) / "C101.txt", line, replacement)
    with pytest.raises(InstanceFormatError) as caught:
        read_solomon_text(broken.read_text(), str(broken))
    text = str(caught.value)
    assert text.startswith(str(broken))
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("line", "replacement", "message"),
    [
        (1, "25 200", ":1: expected 3 numbers, found 2"),
        (4, "3 42 66 10 65 146 90 0", ":4: expected 9 numbers, found 8"),
        (5, "3 42 66 10 65 146 90 0 76", "pickup 3 names delivery 76, which does not name it back"),
        (5, "3 42 66 10 65 146 90 0 999", "names partner 999, which does not exist"),
    ],
)
def test_a_broken_lilim_file_fails_with_one_line(
    shared_data: Path, tmp_path: Path, line: int, replacement: str, message: str
) -> None:
    """A malformed Li & Lim copy raises InstanceFormatError with the file, line and problem."""
    broken = _broken(tmp_path, _lilim(shared_data) / "lc101.txt", line, replacement)
    with pytest.raises(InstanceFormatError) as caught:
        read_lilim_text(broken.read_text(), "lc101", str(broken))
    assert str(caught.value).startswith(str(broken))
    assert message in str(caught.value)


def test_empty_files_are_refused() -> None:
    """An empty instance file is an error, not an empty problem."""
    with pytest.raises(InstanceFormatError, match="empty file"):
        read_solomon_text("", "x.txt")
    with pytest.raises(InstanceFormatError, match="empty file"):
        read_lilim_text("\n\n", "x", "x.txt")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ("[]", "expected an object"),
        (json.dumps({"C101": {"vehicles": 10}}), "C101: expected vehicles and distance"),
        (json.dumps({"C101": {"vehicles": "10", "distance": 1.0}}), "vehicles must be an integer"),
    ],
)
def test_a_broken_bks_file_fails_with_one_line(text: str, message: str) -> None:
    """A malformed bks.json raises InstanceFormatError saying what is wrong."""
    with pytest.raises(InstanceFormatError, match=message):
        read_bks_text(text, "bks.json")


def test_bks_values_are_read(shared_data: Path) -> None:
    """bks.json gives vehicles and distance per instance name."""
    bks = read_bks_text((_solomon(shared_data) / "bks.json").read_text())
    assert (bks["C101"].vehicles, bks["C101"].distance) == (10, 828.94)
