"""The inbound event table is the queue: record once under a durable key, claim with a lease.

One user's events run in arrival order across instances: only a user's oldest pending event is
ever claimable, so a second event waits until the first is done (or has failed for good).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from storage.db import insert_for
from storage.models import InboundEvent

WECOM, CONSOLE = "wecom", "console"  # where an event came in; each is claimed by its own kind


@dataclass(frozen=True)
class NewEvent:
    dedup_key: str
    userid: str
    kind: str
    payload: str
    received_at: dt.datetime
    channel: str = WECOM

    def row(self) -> dict[str, Any]:
        return {
            "dedup_key": self.dedup_key,
            "userid": self.userid,
            "kind": self.kind,
            "payload": self.payload,
            "received_at": self.received_at,
            "channel": self.channel,
            "status": "pending",
            "attempts": 0,
        }


def _insert_new(db: AsyncSession | Connection) -> Any:
    """INSERT of pending events; a key seen before is skipped, not an error."""
    return insert_for(db)(InboundEvent).on_conflict_do_nothing(index_elements=["dedup_key"])


async def record(
    session: AsyncSession,
    *,
    dedup_key: str,
    userid: str,
    kind: str,
    payload: str,
    now: dt.datetime,
    channel: str = WECOM,
) -> int | None:
    """Insert the event as pending; return its id, or None when the key was seen before."""
    event = NewEvent(dedup_key, userid, kind, payload, now, channel)
    stmt = _insert_new(session).values(**event.row()).returning(InboundEvent.id)
    return (await session.execute(stmt)).scalar_one_or_none()


def record_many(conn: Connection, events: list[NewEvent]) -> None:
    """One INSERT for a batch (group commit)."""
    conn.execute(_insert_new(conn), [e.row() for e in events])


def _lease_free(now: dt.datetime) -> ColumnElement[bool]:
    return or_(InboundEvent.lease_until.is_(None), InboundEvent.lease_until < now)


async def claim(
    session: AsyncSession,
    owner: str,
    now: dt.datetime,
    lease: dt.timedelta,
    limit: int = 20,
    channel: str = WECOM,
) -> list[int]:
    """Lease the oldest pending event of up to `limit` users that came in on ``channel``;
    returns the ids this owner won."""
    older = aliased(InboundEvent)
    earlier_pending = (
        select(older.id)
        .where(
            older.userid == InboundEvent.userid,
            older.channel == InboundEvent.channel,
            older.status == "pending",
            older.id < InboundEvent.id,
        )
        .exists()
    )
    candidates = (
        select(InboundEvent.id)
        .where(
            InboundEvent.status == "pending",
            InboundEvent.channel == channel,
            _lease_free(now),
            ~earlier_pending,
        )
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
    """Inside a transaction: the event, locked, if this owner still holds it (as an ORM object;
    the worker reads its claims with ``owned_many``)."""
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


@dataclass(frozen=True)
class Owned:
    """What the worker needs of a claimed event (read as plain columns, not as an ORM object)."""

    id: int
    userid: str
    channel: str
    payload: str
    attempts: int


_EVENTS: Table = InboundEvent.__table__  # type: ignore[assignment]

# Built once: the worker runs these for every event (no statement construction on the hot path).
_OWNED = (
    select(_EVENTS.c.id, _EVENTS.c.userid, _EVENTS.c.channel, _EVENTS.c.payload, _EVENTS.c.attempts)
    .where(
        _EVENTS.c.id.in_(bindparam("ids", expanding=True)),
        _EVENTS.c.lease_owner == bindparam("owner"),
        _EVENTS.c.status == "pending",
    )
    .order_by(_EVENTS.c.id)
    .with_for_update()
)
_DONE = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_id"))
    .values(status="done", processed_at=bindparam("at"), lease_owner=None, error=bindparam("why"))
)
_SETTLE = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_id"))
    .values(
        status=bindparam("to"),
        processed_at=bindparam("at"),
        lease_owner=None,
        lease_until=bindparam("until"),
        error=bindparam("why"),
    )
)


async def owned_many(conn: AsyncConnection, event_ids: list[int], owner: str) -> list[Owned]:
    """Inside the handler's transaction (its session's connection): those of these events this
    owner still holds, locked, in id order."""
    rows = await conn.execute(_OWNED, {"ids": event_ids, "owner": owner})
    return [Owned(*row) for row in rows]


async def mark_done(
    conn: AsyncConnection, event_id: int, at: dt.datetime, error: str | None = None
) -> None:
    """The event is handled (``error``: why it was dropped unhandled, e.g. an unreadable
    payload): one statement, seen at once by what the transaction does next."""
    await conn.execute(_DONE, {"event_id": event_id, "at": at, "why": error})


async def mark_failed(
    conn: AsyncConnection,
    event_id: int,
    at: dt.datetime,
    error: str,
    *,
    retry_at: dt.datetime | None,
) -> None:
    """The handler failed: pending again from ``retry_at`` (its lease let go), or, with no
    ``retry_at``, failed for good."""
    status, processed = ("pending", None) if retry_at is not None else ("failed", at)
    await conn.execute(
        _SETTLE,
        {"event_id": event_id, "to": status, "at": processed, "until": retry_at, "why": error},
    )


async def pending_count(session: AsyncSession) -> int:
    stmt = select(func.count()).select_from(InboundEvent).where(InboundEvent.status == "pending")
    return int((await session.execute(stmt)).scalar_one())
