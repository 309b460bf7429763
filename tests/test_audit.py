"""The audit record: append-only, hash-chained, and `audit verify` names what was tampered with."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import delete, select, update

from storage import audit
from storage.db import Database
from storage.models import AuditEntry

AT = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)


async def _append(db: Database, n: int) -> None:
    for i in range(n):
        async with db.transaction() as session:
            await audit.append(
                session, at=AT, actor="admin", action="test", subject=f"task:T{i}", payload={"i": i}
            )


async def test_art40_chain_verifies_when_untouched(db: Database) -> None:
    await _append(db, 5)
    async with db.transaction() as session:
        report = await audit.verify(session)
    assert report.ok and report.entries == 5


async def test_art40_an_altered_entry_is_named(db: Database) -> None:
    await _append(db, 5)
    async with db.transaction() as session:
        await session.execute(
            update(AuditEntry).where(AuditEntry.id == 3).values(payload={"i": 99})
        )
    async with db.transaction() as session:
        report = await audit.verify(session)
    assert (report.first_bad_id, report.problem) == (3, "entry 3 was altered")


async def test_art40_a_removed_entry_is_named(db: Database) -> None:
    await _append(db, 5)
    async with db.transaction() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.id == 2))
    async with db.transaction() as session:
        assert (await audit.verify(session)).first_bad_id == 2


async def test_art40_removing_the_newest_entries_is_noticed(db: Database) -> None:
    await _append(db, 5)
    async with db.transaction() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.id >= 4))
    async with db.transaction() as session:
        report = await audit.verify(session)
    assert report.first_bad_id == 4


async def test_a_rolled_back_change_leaves_no_audit_entry(db: Database) -> None:
    try:
        async with db.transaction() as session:
            await audit.append(session, at=AT, actor="a", action="x", subject="s")
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    async with db.transaction() as session:
        assert (await session.execute(select(AuditEntry))).first() is None
        assert (await audit.verify(session)).ok


async def test_concurrent_appends_keep_one_chain(db: Database) -> None:
    async def writer(k: int) -> None:
        for i in range(5):
            async with db.transaction() as session:
                await audit.append(session, at=AT, actor=f"w{k}", action="t", subject=f"s{i}")

    await asyncio.gather(*(writer(k) for k in range(4)))
    async with db.transaction() as session:
        report = await audit.verify(session)
    assert report.ok and report.entries == 20
