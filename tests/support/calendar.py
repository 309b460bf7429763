"""Holiday schedules with a known edge, whatever year the installed ``chinesecalendar`` reaches."""

from __future__ import annotations

from inspection.workdays import WorkCalendar


def packaged_through(last_year: int) -> WorkCalendar:
    """The packaged State Council schedule cut after ``last_year``: the years after it are
    provably not loaded, even once the package ships them (it is not pinned)."""
    packaged = WorkCalendar.from_chinese_calendar()
    assert last_year in packaged.covered_years, f"the package does not cover {last_year}"
    return WorkCalendar(
        holidays=frozenset(d for d in packaged.holidays if d.year <= last_year),
        makeup_workdays=frozenset(d for d in packaged.makeup_workdays if d.year <= last_year),
        covered_years=frozenset(y for y in packaged.covered_years if y <= last_year),
    )
