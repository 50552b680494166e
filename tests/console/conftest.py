"""Fixtures of the console's browser tests (see ``tests/live_console_kit.py``)."""

from live_console_kit import browser, live_console, page

__all__ = ["browser", "live_console", "page"]
