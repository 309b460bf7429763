"""Art. 40: inspectors are reminded 3 working days before the check period ends and every
working morning after it ended; the task's chief sees the list; a task whose period has ended
with results missing is itself overdue. Art. 43: the city bureau's reports."""

from __future__ import annotations

import datetime as dt

from storage import params
from tests.conftest import START, Harness
from tests.factories import CITY
from tests.results_support import click, drawn
from tests.support.draw_chat import ADMIN, CHIEF, TASK
from tests.support.reminders import at, reminder_keys, tick_at


async def test_art40_open_inspections_are_reminded_before_and_after_the_check_period_ends(
    h: Harness,
) -> None:
    visits = await drawn(h)  # check period 2026-12-01 ~ 2026-12-31
    assert await tick_at(h, at(2026, 12, 25, 10)) == 0
    await tick_at(h, at(2026, 12, 28, 9))  # 3 working days before 12-31
    numbers = [str(v.number) for v in visits]
    assert await reminder_keys(h, "results") == [(n, "before3") for n in numbers]
    assert await reminder_keys(h, "results_list") == [(TASK, "before3")]
    (listed,) = [t for t in h.wecom.texts_to(CHIEF) if "检查进度" in t]
    assert all(n in listed for n in numbers)
    for v in visits:
        assert any(str(v.number) in t for t in h.wecom.texts_to(v.members[0]))
    # One result comes in; the other four are still open when the period ends.
    await click(h, visits[0].members[0], visits[0], "no_problem")
    await tick_at(h, at(2026, 12, 29, 9))
    assert len(await reminder_keys(h, "results")) == len(visits)  # nothing new on 12-29
    await tick_at(h, at(2027, 1, 4, 9))
    overdue = [n for n, occ in await reminder_keys(h, "results") if occ == "overdue:2027-01-04"]
    assert overdue == numbers[1:]
    (late,) = [t for t in h.wecom.texts_to(CHIEF) if "任务逾期" in t]
    assert "4 项检查无结果" in late and f"编号 {numbers[0]} " not in late
    assert await tick_at(h, at(2027, 1, 4, 15)) == 0  # once per morning


async def test_art43_reports_are_reminded_on_the_last_working_days_before_a_holiday_due_date(
    h: Harness,
) -> None:
    await h.grant(ADMIN, "admin", CITY)
    # The Q3 2026 table is due by 2026-10-05, a National Day holiday: not moved.
    assert await tick_at(h, at(2026, 9, 22, 10)) == 0
    assert await tick_at(h, at(2026, 9, 23, 10)) == 1  # 5 working days before (09-25 is off)
    assert await tick_at(h, at(2026, 9, 30, 10)) == 1  # the last working day before
    assert await tick_at(h, at(2026, 10, 5, 10)) == 0  # the due date itself: a holiday
    assert await tick_at(h, at(2026, 10, 8, 10)) == 0  # a report is never nagged after
    assert await reminder_keys(h, "statistics_table") == [
        (f"2026Q3:{CITY}", "before5"),
        (f"2026Q3:{CITY}", "before1"),
    ]
    texts = h.wecom.texts_to(ADMIN)
    assert all("2026-10-05" in t for t in texts)
    # The annual self-inspection report, due by 2026-11-05 (a Thursday).
    await tick_at(h, at(2026, 10, 29, 9))
    await tick_at(h, at(2026, 11, 4, 9))
    await tick_at(h, at(2026, 11, 5, 9))
    assert await reminder_keys(h, "self_inspection_report") == [
        (f"2026:{CITY}", "before5"),
        (f"2026:{CITY}", "before1"),
    ]


async def test_art43_art45_a_changed_filing_day_moves_every_report_due_after_it(
    h: Harness,
) -> None:
    """The region sets the 统计表 day to the 15th from 2027-01-01: in force on 15 January, the
    change moves the quarter already under way (Q4 2026) as well as the later ones."""
    await h.grant(ADMIN, "admin", CITY)
    await h.grant("radmin", "admin", "150000")
    async with h.db.transaction() as s:
        await params.set_param(
            s,
            key="statistics_table_day",
            value="15日",
            effective_from=dt.date(2027, 1, 1),
            reason="自治区生态环境厅通知：统计表改为15日前报送",
            by="radmin",
            now=h.clock.now(),
            today=START.date(),
        )
    # Under the old day Q4 2026 (due 01-05) would be reminded on 01-04; now it is not due yet.
    await tick_at(h, at(2027, 1, 4, 10))
    assert await reminder_keys(h, "statistics_table") == []
    await tick_at(h, at(2027, 1, 14, 10))  # one working day before 2027-01-15
    # Under the old day Q1 2027 (due 04-05) would be reminded from 03-29; now it is not due.
    assert await tick_at(h, at(2027, 3, 31, 10)) == 0
    await tick_at(h, at(2027, 4, 14, 10))  # one working day before 2027-04-15
    keys = await reminder_keys(h, "statistics_table")
    assert keys == [(f"2026Q4:{CITY}", "before1"), (f"2027Q1:{CITY}", "before1")]
    q4, q1 = [t for t in h.wecom.texts_to(ADMIN) if "季度统计表" in t]
    assert "2026年第4季度" in q4 and "2027-01-15" in q4
    assert "2027年第1季度" in q1 and "2027-04-15" in q1
