"""Deadlines: publication of results (Art. 37) and the region's reports (Art. 43).

Convention: every ``*_due`` function returns the **last allowed day** (inclusive). Art. 43 says
"5日前"; the region reads it as "no later than the 5th" (corrected reading), so the last allowed
day is the 5th itself. The ``*_before`` functions return the date as the article words it, for
messages such as "须于1月5日前报送". Art. 43 deadlines are calendar dates and do not move for
holidays: reminders fall on the last working days before them.

The days themselves are rule parameters (Art. 45, ``inspection.params.RuleParams``): the 5th of
the quarter's first month and 5 November under the rules of 2024-07-18. A period's deadline
is set by the newest parameters in force on the deadline they set (``ParamHistory.for_deadline``,
Art. 45: later rules prevail), so a change in force by a deadline moves it, even for a period
that began before the change: a change effective 2027-01-01 to the 15th moves Q4 2026's 统计表
to 2027-01-15. A deadline no rules are in force on (Q2 2024's, 5 July 2024, before the rules of
18 July) does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from inspection.params import ParamHistory, RuleParams
from inspection.workdays import WorkCalendar


def publication_deadline(completed_on: date, cal: WorkCalendar, working_days: int) -> date:
    """Last day to publish results: the ``working_days``-th working day after completion
    (Art. 37: 20 under the rules of 2024-07-18; the caller passes the value in force).

    The completion day itself is not counted.
    """
    if working_days < 0:
        raise ValueError("公开期限的工作日数不能为负数")
    return cal.add_working_days(completed_on, working_days)


def results_publication_due(
    clock_started_on: date,
    recorded_on: Iterable[date],
    cal: WorkCalendar,
    working_days: int,
) -> date:
    """Art. 37: the day a checking unit's unpublished results of a task are due.

    The task's clock starts at its last result or at the end of its check period, whichever
    comes first (``clock_started_on``). A result recorded by then is due with the task:
    ``working_days`` working days after the clock start. One recorded after it is published
    within ``working_days`` working days of its own recording. The unit is due by its earliest
    unpublished result's date; with no result given, by the task clock's. Days, not instants:
    a result recorded on the clock's day after its start has the same date either way.
    """
    days = list(recorded_on)
    start = clock_started_on if not days else max(clock_started_on, min(days))
    return publication_deadline(start, cal, working_days)


@dataclass(frozen=True)
class PublicationStatus:
    due: date
    published_on: date | None
    overdue: bool
    # Working days from the reference day (today, or the publication day) to ``due``.
    working_days_left: int
    # Working days past ``due`` (on the publication day if published late, else today).
    working_days_over: int

    @property
    def published(self) -> bool:
        return self.published_on is not None


def publication_status(
    completed_on: date,
    published_on: date | None,
    today: date,
    cal: WorkCalendar,
    working_days: int,
) -> PublicationStatus:
    """Where a task stands against Art. 37.

    Once published, the publication day is the reference, so a late publication stays
    recorded as late (Art. 40 needs to know who met which deadline).
    """
    due = publication_deadline(completed_on, cal, working_days)
    ref = published_on if published_on is not None else today
    if ref <= due:
        return PublicationStatus(due, published_on, False, cal.working_days_between(ref, due), 0)
    return PublicationStatus(due, published_on, True, 0, cal.working_days_between(due, ref))


def quarter_of(d: date) -> tuple[int, int]:
    return d.year, (d.month - 1) // 3 + 1


def quarter_bounds(year: int, quarter: int) -> tuple[date, date]:
    """First and last day of a quarter."""
    _check_quarter(quarter)
    first = date(year, 3 * quarter - 2, 1)
    next_year, next_quarter = _next_quarter(year, quarter)
    return first, date(next_year, 3 * next_quarter - 2, 1) - timedelta(days=1)


def statistics_table_params(history: ParamHistory, quarter_year: int, quarter: int) -> RuleParams:
    """The parameters that set a quarter's 统计表 deadline: the newest in force on the day they
    set (``NoParamsInEffect`` if none are)."""
    return history.for_deadline(lambda p: statistics_table_due(quarter_year, quarter, p))


def statistics_table_before(quarter_year: int, quarter: int, params: RuleParams) -> date:
    """The ``statistics_table_day`` of the first month of the next quarter, as Art. 43 words
    it (the 5th under the rules of 2024-07-18)."""
    _check_quarter(quarter)
    year, q = _next_quarter(quarter_year, quarter)
    return date(year, 3 * q - 2, params.statistics_table_day)


def statistics_table_due(quarter_year: int, quarter: int, params: RuleParams) -> date:
    """Last allowed day to file the quarter's 统计表 (Art. 43): Q4 2026 gives 2027-01-05."""
    return statistics_table_before(quarter_year, quarter, params)


def self_inspection_report_params(history: ParamHistory, year: int) -> RuleParams:
    """The parameters that set a year's self-inspection report deadline: the newest in force
    on the day they set (``NoParamsInEffect`` if none are)."""
    return history.for_deadline(lambda p: self_inspection_report_due(year, p))


def self_inspection_report_before(year: int, params: RuleParams) -> date:
    """The ``self_inspection_report_by`` date of the year, as Art. 43 words it (November 5th
    under the rules of 2024-07-18)."""
    month, day = params.self_inspection_report_by
    return date(year, month, day)


def self_inspection_report_due(year: int, params: RuleParams) -> date:
    """Last allowed day to send the annual 自查报告 (Art. 43): November 5th, inclusive."""
    return self_inspection_report_before(year, params)


def reminder_dates(
    due: date, days_before: Sequence[int], cal: WorkCalendar | None = None
) -> list[date]:
    """Days on which to remind, ascending and without repeats.

    ``days_before`` counts calendar days, or working days when ``cal`` is given (0 = on the day).
    """
    if any(n < 0 for n in days_before):
        raise ValueError("提醒提前天数不能为负数")
    if cal is None:
        dates = {due - timedelta(days=n) for n in days_before}
    else:
        dates = {cal.add_working_days(due, -n) for n in days_before}
    return sorted(dates)


def _check_quarter(quarter: int) -> None:
    if quarter not in (1, 2, 3, 4):
        raise ValueError(f"季度应为1至4，实为{quarter}")


def _next_quarter(year: int, quarter: int) -> tuple[int, int]:
    return (year + 1, 1) if quarter == 4 else (year, quarter + 1)
