"""Tables of the operators' console: login sessions (issue 6)."""

from __future__ import annotations
