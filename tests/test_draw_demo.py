"""The demo's hook: a witnessed draw run as chat runs it, and how anyone verifies it."""

from __future__ import annotations

from bot.tools.demo_play import demo_witnessed_draw
from storage import draws
from storage import tasks as task_store
from tests.conftest import Harness
from tests.factories import CITY, FixedEntropy, add_inspectors, add_targets, make_task


async def test_demo_runs_a_witnessed_draw_and_says_how_to_verify_it(h: Harness) -> None:
    await h.grant("demo-admin", "admin", CITY)
    await h.grant("demo-chief", "chief", CITY)
    async with h.db.transaction() as s:
        await add_targets(s, 30)
        await add_inspectors(s, 6)
        code = (await make_task(s)).code
    shown = await demo_witnessed_draw(
        h.db,
        h.settings,
        task_code=code,
        admin="demo-admin",
        chief="demo-chief",
        witness="双色球 2026138 期 03 07 12 19 25 31 + 09",
        clock=h.clock,
        entropy=FixedEntropy(),
    )
    await h.settle()
    assert shown.inspections == 3 and shown.task_code == code
    assert f"draw verify {code}.json" in shown.how_to_verify
    assert "reference_verifier.py" in shown.how_to_verify
    chief = h.wecom.texts_to("demo-chief")  # the witness: the commitment, then the result
    assert any(shown.commitment in t and "抽查承诺" in t for t in chief)
    assert any("抽取结果" in t for t in chief)
    admin = h.wecom.texts_to("demo-admin")  # the sealer hears the result too
    assert any("抽取结果" in t and shown.witness in t for t in admin)
    cards = [b for b in h.wecom.messages() if b.get("msgtype") == "template_card"]
    assert len(cards) == 3
    async with h.db.transaction() as s:
        task = await task_store.get_task(s, code)
        assert task is not None
        assert await draws.verify_task(s, task) is None
