"""The domain clock a process runs on, from the configuration and the database: the real clock,
or a drill clock (``[clock] start``/``speed``) anchored where every process reads it. A drill
is logged loudly: its dates are not real ones."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from bot.chat.context import Clock, DrillClock, SystemClock, wall_now
from bot.config import Settings
from storage import clock as clock_store
from storage.db import Database

log = logging.getLogger(__name__)


async def domain_clock(
    db: Database, settings: Settings, wall: Callable[[], dt.datetime] = wall_now
) -> Clock:
    """Raises ``storage.clock.ClockRefused`` when the database cannot run on this clock."""
    c = settings.clock
    async with db.transaction() as session:
        if c.start is None:
            await clock_store.use_real(session, wall())
            return SystemClock()
        anchor = await clock_store.drill_anchor(session, c.start, c.speed, wall())
    clock = DrillClock(c.start, c.speed, anchor, wall)
    log.warning(
        "DRILL CLOCK: simulated time is %s (start %s, %g simulated seconds per real second, "
        "anchored at wall time %s); records, deadlines and reminders follow it",
        clock.now().isoformat(),
        c.start.isoformat(),
        c.speed,
        anchor.isoformat(),
    )
    return clock


def refusal_line(exc: clock_store.ClockRefused) -> str:
    """The command line's wording of a refused clock."""
    f = exc.facts
    lines = {
        "ran_real": "this database has run on the real clock; a drill clock ([clock] start) "
        "needs a database of its own",
        "ran_drill": f"this database ran a drill (simulated from {f.get('start')}); remove "
        "[clock] start only with a database of its own",
        "earlier_start": f"[clock] start {f.get('start')} is earlier than the drill's recorded "
        f"start {f.get('recorded')}; simulated time never moves backwards",
        "speed_changed": f"[clock] speed {f.get('speed')} differs from the drill's {f.get('recorded')}; "
        "change it together with a later start",
    }
    return lines.get(exc.reason, exc.reason)
