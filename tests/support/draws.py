"""Drawing a task straight through storage (commit, the witness value, then run on the frozen
pool)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage import draws
from storage.db import Database
from storage.models import Draw, Task
from tests.factories import NOW, make_task

SEED = bytes(32)
WITNESS = "witness1"  # the one witness fixed at sealing (never the sealer)


async def seal(
    s: AsyncSession,
    task: Task,
    secret: bytes,
    *,
    actor: str = "a",
    now: dt.datetime = NOW,
    unwitnessed: bool = False,
) -> tuple[Draw, Any]:
    """抽查 <任务> 见证人=witness1 (or 抽查 <任务> 无见证 <理由>)."""
    if unwitnessed:
        return await draws.commit(
            s, task, actor=actor, now=now, secret=secret, witnesses=None, unwitnessed_reason="测试"
        )
    return await draws.commit(s, task, actor=actor, now=now, secret=secret, witnesses=[WITNESS])


async def witnessed(
    s: AsyncSession,
    task: Task,
    row: Draw,
    value: str | None,
    *,
    now: dt.datetime = NOW,
    plan: Any = None,
    **run: Any,
) -> draws.Outcome:
    """见证 <任务> <value> by the sealed witness; the draw runs on it (``None``: a draw sealed
    without witness runs at once)."""
    if value is not None:
        complete = await draws.give_witness(s, task, row, actor=WITNESS, value=value, now=now)
        assert complete == value
    return await draws.run(s, task, row, witness=value, actor=WITNESS, now=now, plan=plan, **run)


async def draw_all(db: Database, **fields: str) -> str:
    async with db.transaction() as s:
        task = await make_task(s, **fields)
        row, plan = await seal(s, task, SEED)
        outcome = await witnessed(s, task, row, "w", plan=plan)
        assert outcome.error is None, outcome.error
        return task.code
