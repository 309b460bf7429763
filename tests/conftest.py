"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when SHUANGSUIJI_TEST_PG_URL is
set), and a harness that runs the real bot against the local WeCom stand-in over HTTP.

Each test gets a fresh database copied from one migrated template: a file copy on SQLite,
CREATE DATABASE ... TEMPLATE on PostgreSQL (or a used database reset to the template's rows).
Each pytest-xdist worker has its own templates.
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
from tests.support.facts import assert_facts_kept, assert_search_index_kept

PG_ENV = "SHUANGSUIJI_TEST_PG_URL"
START = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        return None
    return load_settings(None, database={"url": url}).database.url


async def _pg_execute(url: str, sql: str) -> None:
    conn = await _pg_connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# What a reused PostgreSQL database must still look like: its tables, columns, triggers,
# functions and migration head, all as at the template's creation.
PG_SHAPE_SQL = """
SELECT md5(
  coalesce((SELECT string_agg(c.relname || ':' || c.relkind::text || ':'
                || coalesce(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ''),
                ',' ORDER BY c.relname, a.attnum)
            FROM pg_class c
            LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relnamespace = 'public'::regnamespace), '')
  || coalesce((SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger
               WHERE NOT tgisinternal), '')
  || coalesce((SELECT string_agg(proname, ',' ORDER BY proname) FROM pg_proc
               WHERE pronamespace = 'public'::regnamespace), '')
  || coalesce((SELECT string_agg(version_num, ',') FROM alembic_version), ''))
"""


@dataclass
class PgSeed:
    """The template's rows (as COPY text) and sequence positions, to reset a used database."""

    shape: str
    tables: list[str]
    rows: dict[str, bytes]
    sequences: list[tuple[str, int, bool]]


class Templates:
    """One migrated database per backend per test session, copied for each test.

    On PostgreSQL, CREATE DATABASE and DROP DATABASE (which forces a checkpoint) cost about a
    second each on a busy machine, so a used database is reset instead (every table emptied,
    the template's rows and sequence positions restored) and handed to the next test. A database
    whose shape a test changed (a migration test) is dropped, never reused.
    """

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.sqlite_template: Path | None = None
        self.pg_template: str | None = None
        self.pg_seed: PgSeed | None = None
        self.pg_free: list[str] = []
        self.pg_all: set[str] = set()

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
            self.pg_seed = await _pg_seed(base.set(database=name).render_as_string(False))
        if self.pg_free:
            name = self.pg_free.pop()
        else:
            name = f"shuangsuiji_t_{uuid.uuid4().hex[:10]}"
            await _pg_execute(admin, f'CREATE DATABASE "{name}" TEMPLATE "{self.pg_template}"')
            self.pg_all.add(name)
        return base.set(database=name).render_as_string(hide_password=False), name

    async def drop(self, admin: str, name: str) -> None:
        """Hand a test's database back: reset for the next test, or dropped if reshaped."""
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)
        await _pg_execute(
            admin,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
        )
        if self.pg_seed is not None and name in self.pg_all and await _pg_reset(url, self.pg_seed):
            self.pg_free.append(name)
            return
        self.pg_all.discard(name)
        await _pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def drop_all(self, admin: str) -> None:
        for name in [*self.pg_all, *([self.pg_template] if self.pg_template else [])]:
            await _pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _pg_connect(url: str) -> Any:
    import asyncpg

    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )


async def _pg_seed(url: str) -> PgSeed:
    import io

    conn = await _pg_connect(url)
    try:
        shape = await conn.fetchval(PG_SHAPE_SQL)
        tables = [
            r["relname"]
            for r in await conn.fetch(
                "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') "
                "AND relnamespace = 'public'::regnamespace AND relname <> 'alembic_version'"
            )
        ]
        rows: dict[str, bytes] = {}
        for table in tables:
            if await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table}")'):
                buf = io.BytesIO()
                await conn.copy_from_table(table, output=buf)
                rows[table] = buf.getvalue()
        sequences = [
            (
                f'"{r["sequencename"]}"',
                r["last_value"] or r["start_value"],
                r["last_value"] is not None,
            )
            for r in await conn.fetch(
                "SELECT sequencename, start_value, last_value FROM pg_sequences "
                "WHERE schemaname = 'public'"
            )
        ]
        return PgSeed(shape, tables, rows, sequences)
    finally:
        await conn.close()


async def _pg_reset(url: str, seed: PgSeed) -> bool:
    """Bring a used database back to the template's state; False if its shape changed."""
    import io

    conn = await _pg_connect(url)
    try:
        if await conn.fetchval(PG_SHAPE_SQL) != seed.shape:
            return False
        async with conn.transaction():
            # DELETE, not TRUNCATE: the tables are small, and TRUNCATE makes new files for
            # every table and index. Replica mode skips the foreign-key triggers.
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("; ".join(f'DELETE FROM "{t}"' for t in seed.tables))
            for table, data in seed.rows.items():
                await conn.copy_to_table(table, source=io.BytesIO(data))
            for sequence, value, called in seed.sequences:
                await conn.execute("SELECT setval($1, $2, $3)", sequence, value, called)
        return True
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    t = Templates(tmp_path_factory.mktemp("db"))
    yield t
    admin = pg_admin_url()
    if admin and t.pg_template:
        asyncio.run(t.drop_all(admin))


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
    # A loaded test machine can take longer than production's 0.5 s to commit an event; the
    # tests of that bound (test_ingress_faults) set it themselves.
    server = settings.server.model_copy(update={"ack_timeout_s": 4.0})
    settings = settings.model_copy(update={"server": server})
    runtime = Runtime(settings, clock=clock, wecom_backoff=0.0)
    port = await runtime.start(background=False)
    h = Harness(runtime, wecom, clock, f"http://127.0.0.1:{port}{settings.server.callback_path}")
    try:
        yield h
        await assert_facts_kept(h.db)  # the statistics table's rows kept by every write
        await assert_search_index_kept(h.db)  # and the public search's index
    finally:
        await runtime.stop()
        await wecom.stop()
