"""Who hears what, as policy: reminder minutes per SLA rule (the most specific wins), quiet
hours from the calendar, texts short and masked."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dispatch.domain.calendar import BusinessCalendar, parse_working_hours
from dispatch.service.notices import quiet_until, short
from dispatch.service.notifier import remind_minutes

CST = timezone(timedelta(hours=8))


def test_reminder_minutes_follow_the_most_specific_rule() -> None:
    rules = {"remind_minutes": 15, "remind_minutes:city_appearance:*": 20,
             "remind_minutes:*:urgent": 5, "remind_minutes:city_appearance:urgent": 2}
    assert remind_minutes(rules, "city_appearance", "urgent") == 2
    assert remind_minutes(rules, "city_appearance", "normal") == 20
    assert remind_minutes(rules, "road", "urgent") == 5
    assert remind_minutes(rules, "road", "normal") == 15
    assert remind_minutes({}, "road", "normal") == 10


def test_quiet_hours_hold_working_time_matters_until_work_begins() -> None:
    calendar = BusinessCalendar(working_hours=parse_working_hours(["09:00-12:00", "13:30-17:30"]))
    night = datetime(2026, 11, 23, 22, 0, tzinfo=CST)  # a Monday night
    assert quiet_until(night, "working", calendar) == datetime(2026, 11, 24, 9, 0, tzinfo=CST)
    assert quiet_until(night, "calendar", calendar) is None  # a calendar-time matter wakes people
    assert quiet_until(datetime(2026, 11, 24, 10, 0, tzinfo=CST), "working", calendar) is None


def test_a_notice_quotes_sixty_characters_masked() -> None:
    text = short("联系13812345678 " + "很" * 100)
    assert "138****5678" in text and "13812345678" not in text and len(text) == 61 and text.endswith("…")
