"""Which clock a database runs on (``DomainClock``): the real one, or a drill's simulated clock
whose anchor every process reads from here. Refusals carry reason codes; the CLI words them.

- A database that has run on the real clock refuses a drill (its records would mix times);
  one that ran a drill refuses the real clock, and its audit record says it ran a drill.
- A drill's start may move forward (a new anchor) but never back, and its speed is fixed for a
  start: either change would move simulated time backwards.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.db import insert_for
from storage.models import AuditEntry, DomainClock

REAL, DRILL = "real", "drill"


class ClockRefused(Exception):
    def __init__(self, reason: str, **facts: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.facts = facts


async def _claim(session: AsyncSession, **values: Any) -> DomainClock:
    """The row, written with ``values`` if this database has none yet (once, across processes),
    locked for this transaction."""
    insert = insert_for(session)
    await session.execute(insert(DomainClock).values(id=1, **values).on_conflict_do_nothing())
    row = (
        await session.execute(select(DomainClock).where(DomainClock.id == 1).with_for_update())
    ).scalar_one()
    await session.refresh(row)
    return row


async def _ran_before(session: AsyncSession) -> bool:
    """Records from before the clock was kept: they were made on the real clock."""
    n = (await session.execute(select(func.count()).select_from(AuditEntry))).scalar_one()
    return bool(n)


async def use_real(session: AsyncSession, wall: dt.datetime) -> None:
    row = await session.get(DomainClock, 1)
    if row is None:
        row = await _claim(session, mode=REAL, updated_at=wall)
    if row.mode == DRILL:
        raise ClockRefused("ran_drill", start=row.start)


async def drill_anchor(
    session: AsyncSession, start: dt.datetime, speed: float, wall: dt.datetime
) -> dt.datetime:
    """The wall time ``start`` was first used at (now, for a new or later start)."""
    row = await session.get(DomainClock, 1)
    if row is None:
        if await _ran_before(session):
            raise ClockRefused("ran_real")
        row = await _claim(
            session, mode=DRILL, start=start, speed=speed, anchor=wall, updated_at=wall
        )
        if row.anchor == wall and row.start == start:
            await _mark(session, start, speed, wall)
    if row.mode == REAL:
        raise ClockRefused("ran_real")
    assert row.start is not None and row.anchor is not None
    if start < row.start:
        raise ClockRefused("earlier_start", start=start, recorded=row.start)
    if start > row.start:
        row.start, row.speed, row.anchor, row.updated_at = start, speed, wall, wall
        await _mark(session, start, speed, wall)
    elif row.speed != speed:
        raise ClockRefused("speed_changed", speed=speed, recorded=row.speed)
    return row.anchor


async def _mark(session: AsyncSession, start: dt.datetime, speed: float, wall: dt.datetime) -> None:
    await audit.append(
        session,
        at=start,
        actor="system",
        action="clock.drill",
        subject="clock",
        payload={"start": start.isoformat(), "speed": speed, "anchor": wall.isoformat()},
    )
