"""The texts robopost sends: bilingual, Chinese first; codes and phones never shown where they must not be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from notify_testkit import PHONE, at

from orchestrator.notify.messages import (
    CHINA_TZ,
    MAX_DEDUPE_KEY,
    Message,
    MessageKind,
    Notice,
    OrderUpdate,
    cart_at_stop,
    dedupe_key,
    office_delivery_call,
    office_delivery_notices,
    order_update,
    pickup_cancels,
    pickup_code_resend,
    robot_at_door,
    window_delivery_notices,
    window_ending_reminder,
)

WINDOW_END = datetime(2027, 1, 15, 12, 30, tzinfo=CHINA_TZ)


def _halves(message: Message) -> tuple[str, str]:
    """The Chinese first line and the English rest of a message."""
    zh, _, en = message.text.partition("\n")
    return zh, en


def test_cart_at_stop_tells_code_stop_and_window_end_in_chinese_then_english() -> None:
    """The cart SMS names the code, the stop and the window's end (campus time), Chinese line first."""
    message = cart_at_stop("+86 138-1234-1234", "042917", "Dorm 3 / 三号公寓", WINDOW_END, ref="p17/w3")
    zh, en = _halves(message)
    assert message.kind is MessageKind.SMS
    assert message.to_phone == PHONE
    for word in ("无人车", "停靠点", "取件码", "投递时段", "042917", "三号公寓", "12:30"):
        assert word in zh
    assert zh.startswith("【robopost】")
    for word in ("cart", "stop", "pickup code", "delivery window", "042917", "12:30"):
        assert word in en
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in en.replace("三号公寓", ""))
    assert message.dedupe_key == "cart_at_stop/p17/w3"


def test_times_are_shown_in_the_campus_time_zone() -> None:
    """A UTC window end is shown in China time by default, or in the zone given."""
    end_utc = datetime(2027, 1, 15, 9, 5, tzinfo=UTC)
    assert "17:05" in cart_at_stop(PHONE, "123456", "A", end_utc, ref="r").text
    plus_one = timezone(timedelta(hours=1))
    assert "10:05" in cart_at_stop(PHONE, "123456", "A", end_utc, ref="r", tz=plus_one).text


def test_the_code_is_redacted_and_the_phone_masked_outside_the_message() -> None:
    """``redacted_text`` stars the code, ``to_masked`` hides the middle digits, ``repr`` shows neither."""
    message = cart_at_stop(PHONE, "042917", "Dorm 3", WINDOW_END, ref="p17/w3")
    assert "042917" not in message.redacted_text and "******" in message.redacted_text
    assert message.redacted_text.replace("******", "042917") == message.text
    assert message.to_masked == "138****1234"
    shown = repr(message)
    assert PHONE not in shown and "042917" not in shown and "138****1234" in shown


def test_reminder_has_no_code_and_names_the_window_end() -> None:
    """The reminder says the window ends soon; it repeats no code (a lost phone shows no code twice)."""
    message = window_ending_reminder(PHONE, "Dorm 3", WINDOW_END, ref="p17/w3")
    zh, en = _halves(message)
    assert "投递时段" in zh and "12:30" in zh and "提醒" in zh
    assert "Reminder" in en and "12:30" in en
    assert message.secrets == () and message.redacted_text == message.text
    assert message.dedupe_key == dedupe_key(Notice.WINDOW_ENDING, "p17/w3")


def test_code_resend_has_its_own_key_per_request() -> None:
    """ "Resend my code" messages differ from the first SMS and from each other by their ref."""
    first = pickup_code_resend(PHONE, "042917", "Dorm 3", WINDOW_END, ref="p17/w3/1")
    second = pickup_code_resend(PHONE, "042917", "Dorm 3", WINDOW_END, ref="p17/w3/2")
    original = cart_at_stop(PHONE, "042917", "Dorm 3", WINDOW_END, ref="p17/w3")
    assert len({first.dedupe_key, second.dedupe_key, original.dedupe_key}) == 3
    assert "042917" in first.text and "042917" not in first.redacted_text


def test_office_delivery_sms_and_call_script() -> None:
    """The office SMS names the indoor robot; the call spells the code twice and redacts every form."""
    sms = robot_at_door(PHONE, "731904", "A栋 5F 收发室", WINDOW_END, ref="p9")
    call = office_delivery_call(PHONE, "731904", "A栋 5F 收发室", WINDOW_END, ref="p9")
    assert sms.kind is MessageKind.SMS and "室内机器人" in _halves(sms)[0] and "indoor robot" in sms.text
    assert call.kind is MessageKind.CALL
    zh, en = _halves(call)
    assert zh.count("7 3 1 9 0 4") == 2 and en.count("7, 3, 1, 9, 0, 4") == 2
    assert "取件码" in zh and "pickup code" in en
    for form in ("731904", "7 3 1 9 0 4", "7, 3, 1, 9, 0, 4"):
        assert form not in call.redacted_text
    assert call.dedupe_key != sms.dedupe_key


@pytest.mark.parametrize("update", list(OrderUpdate))
def test_every_order_update_has_a_bilingual_text(update: OrderUpdate) -> None:
    """Each order change gives a Chinese line then an English line naming the order."""
    message = order_update(PHONE, "MP-2027-0042", update, eta=WINDOW_END, reason="no robot free")
    zh, en = _halves(message)
    assert "MP-2027-0042" in zh and "MP-2027-0042" in en
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)
    assert message.dedupe_key == f"order/MP-2027-0042/{update.value}"


def test_order_update_details() -> None:
    """Accepted shows the ETA; refused the reason; a new ref makes a repeated change a new message."""
    accepted = order_update(PHONE, "MP-1", "accepted", eta=WINDOW_END)
    assert "12:30" in accepted.text
    refused = order_update(PHONE, "MP-1", OrderUpdate.REFUSED, reason="outside service hours")
    assert "outside service hours" in _halves(refused)[1]
    again = order_update(PHONE, "MP-1", OrderUpdate.ROBOT_ASSIGNED, ref="MP-1/2")
    assert again.dedupe_key == "order/MP-1/2/robot_assigned"
    with pytest.raises(ValueError, match="needs an eta"):
        order_update(PHONE, "MP-1", OrderUpdate.ACCEPTED)
    with pytest.raises(ValueError, match="needs a reason"):
        order_update(PHONE, "MP-1", OrderUpdate.REFUSED)
    with pytest.raises(ValueError):
        order_update(PHONE, "MP-1", "teleported")


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: cart_at_stop("12345", "042917", "A", WINDOW_END, ref="r"), "Chinese mobile"),
        (lambda: cart_at_stop(PHONE, "42917", "A", WINDOW_END, ref="r"), "6 digits"),
        (lambda: cart_at_stop(PHONE, "04291x", "A", WINDOW_END, ref="r"), "6 digits"),
        (lambda: cart_at_stop(PHONE, "042917", "  ", WINDOW_END, ref="r"), "label"),
        (lambda: cart_at_stop(PHONE, "042917", "A", datetime(2027, 1, 15, 12), ref="r"), "no time zone"),
        (lambda: cart_at_stop(PHONE, "042917", "A", WINDOW_END, ref=" "), "ref"),
        (lambda: cart_at_stop(PHONE, "042917", "A", WINDOW_END, ref="x" * MAX_DEDUPE_KEY), "at most"),
        (lambda: Message(MessageKind.SMS, PHONE, " ", "k"), "text"),
        (lambda: Message(MessageKind.SMS, PHONE, "hi", ""), "dedupe key"),
    ],
)
def test_bad_fields_are_refused_with_a_clear_error(build: object, error: str) -> None:
    """Wrong phone, code, label, naive time or key: ``ValueError`` saying what is wrong."""
    assert callable(build)
    with pytest.raises(ValueError, match=error):
        build()


def test_labels_are_kept_on_one_line() -> None:
    """A label with line breaks cannot break the Chinese-line / English-line layout."""
    message = cart_at_stop(PHONE, "042917", "Dorm\n3\r\nEast", WINDOW_END, ref="r")
    assert message.text.count("\n") == 1 and "Dorm 3 East" in message.text


def test_window_delivery_plan_sends_code_now_and_reminder_before_the_end() -> None:
    """Cart at stop: the code SMS at once, the reminder 15 minutes before the window ends."""
    now = WINDOW_END - timedelta(hours=1)
    notices = window_delivery_notices(
        PHONE, "042917", "Dorm 3", WINDOW_END, ref="p17/w3", now=now, reminder_before_end_s=900
    )
    assert [n.message.dedupe_key for n in notices] == ["cart_at_stop/p17/w3", "window_ending/p17/w3"]
    assert [n.not_before for n in notices] == [now, WINDOW_END - timedelta(minutes=15)]


def test_window_delivery_plan_skips_a_reminder_that_would_come_too_late() -> None:
    """A cart arriving within the reminder margin sends the code only."""
    now = WINDOW_END - timedelta(minutes=10)
    notices = window_delivery_notices(
        PHONE, "042917", "Dorm 3", WINDOW_END, ref="p17/w3", now=now, reminder_before_end_s=900
    )
    assert [n.message.dedupe_key for n in notices] == ["cart_at_stop/p17/w3"]


def test_office_plan_calls_later_and_pickup_cancels_the_call_and_the_reminder() -> None:
    """Robot at an office: SMS now, call after the delay if still before the deadline; a pickup
    cancels exactly the reminder and the call, never the messages already due."""
    now = at(0)
    notices = office_delivery_notices(
        PHONE, "731904", "A栋 5F", now + timedelta(minutes=30), ref="p9", now=now, call_after_s=300
    )
    assert [n.message.kind for n in notices] == [MessageKind.SMS, MessageKind.CALL]
    assert notices[1].not_before == now + timedelta(minutes=5)
    late = office_delivery_notices(
        PHONE, "731904", "A栋 5F", now + timedelta(minutes=4), ref="p9", now=now, call_after_s=300
    )
    assert len(late) == 1
    window = window_delivery_notices(
        PHONE, "042917", "Dorm 3", now + timedelta(hours=1), ref="p9", now=now, reminder_before_end_s=900
    )
    cancels = set(pickup_cancels("p9"))
    assert cancels == {notices[1].message.dedupe_key, window[1].message.dedupe_key}
    assert notices[0].message.dedupe_key not in cancels and window[0].message.dedupe_key not in cancels
