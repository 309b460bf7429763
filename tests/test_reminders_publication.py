"""Art. 37 publication reminders: 5 and 1 working days before the deadline, then every working
morning until published, to the checking unit's publishers and chiefs; a weekly list for the
level above; once per occasion, in working hours, with one catch-up after downtime."""

from __future__ import annotations

import datetime as dt

from tests.conftest import Harness
from tests.results_support import drawn
from tests.support.draw_chat import ADMIN, CHIEF, TASK
from tests.support.reminders import (
    CST,
    PUBLISHER,
    UNIT_CHIEF,
    at,
    completed,
    grant_unit,
    reminder_keys,
    reminders_to,
    tick_at,
    tick_on_two_instances,
)

# Completed Tuesday 2026-12-01 (the first day of the check period): the 20th working day after
# is Tuesday 2026-12-29; 5 working days before is 12-22, 1 working day before is Monday 12-28;
# the overdue mornings are 12-30 and 12-31. The city's Q4 table (Art. 43) is due 2027-01-05:
# 2027's schedule is not loaded, so 5 working days before counts weekends alone, 12-29.


async def test_art37_publication_reminders_fire_once_each_at_the_right_working_time(
    h: Harness,
) -> None:
    await completed(h)
    assert await tick_at(h, at(2026, 12, 21, 17)) == 0  # before the first occasion
    assert await tick_at(h, at(2026, 12, 22, 8, 59)) == 0  # a working day, before 09:00
    assert await tick_at(h, at(2026, 12, 22, 9, 0)) == 1
    assert await tick_at(h, at(2026, 12, 22, 15)) == 0  # the same occasion: never twice
    assert await tick_at(h, at(2026, 12, 26, 10)) == 0  # Saturday: quiet
    assert await tick_at(h, at(2026, 12, 28, 18, 0)) == 0  # 1 working day before, 18:00: quiet
    # 1 working day before, caught up the next morning, and (Art. 43) the city's Q4 table.
    assert await tick_at(h, at(2026, 12, 29, 9)) == 2
    assert await tick_at(h, at(2026, 12, 29, 11)) == 0
    # 1 day overdue and the weekly list above.
    assert await tick_at(h, at(2026, 12, 30, 9)) == 2
    assert await tick_at(h, at(2026, 12, 31, 9)) == 1  # 2 days overdue; the list is weekly
    assert await reminder_keys(h, "publication") == [
        (f"{TASK}:150102", "before5"),
        (f"{TASK}:150102", "before1"),
        (f"{TASK}:150102", "overdue:2026-12-30"),
        (f"{TASK}:150102", "overdue:2026-12-31"),
    ]
    for user in (PUBLISHER, UNIT_CHIEF):
        texts = reminders_to(h, user)
        assert len(texts) == 4, texts
        assert "2026-12-29" in texts[0] and "5 个工作日" in texts[0]
        assert "逾期 1 个工作日" in texts[2] and "逾期 2 个工作日" in texts[3]
    for user in (ADMIN, CHIEF):  # the city bureau above 新城区
        (weekly,) = [t for t in h.wecom.texts_to(user) if "公开逾期周报" in t]
        assert TASK in weekly and "逾期 1 个工作日" in weekly


async def test_art37_a_bot_down_for_days_catches_up_once_without_stale_reminders(
    h: Harness,
) -> None:
    await completed(h)
    # Down from 12-18 to 12-31: the 5-day, 1-day and first overdue occasions all passed.
    assert await tick_at(h, at(2026, 12, 31, 10)) == 3
    assert await reminder_keys(h, "publication") == [(f"{TASK}:150102", "overdue:2026-12-31")]
    (only,) = reminders_to(h, PUBLISHER)
    assert "逾期 2 个工作日" in only
    # The city admin is owed the weekly overdue list and the Q4 statistics table (Art. 43)
    # that morning: one digest, not two messages.
    (both,) = h.wecom.texts_to(ADMIN)[-1:]
    assert "公开逾期周报" in both and "2026年第4季度统计表" in both and "2项" in both
    assert len([t for t in h.wecom.texts_to(ADMIN) if "公开逾期周报" in t]) == 1
    assert await tick_at(h, at(2026, 12, 31, 11)) == 0


async def test_art37_two_instances_send_each_reminder_once(h: Harness) -> None:
    await completed(h)
    sent = await tick_on_two_instances(h, at(2026, 12, 22, 9))  # 5 working days before
    assert sum(sent) == 1
    await h.settle()
    assert len(reminders_to(h, PUBLISHER)) == 1
    assert len(reminders_to(h, UNIT_CHIEF)) == 1


async def test_art37_kinds_configured_urgent_go_out_at_any_hour(h: Harness) -> None:
    await completed(h)
    # Saturday night: the 5-day occasion (12-22) is owed, the 1-day one (12-28) not yet.
    assert await tick_at(h, at(2026, 12, 26, 22)) == 0  # quiet
    h.settings.reminders.urgent = ["publication"]
    assert await tick_at(h, at(2026, 12, 26, 22, 5)) == 1
    assert await reminder_keys(h, "publication") == [(f"{TASK}:150102", "before5")]


async def test_art37_a_result_recorded_after_publication_on_the_portal_is_reminded_until_published(
    h: Harness,
) -> None:
    """Art. 37: a result recorded after its unit published the task on the portal is published
    within 20 working days of its recording: the unit's publishers and chiefs are reminded,
    naming the task, how many results await a supplement 公示 and the due date, each occasion
    once across instances, until the supplement 公示 records it."""
    await grant_unit(h)
    *done, last = await drawn(h)
    for v in done:
        await h.say(v.members[0], f"结果 {v.number} 1")
    h.clock.set(dt.datetime(2027, 1, 1, 0, 0, 1, tzinfo=CST))  # the check period is over
    assert await h.runtime.due.tick() == 1  # the task completes without the last result
    await h.settle()
    h.clock.set(at(2027, 1, 4, 9))
    (published,) = await h.say(PUBLISHER, f"公示 {TASK} https://portal.example/a")
    assert f"公开 {len(done)} 条" in published, published
    h.clock.set(at(2027, 1, 5, 10))  # Tuesday: the late result (Art. 37: 20 working days)
    replies = await h.say(last.members[0], f"结果 {last.number} 6")
    (told,) = [r for r in replies if "补录结果" in r]
    # 2027's schedule is not loaded: weekends alone, 20 working days after 01-05 is 02-02;
    # 5 working days before is 01-26, 1 working day before is 02-01.
    assert "2027-02-02" in told, told
    await tick_at(h, at(2027, 1, 25, 10))
    assert await reminder_keys(h, "publication_late") == []  # before its first occasion
    await tick_at(h, at(2027, 1, 26, 9))
    await tick_at(h, at(2027, 1, 26, 15))  # the same occasion: never twice
    await tick_on_two_instances(h, at(2027, 2, 1, 9))  # each message once (counted below)
    await h.settle()
    await tick_at(h, at(2027, 2, 3, 9))  # 1 working day overdue
    subject = f"{TASK}:150102:2027-01-05"
    assert await reminder_keys(h, "publication_late") == [
        (subject, "before5"),
        (subject, "before1"),
        (subject, "overdue:2027-02-03"),
    ]
    for user in (PUBLISHER, UNIT_CHIEF):
        texts = [t for t in h.wecom.texts_to(user) if "补充公开" in t and "2027-02-02" in t]
        assert len(texts) == 3, h.wecom.texts_to(user)
        assert all(TASK in t and "1 条" in t for t in texts), texts
        assert "5 个工作日" in texts[0] and "1 个工作日" in texts[1]
        assert "逾期 1 个工作日" in texts[2]
    # Overdue, the late results go on the level above's weekly list too.
    for user in (ADMIN, CHIEF):  # the city bureau above 新城区
        (weekly,) = [t for t in h.wecom.texts_to(user) if "公开逾期周报" in t]
        assert TASK in weekly and "2027-02-02" in weekly and "公开后录入" in weekly, weekly
    (supplement,) = await h.say(PUBLISHER, f"公示 {TASK} https://portal.example/b")
    assert "补充公开" in supplement and "1 条" in supplement, supplement
    await tick_at(h, at(2027, 2, 4, 9))
    assert len(await reminder_keys(h, "publication_late")) == 3  # published: no more


async def test_art37_results_in_by_the_clock_start_are_due_by_the_task_clock_a_late_one_by_its_own(
    h: Harness,
) -> None:
    """Art. 37: the check period ends (2026-12-31) with one result missing, which starts the
    task's clock. The results in by then are due 20 working days after it (2027-01-28: 2027's
    schedule is not loaded, weekends alone); the one recorded on 2027-01-05 is due 20 working
    days after its recording (2027-02-02). The unit is due by its earliest unpublished result:
    reminded of 01-28, overdue on 01-29, and its 公示 that day is late."""
    await grant_unit(h)
    *done, last = await drawn(h)
    for v in done:
        await h.say(v.members[0], f"结果 {v.number} 1")
    h.clock.set(dt.datetime(2027, 1, 1, 0, 0, 1, tzinfo=CST))  # the check period is over
    assert await h.runtime.due.tick() == 1
    await h.settle()
    h.clock.set(at(2027, 1, 5, 10))
    replies = await h.say(last.members[0], f"结果 {last.number} 6")
    (told,) = [r for r in replies if "补录结果" in r]
    assert "2027-02-02" in told, told
    (progress,) = await h.say(ADMIN, f"任务进度 {TASK}")
    assert "最迟 2027-01-28" in progress, progress
    await tick_at(h, at(2027, 1, 21, 10))
    (reminded,) = [t for t in reminders_to(h, PUBLISHER) if t.startswith("【公开提醒】")]
    assert "2027-01-28" in reminded and "完成后20个工作日" in reminded, reminded
    await tick_at(h, at(2027, 1, 29, 10))
    (overdue,) = [t for t in reminders_to(h, PUBLISHER) if t.startswith("【公开逾期】")]
    assert "2027-01-28" in overdue and "逾期 1 个工作日" in overdue, overdue
    assert f"{len(done) + 1} 条" in overdue, overdue
    (published,) = await h.say(PUBLISHER, f"公示 {TASK} https://portal.example/a")
    assert "逾期 1 个工作日" in published and "2027-01-28" in published, published
