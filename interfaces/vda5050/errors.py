"""The one exception tree of the VDA 5050 package.

::

    Vda5050Error (ValueError)
    ├── PayloadError   an incoming payload is too large, not JSON, of the wrong shape or version
    ├── TopicError     a topic string or topic part is malformed
    └── ActionError    an action's type is not one we know or its parameters are missing/ill-typed

Every message is one line, so it can go straight into a log line or a VDA 5050 ``errors`` entry.
"""

from __future__ import annotations


class Vda5050Error(ValueError):
    """Base of every error raised by ``interfaces.vda5050``."""


class PayloadError(Vda5050Error):
    """An incoming message could not be turned into a model (size, JSON, types, protocol version)."""


class TopicError(Vda5050Error):
    """A topic string or one of its levels is malformed."""


class ActionError(Vda5050Error):
    """An action is of an unknown type or its ``actionParameters`` do not fit that type."""
