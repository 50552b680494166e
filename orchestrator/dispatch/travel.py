"""Travel between campus places for one robot profile: time, metres and lift rides, from ``maps``.

Built once per (site, profile, closed lifts) and queried many times: the dispatcher's inner loops only
index NumPy arrays. Lift waits and rides, doors and gates are in the times (``maps.routing``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from maps.model import Site
from maps.routing import Router


@dataclass(frozen=True)
class TravelTable:
    """Fastest-route time (s), length (m) and lift rides between ``places`` for ``profile``."""

    profile: str
    places: tuple[str, ...]
    time_s: np.ndarray
    metres: np.ndarray
    rides: np.ndarray
    closed_lifts: frozenset[str] = frozenset()
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {p: i for i, p in enumerate(self.places)})

    @classmethod
    def from_site(
        cls, site: Site, profile: str, places: Iterable[str] | None = None, closed_lifts: Iterable[str] = ()
    ) -> TravelTable:
        """The table over ``places`` (default: every place the profile can stand on)."""
        router = Router(site, profile, closed_lifts=closed_lifts)
        if places is None:
            wanted: Sequence[str] = [p.name for p in site.places.values() if p.node in router.graph]
        else:
            wanted = [p for p in dict.fromkeys(places) if site.places[p].node in router.graph]
        times, metres, rides = router.legs(wanted)
        return cls(profile, tuple(wanted), times, metres, rides, frozenset(closed_lifts))

    def has(self, place: str) -> bool:
        """Whether the profile can stand on ``place``."""
        return place in self.index

    def time(self, a: str, b: str) -> float:
        """Seconds from ``a`` to ``b`` (``inf`` if unreachable or unknown to this profile)."""
        i, j = self.index.get(a), self.index.get(b)
        if i is None or j is None:
            return math.inf
        return float(self.time_s[i, j])

    def length(self, a: str, b: str) -> float:
        """Metres from ``a`` to ``b`` along the fastest route."""
        i, j = self.index.get(a), self.index.get(b)
        if i is None or j is None:
            return math.inf
        return float(self.metres[i, j])

    def lift_rides(self, a: str, b: str) -> int:
        """Lift rides from ``a`` to ``b`` along the fastest route (-1 if unreachable)."""
        i, j = self.index.get(a), self.index.get(b)
        if i is None or j is None:
            return -1
        return int(self.rides[i, j])

    def reachable(self, a: str, b: str) -> bool:
        """Whether ``b`` can be reached from ``a``."""
        return math.isfinite(self.time(a, b))


class TravelBook:
    """Travel tables of one site, per (profile, closed lifts), built on first use and then cached."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._tables: dict[tuple[str, frozenset[str]], TravelTable] = {}

    def table(self, profile: str, closed_lifts: Iterable[str] = ()) -> TravelTable:
        """The table of ``profile`` with ``closed_lifts`` out of service."""
        key = (profile, frozenset(closed_lifts))
        if key not in self._tables:
            self._tables[key] = TravelTable.from_site(self.site, profile, closed_lifts=key[1])
        return self._tables[key]
