"""Errors of the dispatcher.

::

    DispatchError
     └── InstanceFormatError   a benchmark instance or BKS file that cannot be read
"""

from __future__ import annotations


class DispatchError(Exception):
    """Base of every error raised by ``orchestrator.dispatch``."""


class InstanceFormatError(DispatchError):
    """A malformed instance file: one line naming the file, the line and what is wrong."""

    def __init__(self, file: str, line: int | None, what: str) -> None:
        self.file = file
        self.line = line
        self.what = what
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {what}")
