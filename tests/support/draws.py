"""Drawing a task straight through storage (commit, then run on the frozen pool)."""

from __future__ import annotations

from storage import draws
from storage.db import Database
from tests.factories import NOW, make_task

SEED = bytes(32)


async def draw_all(db: Database, **fields: str) -> str:
    async with db.transaction() as s:
        task = await make_task(s, **fields)
        row, plan = await draws.commit(s, task, actor="a", now=NOW, secret=SEED)
        outcome = await draws.run(s, task, row, witness="w", actor="a", now=NOW, plan=plan)
        assert outcome.error is None, outcome.error
        return task.code
