"""A crashed instance's claims are retried once its heartbeat stops (three missed beats, 15 s by
default), not after the whole lease (60 s); a live owner never loses what it is working on."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.chat.context import Context
from bot.chat.inbound import TextCommand
from bot.chat.router import Dispatcher, Router
from bot.runtime.worker import EventWorker
from storage import heartbeat, inbound
from storage import outbox as ob
from storage.models import InboundEvent
from tests.conftest import Harness
from tests.support.waiting import wait_until, within

DEAD_AFTER = 16  # seconds: past three missed beats of 5 s, far inside the 60 s lease
THREE_MISSED_BEATS = dt.timedelta(seconds=15)  # three missed beats of 5 s


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
        dead = await heartbeat.reap(session, h.clock.now(), THREE_MISSED_BEATS)
    assert dead == ["gone"]
    async with h.db.transaction() as session:
        assert await heartbeat.reap(session, h.clock.now(), THREE_MISSED_BEATS) == []


async def _someone_waits_for_a_lock(h: Harness) -> bool:
    """Whether one of this database's sessions waits for a lock now (PostgreSQL)."""
    async with h.db.transaction(rules=False) as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


async def _claimed_by(h: Harness, owner: str) -> list[InboundEvent]:
    async with h.db.transaction() as session:
        return list(
            (
                await session.execute(
                    select(InboundEvent).where(
                        InboundEvent.lease_owner == owner, InboundEvent.lease_until.is_not(None)
                    )
                )
            ).scalars()
        )


async def test_two_instances_reaping_each_other_after_a_clock_jump_do_not_deadlock(
    h: Harness,
) -> None:
    """Issue 10: the clock jumps days ahead and both instances' heartbeats find the other's beat
    stale at once. Each beats (locking its own heartbeat row) and then reaps the other: freeing
    a row the other holds locked must skip it, never wait for it, or the two wait on each other
    and PostgreSQL aborts one (a deadlock). SQLite has one writer: the two cannot interleave."""
    if h.db.is_sqlite:
        pytest.skip("SQLite runs one write transaction at a time")
    here = h.runtime.worker.heartbeat  # instance A: the runtime's own heartbeat
    there = ["instance-b-worker", "instance-b-sender"]  # instance B
    assert (await h.post_text("wangwu", "帮助"))[0] == 200
    assert (await h.post_text("zhaoliu", "帮助"))[0] == 200
    lease = dt.timedelta(days=30)  # both claims outlive the jump: only a reap frees them
    async with h.db.transaction(rules=False) as session:
        await heartbeat.beat(session, [*here.owners, *there], h.clock.now())
        b_claims = await inbound.claim(session, there[0], h.clock.now(), lease, limit=1)
        a_claims = await inbound.claim(session, here.owners[0], h.clock.now(), lease, limit=1)
    assert len(b_claims) == len(a_claims) == 1

    h.clock.advance(days=3)
    dead_after = here.dead_after
    async with h.db.transaction(rules=False) as b:
        # B's tick has beaten (its heartbeat rows locked until it commits) when A's tick runs.
        await heartbeat.beat(b, there, h.clock.now())
        ticking = asyncio.create_task(here.tick())
        await wait_until(
            lambda: ticking.done() or _someone_waits_for_a_lock(h),
            "A's tick to finish or to wait for B",
        )
        b_reaped = await within(heartbeat.reap(b, h.clock.now(), dead_after), "B's reap")
    await within(ticking, "A's tick")  # raises when PostgreSQL chose it as the deadlock victim
    assert b_reaped == []  # A beat and committed first: alive
    # A found B's rows locked by B's live transaction: B is beating, so B keeps its claims.
    assert [e.id for e in await _claimed_by(h, there[0])] == b_claims
    assert [e.id for e in await _claimed_by(h, here.owners[0])] == a_claims

    # B stops beating; three missed beats later A frees B's claim, and the event is handled.
    h.clock.advance(seconds=DEAD_AFTER)
    await h.settle()
    assert len(h.wecom.texts_to("wangwu")) == 1  # B had claimed the older event, wangwu's
    assert await _claimed_by(h, there[0]) == []


async def test_an_instance_never_reaps_its_own_owners_even_when_their_beat_is_stale(
    h: Harness,
) -> None:
    """Issue 10: after a clock jump the instance's own last beat is stale too; a reap it runs
    before (or without) beating frees the other owners' claims, never its own."""
    assert (await h.post_text("wangwu", "帮助"))[0] == 200
    async with h.db.transaction(rules=False) as session:
        await heartbeat.beat(session, ["mine", "theirs"], h.clock.now())
        (claimed,) = await inbound.claim(
            session, "mine", h.clock.now(), dt.timedelta(days=30), limit=1
        )
    h.clock.advance(days=3)
    async with h.db.transaction(rules=False) as session:
        dead = await heartbeat.reap(session, h.clock.now(), THREE_MISSED_BEATS, own=["mine"])
    assert dead == ["theirs"]
    assert [e.id for e in await _claimed_by(h, "mine")] == [claimed]
    async with h.db.transaction(rules=False) as session:
        assert await heartbeat.reap(session, h.clock.now(), THREE_MISSED_BEATS) == ["mine"]
    assert await _claimed_by(h, "mine") == []
