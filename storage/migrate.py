"""Run Alembic migrations on our async engine (the same scripts for SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from storage.db import Database

# The advisory lock key that serialises migrations: 64 bits, outside the range of the sender's
# 32-bit recipient keys, hashed like the draws' keys.
MIGRATION_LOCK = int.from_bytes(
    hashlib.sha256(b"shuangsuiji:migrate").digest()[:8], "big", signed=True
)

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(db: Database, revision: str = "head") -> None:
    cfg = alembic_config()

    def run(connection: Any) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Instances starting together upgrade one after another: the others wait here, then
            # find the schema at head (PostgreSQL's DDL is transactional) and do nothing.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(run)


async def current_revision(db: Database) -> str | None:
    def read(connection: Any) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(read)


async def autogenerate(db: Database, message: str) -> None:
    """Developer aid: write a new revision from the models' difference to the database."""
    cfg = alembic_config()

    def run(connection: Any) -> None:
        cfg.attributes["connection"] = connection
        command.revision(cfg, message=message, autogenerate=True)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)
