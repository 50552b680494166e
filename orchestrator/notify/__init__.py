"""robopost orchestrator.notify: SMS and phone-call notifications through a persistent outbox.

- ``messages``: the bilingual texts (Chinese first, then English) and which an event calls for.
- ``providers``: the ``Provider`` interface, ``LogProvider`` (demo) and ``WebhookProvider`` (a real
  SMS/voice gateway over signed HTTP).
- ``outbox``: ``Outbox`` (enqueue inside the caller's transaction; operators' dead letters and retry)
  and ``OutboxWorker`` (sends with retries and exponential backoff, at least once).

Errors: ``errors`` (``NotifyError`` and its two subclasses); failed deliveries are results, not errors.
"""

from orchestrator.notify.errors import NotifyError, OutboxEntryNotFoundError, OutboxStateError
from orchestrator.notify.messages import (
    CHINA_TZ,
    Message,
    MessageKind,
    Notice,
    OrderUpdate,
    Scheduled,
    cart_at_stop,
    dedupe_key,
    office_delivery_call,
    office_delivery_notices,
    order_update,
    pickup_cancels,
    pickup_code_resend,
    reminder_notice,
    robot_at_door,
    window_delivery_notices,
    window_ending_reminder,
    withdrawal_cancels,
)
from orchestrator.notify.outbox import (
    Cipher,
    Outbox,
    OutboxEntry,
    OutboxStatus,
    OutboxWorker,
    RetryPolicy,
    RunReport,
)
from orchestrator.notify.providers import (
    SIGNATURE_HEADER,
    LogProvider,
    Provider,
    ProviderResult,
    WebhookProvider,
    provider_from_settings,
    sign_body,
)

__all__ = [
    "CHINA_TZ",
    "SIGNATURE_HEADER",
    "Cipher",
    "LogProvider",
    "Message",
    "MessageKind",
    "Notice",
    "NotifyError",
    "OrderUpdate",
    "Outbox",
    "OutboxEntry",
    "OutboxEntryNotFoundError",
    "OutboxStateError",
    "OutboxStatus",
    "OutboxWorker",
    "Provider",
    "ProviderResult",
    "RetryPolicy",
    "RunReport",
    "Scheduled",
    "WebhookProvider",
    "cart_at_stop",
    "dedupe_key",
    "office_delivery_call",
    "office_delivery_notices",
    "order_update",
    "pickup_cancels",
    "pickup_code_resend",
    "provider_from_settings",
    "reminder_notice",
    "robot_at_door",
    "sign_body",
    "window_delivery_notices",
    "window_ending_reminder",
    "withdrawal_cancels",
]
