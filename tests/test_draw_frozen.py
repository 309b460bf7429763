"""The witness step draws on exactly the pool the commitment froze, whether this process still
holds it in memory (the usual chat path: 抽查 then 见证) or must decode it from the record."""

from __future__ import annotations

import datetime as dt

import pytest

from inspection.draw import DrawInput, derive_seed, draw, fingerprinted, result_to_json
from storage import draws
from storage.db import Database
from storage.models import Draw
from storage.tasks import get_task
from tests.factories import COUNTY2, NOW, add_inspectors, add_targets, make_task

SECRET = bytes(range(32))


async def setup(db: Database) -> str:
    async with db.transaction() as s:
        await add_targets(s, 30)
        await add_targets(s, 20, org=COUNTY2, tier="key")
        await add_targets(
            s, 1, start=99, approval_level="region", construction_started_on=dt.date(2026, 5, 1)
        )
        await add_inspectors(s, 6)
        return (await make_task(s, 一般="20%", 重点="3")).code


async def commit(db: Database, code: str) -> Draw:
    """抽查 <任务>, in its own transaction."""
    async with db.transaction() as s:
        task = await get_task(s, code)
        assert task is not None
        row, _ = await draws.commit(s, task, actor="a", now=NOW, secret=SECRET)
        return row


async def witness(db: Database, code: str) -> draws.Outcome:
    """见证 <任务> 12345, in another transaction; the record must replay (MATCH)."""
    async with db.transaction() as s:
        task = await get_task(s, code)
        assert task is not None
        row = await draws.latest_draw(s, task.id)
        assert row is not None
        outcome = await draws.run(s, task, row, witness="12345", actor="a", now=NOW)
        assert outcome.error is None, outcome.error
        assert await draws.verify_task(s, task) is None
        return outcome


async def test_the_witness_step_draws_on_the_pool_this_process_froze(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = await setup(db)
    await commit(db, code)

    def no_decoding(packed: bytes) -> DrawInput:
        raise AssertionError("the frozen pool was decoded although this process froze it")

    with monkeypatch.context() as m:
        m.setattr(draws, "load_input", no_decoding)
        outcome = await witness_without_verify(db, code)
    assert outcome.construction is not None and len(outcome.construction.selected) == 1
    async with db.transaction() as s:
        task = await get_task(s, code)
        assert task is not None
        assert await draws.verify_task(s, task) is None  # replayed from the record: MATCH


async def witness_without_verify(db: Database, code: str) -> draws.Outcome:
    async with db.transaction() as s:
        task = await get_task(s, code)
        assert task is not None
        row = await draws.latest_draw(s, task.id)
        assert row is not None
        outcome = await draws.run(s, task, row, witness="12345", actor="a", now=NOW)
        assert outcome.error is None, outcome.error
        return outcome


async def test_without_it_the_record_is_decoded_to_the_same_draw(db: Database) -> None:
    code = await setup(db)
    row = await commit(db, code)
    cached, cached_extra = draws._frozen[(row.id, row.fingerprint, row.construction_fingerprint)]
    draws._frozen.clear()  # another instance runs the witness step, or this one restarted
    decoded = await witness(db, code)
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
    row = await commit(db, code)
    real, _ = draws._frozen.pop((row.id, row.fingerprint, row.construction_fingerprint))
    empty = DrawInput((), real.inspectors, {}, real.policy)
    # The same draw id with another fingerprint (a rolled-back commit, another database).
    draws._frozen[(row.id, "0" * 64, row.construction_fingerprint)] = (empty, None)
    outcome = await witness(db, code)
    assert outcome.result is not None
    assert len(outcome.result.selected) == sum(row.summary["counts"].values()) == 10


async def test_only_the_latest_pools_are_kept(db: Database) -> None:
    draws._frozen.clear()
    codes = []
    async with db.transaction() as s:
        await add_targets(s, 30)
        await add_inspectors(s, 4)
        for i in range(draws.FROZEN_KEEP + 1):
            codes.append((await make_task(s, 一般="1", 名称=f"任务{i}")).code)
    rows = [await commit(db, code) for code in codes]
    assert [key[0] for key in draws._frozen] == [r.id for r in rows[1:]]
    for code in codes:  # the evicted one is decoded, the others come from memory: all replay
        await witness(db, code)
