"""Moving a test database to a revision, down or up, as alembic does (migration tests)."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import migrate
from storage.db import Database


async def to_revision(db: Database, revision: str, *, down: bool = False) -> None:
    cfg = migrate.alembic_config()

    def run(connection: Any) -> None:
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def inserted(conn: AsyncConnection, model: Any, **values: Any) -> int:
    """Insert one row through Core (the ORM knows the head's columns, a test's revision may
    lack some) and return its id."""
    return int(
        (await conn.execute(insert(model).values(**values).returning(model.id))).scalar_one()
    )
