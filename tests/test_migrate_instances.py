"""Several instances on one PostgreSQL start together (docs/operations.md, "Upgrading"): their
migrations run one after another under an advisory lock, so both start on the head schema
instead of one failing on a table the other just created."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy.engine import make_url

from storage import migrate
from storage.db import Database
from tests.conftest import PG_ENV, _pg_execute, pg_admin_url


async def test_two_instances_upgrading_a_new_postgresql_database_at_once_both_succeed() -> None:
    admin = pg_admin_url()
    if not admin:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    name = f"shuangsuiji_m_{uuid.uuid4().hex[:10]}"
    await _pg_execute(admin, f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    dbs = [Database(url), Database(url)]
    try:
        await asyncio.gather(*(migrate.upgrade(db) for db in dbs))
        revisions = [await migrate.current_revision(db) for db in dbs]
    finally:
        for db in dbs:
            await db.dispose()
        await _pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert revisions == [migrate.head_revision()] * 2
