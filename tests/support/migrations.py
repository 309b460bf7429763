"""Moving a test database to a revision, down or up, as alembic does (migration tests)."""

from __future__ import annotations

from typing import Any

from alembic import command

from storage import migrate
from storage.db import Database


async def to_revision(db: Database, revision: str, *, down: bool = False) -> None:
    cfg = migrate.alembic_config()

    def run(connection: Any) -> None:
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)
