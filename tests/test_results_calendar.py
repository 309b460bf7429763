"""Art. 37: the publication deadline across a year the packaged holiday schedule does not know."""

from __future__ import annotations

import datetime as dt

from storage import results
from storage.models import Task
from tests.support.calendar import packaged_through


def _task() -> Task:
    return Task(code="T2026-150100-001", check_start=dt.date(2026, 12, 1))


def test_art37_a_deadline_in_an_unloaded_year_is_provisional_by_weekends() -> None:
    # The schedule as packaged up to 2026: 2027 is not loaded, whenever the package ships it.
    calendar = packaged_through(2026)
    due, missing = results.publication_due(_task(), dt.date(2026, 12, 20), calendar)
    # 9 working days to 2026-12-31, then 11 weekdays of 2027 (New Year's Day not known).
    assert (due, missing) == (dt.date(2027, 1, 15), 2027)


def test_art37_configured_holidays_make_the_next_year_computable() -> None:
    calendar = results.work_calendar((dt.date(2027, 1, 1),), ())
    due, missing = results.publication_due(_task(), dt.date(2026, 12, 20), calendar)
    assert missing is None
    # 20 working days after Sunday 2026-12-20: 2026-12-21..31 gives 9, New Year's Day is off,
    # then 11 more from 2027-01-04 (Mon) to 2027-01-18 (Mon).
    assert due == dt.date(2027, 1, 18)
