"""Pure reminder occasions against the published 2026 State Council schedule (Art. 37, 40, 43)."""

from __future__ import annotations

from datetime import date, time

from inspection.deadlines import publication_deadline, statistics_table_due
from inspection.params import DEFAULT_HISTORY, DEFAULT_PARAMS, RuleParams
from inspection.reminders import (
    PUBLICATION_BEFORE,
    REPORT_BEFORE,
    current_occasion,
    digest,
    in_working_hours,
    report_deadlines,
)
from tests.support.calendar import packaged_through

CAL = packaged_through(2026)
DAYS = DEFAULT_PARAMS.publication_working_days


def test_art37_deadline_across_the_2026_spring_festival_and_its_make_up_days() -> None:
    # Completed Tue 2026-02-10: 11, 12, 13, Sat 14 (make-up), holiday 15-23, 24-27, Sat 28
    # (make-up), then March: the 20th working day is Mon 2026-03-16.
    assert publication_deadline(date(2026, 2, 10), CAL, DAYS) == date(2026, 3, 16)


def test_art37_deadline_across_the_2026_national_day_holiday() -> None:
    # Completed Mon 2026-09-28: 29, 30, holiday 10-01..07, 08, 09, Sat 10-10 (make-up), ...
    assert publication_deadline(date(2026, 9, 28), CAL, DAYS) == date(2026, 10, 30)


def test_art37_publication_occasions_5_and_1_working_days_before_then_each_working_day() -> None:
    due = date(2026, 3, 16)
    assert current_occasion(due, date(2026, 3, 6), CAL, PUBLICATION_BEFORE) is None
    five = current_occasion(due, date(2026, 3, 9), CAL, PUBLICATION_BEFORE)
    assert five is not None and (five.key, five.days) == ("before5", 5)
    # Caught up later the same stretch: still the 5-day occasion, with the days left now.
    late = current_occasion(due, date(2026, 3, 11), CAL, PUBLICATION_BEFORE)
    assert late is not None and (late.key, late.days) == ("before5", 3)
    one = current_occasion(due, date(2026, 3, 13), CAL, PUBLICATION_BEFORE)
    assert one is not None and one.key == "before1"
    over = current_occasion(due, date(2026, 3, 18), CAL, PUBLICATION_BEFORE)
    assert over is not None and (over.key, over.days) == ("overdue:2026-03-18", -2)
    assert current_occasion(due, date(2026, 3, 21), CAL, PUBLICATION_BEFORE) is None  # Saturday


def test_art43_a_due_date_on_a_holiday_is_reminded_on_the_last_working_days_before_it() -> None:
    due = statistics_table_due(2026, 3, DEFAULT_PARAMS)
    assert due == date(2026, 10, 5)  # National Day: not moved
    days = {
        d: current_occasion(due, date(2026, 9, d), CAL, REPORT_BEFORE, overdue_daily=False)
        for d in (22, 23, 30)
    }
    assert days[22] is None
    # Back from 10-05: 09-30, 29, 28, (Fri 09-25 Mid-Autumn off), 24, 23.
    assert days[23] is not None and days[23].key == "before5"
    assert days[30] is not None and days[30].key == "before1"
    assert current_occasion(due, date(2026, 10, 9), CAL, REPORT_BEFORE, overdue_daily=False) is None


def test_art43_deadlines_in_view() -> None:
    kinds = [
        (d.kind, d.subject, d.due) for d in report_deadlines(date(2026, 10, 1), DEFAULT_HISTORY)
    ]
    assert kinds == [
        ("statistics_table", "2026Q3", date(2026, 10, 5)),
        ("self_inspection_report", "2026", date(2026, 11, 5)),
    ]


def test_art43_art45_deadlines_in_view_follow_the_rules_in_force_on_each_deadline() -> None:
    # From 2026-10-01 the 统计表 is due by the 15th: in force on 15 October, it moves Q3 too.
    history = DEFAULT_HISTORY.with_entry(
        RuleParams(effective_from=date(2026, 10, 1), statistics_table_day=15)
    )
    kinds = [(d.subject, d.due) for d in report_deadlines(date(2026, 10, 1), history, 120)]
    assert kinds == [
        ("2026Q3", date(2026, 10, 15)),
        ("2026", date(2026, 11, 5)),
        ("2026Q4", date(2027, 1, 15)),
    ]
    # From 2026-10-20 the 15th again: not in force on 15 October, Q3 keeps the 5th.
    history = DEFAULT_HISTORY.with_entry(
        RuleParams(effective_from=date(2026, 10, 20), statistics_table_day=15)
    )
    kinds = [(d.subject, d.due) for d in report_deadlines(date(2026, 10, 1), history, 120)]
    assert kinds == [
        ("2026Q3", date(2026, 10, 5)),
        ("2026", date(2026, 11, 5)),
        ("2026Q4", date(2027, 1, 15)),
    ]


def test_art43_a_period_that_ended_before_the_first_rules_has_no_deadline() -> None:
    # 2024Q2 would be due on 2024-07-05, before the rules of 2024-07-18 took effect.
    subjects = [d.subject for d in report_deadlines(date(2024, 7, 1), DEFAULT_HISTORY, 120)]
    assert subjects == ["2024Q3"]


def test_working_hours_are_working_days_from_9_to_before_18() -> None:
    start, end = time(9), time(18)
    assert in_working_hours(date(2026, 10, 10), time(9), CAL, start, end)  # a make-up Saturday
    assert not in_working_hours(date(2026, 10, 8), time(8, 59), CAL, start, end)
    assert not in_working_hours(date(2026, 10, 8), time(18), CAL, start, end)
    assert not in_working_hours(date(2026, 10, 2), time(10), CAL, start, end)  # holiday


def test_provisional_calendar_counts_an_unloaded_year_by_weekends() -> None:
    lenient = CAL.provisional()
    assert lenient.uncovered_years(date(2026, 12, 31), date(2027, 1, 28)) == [2027]
    assert publication_deadline(date(2026, 12, 31), lenient, DAYS) == date(2027, 1, 28)
    assert CAL.uncovered_years(date(2026, 1, 1), date(2026, 12, 31)) == []


def test_one_message_per_person_a_digest_when_several() -> None:
    out = digest({"a": ["x"], "b": ["y", "z"]})
    assert out["a"] == "x"
    assert "2项" in out["b"] and "1. y" in out["b"] and "2. z" in out["b"]
