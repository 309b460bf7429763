"""Interactive cards after delivery: the response codes WeCom hands out (one per delivery and
one per click), each good for one update of the card within 72 hours, and the copies voided by
a text when no code was left to update them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_for
from storage.models import CardCode, CardVoid

# WeCom: "一个code只能调用一次该接口，且只能在72小时内调用"; a margin for the send's own delay.
CODE_LIFETIME = dt.timedelta(hours=72) - dt.timedelta(minutes=10)


async def remember(session: AsyncSession, task_id: str, code: str, now: dt.datetime) -> None:
    """A code handed out for card ``task_id`` (a second sight of the same code keeps the first)."""
    if not task_id or not code:
        return
    await session.execute(
        insert_for(session)(CardCode)
        .values(response_code=code, task_id=task_id, issued_at=now)
        .on_conflict_do_nothing(index_elements=["response_code"])
    )


async def spend(session: AsyncSession, code: str, now: dt.datetime) -> bool:
    """Take ``code`` for one update; False when it was spent already (or is unknown)."""
    changed = await session.execute(
        update(CardCode)
        .where(CardCode.response_code == code, CardCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(changed.rowcount)  # type: ignore[attr-defined]


async def take(session: AsyncSession, task_id: str, now: dt.datetime) -> str | None:
    """The newest unspent code of card ``task_id`` still in its 72 hours, spent; else None."""
    rows = await session.execute(
        select(CardCode.response_code)
        .where(
            CardCode.task_id == task_id,
            CardCode.used_at.is_(None),
            CardCode.issued_at > now - CODE_LIFETIME,
        )
        .order_by(CardCode.issued_at.desc())
    )
    for code in rows.scalars():
        if await spend(session, code, now):
            return code
    return None


async def void(
    session: AsyncSession, task_id: str, userids: Iterable[str], now: dt.datetime
) -> None:
    for userid in dict.fromkeys(userids):
        await session.execute(
            insert_for(session)(CardVoid)
            .values(task_id=task_id, userid=userid, at=now)
            .on_conflict_do_nothing(index_elements=["task_id", "userid"])
        )


async def voided(session: AsyncSession, task_id: str, userid: str) -> bool:
    row = await session.execute(
        select(CardVoid.at).where(CardVoid.task_id == task_id, CardVoid.userid == userid)
    )
    return row.first() is not None
