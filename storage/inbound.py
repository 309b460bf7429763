"""The inbound event table is the queue: record once under a durable key, claim with a lease.

One user's events run in arrival order across instances: only a user's oldest pending event is
ever claimable, so a second event waits until the first is done (or has failed for good).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.db import insert_for
from storage.models import InboundEvent


async def record(
    session: AsyncSession,
    *,
    dedup_key: str,
    userid: str,
    kind: str,
    payload: str,
    now: dt.datetime,
) -> int | None:
    """Insert the event as pending; return its id, or None when the key was seen before."""
    values = {
        "dedup_key": dedup_key,
        "userid": userid,
        "kind": kind,
        "payload": payload,
        "received_at": now,
        "status": "pending",
        "attempts": 0,
    }
    stmt = (
        insert_for(session)(InboundEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(InboundEvent.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True)
class NewEvent:
    dedup_key: str
    userid: str
    kind: str
    payload: str
    received_at: dt.datetime


def record_many(conn: Connection, events: list[NewEvent]) -> None:
    """One INSERT for a batch (group commit); keys seen before are skipped, not errors."""
    rows = [
        {
            "dedup_key": e.dedup_key,
            "userid": e.userid,
            "kind": e.kind,
            "payload": e.payload,
            "received_at": e.received_at,
            "status": "pending",
            "attempts": 0,
        }
        for e in events
    ]
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(insert(InboundEvent).on_conflict_do_nothing(index_elements=["dedup_key"]), rows)


def _lease_free(now: dt.datetime) -> ColumnElement[bool]:
    return or_(InboundEvent.lease_until.is_(None), InboundEvent.lease_until < now)


async def claim(
    session: AsyncSession, owner: str, now: dt.datetime, lease: dt.timedelta, limit: int = 20
) -> list[int]:
    """Lease the oldest pending event of up to `limit` users; returns the ids this owner won."""
    older = aliased(InboundEvent)
    earlier_pending = (
        select(older.id)
        .where(
            older.userid == InboundEvent.userid,
            older.status == "pending",
            older.id < InboundEvent.id,
        )
        .exists()
    )
    candidates = (
        select(InboundEvent.id)
        .where(InboundEvent.status == "pending", _lease_free(now), ~earlier_pending)
        .order_by(InboundEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL: instances take disjoint rows
    )
    # One statement: the re-check in WHERE makes a row another instance took meanwhile lose.
    result = await session.execute(
        update(InboundEvent)
        .where(InboundEvent.id.in_(candidates.scalar_subquery()), _lease_free(now))
        .values(lease_owner=owner, lease_until=now + lease, attempts=InboundEvent.attempts + 1)
        .returning(InboundEvent.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(result.scalars())


async def load_owned(session: AsyncSession, event_id: int, owner: str) -> InboundEvent | None:
    """Inside the handler's transaction: the event, locked, if this owner still holds it."""
    stmt = (
        select(InboundEvent)
        .where(
            InboundEvent.id == event_id,
            InboundEvent.lease_owner == owner,
            InboundEvent.status == "pending",
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def pending_count(session: AsyncSession) -> int:
    stmt = select(func.count()).select_from(InboundEvent).where(InboundEvent.status == "pending")
    return int((await session.execute(stmt)).scalar_one())
