"""Ticks the pace warnings of Art. 25 (handlers/pace.py): on working days in working hours by
the domain clock, each league/city in its own transaction. The database decides "once"
(``pace_warning``'s unique key), so several instances may tick at once."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from bot.chat.context import Clock
from bot.config import Settings
from bot.runtime.contexts import build_context
from handlers.pace import warn_on_pace
from inspection.quotas import FINAL_WORKING_DAYS, pace_window
from inspection.workdays import CalendarNotCovered
from storage import quotas
from storage.db import Database
from storage.models import Organisation
from storage.repos import OrgNode
from storage.results import work_calendar

log = logging.getLogger(__name__)

WORKING_HOURS = (dt.time(9, 0), dt.time(17, 0))  # local; warnings wait for the morning
EVALUATE_EVERY = dt.timedelta(minutes=15)  # of domain time, per league/city and instance


class PaceWatch:
    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._evaluated: dict[str, dt.datetime] = {}

    async def tick(self) -> int:
        """Warn every league/city whose pace calls for it now; returns warnings sent."""
        now = self.clock.now()
        local = now.astimezone(self.settings.tz)
        cal = work_calendar(
            tuple(self.settings.calendar.holidays), tuple(self.settings.calendar.makeup_workdays)
        )
        quarter = quotas.Quarter.containing(now, self.settings.tz)
        try:
            if not cal.is_working_day(local.date()):
                return 0
            final_from: dt.date | None = cal.add_working_days(quarter.last, -FINAL_WORKING_DAYS)
        except CalendarNotCovered:
            return 0  # no working days known: nothing is guessed
        start, end = WORKING_HOURS
        if not start <= local.time() < end:
            return 0
        if not pace_window(quarter.first, quarter.last, local.date(), final_from):
            return 0
        async with self.db.transaction() as session:
            rows = await session.execute(
                select(Organisation).where(Organisation.level == "city").order_by(Organisation.code)
            )
            cities = [OrgNode(o.code, o.name, o.level, o.parent_code) for o in rows.scalars()]
        sent = 0
        for city in cities:
            last = self._evaluated.get(city.code)
            if last is not None and now - last < EVALUATE_EVERY and now >= last:
                continue
            self._evaluated[city.code] = now
            try:
                async with self.db.transaction() as session:
                    ctx = await build_context(session, self.settings, self.clock)
                    sent += await warn_on_pace(ctx, city, quarter, final_from)
            except Exception:
                log.exception("pace warning for %s failed; tried again next tick", city.code)
                del self._evaluated[city.code]
        return sent
