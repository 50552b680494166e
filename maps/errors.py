"""Errors of the campus model.

    MapError                 a map file (or a site built in code) cannot be used
    └── MapFormatError       the file is not what its format requires (syntax, missing field, type)
    RoutingError             no route: unknown place, no path for the profile
    └── UnknownPlaceError    a FROM/TO that names no place, node or valid ``lat,lon``

Every ``MapError`` renders as one line naming the file, the element and what is wrong, so the CLI can
print it as is: ``hotel.building.yaml: levels.L2.lanes[4]: vertex 212 does not exist``.
"""

from __future__ import annotations


class MapError(Exception):
    """A map cannot be used. ``file`` and ``element`` say where, ``what`` says why."""

    def __init__(self, file: str | None, element: str, what: str) -> None:
        self.file = file
        self.element = element
        self.what = what
        super().__init__(self.line())

    def line(self) -> str:
        where = f"{self.file}: " if self.file else ""
        elem = f"{self.element}: " if self.element else ""
        return f"{where}{elem}{self.what}".replace("\n", " ")


class MapFormatError(MapError):
    """The file breaks its format's rules."""


class RoutingError(Exception):
    """No route can be given."""


class UnknownPlaceError(RoutingError):
    """A route end names no place, node or coordinate."""
