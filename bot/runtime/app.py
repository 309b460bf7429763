"""The application: which routers run, in order, and the runtime that wires the pieces.

Every entry point is visible here: the callback endpoint records events, the event worker runs
them through the routers, the outbox sender delivers, and the scheduler ticks due actions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import SQLAlchemyError

from bot.chat.context import Clock, DrillClock, Entropy, SystemClock
from bot.chat.router import Dispatcher
from bot.config import Settings
from bot.runtime.due import DueRunner
from bot.runtime.pace import PaceWatch
from bot.runtime.reminders import ReminderRunner
from bot.runtime.sender import OutboxSender
from bot.runtime.server import IngressGate, make_app
from bot.runtime.worker import EventWorker
from bot.wecom.api import WeComClient
from handlers import digest as digest_handlers
from handlers import directory as directory_handlers
from handlers import draws as draw_handlers
from handlers import followups as followup_handlers
from handlers import help as help_handlers
from handlers import progress as progress_handlers
from handlers import publication as publication_handlers
from handlers import records as record_handlers
from handlers import register as register_handlers
from handlers import reports as report_handlers
from handlers import results as result_handlers
from handlers import roles as role_handlers
from handlers import swaps as swap_handlers
from handlers import targeted as targeted_handlers
from handlers import task_approval as task_approval_handlers
from handlers import tasks as task_handlers
from handlers import todo as todo_handlers
from storage import migrate
from storage.db import Database, sqlite_path
from storage.inbox import InboxDrain, InboxWriter, inbox_path

log = logging.getLogger(__name__)

# The event worker's rounds begin at least this far apart (seconds). Woken at every group
# commit of the endpoint, a round (move the inbox, beat, claim, handle) would otherwise often
# carry one or two events, and its fixed cost per event would dominate; after a quiet spell the
# first event is still handled at once.
ROUND_SPACING = 0.02


def dispatcher() -> Dispatcher:
    """The routers, in the order they are tried."""
    return Dispatcher(
        [
            help_handlers.router,
            role_handlers.router,
            directory_handlers.router,
            task_handlers.router,
            task_approval_handlers.router,
            draw_handlers.router,
            result_handlers.router,
            record_handlers.router,
            report_handlers.router,
            followup_handlers.router,
            swap_handlers.router,
            register_handlers.router,
            targeted_handlers.router,
            progress_handlers.router,
            todo_handlers.router,
            publication_handlers.router,
            digest_handlers.router,
        ]
    )


@dataclass
class Runtime:
    """One bot instance: endpoint, worker, sender and scheduler over one database."""

    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    entropy: Entropy | None = None
    wecom_backoff: float = 0.5  # seconds before the client's first retry; tests use 0
    db: Database = field(init=False)
    worker: EventWorker = field(init=False)
    sender: OutboxSender = field(init=False)
    due: DueRunner = field(init=False)
    pace: PaceWatch = field(init=False)
    reminders: ReminderRunner = field(init=False)
    gate: IngressGate = field(init=False)
    http: aiohttp.ClientSession | None = field(init=False, default=None)
    # Called when the endpoint has recorded events; by default wakes this process's worker
    # (the all-in-one `serve` wakes its worker child instead: bot.runtime.supervisor.WakePipe).
    on_recorded: Callable[[], None] | None = field(init=False, default=None)
    # SQLite, ingress and worker in two processes: the endpoint records into the inbox
    # (storage.inbox), and the worker moves what is there into the queue before it claims.
    inbox: InboxWriter | None = field(init=False, default=None)
    drain: InboxDrain | None = field(init=False, default=None)
    _stop: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)
    _runner: web.AppRunner | None = field(init=False, default=None)
    _scheduler: AsyncIOScheduler | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if isinstance(self.clock, DrillClock):
            # Leases are measured on the domain clock: keep them as long in real time.
            worker = self.settings.worker
            lease = int(worker.lease_seconds * self.clock.speed)
            self.settings = self.settings.model_copy(
                update={"worker": worker.model_copy(update={"lease_seconds": lease})}
            )
        self.db = Database(
            self.settings.database.url, echo=self.settings.database.echo, own_checkpoints=True
        )
        routes = dispatcher()
        self.gate = IngressGate()
        self.worker = EventWorker(self.db, routes, self.settings, self.clock, entropy=self.entropy)
        self.worker.before_each = self.gate.wait_idle
        if self.db.is_sqlite:  # the acknowledgement needs the one write lock the worker holds
            self.worker.yield_to = self.gate.waiting
        self.due = DueRunner(self.db, routes, self.settings, self.clock, self.worker.owner)
        self.pace = PaceWatch(self.db, self.settings, self.clock)
        self.reminders = ReminderRunner(self.db, self.settings, self.clock)
        path = sqlite_path(self.settings.database.url)
        # Whatever an ingress of this file left in its inbox is handled (there is none unless
        # ingress and worker ran apart).
        self.drain = InboxDrain(inbox_path(path)) if path is not None else None

    async def migrate(self) -> None:
        await migrate.upgrade(self.db)

    def client(self) -> WeComClient:
        if self.http is None:
            self.http = aiohttp.ClientSession()
        w = self.settings.wecom
        return WeComClient(
            self.http,
            corp_id=w.corp_id,
            secret=w.secret.get_secret_value(),
            agent_id=w.agent_id,
            api_base=w.api_base,
            backoff=self.wecom_backoff,
            proxy=w.proxy,
        )

    def web_app(self) -> web.Application:
        return make_app(
            self.settings,
            self.db,
            self.clock,
            on_recorded=self.on_recorded or self.worker.wake.set,
            gate=self.gate,
            inbox=self.inbox,
        )

    def use_inbox(self) -> None:
        """SQLite file: record callbacks into the inbox instead of the database (this process
        acknowledges, another handles). Before `start`."""
        path = sqlite_path(self.settings.database.url)
        if path is not None:
            self.inbox = InboxWriter(inbox_path(path))

    async def handle_once(self) -> int:
        """The event worker's round: what the inbox holds into the queue, then handle it. An
        inbox that cannot be read is logged and does not stop the queue being handled."""
        if self.drain is not None:
            try:
                await self.drain.move(self.db)
            except (sqlite3.Error, OSError, SQLAlchemyError):
                log.exception("inbox %s could not be moved into the queue", self.drain.path)
        return await self.worker.run_once()

    async def _empty_inbox(self) -> None:
        """On stopping an ingress that recorded into the inbox (its HTTP closed): move what it
        acknowledged into the queue, so that a backup of the database, or a move to another
        database, has every acknowledged event (the dedup key makes a second move harmless)."""
        if self.inbox is None or self.drain is None:
            return
        try:
            await self.drain.move(self.db)  # moves until the inbox is empty
        except (sqlite3.Error, OSError, SQLAlchemyError):
            log.exception("inbox %s left for the next start", self.drain.path)

    async def start(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        background: bool = True,
        http: bool = True,
    ) -> int:
        """Serve the endpoint and start the background loops; returns the bound port (0 when
        `http` is off). Roles: all (both), ingress (http only: acknowledges and records),
        worker (background only: handles, sends, ticks). Tests pass background=False and drive
        the worker, sender and due actions themselves."""
        self.sender = OutboxSender(self.db, self.client(), self.settings, self.clock)
        self.sender.before_each = self.gate.wait_idle
        self.worker.on_handled = self.sender.wake.set
        self.worker.heartbeat.owners = [self.worker.owner, self.sender.owner]
        self._stop.clear()
        bound = 0
        if http:
            self._runner = web.AppRunner(self.web_app(), access_log=None)
            await self._runner.setup()
            s = self.settings.server
            site = web.TCPSite(self._runner, host or s.host, s.port if port is None else port)
            await site.start()
            bound = int(self._runner.addresses[0][1])
        if background or http:
            self._tasks.append(asyncio.create_task(self.db.checkpoint_every(1.0, self._stop)))
        if not background:
            return bound
        self._tasks += [
            asyncio.create_task(self._beat()),
            asyncio.create_task(
                self._poll(
                    "event worker", self.handle_once, self.worker.wake, spacing=ROUND_SPACING
                )
            ),
            asyncio.create_task(
                self._poll("outbox sender", self.sender.run_once, self.sender.wake)
            ),
        ]
        # What is due is evaluated against the domain clock (a drill's too), every tick of
        # real time, never by wall-clock cron triggers; the database decides what is sent.
        tick = self.settings.clock.tick_seconds
        self._scheduler = AsyncIOScheduler(timezone=self.settings.tz)
        self._scheduler.add_job(self.due.tick, "interval", seconds=tick, max_instances=1)
        self._scheduler.add_job(self.pace.tick, "interval", seconds=tick, max_instances=1)
        self._scheduler.add_job(self.reminders.tick, "interval", seconds=tick, max_instances=1)
        self._scheduler.start()
        return bound

    async def _poll(
        self,
        name: str,
        run_once: Callable[[], Awaitable[int]],
        wake: asyncio.Event,
        *,
        spacing: float = 0.0,
    ) -> None:
        """Run `run_once` until stopped: again when woken, or after the poll interval; rounds
        begin at least `spacing` seconds apart."""
        poll = self.settings.worker.poll_seconds
        failing = False  # an outage is logged when it begins and when it ends, not every tick
        began = -spacing
        while not self._stop.is_set():
            rest = began + spacing - time.monotonic()
            if rest > 0:  # woken again at once: let a few more events gather for this round
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), rest)
            began = time.monotonic()
            wake.clear()  # before the round: a wake during it means "go again" at once
            try:
                await run_once()
                if failing:
                    log.warning("%s: working again", name)
                failing = False
            except Exception:
                if not failing:
                    log.exception("%s tick failed", name)
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=poll)

    async def _beat(self) -> None:
        """Beat on time even while the worker is busy with a long handler (PostgreSQL: on a
        connection of its own; SQLite: a single worker, which waits its turn)."""
        interval = self.settings.worker.heartbeat_seconds
        while not self._stop.is_set():
            try:
                await self.worker.heartbeat.tick()
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval)

    async def stop(self) -> None:
        self._stop.set()
        self.worker.wake.set()
        if hasattr(self, "sender"):
            self.sender.wake.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        if self._runner is not None:
            await self._runner.cleanup()
            await self._empty_inbox()
        if self.http is not None:
            await self.http.close()
        for side in (self.inbox, self.drain):
            if side is not None:
                side.close()
        await self.db.dispose()
