"""A crashed instance's claims are retried once its heartbeat stops (three missed beats, 15 s by
default), not after the whole lease (60 s); a live owner never loses what it is working on."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import select

from bot.chat.context import Context
from bot.chat.inbound import TextCommand
from bot.chat.router import Dispatcher, Router
from bot.runtime.worker import EventWorker
from storage import heartbeat
from storage import outbox as ob
from storage.models import InboundEvent
from tests.conftest import Harness
from tests.support.waiting import within

DEAD_AFTER = 16  # seconds: past three missed beats of 5 s, far inside the 60 s lease


async def _events(h: Harness) -> list[InboundEvent]:
    async with h.db.transaction() as session:
        return list(
            (await session.execute(select(InboundEvent).order_by(InboundEvent.id))).scalars()
        )


def _blocking(entered: asyncio.Event, release: asyncio.Event, effects: list[str]) -> Dispatcher:
    router = Router("blocking")

    @router.command("慢", summary="waits for the test, then answers once")
    async def slow_handler(message: TextCommand, ctx: Context) -> None:
        entered.set()
        await release.wait()
        effects.append(message.user)
        ctx.reply("慢处理完成")

    return Dispatcher([router])


async def test_a_crashed_workers_event_is_retried_after_missed_heartbeats_not_the_lease(
    h: Harness,
) -> None:
    assert (await h.post_text("wangwu", "帮助"))[0] == 200
    # Another instance's worker claims the event and dies while handling it.
    entered, never = asyncio.Event(), asyncio.Event()
    router = Router("dies")

    @router.command("帮助", summary="the process dies in here")
    async def dies(message: TextCommand, ctx: Context) -> None:
        entered.set()
        await never.wait()

    dead = EventWorker(h.db, Dispatcher([router]), h.settings, h.clock, owner="dead-instance")
    crashed = asyncio.create_task(dead.run_once())
    await within(entered.wait(), "the doomed handler to start")
    crashed.cancel()  # SIGKILL: its transaction never commits; its lease stays behind
    await asyncio.gather(crashed, return_exceptions=True)

    await h.settle()
    assert h.wecom.texts_to("wangwu") == []  # its owner beat a moment ago: it may be alive
    h.clock.advance(seconds=DEAD_AFTER)
    await h.settle()
    assert len(h.wecom.texts_to("wangwu")) == 1
    (event,) = await _events(h)
    assert event.status == "done" and event.attempts == 2 and event.lease_owner is None


async def test_a_crashed_senders_message_is_sent_after_missed_heartbeats_not_the_lease(
    h: Harness,
) -> None:
    assert (await h.post_text("zhaoliu", "帮助"))[0] == 200
    await h.runtime.worker.run_once()  # the reply is in the outbox
    async with h.db.transaction() as session:
        await heartbeat.beat(session, ["dead-sender"], h.clock.now())
        claimed = await ob.claim(
            session, "dead-sender", h.clock.now(), dt.timedelta(seconds=60), 10
        )
    assert len(claimed) == 1  # then the sender's process died before sending
    await h.settle()
    assert h.wecom.texts_to("zhaoliu") == []
    h.clock.advance(seconds=DEAD_AFTER)
    await h.settle()
    assert len(h.wecom.texts_to("zhaoliu")) == 1


async def test_a_live_owner_keeps_its_event_while_working_past_its_heartbeat(
    h: Harness,
) -> None:
    """Its heartbeat goes stale while its handler runs (SQLite: the handler holds the one write
    lock; PostgreSQL: a stalled process), yet the row it holds locked is never taken over."""
    entered, release = asyncio.Event(), asyncio.Event()
    effects: list[str] = []
    assert (await h.post_text("zhaoliu", "慢"))[0] == 200
    slow = EventWorker(
        h.db, _blocking(entered, release, effects), h.settings, h.clock, owner="slow"
    )
    handling = asyncio.create_task(slow.run_once())
    tasks: list[asyncio.Task[Any]] = [handling]
    try:
        await within(entered.wait(), "the slow handler to start")
        h.clock.advance(seconds=DEAD_AFTER)
        live = asyncio.create_task(h.runtime.worker.run_once())
        tasks.append(live)
        if not h.db.is_sqlite:
            assert await within(live, "the live instance's claim") == 0
        assert not handling.done() and effects == []
    finally:
        release.set()
        await within(asyncio.gather(*tasks), "both workers")
    await h.settle()
    assert effects == ["zhaoliu"]
    assert h.wecom.texts_to("zhaoliu") == ["慢处理完成"]
    (event,) = await _events(h)
    assert event.status == "done" and event.attempts == 1


async def test_a_stopped_owner_is_forgotten_and_a_returning_one_beats_again(h: Harness) -> None:
    async with h.db.transaction() as session:
        await heartbeat.beat(session, ["gone", "back"], h.clock.now())
    h.clock.advance(seconds=DEAD_AFTER)
    async with h.db.transaction() as session:
        await heartbeat.beat(session, ["back"], h.clock.now())
        dead = await heartbeat.reap(session, h.clock.now(), dt.timedelta(seconds=15))
    assert dead == ["gone"]
    async with h.db.transaction() as session:
        assert await heartbeat.reap(session, h.clock.now(), dt.timedelta(seconds=15)) == []
