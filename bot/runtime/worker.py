"""Runs queued inbound events through the router, each in one transaction with its effects.

A crash anywhere leaves the event pending with an expiring lease, so any instance picks it up
again; its effects and its 'done' mark commit together, so it is handled once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable

from bot.chat.context import Actor, Binding, Clock, Context, Entropy, Role, SystemEntropy, UserError
from bot.chat.inbound import PayloadError, parse
from bot.chat.router import Dispatcher
from bot.config import Settings
from storage import inbound
from storage.db import Database
from storage.outbox import Outbox
from storage.repos import Repositories

log = logging.getLogger(__name__)

FAILED_REPLY = "抱歉，处理您的消息时出错（编号 E{id}），已记录。请稍后重试，或联系管理员。"


async def load_actor(repos: Repositories, userid: str) -> Actor:
    bindings = tuple(
        Binding(Role(b.role), b.org_code, b.dept_code)
        for b in await repos.roles.bindings_for(userid)
        if b.role in Role.__members__.values()
    )
    inspector = await repos.inspectors.active_by_userid(userid)
    return Actor(
        userid=userid,
        bindings=bindings,
        inspector_org=inspector.org_code if inspector else None,
        name=inspector.name if inspector else None,
    )


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
        channel: str = "text",
    ) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.channel = channel  # what Context.channel says of this worker's events
        self.settings = settings
        self.clock = clock
        self.entropy = entropy or SystemEntropy()
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self.wake = asyncio.Event()
        self.lease = dt.timedelta(seconds=settings.worker.lease_seconds)
        # Called after each handled event, so the sender wakes for what the handler queued.
        self.on_handled: Callable[[], None] = lambda: None
        # Awaited before each event: lets the callback endpoint's acknowledgements go first.
        self.before_each: Callable[[], Awaitable[None]] = _nothing

    async def run_once(self) -> int:
        """Claim what is claimable and handle it; returns how many events were handled."""
        handled = 0
        while True:
            async with self.db.transaction() as session:
                ids = await inbound.claim(session, self.owner, self.clock.now(), self.lease)
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
            outbox = Outbox(session, now, cause_event_id=event.id)
            try:
                message = parse(event.payload)
            except PayloadError as exc:
                event.status, event.processed_at, event.error = "done", now, str(exc)
                return
            repos = Repositories(session)
            ctx = Context(
                session=session,
                outbox=outbox,
                clock=self.clock,
                settings=self.settings,
                actor=await load_actor(repos, message.user),
                repos=repos,
                entropy=self.entropy,
                event_id=event.id,
                channel=self.channel,
            )
            try:
                async with session.begin_nested():
                    await self.dispatcher.dispatch(message, ctx)
            except UserError as exc:
                outbox.reply(message.user, exc.message)
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
