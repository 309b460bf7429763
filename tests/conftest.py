"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when SHUANGSUIJI_TEST_PG_URL is
set), and a harness that runs the real bot against the local WeCom stand-in over HTTP.

Each test gets a fresh database copied from one migrated template: a file copy on SQLite,
CREATE DATABASE ... TEMPLATE on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.chat.context import FixedClock
from bot.config import Settings, load_settings
from bot.runtime.app import Runtime
from bot.tools.demo import standin_settings
from bot.wecom.standin import WeComStandIn
from storage import migrate
from storage.db import Database
from storage.models import OutboxMessage
from tests.support.facts import assert_bigram_counts_kept, assert_facts_kept

PG_ENV = "SHUANGSUIJI_TEST_PG_URL"
START = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        return None
    return load_settings(None, database={"url": url}).database.url


async def _pg_execute(url: str, sql: str) -> None:
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class Templates:
    """One migrated database per backend per test session, copied for each test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.sqlite_template: Path | None = None
        self.pg_template: str | None = None

    async def sqlite(self) -> str:
        if self.sqlite_template is None:
            path = self.tmp / "template.db"
            db = Database(f"sqlite+aiosqlite:///{path}")
            await migrate.upgrade(db)
            await db.dispose()
            self.sqlite_template = path
        target = self.tmp / f"t-{uuid.uuid4().hex[:10]}.db"
        shutil.copyfile(self.sqlite_template, target)
        return f"sqlite+aiosqlite:///{target}"

    async def postgres(self, admin: str) -> tuple[str, str]:
        base = make_url(admin)
        if self.pg_template is None:
            name = f"shuangsuiji_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            await _pg_execute(admin, f'CREATE DATABASE "{name}"')
            db = Database(base.set(database=name).render_as_string(hide_password=False))
            await migrate.upgrade(db)
            await db.dispose()
            self.pg_template = name
        name = f"shuangsuiji_t_{uuid.uuid4().hex[:10]}"
        await _pg_execute(admin, f'CREATE DATABASE "{name}" TEMPLATE "{self.pg_template}"')
        return base.set(database=name).render_as_string(hide_password=False), name

    async def drop(self, admin: str, name: str) -> None:
        await _pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    t = Templates(tmp_path_factory.mktemp("db"))
    yield t
    admin = pg_admin_url()
    if admin and t.pg_template:
        asyncio.run(t.drop(admin, t.pg_template))


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
async def db_url(request: pytest.FixtureRequest, templates: Templates) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield await templates.sqlite()
        return
    admin = pg_admin_url()
    if not admin:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    url, name = await templates.postgres(admin)
    try:
        yield url
    finally:
        await templates.drop(admin, name)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START.astimezone(dt.UTC))


@dataclass
class Harness:
    """The real bot (endpoint over HTTP, worker, sender) against the WeCom stand-in."""

    runtime: Runtime
    wecom: WeComStandIn
    clock: FixedClock
    url: str
    _msg_id: int = 1000

    @property
    def db(self) -> Database:
        return self.runtime.db

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def next_msg_id(self) -> int:
        self._msg_id += 1
        return self._msg_id

    async def post_text(self, user: str, text: str, msg_id: int | None = None) -> tuple[int, str]:
        xml = self.wecom.text_message_xml(
            user, text, msg_id or self.next_msg_id(), int(self.clock.now().timestamp())
        )
        return await self.wecom.post_callback(self.url, xml)

    async def say(self, user: str, text: str) -> list[str]:
        """Send a text as WeCom would, run everything, return what the user received."""
        before = len(self.wecom.texts_to(user))
        status, _ = await self.post_text(user, text)
        assert status == 200
        await self.settle()
        return self.wecom.texts_to(user)[before:]

    async def post_card_event(self, user: str, **fields: Any) -> tuple[int, str]:
        fields.setdefault("create_time", int(self.clock.now().timestamp()))
        xml = self.wecom.template_card_event_xml(user, **fields)
        return await self.wecom.post_callback(self.url, xml)

    async def settle(self, rounds: int = 20) -> None:
        """Run the worker and the sender until neither has anything left to do now."""
        for _ in range(rounds):
            handled = await self.runtime.worker.run_once()
            sent = await self.runtime.sender.run_once()
            if not handled and not sent:
                return

    async def outbox(self) -> list[OutboxMessage]:
        async with self.db.transaction() as session:
            rows = await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))
            return list(rows.scalars())

    async def grant(self, userid: str, role: str, org: str, dept: str = "") -> None:
        async with self.db.transaction() as session:
            from storage.repos import Repositories

            await Repositories(session).roles.grant(
                userid, role, org, dept, "test", self.clock.now()
            )


make_settings = standin_settings  # the one way to point settings at the stand-in


@pytest.fixture
async def h(db_url: str, clock: FixedClock) -> AsyncIterator[Harness]:
    wecom = WeComStandIn(clock=lambda: clock.now().timestamp())
    api_base = await wecom.start()
    settings = make_settings(db_url, wecom, api_base)
    runtime = Runtime(settings, clock=clock, wecom_backoff=0.0)
    port = await runtime.start(background=False)
    h = Harness(runtime, wecom, clock, f"http://127.0.0.1:{port}{settings.server.callback_path}")
    try:
        yield h
        await assert_facts_kept(h.db)  # the statistics table's rows kept by every write
        await assert_bigram_counts_kept(h.db)  # and the public search's counts
    finally:
        await runtime.stop()
        await wecom.stop()
