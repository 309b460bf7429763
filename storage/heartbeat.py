"""Heartbeats: how instances tell a dead owner's leases from a live one's.

A lease (60 s by default) bounds how long a crashed process keeps what it claimed. Each live
instance also beats here every few seconds; an owner whose beat is older than `dead_after` is
dead, and its pending events and outbox messages become claimable at once. Freeing a lease
changes nothing else: a stalled owner that comes back still finds its event unless another
instance has claimed it meanwhile (storage.inbound.owned_many checks the owner), and a row an
owner holds locked in its handler's transaction is skipped, so a live owner never loses an
event it is working on. A reap never waits for a lock, so instances reaping each other at once
cannot deadlock (see `reap`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_for
from storage.models import InboundEvent, OutboxMessage, WorkerHeartbeat


async def beat(session: AsyncSession, owners: list[str], now: dt.datetime) -> None:
    """Record that these owners are alive now."""
    stmt = insert_for(session)(WorkerHeartbeat).values(
        [{"owner": o, "beat_at": now} for o in owners]
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["owner"], set_={"beat_at": stmt.excluded.beat_at}
        )
    )


async def reap(
    session: AsyncSession,
    now: dt.datetime,
    dead_after: dt.timedelta,
    *,
    own: Collection[str] = (),
) -> list[str]:
    """Free the leases of owners whose last beat is older than `dead_after`, never the `own`
    ones (the reaping instance's); returns them.

    Never waits for a lock (PostgreSQL): an owner's heartbeat row is locked while its beat is
    uncommitted, so a locked row is a live owner's and is skipped, as are the rows a handler
    holds. Two instances that find each other stale at once (the clock jumped) each beat, lock
    their own row, and skip the other's instead of waiting for it: no deadlock. A beat only
    ever waits for a reap, which waits for nothing."""
    stale = WorkerHeartbeat.beat_at < now - dead_after
    dead = list(
        (
            await session.execute(
                select(WorkerHeartbeat.owner)
                .where(stale, WorkerHeartbeat.owner.not_in(own))
                .order_by(WorkerHeartbeat.owner)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    if not dead:
        return []
    for table in (InboundEvent, OutboxMessage):
        held = (
            select(table.id)
            .where(table.status == "pending", table.lease_owner.in_(dead))
            .with_for_update(skip_locked=True)  # PostgreSQL: a row a handler holds stays its own
        )
        await session.execute(
            update(table)
            .where(table.id.in_(held.scalar_subquery()), table.lease_until > now)
            .values(lease_until=None)
            .execution_options(synchronize_session=False)
        )
    # Locked above: this waits for no one.
    await session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.owner.in_(dead)))
    return dead
