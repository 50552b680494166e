"""The messages robopost sends to people: SMS texts and phone-call scripts, Chinese first, then English.

Each builder returns a ``Message`` ready for the outbox. Words follow the scenario's glossary: 取件码
(pickup code), 停靠点 (stop), 投递时段 (delivery window), 无人车 (cart), 室内机器人 (indoor robot).
Times are shown as ``HH:MM`` in the campus time zone (``CHINA_TZ`` unless another is given).

Every message has a ``dedupe_key`` made from what it is (``Notice``) and what it is about (``ref``,
e.g. a parcel id and its window): enqueueing the same notice twice sends it once, the gateway gets
the key as the message id so it can drop a repeat (the outbox delivers at least once), and a caller
can compute the key again to cancel a reminder or a call that is no longer needed
(``pickup_cancels``).

A ``Message`` holds the phone number in clear only in memory: its ``repr`` masks it and hides the
text; ``redacted_text`` replaces the secrets (the pickup code) for logs and operator screens.

The plans at the end say which messages an event calls for and when:

- a cart reaches a stop → ``window_delivery_notices``: the SMS with the code now, a reminder
  ``reminder_before_end_s`` before the window ends (``reminder_notice`` alone when the code SMS was
  enqueued *held* at loading, while the code was still known in clear, and is released now);
- an indoor robot reaches an office → ``office_delivery_notices``: an SMS now and, as the fallback
  when the SMS goes unread, a phone call ``call_after_s`` later;
- the parcel is picked up → cancel ``pickup_cancels(ref)`` in the outbox;
- the parcel leaves the window unclaimed, or its code is replaced → cancel ``withdrawal_cancels(ref)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from enum import StrEnum

from orchestrator.security.codes import parse_code
from orchestrator.security.masking import mask_phone, normalise_phone

CHINA_TZ = timezone(timedelta(hours=8), "CST")
"""China Standard Time (UTC+8, no daylight saving): the default campus time zone."""

SMS_SIGNATURE = "【robopost】"
"""The sender signature Chinese SMS gateways require at the start of a text."""

MAX_DEDUPE_KEY = 200
"""Longest dedupe key (the outbox column's width)."""


class MessageKind(StrEnum):
    """How a message reaches its recipient."""

    SMS = "sms"
    CALL = "call"  # a voice call reading ``text`` aloud (text to speech)


class Notice(StrEnum):
    """What a message tells; the first part of its dedupe key."""

    CART_AT_STOP = "cart_at_stop"
    CODE_RESEND = "code_resend"
    WINDOW_ENDING = "window_ending"
    ROBOT_AT_DOOR = "robot_at_door"
    OFFICE_CALL = "office_call"
    ORDER_UPDATE = "order"


class OrderUpdate(StrEnum):
    """The changes of a mini-program order its customer is told about."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    ROBOT_ASSIGNED = "robot_assigned"
    ROBOT_AT_DOOR = "robot_at_door"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Message:
    """One SMS or call to one phone. ``secrets`` are the parts of ``text`` never to show (codes).

    The phone number must be a Chinese mobile number and is kept normalised (``13812341234``, see
    ``orchestrator.security.masking``); ``ValueError`` otherwise (``InvalidPhone``), or for an empty
    text or dedupe key.
    """

    kind: MessageKind
    to_phone: str = field(repr=False)
    text: str = field(repr=False)
    dedupe_key: str
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", MessageKind(self.kind))
        object.__setattr__(self, "to_phone", normalise_phone(self.to_phone))
        if not self.text.strip():
            raise ValueError("a message needs a text")
        _check_dedupe_key(self.dedupe_key)
        if any(not s for s in self.secrets):
            raise ValueError("a message secret must not be empty")

    @property
    def to_masked(self) -> str:
        """The phone number as it may be shown and logged (``138****1234``)."""
        return mask_phone(self.to_phone)

    @property
    def redacted_text(self) -> str:
        """The text with every secret replaced by ``*``: safe for logs and operator screens."""
        text = self.text
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "*" * len(secret))
        return text

    def __repr__(self) -> str:
        return f"Message({self.kind.value} to {self.to_masked}, dedupe_key={self.dedupe_key!r})"


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A message and the earliest time it may go out."""

    message: Message
    not_before: datetime


def dedupe_key(notice: Notice, ref: str) -> str:
    """The dedupe key of ``notice`` about ``ref`` (``cart_at_stop/parcel-17/w3``)."""
    if not ref.strip():
        raise ValueError("a message reference (ref) must not be empty")
    key = f"{Notice(notice).value}/{ref}"
    _check_dedupe_key(key)
    return key


# --- Window delivery (cart at a stop) ------------------------------------------------------------------


def cart_at_stop(
    to_phone: str, code: str, stop_label: str, window_end: datetime, *, ref: str, tz: tzinfo = CHINA_TZ
) -> Message:
    """The SMS sent when the cart reaches the stop: pickup code, stop, end of the delivery window."""
    stop, until, code = _label(stop_label), _hhmm(window_end, tz), _code(code)
    text = (
        f"{SMS_SIGNATURE}无人车已到达停靠点「{stop}」，您的取件码是 {code}，请在 {until} 前取件"
        f"（投递时段结束后包裹将退回驿站）。\n"
        f"The cart is at stop {stop}. Your pickup code is {code}. Please collect your parcel before "
        f"{until}, when the delivery window ends; after that it goes back to the station."
    )
    return Message(MessageKind.SMS, to_phone, text, dedupe_key(Notice.CART_AT_STOP, ref), (code,))


def pickup_code_resend(
    to_phone: str, code: str, stop_label: str, window_end: datetime, *, ref: str, tz: tzinfo = CHINA_TZ
) -> Message:
    """The SMS for "resend my code"; ``ref`` must differ per request (e.g. ``parcel-17/w3/2``)."""
    stop, until, code = _label(stop_label), _hhmm(window_end, tz), _code(code)
    text = (
        f"{SMS_SIGNATURE}您的取件码是 {code}，停靠点「{stop}」，请在 {until} 前取件。\n"
        f"Your pickup code is {code} at stop {stop}. Please collect your parcel before {until}."
    )
    return Message(MessageKind.SMS, to_phone, text, dedupe_key(Notice.CODE_RESEND, ref), (code,))


def window_ending_reminder(
    to_phone: str, stop_label: str, window_end: datetime, *, ref: str, tz: tzinfo = CHINA_TZ
) -> Message:
    """The SMS reminding a recipient whose parcel still waits that the delivery window ends soon."""
    stop, until = _label(stop_label), _hhmm(window_end, tz)
    text = (
        f"{SMS_SIGNATURE}提醒：停靠点「{stop}」的投递时段将于 {until} 结束，您的包裹尚未取件，"
        f"请凭之前短信中的取件码尽快取件。\n"
        f"Reminder: the delivery window at stop {stop} ends at {until} and your parcel is still "
        f"waiting. Please collect it with the pickup code from our earlier message."
    )
    return Message(MessageKind.SMS, to_phone, text, dedupe_key(Notice.WINDOW_ENDING, ref))


# --- Office delivery (indoor robot at a door) ----------------------------------------------------------


def robot_at_door(
    to_phone: str, code: str, place_label: str, wait_until: datetime, *, ref: str, tz: tzinfo = CHINA_TZ
) -> Message:
    """The SMS sent when the indoor robot reaches an office: where it waits, the code, until when."""
    place, until, code = _label(place_label), _hhmm(wait_until, tz), _code(code)
    text = (
        f"{SMS_SIGNATURE}室内机器人已把您的包裹送到{place}，取件码 {code}，"
        f"请在 {until} 前在机器人屏幕上输入取件码打开格口取件。\n"
        f"The indoor robot has brought your parcel to {place}. Your pickup code is {code}: type it on "
        f"the robot's screen before {until} to open the compartment."
    )
    return Message(MessageKind.SMS, to_phone, text, dedupe_key(Notice.ROBOT_AT_DOOR, ref), (code,))


def office_delivery_call(
    to_phone: str, code: str, place_label: str, wait_until: datetime, *, ref: str, tz: tzinfo = CHINA_TZ
) -> Message:
    """The phone-call script for an office delivery: the fallback when the SMS is not acted on.

    The code is spelled digit by digit and said twice, as a listener needs.
    """
    place, until, code = _label(place_label), _hhmm(wait_until, tz), _code(code)
    spoken_zh, spoken_en = " ".join(code), ", ".join(code)
    text = (
        f"您好，这里是 robopost 快递机器人。室内机器人已把您的包裹送到{place}，请在 {until} 前前来取件。"
        f"取件码是：{spoken_zh}。再说一遍，取件码是：{spoken_zh}。\n"
        f"Hello, this is the robopost delivery robot. The indoor robot has brought your parcel to "
        f"{place}; please collect it before {until}. Your pickup code is {spoken_en}. "
        f"Again, your pickup code is {spoken_en}."
    )
    return Message(
        MessageKind.CALL, to_phone, text, dedupe_key(Notice.OFFICE_CALL, ref), (spoken_zh, spoken_en, code)
    )


# --- Mini-program orders -------------------------------------------------------------------------------


def order_update(
    to_phone: str,
    order_ref: str,
    update: OrderUpdate | str,
    *,
    eta: datetime | None = None,
    reason: str = "",
    ref: str | None = None,
    tz: tzinfo = CHINA_TZ,
) -> Message:
    """The SMS telling a mini-program customer that their order changed.

    ``accepted`` needs ``eta``; ``refused`` needs ``reason`` (shown as given in both languages);
    ``robot_assigned`` shows ``eta`` when given, ``failed`` shows ``reason`` when given. The dedupe key is
    ``order/{ref}/{update}`` with ``ref`` defaulting to ``order_ref``: pass a new ``ref`` to tell the
    same change twice (e.g. a robot assigned again).
    """
    update = OrderUpdate(update)
    order = _label(order_ref)
    if update is OrderUpdate.ACCEPTED and eta is None:
        raise ValueError("an 'accepted' order update needs an eta")
    if update is OrderUpdate.REFUSED and not reason.strip():
        raise ValueError("a 'refused' order update needs a reason")
    zh, en = _order_texts(order, update, None if eta is None else _hhmm(eta, tz), reason.strip())
    key = dedupe_key(Notice.ORDER_UPDATE, f"{ref or order_ref}/{update.value}")
    return Message(MessageKind.SMS, to_phone, f"{SMS_SIGNATURE}{zh}\n{en}", key)


def _order_texts(order: str, update: OrderUpdate, eta: str | None, reason: str) -> tuple[str, str]:
    """The Chinese and English sentences for one order update."""
    if update is OrderUpdate.ACCEPTED:
        return (
            f"您的订单 {order} 已受理，机器人预计 {eta} 到达。",
            f"Your order {order} is accepted; the robot should arrive by {eta}.",
        )
    if update is OrderUpdate.REFUSED:
        return (
            f"很抱歉，您的订单 {order} 未能受理，原因：{reason}。",
            f"Sorry, your order {order} was refused: {reason}.",
        )
    if update is OrderUpdate.ROBOT_ASSIGNED:
        zh_eta, en_eta = (f"，预计 {eta} 到达", f", expected by {eta}") if eta else ("", "")
        return (
            f"机器人已出发处理您的订单 {order}{zh_eta}。",
            f"A robot is on its way for your order {order}{en_eta}.",
        )
    if update is OrderUpdate.ROBOT_AT_DOOR:
        return (
            f"订单 {order} 的机器人已到门口，请按机器人屏幕上的提示操作。",
            f"The robot for order {order} is at your door; please follow the instructions on its screen.",
        )
    if update is OrderUpdate.DONE:
        return (f"您的订单 {order} 已完成，感谢使用。", f"Your order {order} is complete. Thank you.")
    if update is OrderUpdate.CANCELLED:
        return (f"您的订单 {order} 已取消。", f"Your order {order} has been cancelled.")
    zh_why, en_why = (f"，原因：{reason}", f": {reason}") if reason else ("", "")
    return (
        f"很抱歉，您的订单 {order} 未能完成{zh_why}。我们会尽快与您联系。",
        f"Sorry, your order {order} could not be completed{en_why}. We will contact you shortly.",
    )


# --- Plans: which messages an event calls for, and when -----------------------------------------------


def window_delivery_notices(
    to_phone: str,
    code: str,
    stop_label: str,
    window_end: datetime,
    *,
    ref: str,
    now: datetime,
    reminder_before_end_s: float,
    tz: tzinfo = CHINA_TZ,
) -> list[Scheduled]:
    """The messages for a cart reaching its stop: the code now, a reminder before the window ends.

    The reminder is left out when its time (``window_end - reminder_before_end_s``) is not after ``now``.
    Cancel it with ``pickup_cancels(ref)`` once the parcel is picked up.
    """
    notices = [Scheduled(cart_at_stop(to_phone, code, stop_label, window_end, ref=ref, tz=tz), now)]
    reminder = reminder_notice(
        to_phone, stop_label, window_end, ref=ref, now=now, reminder_before_end_s=reminder_before_end_s, tz=tz
    )
    return notices if reminder is None else [*notices, reminder]


def reminder_notice(
    to_phone: str,
    stop_label: str,
    window_end: datetime,
    *,
    ref: str,
    now: datetime,
    reminder_before_end_s: float,
    tz: tzinfo = CHINA_TZ,
) -> Scheduled | None:
    """The reminder ``reminder_before_end_s`` before the window ends, or ``None`` if that is not after
    ``now``."""
    remind_at = window_end - timedelta(seconds=reminder_before_end_s)
    if remind_at <= now:
        return None
    return Scheduled(window_ending_reminder(to_phone, stop_label, window_end, ref=ref, tz=tz), remind_at)


def office_delivery_notices(
    to_phone: str,
    code: str,
    place_label: str,
    wait_until: datetime,
    *,
    ref: str,
    now: datetime,
    call_after_s: float,
    tz: tzinfo = CHINA_TZ,
) -> list[Scheduled]:
    """The messages for an indoor robot reaching an office: an SMS now, a call ``call_after_s`` later.

    The call is left out when it would not come before ``wait_until``. Cancel it with
    ``pickup_cancels(ref)`` once the parcel is picked up.
    """
    notices = [Scheduled(robot_at_door(to_phone, code, place_label, wait_until, ref=ref, tz=tz), now)]
    call_at = now + timedelta(seconds=call_after_s)
    if call_at < wait_until:
        call = office_delivery_call(to_phone, code, place_label, wait_until, ref=ref, tz=tz)
        notices.append(Scheduled(call, call_at))
    return notices


def pickup_cancels(ref: str) -> tuple[str, ...]:
    """The dedupe keys of the messages about ``ref`` that must not go out once it is picked up."""
    return (dedupe_key(Notice.WINDOW_ENDING, ref), dedupe_key(Notice.OFFICE_CALL, ref))


def withdrawal_cancels(ref: str) -> tuple[str, ...]:
    """The dedupe keys of every delivery message about ``ref``: to cancel what has not gone out when
    the parcel leaves the window unclaimed (returned, rolled to the next window) or gets a new code."""
    notices = (Notice.CART_AT_STOP, Notice.WINDOW_ENDING, Notice.ROBOT_AT_DOOR, Notice.OFFICE_CALL)
    return tuple(dedupe_key(notice, ref) for notice in notices)


def _hhmm(when: datetime, tz: tzinfo) -> str:
    """``when`` as ``HH:MM`` in ``tz``; refuses a naive datetime, whose zone would be a guess."""
    if when.tzinfo is None:
        raise ValueError(f"time {when.isoformat()} has no time zone")
    return when.astimezone(tz).strftime("%H:%M")


def _label(label: str) -> str:
    """A label on one line, inner whitespace collapsed; ``ValueError`` when empty."""
    cleaned = " ".join(label.split())
    if not cleaned:
        raise ValueError("a stop, place or order label must not be empty")
    return cleaned


def _code(code: str) -> str:
    """The 6-digit pickup code (``InvalidCode``, a ``ValueError``, otherwise)."""
    return parse_code(code)


def _check_dedupe_key(key: str) -> None:
    """Refuse empty keys and keys longer than the outbox column."""
    if not key.strip():
        raise ValueError("a message needs a dedupe key")
    if len(key) > MAX_DEDUPE_KEY:
        raise ValueError(f"a dedupe key must be at most {MAX_DEDUPE_KEY} characters, got {len(key)}")
