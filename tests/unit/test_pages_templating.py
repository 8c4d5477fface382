"""The filters the page templates format prices, times and opening hours with."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from pickup.core.pickup_times import OpeningHours
from pickup.pages.endpoints import opening_hours_lines
from pickup.pages.templating import clock, day, environment, money

LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("cents", "currency", "shown"),
    [
        (340, "GBP", "£3.40"),
        (0, "EUR", "€0.00"),
        (123456, "USD", "$1,234.56"),
        (5, "CHF", "0.05 CHF"),
    ],
)
def test_prices_are_shown_with_the_currency_symbol(cents: int, currency: str, shown: str) -> None:
    assert money(cents, currency) == shown


def test_times_are_shown_in_the_shops_time_zone_with_a_friendly_day() -> None:
    summer_noon_utc = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert clock(summer_noon_utc, LONDON) == "13:00"
    assert day(summer_noon_utc, LONDON, today=date(2026, 7, 1)) == "Today"
    assert day(summer_noon_utc, LONDON, today=date(2026, 6, 30)) == "Tomorrow"
    assert day(summer_noon_utc, LONDON, today=date(2026, 6, 1)) == "Wed 1 Jul"


def test_days_with_the_same_hours_are_shown_together() -> None:
    hours = OpeningHours.parse("mon-fri 07:30-18:00; sat 08:00-16:00; sun closed")
    assert opening_hours_lines(hours) == [
        ("Mon\u2013Fri", "07:30\u201318:00"),
        ("Sat", "08:00\u201316:00"),
        ("Sun", "Closed"),
    ]


def test_templates_escape_what_they_are_given() -> None:
    template = environment().from_string("<p>{{ name }}</p>")
    assert template.render(name="<script>") == "<p>&lt;script&gt;</p>"
