"""Art. 29 swaps keep their own timers, counted in working time: a Friday request is reminded
after 24 and lapses after 72 working hours, not over the weekend."""

from __future__ import annotations

import datetime as dt

from inspection.workdays import add_working_hours
from tests.conftest import Harness
from tests.results_support import drawn
from tests.support.calendar import packaged_through
from tests.support.reminders import CST, at
from tests.test_swaps_flow import request, status_of

CAL = packaged_through(2026)


def test_art29_working_hours_skip_weekends_and_holidays() -> None:
    friday = dt.datetime(2026, 12, 4, 10, tzinfo=CST)
    assert add_working_hours(friday, 24, CAL) == dt.datetime(2026, 12, 7, 10, tzinfo=CST)
    assert add_working_hours(friday, 72, CAL) == dt.datetime(2026, 12, 9, 10, tzinfo=CST)
    # Before National Day 2026: Wed 09-30 10:00 + 24 h runs out on Thu 10-08 at 10:00.
    eve = dt.datetime(2026, 9, 30, 10, tzinfo=CST)
    assert add_working_hours(eve, 24, CAL) == dt.datetime(2026, 10, 8, 10, tzinfo=CST)


async def test_art29_a_friday_swap_request_does_not_lapse_over_the_weekend(h: Harness) -> None:
    visits = await drawn(h)
    h.clock.set(at(2026, 12, 4, 10, 0))  # Friday
    rid = await request(h, visits[0], visits[0].members[0])
    (head, *_) = (await status_of(h, rid)).heads
    h.clock.set(at(2026, 12, 6, 23, 0))  # Sunday night: 61 hours later, 14 working hours
    assert await h.runtime.due.tick() == 0
    h.clock.set(at(2026, 12, 7, 10, 0))  # Monday: 24 working hours
    assert await h.runtime.due.tick() == 1
    await h.settle()
    assert "提醒：替换申请" in h.wecom.texts_to(head)[-1]
    h.clock.set(at(2026, 12, 9, 9, 59))
    assert await h.runtime.due.tick() == 0
    assert (await status_of(h, rid)).status == "pending"
    h.clock.set(at(2026, 12, 9, 10, 0))  # Wednesday: 72 working hours
    assert await h.runtime.due.tick() == 1
    assert (await status_of(h, rid)).status == "lapsed"
