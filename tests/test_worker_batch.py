"""The worker handles a claim's events in one transaction, each in a savepoint of its own: one
event's failure undoes its own effects only, and its neighbours' effects and done marks commit."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.chat.context import Context, UserError
from bot.chat.inbound import TextCommand
from bot.chat.router import Dispatcher, Router
from bot.runtime import worker as worker_module
from bot.runtime.worker import EventWorker
from storage.models import InboundEvent
from tests.conftest import Harness
from tests.support.waiting import within


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


async def test_a_failed_event_is_retried_alone_and_every_user_is_answered_once(
    h: Harness,
) -> None:
    """The event whose handler raised is retried after its backoff, by itself; its first
    attempt's reply never leaves, its neighbours are not handled again."""
    attempts: dict[str, int] = {}
    router = Router("flaky")

    @router.command("好", summary="answers")
    async def good(message: TextCommand, ctx: Context) -> None:
        attempts[message.user] = attempts.get(message.user, 0) + 1
        ctx.reply(f"好 {message.user}")

    @router.command("偶", summary="fails at its first attempt only")
    async def flaky(message: TextCommand, ctx: Context) -> None:
        attempts[message.user] = attempts.get(message.user, 0) + 1
        ctx.reply(f"第 {attempts[message.user]} 次")
        if attempts[message.user] == 1:
            raise RuntimeError("first attempt")

    for user, text in (("u1", "好"), ("u2", "偶"), ("u3", "好")):
        assert (await h.post_text(user, text))[0] == 200
    worker = EventWorker(h.db, Dispatcher([router]), h.settings, h.clock, owner="flaky")
    assert await worker.run_once() == 3
    assert await worker.run_once() == 0  # the failed one waits out its backoff
    h.clock.advance(seconds=3)  # past the first retry's backoff (2 s)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    await h.runtime.sender.run_once()

    assert attempts == {"u1": 1, "u2": 2, "u3": 1}
    assert [h.wecom.texts_to(u) for u in ("u1", "u2", "u3")] == [["好 u1"], ["第 2 次"], ["好 u3"]]
    messages = await h.outbox()
    assert len(messages) == 3 and len({m.cause_event_id for m in messages}) == 3
    async with h.db.transaction() as session:
        events = (await session.execute(select(InboundEvent))).scalars().all()
    assert sorted((e.userid, e.status, e.attempts) for e in events) == [
        ("u1", "done", 1),
        ("u2", "done", 2),
        ("u3", "done", 1),
    ]


async def test_a_batch_killed_midway_leaves_nothing_and_is_answered_once_after(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies inside the third event of a batch: the two events already handled in
    that transaction never committed, so nothing of theirs is left; another instance takes
    the batch over once the dead one's heartbeat stops, and every user is answered once."""
    monkeypatch.setattr(worker_module, "BATCH_SECONDS", 3600.0)  # one batch, whatever the CPU
    entered, never = asyncio.Event(), asyncio.Event()
    handled: list[str] = []

    def dispatcher(dies: bool) -> Dispatcher:
        router = Router("batch")

        @router.command("好", summary="answers")
        async def good(message: TextCommand, ctx: Context) -> None:
            handled.append(message.user)
            ctx.reply(f"好 {message.user}")

        @router.command("死", summary="the process dies in here (in the doomed instance)")
        async def doomed(message: TextCommand, ctx: Context) -> None:
            handled.append(message.user)
            ctx.reply(f"活 {message.user}")
            if dies:
                entered.set()
                await never.wait()

        return Dispatcher([router])

    for user, text in (("u1", "好"), ("u2", "好"), ("u3", "死"), ("u4", "好")):
        assert (await h.post_text(user, text))[0] == 200
    dead = EventWorker(h.db, dispatcher(True), h.settings, h.clock, owner="dead-instance")
    crashed = asyncio.create_task(dead.run_once())
    await within(entered.wait(), "the doomed handler to start")
    crashed.cancel()  # SIGKILL: the batch's transaction never commits; its leases stay behind
    await asyncio.gather(crashed, return_exceptions=True)
    assert handled == ["u1", "u2", "u3"]
    assert await h.outbox() == []
    async with h.db.transaction() as session:
        events = (await session.execute(select(InboundEvent))).scalars().all()
    assert {e.status for e in events} == {"pending"}
    assert {e.lease_owner for e in events} == {"dead-instance"}

    h.clock.advance(seconds=16)  # three missed heartbeats: the dead instance's leases free up
    live = EventWorker(h.db, dispatcher(False), h.settings, h.clock, owner="live-instance")
    assert await live.run_once() == 4
    assert await live.run_once() == 0
    await h.runtime.sender.run_once()
    assert [h.wecom.texts_to(u) for u in ("u1", "u2", "u3", "u4")] == [
        ["好 u1"],
        ["好 u2"],
        ["活 u3"],
        ["好 u4"],
    ]
    assert len(await h.outbox()) == 4
