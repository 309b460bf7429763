"""The witness step draws on exactly the pool the commitment froze, whether this process still
holds it in memory (the usual chat path: 抽查 then 见证) or must decode it from the record.

Which of the two a witness step drew on is seen through the record alone: while the record's
frozen documents are unreadable, only a pool held in memory can be drawn on, and a witness
step that decodes fails."""

from __future__ import annotations

import datetime as dt
import zlib

import pytest
from sqlalchemy import update

from inspection.draw import derive_seed, draw, fingerprinted, result_to_json
from inspection.pool import PoolPlan
from inspection.verify import verify_export
from storage import draws
from storage.db import Database
from storage.models import Draw
from storage.tasks import get_task
from tests.factories import COUNTY2, add_inspectors, add_targets, make_task
from tests.support.draws import seal, witnessed

SECRET = bytes(range(32))
UNREADABLE = b"not a frozen pool"  # what decoding it raises: zlib.error


async def setup(db: Database) -> str:
    async with db.transaction() as s:
        await add_targets(s, 30)
        await add_targets(s, 20, org=COUNTY2, tier="key")
        await add_targets(
            s, 1, start=99, approval_level="region", construction_started_on=dt.date(2026, 5, 1)
        )
        await add_inspectors(s, 6)
        return (await make_task(s, 一般="20%", 重点="3")).code


async def commit(db: Database, code: str) -> tuple[Draw, PoolPlan]:
    """抽查 <任务>, in its own transaction; also the pool it froze."""
    async with db.transaction() as s:
        task = await get_task(s, code)
        assert task is not None
        return await seal(s, task, SECRET)


async def witness(db: Database, code: str) -> draws.Outcome:
    """见证 <任务> 12345, in another transaction; the record must replay (MATCH)."""
    outcome = await witness_without_verify(db, code)
    await verify(db, code)
    return outcome


async def witness_without_verify(db: Database, code: str) -> draws.Outcome:
    async with db.transaction() as s:
        task = await get_task(s, code)
        assert task is not None
        row = await draws.latest_draw(s, task.id)
        assert row is not None
        outcome = await witnessed(s, task, row, "12345")
        assert outcome.error is None, outcome.error
        return outcome


async def verify(db: Database, code: str) -> None:
    async with db.transaction() as s:
        task = await get_task(s, code)
        assert task is not None
        assert await draws.verify_task(s, task) is None  # replayed from the record: MATCH


async def store_documents(db: Database, row: Draw, *, readable: bool) -> None:
    """Make the record's frozen documents unreadable, or put back what ``row`` holds."""
    if readable:
        docs = {"input_doc": row.input_doc, "construction_doc": row.construction_doc}
    else:
        docs = {
            "input_doc": UNREADABLE,
            "construction_doc": UNREADABLE if row.construction_doc is not None else None,
        }
    async with db.transaction() as s:
        await s.execute(update(Draw).where(Draw.id == row.id).values(**docs))


async def commit_others(db: Database, n: int) -> list[tuple[str, Draw]]:
    """Commit ``n`` more tasks' draws (on a pool of their own), the latest in this process."""
    async with db.transaction() as s:
        codes = [(await make_task(s, 一般="1", 名称=f"其他任务{i}")).code for i in range(n)]
    return [(code, (await commit(db, code))[0]) for code in codes]


async def test_the_witness_step_draws_on_the_pool_this_process_froze(db: Database) -> None:
    code = await setup(db)
    row, _ = await commit(db, code)
    await store_documents(db, row, readable=False)
    # The record cannot be decoded: the draw below is on the pool held in memory.
    outcome = await witness_without_verify(db, code)
    assert outcome.construction is not None and len(outcome.construction.selected) == 1
    await store_documents(db, row, readable=True)
    await verify(db, code)


async def test_without_it_the_record_is_decoded_to_the_same_draw(db: Database) -> None:
    code = await setup(db)
    row, plan = await commit(db, code)
    # Later draws take its place in memory (as another instance, or a restart, would not have
    # it at all): now the witness step decodes the record, and fails on an unreadable one.
    await commit_others(db, draws.FROZEN_KEEP)
    await store_documents(db, row, readable=False)
    with pytest.raises(zlib.error):
        await witness_without_verify(db, code)
    await store_documents(db, row, readable=True)
    decoded = await witness(db, code)
    cached, cached_extra = plan.input, plan.construction  # what commit kept in memory
    assert row.construction_doc is not None and cached_extra is not None
    inp, extra = draws.load_input(row.input_doc), draws.load_input(row.construction_doc)
    # What was kept in memory is what the record holds: same fingerprints, same draw.
    assert fingerprinted(cached)[0] == row.fingerprint == fingerprinted(inp)[0]
    assert fingerprinted(cached_extra)[0] == row.construction_fingerprint
    assert fingerprinted(extra)[0] == row.construction_fingerprint
    assert decoded.result is not None
    seed = derive_seed(SECRET, "12345")
    assert result_to_json(draw(cached, seed)) == result_to_json(decoded.result)
    assert result_to_json(draw(inp, seed)) == result_to_json(decoded.result)


async def test_an_entry_for_another_pool_is_never_used(db: Database) -> None:
    code = await setup(db)
    row, frozen = await commit(db, code)
    # The same draw id with another fingerprint (a rolled-back commit, another database): the
    # record now holds the pool as it stands after 20 more targets, this process the old one.
    async with db.transaction() as s:
        await add_targets(s, 20, start=200)
        task = await get_task(s, code)
        assert task is not None
        other = await draws.preview(s, task)
        fp, doc = fingerprinted(other.input)
        c_fp, c_doc = fingerprinted(other.construction) if other.construction else (None, None)
        await s.execute(
            update(Draw)
            .where(Draw.id == row.id)
            .values(
                fingerprint=fp,
                input_doc=draws.pack(doc),
                construction_fingerprint=c_fp,
                construction_doc=draws.pack(c_doc) if c_doc else None,
                summary=other.summary(),
                exclusions=[e.to_json() for e in other.exclusions],
            )
        )
    assert fp != row.fingerprint and other.summary() != frozen.summary()
    outcome = await witness_without_verify(db, code)
    assert outcome.result is not None
    assert len(outcome.result.selected) == sum(other.summary()["counts"].values()) == 14
    async with db.transaction() as s:
        task = await get_task(s, code)
        assert task is not None
        # The drawn record replays on its own; only the audit record, which sealed the old
        # pool's fingerprint with the commitment, shows the pool was swapped under it.
        assert verify_export(await draws.export(s, task)) is None
        problem = await draws.verify_task(s, task)
        assert problem is not None and problem.startswith("record: fingerprint"), problem


async def test_only_the_latest_pools_are_kept(db: Database) -> None:
    async with db.transaction() as s:
        await add_targets(s, 30)
        await add_inspectors(s, 4)
    committed = await commit_others(db, draws.FROZEN_KEEP + 1)
    for _, row in committed:
        await store_documents(db, row, readable=False)
    (evicted_code, evicted), *kept = committed
    with pytest.raises(zlib.error):  # the oldest is no longer in memory: decoding fails
        await witness_without_verify(db, evicted_code)
    for code, _ in kept:  # the latest come from memory
        await witness_without_verify(db, code)
    for _, row in committed:
        await store_documents(db, row, readable=True)
    await witness(db, evicted_code)  # the evicted one is decoded: all replay
    for code, _ in kept:
        await verify(db, code)
