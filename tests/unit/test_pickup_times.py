from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from pickup.core.errors import InvalidInput
from pickup.core.pickup_times import OpeningHours, SlotRules

LONDON = ZoneInfo("Europe/London")
HOURS = OpeningHours.parse("mon-fri 07:30-18:00; sat 08:00-12:00,13:00-16:00; sun closed")
RULES = SlotRules(HOURS, LONDON, slot_minutes=15, lead_minutes=20, max_days_ahead=7)
# Wednesday 25 November 2026, 10:00 in London (GMT, so also 10:00 UTC).
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_opening_hours_read_like_a_shop_door() -> None:
    assert HOURS.intervals_on(date(2026, 11, 25))[0].opens == time(7, 30)
    assert [str(i) for i in HOURS.intervals_on(date(2026, 11, 28))] == [
        "08:00-12:00",
        "13:00-16:00",
    ]
    assert HOURS.intervals_on(date(2026, 11, 29)) == ()
    assert HOURS.describe().startswith("mon 07:30-18:00; tue 07:30-18:00")
    assert HOURS.describe().endswith("sun closed")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("mon-fri 9-5", "expected HH:MM-HH:MM"),
        ("funday 09:00-17:00", "days are mon"),
        ("fri-mon 09:00-17:00", "runs forwards"),
        ("mon 17:00-09:00", "closes before it opens"),
        ("mon 09:00-12:00,11:00-13:00", "overlap"),
        ("mon-sun closed", "never open"),
        ("mon", "expected 'DAYS HH:MM-HH:MM'"),
        ("mon 25:00-26:00", "not a time of day"),
    ],
)
def test_malformed_opening_hours_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        OpeningHours.parse(text)


def test_slots_start_at_opening_and_step_by_the_slot_length() -> None:
    saturday = list(RULES.slots_on(date(2026, 11, 28)))
    assert saturday[0] == datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    assert saturday[1] - saturday[0] == timedelta(minutes=15)
    assert datetime(2026, 11, 28, 12, 0, tzinfo=UTC) not in saturday  # lunch break
    assert saturday[-1] == datetime(2026, 11, 28, 15, 45, tzinfo=UTC)
    assert len(saturday) == 16 + 12


def test_slots_follow_the_local_clock_across_summer_time() -> None:
    summer_monday = list(RULES.slots_on(date(2026, 6, 1)))
    assert summer_monday[0] == datetime(2026, 6, 1, 6, 30, tzinfo=UTC)  # 07:30 BST


def test_upcoming_slots_honour_the_lead_time() -> None:
    first = next(RULES.upcoming_slots(NOW))
    # 10:20 is the earliest pickup: the 10:15 slot still has five minutes left.
    assert first == datetime(2026, 11, 25, 10, 15, tzinfo=UTC)


def test_a_pickup_time_maps_to_its_slot() -> None:
    assert RULES.slot_of(datetime(2026, 11, 25, 12, 7, tzinfo=UTC), NOW) == datetime(
        2026, 11, 25, 12, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (NOW - timedelta(minutes=1), "in the past"),
        (NOW + timedelta(minutes=10), "at least 20 minutes"),
        (NOW + timedelta(days=8), "at most 7 days ahead"),
        (datetime(2026, 11, 25, 19, 0, tzinfo=UTC), "closed then"),
        (datetime(2026, 11, 29, 10, 0, tzinfo=UTC), "closed then"),
        (datetime(2026, 11, 25, 12, 0), "UTC offset"),
    ],
)
def test_an_impossible_pickup_time_is_refused_with_the_reason(when: datetime, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        RULES.slot_of(when, NOW)
    assert raised.value.field == "pickup_time"
