"""Runs queued inbound events through the router; an event's effects and its done mark commit
together, in one transaction.

A crash anywhere leaves the event pending with an expiring lease, so any instance picks it up
again (within a few seconds: the dead owner's heartbeat stops, bot/runtime/heartbeat.py); its
effects and its 'done' mark commit together, so it is handled once.

Group commit. The events of one claim are handled in one transaction, each inside a savepoint
of its own: a handler that fails rolls back its own savepoint only (its effects and its
messages), and its failure is recorded in the same transaction. The transaction commits after
``BATCH_EVENTS`` events or ``BATCH_SECONDS`` of CPU time, whichever first, or earlier when
callbacks are waiting to be acknowledged (``yield_to``: on SQLite the acknowledgement needs the
one write lock); the rest of the claim goes on in the next one. A commit then costs one fsync-free
WAL write for several events instead of one each, and the rule parameters load once.

The hot path is Core, not ORM: the claimed events are read as plain columns, each done (or
failure) mark is one prebuilt UPDATE, seen at once by the next event's handler, and what a
handler queued is inserted by one prebuilt INSERT inside its savepoint (``Outbox(deferred=True)``)
instead of as ORM objects flushed one by one (bench/bench_worker.py: 1.5 -> 0.7 ms CPU a 帮助).
An actor cache per batch would buy nothing: a claim holds at most one event per user.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.chat.context import Clock, Entropy, SystemEntropy, UserError
from bot.chat.inbound import PayloadError, parse
from bot.chat.router import Dispatcher
from bot.config import Settings
from bot.runtime.contexts import build_context
from bot.runtime.heartbeat import Heartbeat
from storage import inbound, params
from storage.db import Database
from storage.outbox import Outbox

log = logging.getLogger(__name__)

# What a handler's Context.channel (and so a recorded result) says of an event's inbound channel.
CONTEXT_CHANNEL = {inbound.WECOM: "text", inbound.CONSOLE: "console"}

FAILED_REPLY = "抱歉，处理您的消息时出错（编号 E{id}），已记录。请稍后重试，或联系管理员。"


BATCH_EVENTS = 32  # events per transaction at most
# Work per transaction at most, as this thread's CPU time (what an acknowledgement waiting for
# the write lock waits for; wall time would also count other processes on a busy machine).
BATCH_SECONDS = 0.005


async def _nothing() -> None:
    return None


def _never() -> bool:
    return False


class EventWorker:
    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        settings: Settings,
        clock: Clock,
        *,
        entropy: Entropy | None = None,
        owner: str | None = None,
        channel: str = inbound.WECOM,
    ) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.channel = channel  # the inbound channel this worker claims (storage.inbound)
        self.settings = settings
        self.clock = clock
        self.entropy = entropy or SystemEntropy()
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self.wake = asyncio.Event()
        self.lease = dt.timedelta(seconds=settings.worker.lease_seconds)
        # Beats for this worker (and the instance's other claiming loops, see Runtime) and frees
        # a dead instance's leases before claiming.
        self.heartbeat = Heartbeat(db, settings, clock, [self.owner])
        # Called after each handled event, so the sender wakes for what the handler queued.
        self.on_handled: Callable[[], None] = lambda: None
        # Awaited before each transaction: lets the callback endpoint's acknowledgements go first.
        self.before_each: Callable[[], Awaitable[None]] = _nothing
        # True while acknowledgements wait: the transaction commits after the current event.
        self.yield_to: Callable[[], bool] = _never

    async def run_once(self) -> int:
        """Claim what is claimable and handle it; returns how many events were handled."""
        handled = 0
        while True:
            await self.heartbeat.tick()
            async with self.db.transaction(rules=False) as session:
                ids = await inbound.claim(
                    session, self.owner, self.clock.now(), self.lease, channel=self.channel
                )
            if not ids:
                return handled
            while ids:
                await self.before_each()
                done = await self._batch(ids)
                handled += done
                ids = ids[done:]
                self.on_handled()

    async def process(self, event_id: int) -> None:
        """Handle one claimed event in a transaction of its own."""
        await self._batch([event_id])

    async def _batch(self, ids: list[int]) -> int:
        """Handle claimed events in one transaction, each in its own savepoint, until the batch's
        bounds; returns how many of ``ids`` (from the start) were dealt with."""
        started = time.thread_time()
        taken = 0
        async with self.db.transaction() as session:
            conn = await session.connection()  # the marks go on it as Core statements
            owned = {e.id: e for e in await inbound.owned_many(conn, ids, self.owner)}
            for event_id in ids:
                taken += 1
                event = owned.get(event_id)
                if event is not None:  # else: lease lost to another instance, or already done
                    await self._one(session, conn, event)
                if (
                    taken >= BATCH_EVENTS
                    or time.thread_time() - started >= BATCH_SECONDS
                    or self.yield_to()
                ):
                    break
        return taken

    async def _one(
        self, session: AsyncSession, conn: AsyncConnection, event: inbound.Owned
    ) -> None:
        """One event: the handler in a savepoint, then the done mark. A UserError rolls the
        savepoint back and is the reply; any other failure rolls it back and is recorded."""
        now = self.clock.now()
        try:
            message = parse(event.payload)
        except PayloadError as exc:
            await inbound.mark_done(conn, event.id, now, str(exc))
            return
        rules = params.snapshot()
        try:
            async with session.begin_nested():
                ctx = await build_context(
                    session,
                    self.settings,
                    self.clock,
                    userid=message.user,
                    entropy=self.entropy,
                    event_id=event.id,
                    channel=CONTEXT_CHANNEL.get(event.channel, event.channel),
                    deferred_outbox=True,
                )
                await self.dispatcher.dispatch(message, ctx)
                await ctx.outbox.write()  # inside the savepoint: undone with it
        except UserError as exc:
            params.restore(rules)  # a rolled-back change of the rules is no longer in force
            await self._reply(session, event.id, message.user, exc.message)
        except Exception as exc:
            params.restore(rules)
            log.exception("event %s failed", event.id)
            await self._record_failure(session, conn, event, exc)
            return
        await inbound.mark_done(conn, event.id, now)

    async def _reply(self, session: AsyncSession, event_id: int, user: str, text: str) -> None:
        """The worker's own reply about an event (a refusal, a failure), outside its savepoint."""
        outbox = Outbox(session, self.clock.now(), cause_event_id=event_id, deferred=True)
        outbox.reply(user, text)
        await outbox.write()

    async def _record_failure(
        self, session: AsyncSession, conn: AsyncConnection, event: inbound.Owned, exc: Exception
    ) -> None:
        now = self.clock.now()
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if event.attempts >= self.settings.worker.max_attempts:
            await inbound.mark_failed(conn, event.id, now, error, retry_at=None)
            await self._reply(session, event.id, event.userid, FAILED_REPLY.format(id=event.id))
        else:
            backoff = dt.timedelta(seconds=min(2**event.attempts, 60))
            await inbound.mark_failed(conn, event.id, now, error, retry_at=now + backoff)
