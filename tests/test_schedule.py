"""Schedule expressions: parsing as PutRule does, and fire times checked against hand-worked dates
and against a brute-force oracle that walks the calendar minute by minute."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventbus.errors import ConfigError
from eventbus.schedule import AtSchedule, CronSchedule, RateSchedule, Schedule


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def fire_times(expression: str, after: datetime, count: int, **kwargs: Any) -> list[datetime | None]:
    schedule = Schedule.parse(expression, **kwargs)
    out: list[datetime | None] = []
    moment: datetime | None = after
    for _ in range(count):
        assert moment is not None
        moment = schedule.next_after(moment)
        out.append(moment)
        if moment is None:
            break
    return out


# --- cron: hand-worked examples -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # noon every day
        (
            "cron(0 12 * * ? *)",
            utc(2025, 1, 1),
            [utc(2025, 1, 1, 12), utc(2025, 1, 2, 12), utc(2025, 1, 3, 12)],
        ),
        # 10:15 on the last Friday of each month, 2025 to 2030
        (
            "cron(15 10 ? * 6L 2025-2030)",
            utc(2025, 1, 1),
            [utc(2025, 1, 31, 10, 15), utc(2025, 2, 28, 10, 15), utc(2025, 3, 28, 10, 15)],
        ),
        # 08:00 on the weekday nearest the 1st: Feb 1 2025 is a Saturday, so Monday the 3rd
        # (never back into January); Mar 1 2025 is a Saturday too.
        (
            "cron(0 8 1W * ? *)",
            utc(2025, 1, 1, 9),
            [utc(2025, 2, 3, 8), utc(2025, 3, 3, 8), utc(2025, 4, 1, 8)],
        ),
        # the first Monday of each month
        ("cron(0 0 ? * 2#1 *)", utc(2025, 1, 1), [utc(2025, 1, 6), utc(2025, 2, 3), utc(2025, 3, 3)]),
        # every quarter of an hour
        (
            "cron(0/15 * * * ? *)",
            utc(2025, 1, 1, 23, 50),
            [utc(2025, 1, 2, 0, 0), utc(2025, 1, 2, 0, 15), utc(2025, 1, 2, 0, 30)],
        ),
        # the last day of February, leap years included
        ("cron(0 0 L 2 ? *)", utc(2027, 3, 1), [utc(2028, 2, 29), utc(2029, 2, 28), utc(2030, 2, 28)]),
        # February 29th only exists in leap years (2100 is not one)
        ("cron(0 0 29 2 ? *)", utc(2096, 3, 1), [utc(2104, 2, 29), utc(2108, 2, 29)]),
        # the last weekday of the month: Aug 31 2025 is a Sunday
        ("cron(30 18 LW * ? *)", utc(2025, 8, 1), [utc(2025, 8, 29, 18, 30), utc(2025, 9, 30, 18, 30)]),
        # weekdays by name, at 09:00 and 17:30 ... written as two hours and two minutes fire four times
        (
            "cron(0,30 9,17 ? * MON-FRI *)",
            utc(2025, 1, 3, 17),  # a Friday
            [utc(2025, 1, 3, 17, 30), utc(2025, 1, 6, 9), utc(2025, 1, 6, 9, 30), utc(2025, 1, 6, 17)],
        ),
        # months by name; day-of-week L alone is Saturday
        ("cron(0 6 ? JAN,JUL L *)", utc(2025, 1, 30), [utc(2025, 7, 5, 6), utc(2025, 7, 12, 6)]),
        # a wrapping range: 22:00 to 02:00
        (
            "cron(0 22-2 * * ? *)",
            utc(2025, 1, 1, 3),
            [utc(2025, 1, 1, 22), utc(2025, 1, 1, 23), utc(2025, 1, 2, 0)],
        ),
        # a wrapping weekday range: Friday to Monday
        (
            "cron(0 0 ? * FRI-MON *)",
            utc(2025, 1, 1),
            [utc(2025, 1, 3), utc(2025, 1, 4), utc(2025, 1, 5), utc(2025, 1, 6)],
        ),
        # the 31st is skipped in months that have no 31st
        ("cron(0 0 31 * ? *)", utc(2025, 1, 31, 1), [utc(2025, 3, 31), utc(2025, 5, 31)]),
        # steps within a range; a fifth Wednesday only in some months
        (
            "cron(10-30/10 1 ? * 4#5 2025)",
            utc(2025, 1, 1),
            [utc(2025, 1, 29, 1, 10), utc(2025, 1, 29, 1, 20)],
        ),
        # the 15W landing on a Sunday moves to Monday: Jun 15 2025 is a Sunday
        ("cron(0 0 15W 6 ? 2025)", utc(2025, 1, 1), [utc(2025, 6, 16), None]),
        # 14W on a Saturday moves back to Friday: Jun 14 2025
        ("cron(0 0 14W 6 ? 2025)", utc(2025, 1, 1), [utc(2025, 6, 13), None]),
        # 31W on a Sunday that ends the month goes back to Friday: Aug 31 2025
        ("cron(0 0 31W 8 ? 2025)", utc(2025, 1, 1), [utc(2025, 8, 29), None]),
        # a single year
        ("cron(0 0 1 1 ? 2030)", utc(2025, 6, 1), [utc(2030, 1, 1), None]),
        # lower-case names
        ("cron(0 0 ? jan sun 2025)", utc(2025, 1, 1), [utc(2025, 1, 5), utc(2025, 1, 12)]),
    ],
)
def test_cron_fire_times(expression: str, after: datetime, expected: list[datetime | None]) -> None:
    assert fire_times(expression, after, len(expected)) == expected


def test_cron_parses_to_its_kind() -> None:
    schedule = Schedule.parse("cron(0 12 * * ? *)")
    assert isinstance(schedule, CronSchedule)
    assert str(schedule) == "cron(0 12 * * ? *)"


def test_cron_next_after_is_strictly_after() -> None:
    schedule = Schedule.parse("cron(0 12 * * ? *)")
    assert schedule.next_after(utc(2025, 1, 1, 12)) == utc(2025, 1, 2, 12)
    assert schedule.next_after(utc(2025, 1, 1, 11, 59, 59, 999999)) == utc(2025, 1, 1, 12)
    # seconds past a fire time still wait for the next one
    assert schedule.next_after(utc(2025, 1, 1, 12, 0, 1)) == utc(2025, 1, 2, 12)


def test_cron_ends_after_2199() -> None:
    every_minute = Schedule.parse("cron(* * * * ? *)")
    assert every_minute.next_after(utc(2199, 12, 31, 23, 58)) == utc(2199, 12, 31, 23, 59)
    assert every_minute.next_after(utc(2199, 12, 31, 23, 59)) is None
    assert every_minute.next_after(utc(2500, 1, 1)) is None
    assert Schedule.parse("cron(0 0 1 1 ? 2025)").next_after(utc(2025, 1, 1)) is None


def test_cron_before_1970_starts_in_1970() -> None:
    assert Schedule.parse("cron(0 0 1 1 ? *)").next_after(utc(1900, 5, 5)) == utc(1970, 1, 1)


def test_cron_that_never_fires_answers_none_quickly() -> None:
    # February 30th never comes; the search gives up at 2199 rather than scanning forever.
    assert Schedule.parse("cron(0 0 30 2 ? *)").next_after(utc(2025, 1, 1)) is None
    assert Schedule.parse("cron(0 0 ? 2 2#5 2025-2027)").next_after(utc(2025, 1, 1)) is None


def test_cron_reads_naive_and_zoned_times_as_utc() -> None:
    schedule = Schedule.parse("cron(0 12 * * ? *)")
    assert schedule.next_after(datetime(2025, 1, 1, 11)) == utc(2025, 1, 1, 12)
    plus_two = timezone(timedelta(hours=2))
    # 13:30 at +02:00 is 11:30 UTC
    assert schedule.next_after(datetime(2025, 1, 1, 13, 30, tzinfo=plus_two)) == utc(2025, 1, 1, 12)


# --- rate and at ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "period"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(12 hours)", timedelta(hours=12)),
        ("rate(1 day)", timedelta(days=1)),
        ("rate(7 days)", timedelta(days=7)),
    ],
)
def test_rate_periods(expression: str, period: timedelta) -> None:
    start = utc(2025, 3, 1, 10, 7, 13)
    schedule = Schedule.parse(expression, start=start)
    assert isinstance(schedule, RateSchedule)
    assert schedule.period == period
    assert fire_times(expression, start, 3, start=start) == [
        start + period,
        start + 2 * period,
        start + 3 * period,
    ]


def test_rate_is_anchored_at_start() -> None:
    start = utc(2025, 1, 1, 0, 0, 30)
    schedule = Schedule.parse("rate(10 minutes)", start=start)
    assert schedule.next_after(utc(2024, 12, 1)) == start
    assert schedule.next_after(start) == utc(2025, 1, 1, 0, 10, 30)
    assert schedule.next_after(utc(2025, 1, 1, 0, 10, 29)) == utc(2025, 1, 1, 0, 10, 30)
    assert schedule.next_after(utc(2025, 1, 1, 0, 10, 30)) == utc(2025, 1, 1, 0, 20, 30)
    assert schedule.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 0, 30)


def test_rate_defaults_its_start_to_now() -> None:
    before = datetime.now(UTC)
    schedule = Schedule.parse("rate(1 hour)")
    after = datetime.now(UTC)
    assert isinstance(schedule, RateSchedule)
    assert before <= schedule.start <= after
    nxt = schedule.next_after(schedule.start)
    assert nxt == schedule.start + timedelta(hours=1)


def test_rate_too_far_apart_to_represent() -> None:
    with pytest.raises(ConfigError, match="is too large"):
        Schedule.parse("rate(" + "9" * 40 + " days)")
    # a rate whose next fire time lies past the year 9999 never fires, as far as datetime can tell
    schedule = Schedule.parse("rate(99999999 days)", start=utc(2025, 1, 1))
    assert schedule.next_after(utc(2025, 1, 1)) is None


def test_at_fires_once() -> None:
    schedule = Schedule.parse("at(2025-06-01T10:00:00)")
    assert isinstance(schedule, AtSchedule)
    assert schedule.next_after(utc(2025, 1, 1)) == utc(2025, 6, 1, 10)
    assert schedule.next_after(utc(2025, 6, 1, 9, 59, 59)) == utc(2025, 6, 1, 10)
    assert schedule.next_after(utc(2025, 6, 1, 10)) is None
    assert schedule.next_after(utc(2030, 1, 1)) is None


# --- invalid expressions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("", "must be rate(value unit), cron(fields) or at("),
        ("every 5 minutes", "must be rate(value unit)"),
        ("rate(1 minutes)", "singular unit"),
        ("rate(5 minute)", "plural unit"),
        ("rate(0 minutes)", "positive whole number"),
        ("rate(5 seconds)", "not one of minute"),
        ("rate(5 weeks)", "not one of minute"),
        ("rate(-5 minutes)", "reads rate(value unit)"),
        ("rate(5  minutes)", "reads rate(value unit)"),
        ("rate(1.5 hours)", "reads rate(value unit)"),
        ("cron(0 12 * * ?)", "six fields"),
        ("cron(0 0 12 * * ? *)", "six fields"),
        ("cron(0 12 * * * *)", "must be ?"),
        ("cron(0 12 1 * MON *)", "must be ?"),
        ("cron(0 12 ? * ? *)", "Only one of"),
        ("cron(60 * * * ? *)", "minutes field value 60 is out of range 0-59"),
        ("cron(0 24 * * ? *)", "hours field value 24 is out of range 0-23"),
        ("cron(0 0 32 * ? *)", "day-of-month field value 32 is out of range 1-31"),
        ("cron(0 0 0 * ? *)", "day-of-month field value 0 is out of range 1-31"),
        ("cron(0 0 * 13 ? *)", "month field value 13 is out of range 1-12"),
        ("cron(0 0 ? * 0 *)", "day-of-week field value 0 is out of range 1-7"),
        ("cron(0 0 ? * 8 *)", "day-of-week field value 8 is out of range 1-7"),
        ("cron(0 0 * * ? 1969)", "year field value 1969 is out of range 1970-2199"),
        ("cron(0 0 * * ? 2200)", "year field value 2200 is out of range 1970-2199"),
        ("cron(0 0 * * ? 2030-2025)", "runs backwards"),
        ("cron(0 0 * FOO ? *)", "not a valid value"),
        ("cron(0 0 ? * FUN *)", "not a valid value"),
        ("cron(x 0 * * ? *)", "not a valid value"),
        ("cron(0/0 0 * * ? *)", "positive whole-number step"),
        ("cron(0/x 0 * * ? *)", "positive whole-number step"),
        ("cron(0/99 0 * * ? *)", "larger than 59"),
        ("cron(1,,2 0 * * ? *)", "empty list item"),
        ("cron(L 0 * * ? *)", "not ? L W #"),
        ("cron(0 ? * * ? *)", "not ? L W #"),
        ("cron(0 0 * 1W ? *)", "not ? L W #"),
        ("cron(0 0 1#2 * ? *)", "day-of-month field is ? alone"),
        ("cron(0 0 ? * 2W *)", "day-of-week field is ? alone"),
        ("cron(0 0 1W,15 * ? *)", "must stand alone"),
        ("cron(0 0 L,15 * ? *)", "must stand alone"),
        ("cron(0 0 ? * 2#1,3#1 *)", "must stand alone"),
        ("cron(0 0 ? * 2#6 *)", "occurrence from 1 to 5"),
        ("cron(0 0 ? * 2#0 *)", "occurrence from 1 to 5"),
        ("cron(0 0 ? * 6L,2 *)", "L stands alone"),
        ("cron(0 0 ? * L2 *)", "L stands alone"),
        ("cron(0 0 32W * ? *)", "out of range 1-31"),
        ("cron 0 0 * * ? *", "must be rate(value unit)"),
        ("rate(5 minutes)\n", "reads rate(value unit)"),
        ("rate(\u0665 minutes)", "reads rate(value unit)"),  # an Arabic-Indic five is not a digit here
        ("rate(5 " + "x" * 100 + ")", "'xxxxxxxxxxxxxxxxxxxxxxxxxxx...' is not one of"),
        ("cron(0 0 * * ? *)\n", "A cron expression reads"),
        ("cron(" + "9" * 5000 + " * * * ? *)", "value 999999999999999999999999999... is out of range 0-59"),
        ("cron(0/" + "9" * 5000 + " * * * ? *)", "step 999999999999999999999999999... is larger than 59"),
        ("cron(0 0 ? * 2#" + "9" * 5000 + " *)", "occurrence from 1 to 5"),
        ("cron(\u0661 0 * * ? *)", "not a valid value"),
        ("at(2025-02-30T00:00:00)", "is not a date and time"),
        ("at(2025-06-01 10:00:00)", "at(yyyy-mm-ddThh:mm:ss)"),
        ("at(2025-06-01T10:00)", "at(yyyy-mm-ddThh:mm:ss)"),
    ],
)
def test_invalid_expressions(expression: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Schedule.parse(expression)
    message = str(caught.value)
    assert message.startswith("Parameter ScheduleExpression is not valid. ")
    assert reason in message
    # the second sentence says what is wrong, and ends like a sentence
    assert message.endswith(".")
    assert isinstance(caught.value, ValueError)


def test_non_string_expression_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match=r"^Parameter ScheduleExpression is not valid\. .*string"):
        Schedule.parse(5)  # type: ignore[arg-type]


# --- property: next_after agrees with a brute-force oracle ------------------------------------------------
#
# The strategy builds each cron field from parts it also understands itself, so the oracle below
# judges a minute without using the module's parser: it is a second, plain reading of the rules.

WEEKDAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
MONTH_NAMES = [m.upper() for m in calendar.month_abbr[1:]]


@dataclass(frozen=True)
class FieldCase:
    text: str
    values: frozenset[int]


def _field(low: int, high: int, names: list[str] | None = None) -> st.SearchStrategy[FieldCase]:
    def name_or_number(value: int, use_name: bool) -> str:
        return names[value - low] if names and use_name else str(value)

    every = st.just(FieldCase("*", frozenset(range(low, high + 1))))
    single = st.builds(
        lambda v, n: FieldCase(name_or_number(v, n), frozenset({v})), st.integers(low, high), st.booleans()
    )

    @st.composite
    def ranged(draw: st.DrawFn) -> FieldCase:
        a = draw(st.integers(low, high))
        b = draw(st.integers(low, high))
        use_name = draw(st.booleans())
        text = f"{name_or_number(a, use_name)}-{name_or_number(b, use_name)}"
        if a <= b:
            return FieldCase(text, frozenset(range(a, b + 1)))
        return FieldCase(text, frozenset(v for v in range(low, high + 1) if v >= a or v <= b))

    @st.composite
    def stepped(draw: st.DrawFn) -> FieldCase:
        start = draw(st.one_of(st.none(), st.integers(low, high)))
        step = draw(st.integers(1, max(1, (high - low) // 2)))
        first = low if start is None else start
        text = f"{'*' if start is None else start}/{step}"
        return FieldCase(text, frozenset(v for v in range(first, high + 1) if (v - first) % step == 0))

    @st.composite
    def listed(draw: st.DrawFn) -> FieldCase:
        values = draw(st.lists(st.integers(low, high), min_size=2, max_size=4, unique=True))
        return FieldCase(",".join(map(str, values)), frozenset(values))

    return st.one_of(every, single, ranged(), stepped(), listed())


def aws_weekday(day: date) -> int:
    # AWS: 1 = Sunday ... 7 = Saturday; isoweekday: 1 = Monday ... 7 = Sunday.
    return day.isoweekday() % 7 + 1


def month_days(day: date) -> list[date]:
    return [day.replace(day=d) for d in range(1, calendar.monthrange(day.year, day.month)[1] + 1)]


def is_weekday(day: date) -> bool:
    return day.isoweekday() <= 5


@dataclass(frozen=True)
class DayCase:
    dom: str
    dow: str
    kind: str
    values: frozenset[int] = frozenset()
    n: int = 0
    k: int = 0

    def matches(self, day: date) -> bool:
        days = month_days(day)
        if self.kind == "dom":
            return day.day in self.values
        if self.kind == "L":
            return day == days[-1]
        if self.kind == "LW":
            return day == [d for d in days if is_weekday(d)][-1]
        if self.kind == "W":
            if self.n > len(days):
                return False
            target = days[self.n - 1]
            return day == min((d for d in days if is_weekday(d)), key=lambda d: (abs((d - target).days), d))
        if self.kind == "dow":
            return aws_weekday(day) in self.values
        if self.kind == "nL":
            return aws_weekday(day) == self.n and (day + timedelta(days=7)).month != day.month
        assert self.kind == "#"
        return aws_weekday(day) == self.n and (day.day - 1) // 7 + 1 == self.k


day_cases = st.one_of(
    _field(1, 31).map(lambda f: DayCase(f.text, "?", "dom", f.values)),
    st.just(DayCase("L", "?", "L")),
    st.just(DayCase("LW", "?", "LW")),
    st.integers(1, 31).map(lambda n: DayCase(f"{n}W", "?", "W", n=n)),
    _field(1, 7, WEEKDAY_NAMES).map(lambda f: DayCase("?", f.text, "dow", f.values)),
    st.integers(1, 7).map(lambda n: DayCase("?", f"{n}L", "nL", n=n)),
    st.tuples(st.integers(1, 7), st.integers(1, 5)).map(
        lambda nk: DayCase("?", f"{nk[0]}#{nk[1]}", "#", n=nk[0], k=nk[1])
    ),
)

years = st.one_of(
    st.just(FieldCase("*", frozenset(range(1970, 2200)))),
    st.tuples(st.integers(2024, 2027), st.integers(0, 2)).map(
        lambda ab: FieldCase(f"{ab[0]}-{ab[0] + ab[1]}", frozenset(range(ab[0], ab[0] + ab[1] + 1)))
    ),
    st.integers(2024, 2027).map(lambda y: FieldCase(str(y), frozenset({y}))),
)

WINDOW_DAYS = 70


def oracle(
    after: datetime, minutes: FieldCase, hours: FieldCase, day: DayCase, months: FieldCase, year: FieldCase
) -> datetime | None:
    """The first minute strictly after ``after`` within the window that every field allows."""
    first_day = after.date()
    for offset in range(WINDOW_DAYS):
        today = first_day + timedelta(days=offset)
        if today.year not in year.values or today.month not in months.values or not day.matches(today):
            continue
        for minute_of_day in range(24 * 60):
            candidate = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(
                minutes=minute_of_day
            )
            if candidate <= after:
                continue
            if candidate.hour in hours.values and candidate.minute in minutes.values:
                return candidate
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    minutes=_field(0, 59),
    hours=_field(0, 23),
    day=day_cases,
    months=_field(1, 12, MONTH_NAMES),
    year=years,
    after=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
)
def test_cron_agrees_with_brute_force(
    minutes: FieldCase, hours: FieldCase, day: DayCase, months: FieldCase, year: FieldCase, after: datetime
) -> None:
    expression = f"cron({minutes.text} {hours.text} {day.dom} {months.text} {day.dow} {year.text})"
    schedule = Schedule.parse(expression)
    expected = oracle(after, minutes, hours, day, months, year)
    got = schedule.next_after(after)
    window_end = datetime(after.year, after.month, after.day, tzinfo=UTC) + timedelta(days=WINDOW_DAYS)
    if expected is not None:
        assert got == expected, expression
    else:
        assert got is None or got >= window_end, expression


@settings(max_examples=100, deadline=None)
@given(
    value=st.integers(1, 500),
    unit=st.sampled_from(["minute", "hour", "day"]),
    start=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    after=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_rate_fires_on_the_grid_from_start(value: int, unit: str, start: datetime, after: datetime) -> None:
    expression = f"rate({value} {unit}{'' if value == 1 else 's'})"
    schedule = Schedule.parse(expression, start=start)
    period = timedelta(**{f"{unit}s": value})
    got = schedule.next_after(after)
    assert got is not None
    assert got > after
    assert (got - start) % period == timedelta(0)
    # nothing on the grid is skipped: the fire time before it is not after `after` (or is before start)
    assert got - period <= after or got == start
