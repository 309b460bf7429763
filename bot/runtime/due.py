"""Runs due actions: the scheduler only ticks; the database says what is due.

Each action runs in one transaction with its 'done' mark, so across instances it happens once.
"""

from __future__ import annotations

import logging

from bot.chat.context import Clock
from bot.chat.router import Dispatcher
from bot.config import Settings
from bot.runtime.contexts import build_context
from storage import due, results
from storage.db import Database

log = logging.getLogger(__name__)


class DueRunner:
    def __init__(
        self, db: Database, dispatcher: Dispatcher, settings: Settings, clock: Clock, owner: str
    ) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.settings = settings
        self.clock = clock
        self.owner = owner
        self.swept = False

    async def sweep(self) -> list[str]:
        """Once per process, before the first tick: schedule what older code never scheduled
        (the period-end completion of tasks drawn before it existed, Art. 37)."""
        async with self.db.transaction() as session:
            made = await results.backfill_period_ends(session, self.settings.tz)
        if made:
            log.info("scheduled the period-end completion of %d drawn task(s)", len(made))
        self.swept = True
        return made

    async def tick(self) -> int:
        if not self.swept:
            await self.sweep()
        async with self.db.transaction() as session:
            ids = await due.due_ids(session, self.clock.now())
        ran = 0
        for action_id in ids:
            try:
                ran += await self._run(action_id)
            except Exception:
                log.exception("due action %s failed; it stays pending", action_id)
        return ran

    async def _run(self, action_id: int) -> int:
        async with self.db.transaction() as session:
            now = self.clock.now()
            action = await due.take(session, action_id, now)
            if action is None:
                return 0
            handler = self.dispatcher.due_handler(action.kind)
            if handler is None:
                action.status = "orphaned"
                log.error("no handler for due action kind %s", action.kind)
                return 0
            ctx = await build_context(session, self.settings, self.clock)
            await handler(action.data | {"ref": action.ref}, ctx)
            return 1
