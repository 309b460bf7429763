"""Due actions: timers the database owns (reminders, lapses), so they survive restarts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DueAction


async def schedule(
    session: AsyncSession, kind: str, ref: str, due_at: dt.datetime, data: dict[str, Any]
) -> DueAction:
    """Schedule (or move) the one pending action of this kind for this ref."""
    existing = (
        await session.execute(select(DueAction).where(DueAction.kind == kind, DueAction.ref == ref))
    ).scalar_one_or_none()
    if existing is not None:
        existing.due_at, existing.data, existing.status, existing.done_at = (
            due_at,
            data,
            "pending",
            None,
        )
        return existing
    action = DueAction(kind=kind, ref=ref, due_at=due_at, data=data, status="pending")
    session.add(action)
    await session.flush()
    return action


async def cancel(session: AsyncSession, kind: str, ref: str) -> None:
    await session.execute(
        update(DueAction)
        .where(DueAction.kind == kind, DueAction.ref == ref, DueAction.status == "pending")
        .values(status="cancelled")
    )


async def due_ids(session: AsyncSession, now: dt.datetime, limit: int = 100) -> list[int]:
    rows = await session.execute(
        select(DueAction.id)
        .where(DueAction.status == "pending", DueAction.due_at <= now)
        .order_by(DueAction.due_at, DueAction.id)
        .limit(limit)
    )
    return list(rows.scalars())


async def take(session: AsyncSession, action_id: int, now: dt.datetime) -> DueAction | None:
    """Mark the action done inside the caller's transaction; None if another instance took it."""
    result = await session.execute(
        update(DueAction)
        .where(DueAction.id == action_id, DueAction.status == "pending")
        .values(status="done", done_at=now)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return await session.get(DueAction, action_id, populate_existing=True)
