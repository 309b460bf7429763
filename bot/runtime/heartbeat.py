"""This instance's heartbeat: its claiming loops beat every `heartbeat_seconds`, and it frees
the leases of instances that stopped beating (storage/heartbeat.py), so a crash costs a few
seconds instead of a whole lease."""

from __future__ import annotations

import datetime as dt
import logging

from bot.chat.context import Clock
from bot.config import Settings
from storage import heartbeat
from storage.db import Database

log = logging.getLogger(__name__)

MISSED_BEATS = 3  # an owner is dead after this many intervals without a beat


class Heartbeat:
    def __init__(self, db: Database, settings: Settings, clock: Clock, owners: list[str]) -> None:
        self.db = db
        self.clock = clock
        self.owners = owners
        self.interval = dt.timedelta(seconds=settings.worker.heartbeat_seconds)
        self.dead_after = MISSED_BEATS * self.interval
        self._last: dt.datetime | None = None

    async def tick(self) -> None:
        """Beat and reap, at most once an interval (by the injected clock)."""
        now = self.clock.now()
        if self._last is not None and now - self._last < self.interval:
            return
        async with self.db.transaction(rules=False) as session:
            await heartbeat.beat(session, self.owners, now)
            dead = await heartbeat.reap(session, now, self.dead_after, own=self.owners)
        self._last = now
        if dead:
            log.warning(
                "freed the leases of %s (no heartbeat for %s)", ", ".join(dead), self.dead_after
            )
