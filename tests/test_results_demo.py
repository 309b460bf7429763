"""The demo's hook: a few inspectors answer on their cards and one swap is approved."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.tools.demo_play import demo_answers, demo_witnessed_draw
from storage import draws
from storage import tasks as task_store
from storage.models import DrawAmendment, InspectionResult
from tests.conftest import Harness
from tests.factories import CITY, FixedEntropy, add_inspectors, add_targets, make_task


async def test_demo_plays_inspectors_answering_and_one_swap(h: Harness) -> None:
    await h.grant("demo-admin", "admin", CITY)
    await h.grant("demo-chief", "chief", CITY)
    async with h.db.transaction() as s:
        await add_targets(s, 30)
        await add_inspectors(s, 6)
        code = (await make_task(s)).code
    await demo_witnessed_draw(
        h.db,
        h.settings,
        task_code=code,
        admin="demo-admin",
        witness="42",
        clock=h.clock,
        entropy=FixedEntropy(),
    )
    await h.settle()
    h.clock.advance(days=1)  # drawn on 2026-11-30; results come in the December check period
    played = await demo_answers(
        h.db, h.settings, task_code=code, clock=h.clock, response_code=h.wecom.new_response_code
    )
    await h.settle()
    assert [phrase for _, _, phrase in played.answered] == ["未发现问题", "发现问题已责令整改"]
    assert played.swap is not None and played.swap[1] != played.swap[2]
    closed = [u for u in h.wecom.card_updates if u["template_card"]["checkbox"].get("disable")]
    assert len(closed) == 2  # each click's card closed with a valid code
    assert len(h.wecom.card_updates) == 3  # and the swapped team's card names the new team
    async with h.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(InspectionResult)) == 2
        assert await s.scalar(select(func.count()).select_from(DrawAmendment)) == 1
        task = await task_store.get_task(s, code)
        assert task is not None and await draws.verify_task(s, task) is None
