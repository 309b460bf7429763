"""Working days for a year the State Council schedule is not loaded for (Art. 37): a deadline
there is counted from weekends alone, shown as provisional, the region's admins are told once,
and adding the year's schedule recomputes it and says which moved."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from storage.models import Deadline
from tests.conftest import Harness
from tests.support.draw_chat import ABOVE, ADMIN, TASK
from tests.support.reminders import PUBLISHER, at, completed, reminder_keys, tick_at


async def test_art37_a_task_completed_on_new_years_eve_gets_a_provisional_deadline(
    h: Harness,
) -> None:
    await completed(h, on=at(2026, 12, 31, 10))
    # 20 weekdays after 2026-12-31 (New Year's Day unknown, so counted): 2027-01-28.
    (done,) = [t for t in h.wecom.texts_to(ADMIN) if "任务完成" in t]
    assert "2027-01-28" in done and "暂定" in done and "2027" in done
    await tick_at(h, at(2027, 1, 4, 10))
    (missing,) = [t for t in h.wecom.texts_to(ABOVE) if "节假日安排缺失" in t]
    assert "2027" in missing and "[calendar]" in missing
    await tick_at(h, at(2027, 1, 5, 10))
    assert len([t for t in h.wecom.texts_to(ABOVE) if "节假日安排缺失" in t]) == 1  # once
    # 5 working days before the provisional deadline: the reminder says it is provisional.
    await tick_at(h, at(2027, 1, 21, 9))
    (told, reminder) = h.wecom.texts_to(PUBLISHER)  # the checking unit's publisher (Art. 37)
    assert "任务完成" in told and "2027-01-28" in told
    assert "2027-01-28" in reminder and "暂定" in reminder

    # The 2027 schedule is published and configured: New Year's Day is a holiday.
    h.settings.calendar.holidays = [dt.date(2027, 1, 1)]
    await tick_at(h, at(2027, 1, 22, 9))
    (moved,) = [t for t in h.wecom.texts_to(ABOVE) if "期限已重新计算" in t]
    assert TASK in moved and "2027-01-28" in moved and "2027-01-29" in moved
    assert await reminder_keys(h, "deadline_moved") == [(TASK, "2027-01-28->2027-01-29")]
    async with h.db.transaction() as s:
        row = (await s.execute(select(Deadline))).scalar_one()
    assert (row.due, row.provisional) == (dt.date(2027, 1, 29), False)
    await tick_at(h, at(2027, 1, 25, 9))
    assert len([t for t in h.wecom.texts_to(ABOVE) if "期限已重新计算" in t]) == 1
    # Reminders now count from the recomputed deadline: 1 working day before 01-29.
    await tick_at(h, at(2027, 1, 28, 9))
    last = h.wecom.texts_to(PUBLISHER)[-1]
    assert "2027-01-29" in last and "暂定" not in last
