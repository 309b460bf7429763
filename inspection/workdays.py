"""Working days after the State Council holiday schedule, make-up working days included (Art. 37).

A day is a working day when it is a make-up working day (调休), or a Monday to Friday that is not
a public holiday. The schedule is data: ``from_chinese_calendar`` is the only place that reads
the ``chinesecalendar`` package, and ``with_year`` adds a year announced after that package.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta


class CalendarNotCovered(ValueError):
    """The holiday schedule of ``year`` is not loaded, so working days cannot be counted."""

    def __init__(self, year: int) -> None:
        super().__init__(f"{year}年的节假日安排尚未载入，无法计算工作日，请在配置中补充该年安排")
        self.year = year


@dataclass(frozen=True)
class WorkCalendar:
    holidays: frozenset[date]
    makeup_workdays: frozenset[date]
    covered_years: frozenset[int]
    # Weekends alone for a year whose schedule is not loaded (a provisional count), instead of
    # refusing: see ``provisional`` and ``uncovered_years``.
    weekends_when_uncovered: bool = False

    def provisional(self) -> WorkCalendar:
        """A copy that counts an unloaded year by weekends alone; what it computes there is
        provisional until the year's schedule is added."""
        return WorkCalendar(self.holidays, self.makeup_workdays, self.covered_years, True)

    def uncovered_years(self, a: date, b: date) -> list[int]:
        """The years between ``a`` and ``b`` (either order) whose schedule is not loaded."""
        lo, hi = sorted((a.year, b.year))
        return [y for y in range(lo, hi + 1) if y not in self.covered_years]

    @classmethod
    def from_chinese_calendar(
        cls,
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
    ) -> WorkCalendar:
        """The package's schedule (2004-2026 in chinesecalendar 1.11) plus configured days.

        A year of any extra day becomes covered: configuration vouches for it.
        """
        import chinese_calendar

        extra_h = frozenset(extra_holidays)
        extra_w = frozenset(extra_workdays)
        known: set[date] = set(chinese_calendar.holidays) | set(chinese_calendar.workdays)
        years = set(range(min(known).year, max(known).year + 1))
        years |= {d.year for d in extra_h | extra_w}
        holidays = (frozenset(chinese_calendar.holidays) | extra_h) - extra_w
        workdays = (frozenset(chinese_calendar.workdays) | extra_w) - extra_h
        return cls(holidays, workdays, frozenset(years))

    def with_year(
        self, year: int, holidays: Iterable[date], makeup_workdays: Iterable[date]
    ) -> WorkCalendar:
        """A copy whose schedule for ``year`` is exactly the given days (added or corrected)."""
        h = frozenset(holidays)
        w = frozenset(makeup_workdays)
        if any(d.year != year for d in h | w):
            raise ValueError(f"{year}年的节假日安排中含有其他年份的日期")
        if h & w:
            raise ValueError("同一天不能既是节假日又是调休工作日")
        return WorkCalendar(
            holidays=frozenset(d for d in self.holidays if d.year != year) | h,
            makeup_workdays=frozenset(d for d in self.makeup_workdays if d.year != year) | w,
            covered_years=self.covered_years | {year},
            weekends_when_uncovered=self.weekends_when_uncovered,
        )

    def is_working_day(self, d: date) -> bool:
        if d.year not in self.covered_years:
            if not self.weekends_when_uncovered:
                raise CalendarNotCovered(d.year)
            return d.weekday() < 5
        if d in self.makeup_workdays:
            return True
        return d.weekday() < 5 and d not in self.holidays

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after ``start`` (``start`` not counted); n = 0 gives ``start``.

        A negative n counts backwards: -1 is the last working day strictly before ``start``.
        """
        step = timedelta(days=1 if n >= 0 else -1)
        d = start
        remaining = abs(n)
        while remaining:
            d += step
            if self.is_working_day(d):
                remaining -= 1
        return d

    def working_days_between(self, a: date, b: date) -> int:
        """Working days in (a, b], negative (minus those in (b, a]) when b is before a.

        So ``working_days_between(a, add_working_days(a, n)) == n`` for n >= 0.
        """
        if b < a:
            return -self.working_days_between(b, a)
        count = 0
        d = a
        while d < b:
            d += timedelta(days=1)
            if self.is_working_day(d):
                count += 1
        return count


def add_working_hours(start: datetime, hours: float, cal: WorkCalendar) -> datetime:
    """``start`` plus ``hours`` of working time: only the hours of working days count, so a
    Friday's 24 hours run out on Monday (swaps, Art. 29). ``start`` is local and aware."""
    remaining = timedelta(hours=hours)
    t = start
    while True:
        midnight = datetime.combine(t.date() + timedelta(days=1), time(0), tzinfo=t.tzinfo)
        if cal.is_working_day(t.date()):
            if remaining <= midnight - t:
                return t + remaining
            remaining -= midnight - t
        t = midnight
