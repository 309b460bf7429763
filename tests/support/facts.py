"""The statistics table's facts (``storage.facts``) as kept by the record's writes, against a
rebuild from the raw rows: the harness checks it at the end of every end-to-end test, so a
write path that moves a figure without refreshing its facts fails the test that drives it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage import facts
from storage.db import Database
from storage.models import CheckFact, CheckFactMember


async def snapshot(session: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    rows = await session.execute(
        select(*(getattr(CheckFact, c) for c in facts.FACT_COLUMNS)).order_by(
            CheckFact.inspection_id
        )
    )
    people = await session.execute(
        select(*(getattr(CheckFactMember, c) for c in facts.MEMBER_COLUMNS)).order_by(
            CheckFactMember.inspection_id, CheckFactMember.inspector_id
        )
    )
    return [tuple(r) for r in rows.all()], [tuple(r) for r in people.all()]


async def assert_facts_kept(db: Database) -> None:
    async with db.transaction() as s:
        kept = await snapshot(s)
        await facts.refresh(s)
        rebuilt = await snapshot(s)
    assert kept[0] == rebuilt[0], "check_fact differs from a rebuild from the raw rows"
    assert kept[1] == rebuilt[1], "check_fact_member differs from a rebuild from the raw rows"
