from datetime import date

import pytest

from inspection.workdays import CalendarNotCovered, WorkCalendar
from tests.support.calendar import packaged_through

CAL = WorkCalendar.from_chinese_calendar()


def test_art37_national_day_week_2026_is_not_working() -> None:
    assert not any(CAL.is_working_day(date(2026, 10, d)) for d in range(1, 8))
    assert CAL.is_working_day(date(2026, 10, 8))
    # Mid-autumn (Sep 25-27) then National Day: from Sep 30 the next working day is Oct 8.
    assert CAL.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)


def test_art37_make_up_saturday_is_a_working_day() -> None:
    assert date(2026, 10, 10).weekday() == 5
    assert CAL.is_working_day(date(2026, 10, 10))
    assert CAL.add_working_days(date(2026, 10, 9), 1) == date(2026, 10, 10)
    assert CAL.is_working_day(date(2026, 9, 20))  # a make-up Sunday
    assert not CAL.is_working_day(date(2026, 10, 17))  # an ordinary Saturday


def test_art37_spring_festival_2026() -> None:
    assert CAL.is_working_day(date(2026, 2, 14))  # make-up Saturday before the holiday
    assert not any(CAL.is_working_day(date(2026, 2, d)) for d in range(15, 24))
    assert CAL.add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 24)
    assert CAL.working_days_between(date(2026, 2, 13), date(2026, 2, 28)) == 6


def test_art37_year_boundary_counts_new_year_make_up_sunday() -> None:
    # 2026-01-01..03 are holidays and Sunday 2026-01-04 is worked.
    assert CAL.add_working_days(date(2025, 12, 31), 1) == date(2026, 1, 4)
    assert CAL.working_days_between(date(2025, 12, 30), date(2026, 1, 5)) == 3


def test_art37_year_not_loaded_raises_a_clear_error() -> None:
    with pytest.raises(CalendarNotCovered, match="2027年的节假日安排尚未载入") as e:
        packaged_through(2026).add_working_days(date(2026, 12, 31), 1)
    assert e.value.year == 2027
    assert isinstance(e.value, ValueError)


def test_art45_configuration_adds_a_years_schedule() -> None:
    cal = CAL.with_year(2027, [date(2027, 1, 1)], [date(2027, 1, 9)])
    assert cal.add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 4)
    assert cal.is_working_day(date(2027, 1, 9))
    assert not cal.is_working_day(date(2027, 1, 1))
    extra = WorkCalendar.from_chinese_calendar(extra_holidays=[date(2027, 1, 1)])
    assert extra.add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 4)


def test_art45_with_year_replaces_a_years_schedule() -> None:
    cal = CAL.with_year(2026, [], [])
    assert cal.is_working_day(date(2026, 10, 1))
    assert not cal.is_working_day(date(2026, 10, 10))
    assert CAL.is_working_day(date(2026, 10, 10))  # the original is untouched


def test_with_year_rejects_inconsistent_days() -> None:
    with pytest.raises(ValueError):
        CAL.with_year(2027, [date(2028, 1, 1)], [])
    with pytest.raises(ValueError):
        CAL.with_year(2027, [date(2027, 1, 2)], [date(2027, 1, 2)])


def test_working_days_arithmetic_is_consistent() -> None:
    cal = WorkCalendar(frozenset(), frozenset(), frozenset({2030}))
    monday = date(2030, 1, 7)
    assert cal.add_working_days(monday, 0) == monday
    assert cal.add_working_days(monday, 5) == date(2030, 1, 14)
    assert cal.add_working_days(monday, -1) == date(2030, 1, 4)
    for n in range(0, 30):
        assert cal.working_days_between(monday, cal.add_working_days(monday, n)) == n
    assert cal.working_days_between(date(2030, 1, 14), monday) == -5
