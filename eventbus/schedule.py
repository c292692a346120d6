"""Schedule expressions: ``rate(...)``, six-field ``cron(...)`` and one-shot ``at(...)``, all in UTC.

``Schedule.parse`` checks an expression the way PutRule does (``ConfigError``, a ``ValueError``,
whose first sentence is AWS's "Parameter ScheduleExpression is not valid." and whose second says
what is wrong); ``next_after`` answers the first fire time strictly after a moment. Cron search
skips field by field (year, month, day, hour, minute), so a schedule that fires once a decade costs
no more than one that fires every minute.
"""

from __future__ import annotations

import calendar
import re
from abc import ABC, abstractmethod
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from eventbus.errors import ConfigError

__all__ = [
    "MAX_YEAR",
    "MIN_YEAR",
    "AtSchedule",
    "CronSchedule",
    "RateSchedule",
    "Schedule",
]

MIN_YEAR = 1970
MAX_YEAR = 2199
_INVALID = "Parameter ScheduleExpression is not valid."

# [0-9], not \d: \d also takes other scripts' digits. Matched with fullmatch, so no trailing newline.
_RATE_RE = re.compile(r"rate\(([0-9]+) ([a-z]+)\)")
_AT_RE = re.compile(r"at\(([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\)")
_CRON_RE = re.compile(r"cron\((.*)\)", re.DOTALL)
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


def _invalid(reason: str) -> ConfigError:
    return ConfigError(f"{_INVALID} {reason}")


def _utc(moment: datetime) -> datetime:
    # EventBridge schedules know no zone but UTC; a naive datetime is taken to be UTC already.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class Schedule(ABC):
    """A parsed schedule expression. ``Schedule.parse`` returns one of the concrete kinds."""

    expression: str

    @staticmethod
    def parse(expression: str, *, start: datetime | None = None) -> Schedule:
        """Parse ``rate(...)``, ``cron(...)`` or ``at(...)``.

        ``start`` anchors a rate schedule (it fires at ``start + k * period``); it defaults to now.
        Raises ``ConfigError`` (a ``ValueError``) for an expression AWS would refuse.
        """
        if not isinstance(expression, str):
            raise _invalid(f"A schedule expression must be a string, not {type(expression).__name__}.")
        if expression.startswith("rate("):
            return RateSchedule.from_expression(expression, start=start)
        if expression.startswith("cron("):
            return CronSchedule.from_expression(expression)
        if expression.startswith("at("):
            return AtSchedule.from_expression(expression)
        raise _invalid("It must be rate(value unit), cron(fields) or at(yyyy-mm-ddThh:mm:ss).")

    @abstractmethod
    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment`` (aware UTC), or ``None`` if there is none."""

    def __str__(self) -> str:
        return self.expression


@dataclass(frozen=True, slots=True)
class RateSchedule(Schedule):
    """``rate(value unit)``: every ``period``, counted from ``start``."""

    expression: str
    period: timedelta
    start: datetime

    @classmethod
    def from_expression(cls, expression: str, *, start: datetime | None = None) -> RateSchedule:
        match = _RATE_RE.fullmatch(expression)
        if match is None:
            raise _invalid("A rate expression reads rate(value unit), e.g. rate(5 minutes).")
        value, unit = _whole(match[1]) or 0, match[2]
        singular = unit.removesuffix("s")
        if singular not in _UNITS:
            raise _invalid(
                f"The rate unit {_shown(unit)} is not one of minute, minutes, hour, hours, day, days."
            )
        if value < 1:
            raise _invalid("The rate value must be a positive whole number.")
        if value == 1 and unit != singular:
            raise _invalid(f"A rate of 1 takes the singular unit: rate(1 {singular}).")
        if value > 1 and unit == singular:
            raise _invalid(
                f"A rate above 1 takes the plural unit: rate({_shown(match[1])[1:-1]} {singular}s)."
            )
        try:
            period = timedelta(seconds=value * _UNITS[singular])
        except OverflowError:
            raise _invalid(f"The rate value {_shown(match[1])[1:-1]} is too large.") from None
        anchor = _utc(start) if start is not None else datetime.now(UTC)
        return cls(expression, period, anchor)

    def next_after(self, moment: datetime) -> datetime | None:
        moment = _utc(moment)
        if moment < self.start:
            return self.start
        periods = (moment - self.start) // self.period + 1
        try:
            return self.start + periods * self.period
        except OverflowError:
            # past the year 9999 no datetime can say when: as good as never
            return None


@dataclass(frozen=True, slots=True)
class AtSchedule(Schedule):
    """``at(yyyy-mm-ddThh:mm:ss)``: once, at ``when`` (UTC)."""

    expression: str
    when: datetime

    @classmethod
    def from_expression(cls, expression: str) -> AtSchedule:
        match = _AT_RE.fullmatch(expression)
        if match is None:
            raise _invalid("A one-time expression reads at(yyyy-mm-ddThh:mm:ss).")
        try:
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError as exc:
            raise _invalid(f"{expression[3:-1]} is not a date and time ({exc}).") from None
        return cls(expression, when)

    def next_after(self, moment: datetime) -> datetime | None:
        return self.when if self.when > _utc(moment) else None


@dataclass(frozen=True, slots=True)
class _DayRule:
    """Which days of a month fire. Exactly one of the day-of-month and day-of-week fields is ``?``;
    the other becomes one of these kinds."""

    kind: str  # "dom" (values), "last", "last-weekday", "nearest-weekday", "dow" (values),
    # "last-dow" (last given weekday), "nth-dow" (nth given weekday)
    values: frozenset[int] = frozenset()
    day: int = 0  # nearest-weekday: the day; last-dow / nth-dow: the weekday (1 = Sunday)
    nth: int = 0

    def days(self, year: int, month: int) -> list[int]:
        first_weekday, length = calendar.monthrange(year, month)  # Monday = 0
        # AWS numbers weekdays 1 (Sunday) to 7 (Saturday).
        first_dow = (first_weekday + 1) % 7 + 1

        def dow(day: int) -> int:
            return (first_dow - 1 + day - 1) % 7 + 1

        if self.kind == "dom":
            return sorted(d for d in self.values if d <= length)
        if self.kind == "last":
            return [length]
        if self.kind == "last-weekday":
            last = length
            while dow(last) in (1, 7):
                last -= 1
            return [last]
        if self.kind == "nearest-weekday":
            # Quartz's W: the weekday nearest the given day, never leaving the month.
            target = self.day
            if target > length:
                return []
            weekday = dow(target)
            if weekday == 7:  # Saturday: the Friday before, or the Monday after the 1st
                return [target - 1] if target > 1 else [target + 2]
            if weekday == 1:  # Sunday: the Monday after, or the Friday before the last day
                return [target + 1] if target < length else [target - 2]
            return [target]
        if self.kind == "dow":
            return [d for d in range(1, length + 1) if dow(d) in self.values]
        if self.kind == "last-dow":
            last = length
            while dow(last) != self.day:
                last -= 1
            return [last]
        # nth-dow
        first = 1 + (self.day - first_dow) % 7
        nth = first + 7 * (self.nth - 1)
        return [nth] if nth <= length else []


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] = field(default_factory=dict)
    wraps: bool = True


_MINUTES = _Field("minutes", 0, 59)
_HOURS = _Field("hours", 0, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS)
_DAY_OF_WEEK = _Field("day-of-week", 1, 7, _WEEKDAYS)
_YEAR = _Field("year", MIN_YEAR, MAX_YEAR, wraps=False)


def _shown(text: str) -> str:
    # Echo the offending text, but never a page of it.
    return repr(text if len(text) <= 30 else text[:27] + "...")


def _whole(text: str) -> int | None:
    """A plain ASCII whole number, or None. Anything longer than 9 digits is out of every range,
    and Python refuses to int() very long digit strings anyway."""
    if not text.isascii() or not text.isdigit():
        return None
    return int(text) if len(text) <= 9 else 10**9


def _number(spec: _Field, text: str) -> int:
    upper = text.upper()
    if upper in spec.names:
        return spec.names[upper]
    value = _whole(text)
    if value is None:
        raise _invalid(f"The {spec.name} field has {_shown(text)}, which is not a valid value.")
    if not spec.low <= value <= spec.high:
        raise _invalid(
            f"The {spec.name} field value {_shown(text)[1:-1]} is out of range {spec.low}-{spec.high}."
        )
    return value


def _values(spec: _Field, text: str) -> frozenset[int]:
    """The values of a field made of ``*``, numbers, names, ``a-b`` ranges, ``/step`` and commas."""
    result: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _invalid(f"The {spec.name} field {_shown(text)} has an empty list item.")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            whole = _whole(step_text)
            if whole is None or whole < 1:
                raise _invalid(
                    f"The {spec.name} field {_shown(item)} needs a positive whole-number step after '/'."
                )
            step = whole
            if step > spec.high:
                raise _invalid(
                    f"The {spec.name} field step {_shown(step_text)[1:-1]} is larger than {spec.high}."
                )
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _number(spec, first), _number(spec, last)
        else:
            low = _number(spec, base)
            # "a/n" runs from a to the end of the field; a bare "a" is just a.
            high = spec.high if slash else low
        if low <= high:
            span = list(range(low, high + 1))
        elif spec.wraps:
            # Like Quartz, a range may wrap around the end of its field: FRI-MON, 22-2.
            span = list(range(low, spec.high + 1)) + list(range(spec.low, high + 1))
        else:
            raise _invalid(f"The {spec.name} range {_shown(base)[1:-1]} runs backwards.")
        result.update(span[::step])
    return frozenset(result)


def _day_of_month_rule(text: str) -> _DayRule:
    upper = text.upper()
    if upper == "L":
        return _DayRule("last")
    if upper == "LW":
        return _DayRule("last-weekday")
    if upper.endswith("W"):
        day = _number(_DAY_OF_MONTH, text[:-1])
        return _DayRule("nearest-weekday", day=day)
    if "L" in upper or "W" in upper:
        raise _invalid("In the day-of-month field, L, LW and nW (e.g. 15W) must stand alone.")
    return _DayRule("dom", values=_values(_DAY_OF_MONTH, text))


def _day_of_week_rule(text: str) -> _DayRule:
    upper = text.upper()
    if upper == "L":
        # L alone is the last day of the week: Saturday.
        return _DayRule("dow", values=frozenset({7}))
    if "#" in upper:
        weekday_text, _, nth_text = text.partition("#")
        if "," in text or "-" in text or "/" in text:
            raise _invalid("In the day-of-week field, n#k (e.g. 2#1) must stand alone.")
        weekday = _number(_DAY_OF_WEEK, weekday_text)
        nth = _whole(nth_text)
        if nth is None or not 1 <= nth <= 5:
            raise _invalid(f"The day-of-week field {_shown(text)} needs an occurrence from 1 to 5 after '#'.")
        return _DayRule("nth-dow", day=weekday, nth=nth)
    if upper.endswith("L"):
        if "," in text or "-" in text or "/" in text:
            raise _invalid("In the day-of-week field, nL (e.g. 6L) must stand alone.")
        return _DayRule("last-dow", day=_number(_DAY_OF_WEEK, text[:-1]))
    if "L" in upper:  # no weekday name holds an L, so this one is misplaced
        raise _invalid(
            "In the day-of-week field, L stands alone or right after one weekday (e.g. 6L), in no list or range."
        )
    return _DayRule("dow", values=_values(_DAY_OF_WEEK, text))


@dataclass(frozen=True, slots=True)
class CronSchedule(Schedule):
    """``cron(Minutes Hours Day-of-month Month Day-of-week Year)``, fired in UTC."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_rule: _DayRule
    months: tuple[int, ...]
    years: tuple[int, ...]

    @classmethod
    def from_expression(cls, expression: str) -> CronSchedule:
        match = _CRON_RE.fullmatch(expression)
        if match is None:
            raise _invalid("A cron expression reads cron(Minutes Hours Day-of-month Month Day-of-week Year).")
        fields = match[1].split()
        if len(fields) != 6:
            raise _invalid(
                f"A cron expression has six fields (Minutes Hours Day-of-month Month Day-of-week Year), "
                f"not {len(fields)}."
            )
        minute_text, hour_text, dom_text, month_text, dow_text, year_text = fields
        for name, text in (
            ("minutes", minute_text),
            ("hours", hour_text),
            ("month", month_text),
            ("year", year_text),
        ):
            if "?" in text or re.search(r"[LW#]", text.upper().replace("JUL", "")):
                raise _invalid(f"The {name} field takes only values, names and , - * / (not ? L W #).")
        if dom_text == "?" and dow_text == "?":
            raise _invalid("Only one of day-of-month and day-of-week may be ?.")
        if dom_text != "?" and dow_text != "?":
            raise _invalid("One of day-of-month and day-of-week must be ?; the other gives the days.")
        if dom_text != "?" and ("#" in dom_text or "?" in dom_text):
            raise _invalid("The day-of-month field is ? alone or values with , - * / L W.")
        if dow_text != "?" and ("W" in dow_text.upper().replace("WED", "") or "?" in dow_text):
            raise _invalid("The day-of-week field is ? alone or values with , - * / L #.")
        day_rule = _day_of_week_rule(dow_text) if dom_text == "?" else _day_of_month_rule(dom_text)
        return cls(
            expression,
            minutes=tuple(sorted(_values(_MINUTES, minute_text))),
            hours=tuple(sorted(_values(_HOURS, hour_text))),
            day_rule=day_rule,
            months=tuple(sorted(_values(_MONTH, month_text))),
            years=tuple(sorted(_values(_YEAR, year_text))),
        )

    def next_after(self, moment: datetime) -> datetime | None:
        # Fire times are whole minutes, so the first candidate is the next whole minute.
        start = _utc(moment).replace(second=0, microsecond=0) + timedelta(minutes=1)
        if start.year > MAX_YEAR:
            return None
        if start.year < MIN_YEAR:
            start = datetime(MIN_YEAR, 1, 1, tzinfo=UTC)
        # Each level either sits on the candidate's own value (then the levels below must not go
        # before the candidate's) or has moved past it (then the levels below start from their first).
        for year in self.years[bisect_left(self.years, start.year) :]:
            same_year = year == start.year
            for month in self.months:
                if same_year and month < start.month:
                    continue
                same_month = same_year and month == start.month
                for day in self.day_rule.days(year, month):
                    if same_month and day < start.day:
                        continue
                    same_day = same_month and day == start.day
                    for hour in self.hours:
                        if same_day and hour < start.hour:
                            continue
                        same_hour = same_day and hour == start.hour
                        for minute in self.minutes:
                            if same_hour and minute < start.minute:
                                continue
                            return datetime(year, month, day, hour, minute, tzinfo=UTC)
        return None
