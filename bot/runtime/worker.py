"""Runs queued inbound events through the router, each in one transaction with its effects.

A crash anywhere leaves the event pending with an expiring lease, so any instance picks it up
again (within a few seconds: the dead owner's heartbeat stops, bot/runtime/heartbeat.py); its
effects and its 'done' mark commit together, so it is handled once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable

from bot.chat.context import Clock, Entropy, SystemEntropy, UserError
from bot.chat.inbound import PayloadError, parse
from bot.chat.router import Dispatcher
from bot.config import Settings
from bot.runtime.contexts import build_context
from bot.runtime.heartbeat import Heartbeat
from storage import inbound
from storage.db import Database
from storage.outbox import Outbox

log = logging.getLogger(__name__)

# What a handler's Context.channel (and so a recorded result) says of an event's inbound channel.
CONTEXT_CHANNEL = {inbound.WECOM: "text", inbound.CONSOLE: "console"}

FAILED_REPLY = "抱歉，处理您的消息时出错（编号 E{id}），已记录。请稍后重试，或联系管理员。"


async def _nothing() -> None:
    return None


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
        # Awaited before each event: lets the callback endpoint's acknowledgements go first.
        self.before_each: Callable[[], Awaitable[None]] = _nothing

    async def run_once(self) -> int:
        """Claim what is claimable and handle it; returns how many events were handled."""
        handled = 0
        while True:
            await self.heartbeat.tick()
            async with self.db.transaction() as session:
                ids = await inbound.claim(
                    session, self.owner, self.clock.now(), self.lease, channel=self.channel
                )
            if not ids:
                return handled
            for event_id in ids:
                await self.before_each()
                await self.process(event_id)
                handled += 1
                self.on_handled()

    async def process(self, event_id: int) -> None:
        try:
            await self._handle(event_id)
        except Exception as exc:
            log.exception("event %s failed", event_id)
            await self._record_failure(event_id, exc)

    async def _handle(self, event_id: int) -> None:
        async with self.db.transaction() as session:
            event = await inbound.load_owned(session, event_id, self.owner)
            if event is None:  # lease lost to another instance, or already done
                return
            now = self.clock.now()
            try:
                message = parse(event.payload)
            except PayloadError as exc:
                event.status, event.processed_at, event.error = "done", now, str(exc)
                return
            ctx = await build_context(
                session,
                self.settings,
                self.clock,
                userid=message.user,
                entropy=self.entropy,
                event_id=event.id,
                channel=CONTEXT_CHANNEL.get(event.channel, event.channel),
            )
            try:
                async with session.begin_nested():
                    await self.dispatcher.dispatch(message, ctx)
            except UserError as exc:
                ctx.outbox.reply(message.user, exc.message)
            event.status, event.processed_at, event.lease_owner = "done", now, None

    async def _record_failure(self, event_id: int, exc: Exception) -> None:
        async with self.db.transaction() as session:
            event = await inbound.load_owned(session, event_id, self.owner)
            if event is None:
                return
            now = self.clock.now()
            event.error = f"{type(exc).__name__}: {exc}"[:2000]
            if event.attempts >= self.settings.worker.max_attempts:
                event.status, event.processed_at = "failed", now
                Outbox(session, now, cause_event_id=event.id).reply(
                    event.userid, FAILED_REPLY.format(id=event.id)
                )
            else:
                backoff = min(2**event.attempts, 60)
                event.lease_owner, event.lease_until = None, now + dt.timedelta(seconds=backoff)
