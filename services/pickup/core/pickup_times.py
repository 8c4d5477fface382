"""Opening hours and pickup slots: pure calendar arithmetic, no I/O.

Opening hours are written the way a shop door says them::

    mon-fri 07:30-18:00; sat 08:00-16:00; sun closed

Several intervals on one day are separated by commas (``mon 07:00-11:00,12:00-17:00``).
Pickup slots are ``slot_minutes`` long and start at each interval's opening time; a pickup
time belongs to the slot it falls in, and must be at least the lead time ahead.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from pickup.core.errors import InvalidInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_INTERVAL = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class Interval:
    opens: time
    closes: time

    def __str__(self) -> str:
        return f"{self.opens:%H:%M}-{self.closes:%H:%M}"


@dataclass(frozen=True)
class OpeningHours:
    """Intervals per weekday (0 = Monday), in the shop's local time."""

    days: tuple[tuple[Interval, ...], ...]

    @classmethod
    def parse(cls, text: str) -> OpeningHours:
        days: list[list[Interval]] = [[] for _ in DAYS]
        for clause in filter(None, (part.strip() for part in text.split(";"))):
            try:
                day_part, hours_part = clause.split(None, 1)
            except ValueError:
                raise ValueError(
                    f"{clause!r}: expected 'DAYS HH:MM-HH:MM' or 'DAYS closed'"
                ) from None
            indexes = _day_range(day_part.lower())
            if hours_part.strip().lower() == "closed":
                for index in indexes:
                    days[index] = []
                continue
            intervals = [_interval(piece.strip()) for piece in hours_part.split(",")]
            for index in indexes:
                days[index] = sorted(intervals, key=lambda interval: interval.opens)
        for intervals in days:
            for earlier, later in itertools.pairwise(intervals):
                if later.opens < earlier.closes:
                    raise ValueError(f"intervals {earlier} and {later} overlap")
        if not any(days):
            raise ValueError("the shop is never open")
        return cls(tuple(tuple(intervals) for intervals in days))

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        return self.days[day.weekday()]

    def describe(self) -> str:
        parts = []
        for name, intervals in zip(DAYS, self.days, strict=True):
            hours = ",".join(str(interval) for interval in intervals) or "closed"
            parts.append(f"{name} {hours}")
        return "; ".join(parts)


def _day_range(text: str) -> list[int]:
    if "-" in text:
        first, last = text.split("-", 1)
        if first not in DAYS or last not in DAYS:
            raise ValueError(f"{text!r}: days are mon, tue, wed, thu, fri, sat, sun")
        start, end = DAYS.index(first), DAYS.index(last)
        if end < start:
            raise ValueError(f"{text!r}: a day range runs forwards (e.g. mon-fri)")
        return list(range(start, end + 1))
    indexes = []
    for name in text.split(","):
        if name not in DAYS:
            raise ValueError(f"{name!r}: days are mon, tue, wed, thu, fri, sat, sun")
        indexes.append(DAYS.index(name))
    return indexes


def _interval(text: str) -> Interval:
    match = _INTERVAL.match(text)
    if not match:
        raise ValueError(f"{text!r}: expected HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(group) for group in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"{text!r}: not a time of day")
    opens = time(h1, m1)
    closes = time(23, 59, 59) if h2 == 24 else time(h2, m2)
    if closes <= opens:
        raise ValueError(f"{text!r}: closes before it opens")
    return Interval(opens, closes)


@dataclass(frozen=True)
class SlotRules:
    hours: OpeningHours
    zone: tzinfo
    slot_minutes: int
    lead_minutes: int
    max_days_ahead: int

    @property
    def slot_length(self) -> timedelta:
        return timedelta(minutes=self.slot_minutes)

    def slots_on(self, day: date) -> Iterator[datetime]:
        """Every slot start on ``day`` (aware, in UTC), in order."""
        for interval in self.hours.intervals_on(day):
            start = datetime.combine(day, interval.opens, self.zone)
            end = datetime.combine(day, interval.closes, self.zone)
            while start < end:
                yield start.astimezone(UTC)
                start += self.slot_length

    def earliest(self, now: datetime) -> datetime:
        return now + timedelta(minutes=self.lead_minutes)

    def upcoming_slots(self, now: datetime, *, days: int | None = None) -> Iterator[datetime]:
        """Slot starts from the earliest allowed pickup time, over the next ``days`` days.

        A slot already under way still counts if the lead time leaves part of it."""
        earliest = self.earliest(now)
        local_today = now.astimezone(self.zone).date()
        for offset in range((days or self.max_days_ahead) + 1):
            for start in self.slots_on(local_today + timedelta(days=offset)):
                if start + self.slot_length > earliest:
                    yield start

    def slot_of(self, when: datetime, now: datetime) -> datetime:
        """The slot ``when`` falls in; raises InvalidInput saying why it can't be picked."""
        field = "pickup_time"
        if when.tzinfo is None:
            raise InvalidInput("Give the pickup time with a UTC offset, e.g. 12:30+00:00.", field)
        if when < now:
            raise InvalidInput("The pickup time is in the past.", field)
        if when < self.earliest(now):
            raise InvalidInput(
                f"Orders need at least {self.lead_minutes} minutes: choose "
                f"{self.earliest(now).astimezone(self.zone):%H:%M} or later.",
                field,
            )
        if when > now + timedelta(days=self.max_days_ahead):
            raise InvalidInput(
                f"Orders can be placed at most {self.max_days_ahead} days ahead.", field
            )
        local = when.astimezone(self.zone)
        for interval in self.hours.intervals_on(local.date()):
            opens = datetime.combine(local.date(), interval.opens, self.zone)
            closes = datetime.combine(local.date(), interval.closes, self.zone)
            if opens <= local < closes:
                index = (local - opens) // self.slot_length
                return (opens + index * self.slot_length).astimezone(UTC)
        raise InvalidInput(f"We are closed then. Opening hours: {self.hours.describe()}.", field)
