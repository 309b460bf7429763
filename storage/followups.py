"""What followed an inspection (Art. 34, 38): hand-overs to the judiciary and penalty decisions
made later, kept beside the result (case filing and transfer to another authority are result
phrases 3 and 5). Recording the same one twice records it once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_for
from storage.models import FollowUp, Inspection

JUDICIARY, PENALTY = "judiciary", "penalty"


async def add(
    session: AsyncSession,
    inspection: Inspection,
    kind: str,
    *,
    on: dt.date,
    by: str,
    now: dt.datetime,
    body: str = "",
    reference: str = "",
) -> bool:
    """False when that very follow-up was already recorded."""
    stmt = (
        insert_for(session)(FollowUp)
        .values(
            inspection_id=inspection.id,
            kind=kind,
            body=body,
            reference=reference,
            on=on,
            userid=by,
            at=now,
        )
        .on_conflict_do_nothing(index_elements=["inspection_id", "kind", "body", "reference"])
        .returning(FollowUp.id)
    )
    return (await session.execute(stmt)).first() is not None


async def of(session: AsyncSession, inspection_id: int) -> list[FollowUp]:
    """An inspection's follow-ups in the order they were recorded (the publication work
    publishes the penalty decisions with the result, Art. 38)."""
    rows = await session.execute(
        select(FollowUp).where(FollowUp.inspection_id == inspection_id).order_by(FollowUp.id)
    )
    return list(rows.scalars())
