"""A completed task for the reminder and publication tests, and local times to set the clock to."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from bot.runtime.reminders import ReminderRunner
from storage.db import Database
from storage.models import Reminder
from tests.conftest import Harness
from tests.factories import COUNTY
from tests.results_support import Visit, click, drawn

CST = dt.timezone(dt.timedelta(hours=8))
PUBLISHER, UNIT_CHIEF = "pub1", "cchief"  # the checking unit's (新城区, 150102)


def at(y: int, m: int, d: int, hour: int = 9, minute: int = 30) -> dt.datetime:
    return dt.datetime(y, m, d, hour, minute, tzinfo=CST).astimezone(dt.UTC)


async def grant_unit(h: Harness) -> None:
    """The teams' unit (150102) gets a publisher and a chief."""
    await h.grant(PUBLISHER, "publisher", COUNTY)
    await h.grant(UNIT_CHIEF, "chief", COUNTY)


async def completed(h: Harness, on: dt.datetime | None = None) -> list[Visit]:
    """The draw chat's task, drawn, every inspection given a result (at ``on``): the task is
    complete and its Art. 37 clock runs. The teams' unit (150102) has a publisher and a chief."""
    await grant_unit(h)
    visits = await drawn(h)
    if on is not None:
        h.clock.set(on)
    for v in visits:
        await click(h, v.members[0], v, "no_problem")
    return visits


async def tick_at(h: Harness, when: dt.datetime) -> int:
    """Set the clock, run the reminders once and deliver what they queued."""
    h.clock.set(when)
    sent = await h.runtime.reminders.tick()
    await h.settle()
    return sent


async def reminder_keys(h: Harness, kind: str) -> list[tuple[str, str]]:
    async with h.db.transaction() as s:
        rows = await s.execute(
            select(Reminder.subject, Reminder.occasion)
            .where(Reminder.kind == kind)
            .order_by(Reminder.id)
        )
        return [(a, b) for a, b in rows.all()]


def reminders_to(h: Harness, user: str) -> list[str]:
    """What ``user`` received after the task's completion notice (Art. 37: the checking unit's
    publishers and chiefs are told of the duty when the task completes)."""
    return [t for t in h.wecom.texts_to(user) if not t.startswith("【任务完成】")]


async def tick_on_two_instances(h: Harness, when: dt.datetime) -> list[int]:
    """Two instances over the same database each tick twice at once, at ``when``."""
    h.clock.set(when)
    other_db = Database(h.settings.database.url)
    try:
        other = ReminderRunner(other_db, h.settings, h.clock)
        return list(
            await asyncio.gather(
                h.runtime.reminders.tick(), other.tick(), h.runtime.reminders.tick(), other.tick()
            )
        )
    finally:
        await other_db.dispose()
