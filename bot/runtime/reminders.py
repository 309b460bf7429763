"""Runs the reminders (Art. 37, 40, 43): APScheduler ticks; the database says what is due.

One transaction per run: the reminders' keys are claimed and their messages queued together,
so a reminder is sent once across instances and restarts.
"""

from __future__ import annotations

import logging

from bot.chat.context import Clock
from bot.config import Settings
from bot.runtime.contexts import build_context
from handlers.reminders import run_reminders
from storage.db import Database

log = logging.getLogger(__name__)


class ReminderRunner:
    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.runs = 0  # completed ticks, for health checks and tests

    async def tick(self) -> int:
        """Send what is due now; returns how many reminders went out."""
        try:
            return await self._tick()
        finally:
            self.runs += 1

    async def _tick(self) -> int:
        async with self.db.transaction() as session:
            ctx = await build_context(session, self.settings, self.clock)
            return await run_reminders(ctx)
