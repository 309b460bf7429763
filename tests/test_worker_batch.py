"""The worker handles a claim's events in one transaction, each in a savepoint of its own: one
event's failure undoes its own effects only, and its neighbours' effects and done marks commit."""

from __future__ import annotations

from sqlalchemy import select

from bot.chat.context import Context, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Dispatcher, Router
from bot.runtime.worker import EventWorker
from storage.models import InboundEvent
from tests.conftest import Harness


def _router() -> Dispatcher:
    router = Router("batch")

    @router.command("好", summary="answers")
    async def good(message: TextCommand, ctx: Context) -> None:
        ctx.reply(f"好 {message.user}")

    @router.command("坏", summary="queues a reply, then fails")
    async def bad(message: TextCommand, ctx: Context) -> None:
        ctx.reply("never sent")
        await ctx.session.flush()
        raise RuntimeError("boom")

    @router.command("拒", summary="queues a reply, then refuses")
    async def refuse(message: TextCommand, ctx: Context) -> None:
        ctx.reply("never sent either")
        raise UserError("不行")

    return Dispatcher([router])


async def test_a_failing_event_in_a_batch_rolls_back_only_its_own_effects(h: Harness) -> None:
    for user, text in (("u1", "好"), ("u2", "坏"), ("u3", "拒"), ("u4", "好")):
        assert (await h.post_text(user, text))[0] == 200
    worker = EventWorker(h.db, _router(), h.settings, h.clock, owner="batch")
    assert await worker.run_once() == 4
    await h.runtime.sender.run_once()

    assert h.wecom.texts_to("u1") == ["好 u1"] and h.wecom.texts_to("u4") == ["好 u4"]
    assert h.wecom.texts_to("u2") == []  # its reply was rolled back with its savepoint
    assert h.wecom.texts_to("u3") == ["不行"]  # a refusal replaces what the handler queued
    async with h.db.transaction() as session:
        events = {
            e.userid: e for e in (await session.execute(select(InboundEvent))).scalars().all()
        }
    assert {u: events[u].status for u in events} == {
        "u1": "done",
        "u2": "pending",
        "u3": "done",
        "u4": "done",
    }
    failed = events["u2"]
    assert failed.attempts == 1 and "boom" in (failed.error or "")
    assert failed.lease_owner is None and failed.lease_until is not None  # retried after backoff
    texts = [m.body["text"]["content"] for m in await h.outbox()]
    assert "never sent" not in texts and "never sent either" not in texts
