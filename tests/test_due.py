"""Due actions: the database owns what is due; the scheduler only ticks; each runs once."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from bot.chat.context import Context
from bot.chat.router import Dispatcher, Router
from bot.runtime.due import DueRunner
from storage import due
from tests.conftest import Harness

router = Router("test-due")


@router.due_action("remind")
async def remind(data: dict[str, Any], ctx: Context) -> None:
    ctx.outbox.text([data["user"]], f"提醒：{data['ref']}")


def runner(h: Harness, owner: str) -> DueRunner:
    return DueRunner(h.db, Dispatcher([router]), h.settings, h.clock, owner)


async def test_a_due_action_runs_once_when_due_and_survives_restarts(h: Harness) -> None:
    async with h.db.transaction() as session:
        await due.schedule(
            session, "remind", "swap:7", h.clock.now() + dt.timedelta(hours=24), {"user": "head"}
        )
    assert await runner(h, "a").tick() == 0  # not yet due
    h.clock.advance(hours=24)
    # Two instances tick at once: the action happens once.
    ran = await asyncio.gather(runner(h, "a").tick(), runner(h, "b").tick())
    assert sorted(ran) == [0, 1]
    await h.settle()
    assert h.wecom.texts_to("head") == ["提醒：swap:7"]


async def test_a_cancelled_action_never_runs(h: Harness) -> None:
    async with h.db.transaction() as session:
        await due.schedule(session, "remind", "x", h.clock.now(), {"user": "u"})
        await due.cancel(session, "remind", "x")
    assert await runner(h, "a").tick() == 0
