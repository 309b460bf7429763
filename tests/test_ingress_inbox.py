"""The ingress apart from the worker (the all-in-one `serve`, `--role ingress`) on SQLite: it
records into an inbox file of its own, the worker moves what is there into the queue; nothing is
lost or doubled, whatever WeCom resends. And in one process, a flood of callbacks does not
starve the worker."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot.chat.context import FixedClock
from bot.runtime.app import Runtime
from bot.runtime.server import IngressGate
from bot.wecom.standin import WeComStandIn
from storage.db import Database, sqlite_path
from storage.inbox import inbox_path
from storage.models import InboundEvent, OutboxMessage
from tests.conftest import Harness, Templates, make_settings


@pytest.fixture
async def ingress(templates: Templates, clock: FixedClock) -> AsyncIterator[Harness]:
    """The real endpoint recording into the inbox (as `serve` runs it apart from its worker);
    the test runs the worker's rounds (move, handle) and the sender itself."""
    wecom = WeComStandIn(clock=lambda: clock.now().timestamp())
    api_base = await wecom.start()
    settings = make_settings(await templates.sqlite(), wecom, api_base)
    server = settings.server.model_copy(update={"ack_timeout_s": 4.0})  # a loaded test machine
    settings = settings.model_copy(update={"server": server})
    runtime = Runtime(settings, clock=clock, wecom_backoff=0.0)
    runtime.use_inbox()
    port = await runtime.start(background=False)
    url = f"http://127.0.0.1:{port}{settings.server.callback_path}"
    try:
        yield Harness(runtime, wecom, clock, url)
    finally:
        await runtime.stop()
        await wecom.stop()


def _inbox_rows(h: Harness) -> int:
    path = sqlite_path(h.settings.database.url)
    assert path is not None
    with contextlib.closing(sqlite3.connect(inbox_path(path))) as conn:
        return int(conn.execute("SELECT count(*) FROM inbox_event").fetchone()[0])


async def _count(h: Harness, model: type[InboundEvent] | type[OutboxMessage]) -> int:
    async with h.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _round(h: Harness) -> None:
    """One round of the worker process (inbox into the queue, handle), then the sender's."""
    await h.runtime.handle_once()
    await h.runtime.sender.run_once()


async def test_a_callback_is_acknowledged_from_the_inbox_and_handled_after_the_move(
    ingress: Harness,
) -> None:
    h = ingress
    assert await h.post_text("zhangsan", "帮助", msg_id=1) == (200, "")
    assert _inbox_rows(h) == 1 and await _count(h, InboundEvent) == 0
    assert h.wecom.texts_to("zhangsan") == []
    await _round(h)
    assert _inbox_rows(h) == 0
    assert len(h.wecom.texts_to("zhangsan")) == 1


async def test_a_resend_after_its_event_left_the_inbox_is_handled_once(ingress: Harness) -> None:
    """WeCom resends a callback it got no answer to: the resend meets an inbox already emptied
    of its event (the same state a worker killed between its commit and its delete leaves)."""
    h = ingress
    for _ in range(2):  # twice before the move: two rows in the inbox, one event
        assert await h.post_text("lisi", "帮助", msg_id=7) == (200, "")
    await _round(h)
    assert await h.post_text("lisi", "帮助", msg_id=7) == (200, "")  # and once after
    assert _inbox_rows(h) == 1
    await _round(h)
    assert _inbox_rows(h) == 0
    assert await _count(h, InboundEvent) == 1 and await _count(h, OutboxMessage) == 1
    assert len(h.wecom.texts_to("lisi")) == 1


async def test_one_users_events_keep_their_order_through_the_inbox(ingress: Harness) -> None:
    h = ingress
    for n, text in enumerate(["帮助", "我的待办", "帮助"], start=20):
        assert await h.post_text("wangwu", text, msg_id=n) == (200, "")
    await _round(h)
    async with h.db.transaction() as session:
        keys = (
            await session.execute(select(InboundEvent.dedup_key).order_by(InboundEvent.id))
        ).scalars()
        assert [key.rsplit(":", 1)[-1] for key in keys] == ["20", "21", "22"]


async def test_a_flood_of_callbacks_does_not_starve_the_one_process_worker() -> None:
    """Callbacks in flight all the time: the loops wait once (up to max_wait), then run as long
    again without waiting or yielding, then wait anew."""
    now = [100.0]
    gate = IngressGate(max_wait=0.001, monotonic=lambda: now[0])
    with gate.busy():
        assert gate.waiting()
        await asyncio.wait_for(gate.wait_idle(), 1)  # ran out: nothing became idle
        assert not gate.waiting()  # the loops' turn
        await asyncio.wait_for(gate.wait_idle(), 1)  # returns at once
        now[0] += 0.002  # as long again passed
        assert gate.waiting()
    assert not gate.waiting()  # nothing in flight


async def test_a_stopped_ingress_leaves_what_it_acknowledged_in_the_queue_not_the_inbox(
    templates: Templates, clock: FixedClock
) -> None:
    """On a clean stop the ingress moves its inbox into the database: a backup taken after the
    stop, or the database moved elsewhere, has every acknowledged event."""
    wecom = WeComStandIn(clock=lambda: clock.now().timestamp())
    api_base = await wecom.start()
    url = await templates.sqlite()
    settings = make_settings(url, wecom, api_base)
    runtime = Runtime(settings, clock=clock, wecom_backoff=0.0)
    runtime.use_inbox()
    port = await runtime.start(background=False)
    h = Harness(runtime, wecom, clock, f"http://127.0.0.1:{port}{settings.server.callback_path}")
    try:
        assert await h.post_text("zhangsan", "帮助", msg_id=1) == (200, "")
        assert _inbox_rows(h) == 1
    finally:
        await runtime.stop()
        await wecom.stop()
    assert _inbox_rows(h) == 0
    db = Database(url)
    try:
        async with db.transaction() as session:
            keys = (await session.scalars(select(InboundEvent.userid))).all()
    finally:
        await db.dispose()
    assert keys == ["zhangsan"]


async def test_an_inbox_that_cannot_be_read_does_not_stop_the_queue(ingress: Harness) -> None:
    """A damaged inbox file is logged; the events already in the queue are still handled."""
    h = ingress
    drain, path = h.runtime.drain, sqlite_path(h.settings.database.url)
    assert drain is not None and path is not None
    assert await h.post_text("lisi", "帮助", msg_id=2) == (200, "")
    assert await drain.move(h.db) == 1  # queued, not handled yet
    drain.close()
    for suffix in ("", "-wal", "-shm"):
        inbox_path(path).with_name(inbox_path(path).name + suffix).unlink(missing_ok=True)
    inbox_path(path).write_bytes(b"not a database" * 100)
    await h.runtime.handle_once()
    await h.runtime.sender.run_once()
    assert len(h.wecom.texts_to("lisi")) == 1
