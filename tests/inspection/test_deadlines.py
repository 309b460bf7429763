from datetime import date

import pytest

from inspection.deadlines import (
    publication_deadline,
    publication_status,
    quarter_bounds,
    quarter_of,
    reminder_dates,
    self_inspection_report_before,
    self_inspection_report_due,
    self_inspection_report_params,
    statistics_table_before,
    statistics_table_due,
    statistics_table_params,
)
from inspection.params import (
    DEFAULT_HISTORY,
    DEFAULT_PARAMS,
    NoParamsInEffect,
    ParamHistory,
    RuleParams,
)
from inspection.workdays import WorkCalendar

CAL = WorkCalendar.from_chinese_calendar()
DAYS = DEFAULT_PARAMS.publication_working_days  # 20 under the rules of 2024-07-18
P = DEFAULT_PARAMS


def test_art37_publication_within_20_working_days_across_national_day() -> None:
    # Completed Wed 2026-09-30: Oct 8, 9, 10 (make-up Saturday), then 17 more -> Tue Nov 3.
    assert publication_deadline(date(2026, 9, 30), CAL, DAYS) == date(2026, 11, 3)


def test_art37_completion_day_itself_is_not_counted() -> None:
    # Mon 2026-03-02 + 20 working days, no holiday in between: four weeks later.
    assert publication_deadline(date(2026, 3, 2), CAL, DAYS) == date(2026, 3, 30)
    assert publication_deadline(date(2026, 3, 2), CAL, working_days=1) == date(2026, 3, 3)


def test_art37_status_counts_working_days_left_and_over() -> None:
    done = date(2026, 3, 2)
    pending = publication_status(done, None, date(2026, 3, 27), CAL, DAYS)
    assert (pending.due, pending.overdue, pending.working_days_left) == (
        date(2026, 3, 30),
        False,
        1,
    )
    on_due_day = publication_status(done, None, date(2026, 3, 30), CAL, DAYS)
    assert (on_due_day.overdue, on_due_day.working_days_left) == (False, 0)
    # Mar 31, Apr 1-3, (Apr 4-6 Qingming), Apr 7-8: six working days late.
    late = publication_status(done, None, date(2026, 4, 8), CAL, DAYS)
    assert (late.overdue, late.working_days_over, late.working_days_left) == (True, 6, 0)
    assert not late.published


def test_art40_late_publication_stays_recorded_as_late() -> None:
    done = date(2026, 3, 2)
    status = publication_status(done, date(2026, 3, 31), date(2026, 12, 1), CAL, DAYS)
    assert status.published and status.overdue and status.working_days_over == 1
    in_time = publication_status(done, date(2026, 3, 20), date(2026, 12, 1), CAL, DAYS)
    assert not in_time.overdue and in_time.working_days_left == 6


def test_art43_statistics_table_last_allowed_day_is_the_5th_inclusive() -> None:
    assert statistics_table_due(2026, 4, P) == date(2027, 1, 5)  # by the 5th, inclusive
    assert statistics_table_before(2026, 4, P) == date(2027, 1, 5)
    assert statistics_table_due(2026, 1, P) == date(2026, 4, 5)
    assert statistics_table_due(2026, 3, P) == date(2026, 10, 5)  # calendar date, even on a holiday
    with pytest.raises(ValueError):
        statistics_table_due(2026, 5, P)


def test_art43_self_inspection_report_before_november_5() -> None:
    assert self_inspection_report_due(2026, P) == date(2026, 11, 5)
    assert self_inspection_report_before(2026, P) == date(2026, 11, 5)


def test_art43_art45_a_changed_filing_day_moves_every_deadline_it_is_in_force_on() -> None:
    # From 2027-04-01 the 统计表 is due by the 10th and the report by 31 October.
    later = RuleParams(
        effective_from=date(2027, 4, 1), statistics_table_day=10, self_inspection_report_by=(10, 31)
    )
    history = DEFAULT_HISTORY.with_entry(later)
    # Q1 2027's table would be due on 10 April under the new rules, in force by then.
    q1 = statistics_table_params(history, 2027, 1)
    q2 = statistics_table_params(history, 2027, 2)
    assert statistics_table_due(2027, 1, q1) == date(2027, 4, 10)
    assert statistics_table_due(2027, 2, q2) == date(2027, 7, 10)
    # Q4 2026's: the new rules would set 10 January 2027, before they take effect: the old 5th.
    q4 = statistics_table_params(history, 2026, 4)
    assert statistics_table_due(2026, 4, q4) == date(2027, 1, 5)
    # The 2027 report: 31 October 2027, the new rules are in force on it.
    assert self_inspection_report_due(2027, self_inspection_report_params(history, 2027)) == (
        date(2027, 10, 31)
    )
    assert self_inspection_report_due(2028, self_inspection_report_params(history, 2028)) == (
        date(2028, 10, 31)
    )


def test_art43_art45_a_change_in_force_by_the_deadline_moves_a_period_already_under_way() -> None:
    # A change effective 2027-01-01 to the 15th moves Q4 2026's table to 2027-01-15.
    history = DEFAULT_HISTORY.with_entry(
        RuleParams(effective_from=date(2027, 1, 1), statistics_table_day=15)
    )
    q4 = statistics_table_params(history, 2026, 4)
    assert q4.effective_from == date(2027, 1, 1)
    assert statistics_table_due(2026, 4, q4) == date(2027, 1, 15)
    assert statistics_table_due(2026, 3, statistics_table_params(history, 2026, 3)) == (
        date(2026, 10, 5)
    )
    # A change effective 2027-03-01 of the annual report to 31 October moves the 2027 report;
    # the 2026 report stays on 5 November.
    history = DEFAULT_HISTORY.with_entry(
        RuleParams(effective_from=date(2027, 3, 1), self_inspection_report_by=(10, 31))
    )
    assert self_inspection_report_due(2027, self_inspection_report_params(history, 2027)) == (
        date(2027, 10, 31)
    )
    assert self_inspection_report_due(2026, self_inspection_report_params(history, 2026)) == (
        date(2026, 11, 5)
    )


def test_art43_art45_a_change_not_yet_in_force_on_its_own_deadline_leaves_the_old_one() -> None:
    # Effective 2027-01-10 with the 5th: the day it would set (2027-01-05) is before it.
    history = DEFAULT_HISTORY.with_entry(
        RuleParams(effective_from=date(2027, 1, 10), statistics_table_day=5)
    )
    assert statistics_table_params(history, 2026, 4) == DEFAULT_PARAMS
    assert statistics_table_params(history, 2027, 1).effective_from == date(2027, 1, 10)


def test_art43_art45_a_deadline_before_the_first_rules_does_not_exist() -> None:
    # Issued 2024-07-18: Q3 2024's table (5 October) and the 2024 report (5 November) fall
    # under them; Q2 2024's (5 July) came before them and has no deadline.
    assert statistics_table_due(2024, 3, statistics_table_params(DEFAULT_HISTORY, 2024, 3)) == (
        date(2024, 10, 5)
    )
    assert self_inspection_report_params(DEFAULT_HISTORY, 2024) == DEFAULT_PARAMS
    with pytest.raises(NoParamsInEffect):
        statistics_table_params(DEFAULT_HISTORY, 2024, 2)
    with pytest.raises(NoParamsInEffect):
        self_inspection_report_params(DEFAULT_HISTORY, 2023)
    with pytest.raises(NoParamsInEffect):
        statistics_table_params(ParamHistory([]), 2026, 4)


def test_art43_filing_days_that_do_not_exist_every_year_are_refused() -> None:
    with pytest.raises(ValueError):
        RuleParams(effective_from=date(2027, 1, 1), statistics_table_day=31)
    with pytest.raises(ValueError):
        RuleParams(effective_from=date(2027, 1, 1), self_inspection_report_by=(2, 29))


def test_art24_quarters() -> None:
    assert quarter_of(date(2026, 1, 1)) == (2026, 1)
    assert quarter_of(date(2026, 3, 31)) == (2026, 1)
    assert quarter_of(date(2026, 4, 1)) == (2026, 2)
    assert quarter_of(date(2026, 12, 31)) == (2026, 4)
    assert quarter_bounds(2026, 4) == (date(2026, 10, 1), date(2026, 12, 31))
    assert quarter_bounds(2028, 1) == (date(2028, 1, 1), date(2028, 3, 31))


def test_art43_reminder_dates_sorted_and_unique() -> None:
    due = date(2027, 1, 4)
    assert reminder_dates(due, [3, 0, 1, 3]) == [date(2027, 1, 1), date(2027, 1, 3), due]
    # In working days: the working day before Mon 2026-10-12 is the make-up Sat Oct 10.
    assert reminder_dates(date(2026, 10, 12), [1, 2], CAL) == [
        date(2026, 10, 9),
        date(2026, 10, 10),
    ]
    with pytest.raises(ValueError):
        reminder_dates(due, [-1])
