"""Art. 37: a result is due with its task when recorded by the clock start, else 20 working days
after its own recording; a checking unit is due by its earliest unpublished result."""

from datetime import date

from inspection.deadlines import publication_deadline, results_publication_due
from inspection.workdays import WorkCalendar

CAL = WorkCalendar.from_chinese_calendar()
DAYS = 20
CLOCK = date(2026, 9, 30)  # the lead authority's check day: the joint check's clock start


def test_art37_results_in_by_the_clock_start_are_due_with_the_task() -> None:
    due = results_publication_due(CLOCK, [date(2026, 9, 28), CLOCK], CAL, DAYS)
    assert due == publication_deadline(CLOCK, CAL, DAYS) == date(2026, 11, 3)


def test_art37_a_result_recorded_after_the_clock_start_is_due_from_its_recording() -> None:
    assert results_publication_due(CLOCK, [date(2026, 11, 30)], CAL, DAYS) == date(2026, 12, 28)


def test_art37_a_unit_is_due_by_its_earliest_unpublished_result() -> None:
    late = [date(2026, 12, 10), date(2026, 11, 30)]
    assert results_publication_due(CLOCK, late, CAL, DAYS) == date(2026, 12, 28)
    mixed = [date(2026, 11, 30), date(2026, 9, 29)]
    assert results_publication_due(CLOCK, mixed, CAL, DAYS) == date(2026, 11, 3)


def test_art37_with_no_result_the_task_clock_gives_the_date() -> None:
    assert results_publication_due(CLOCK, [], CAL, DAYS) == date(2026, 11, 3)


def test_art37_the_count_in_force_is_the_callers() -> None:
    assert results_publication_due(CLOCK, [date(2026, 11, 30)], CAL, 1) == date(2026, 12, 1)
