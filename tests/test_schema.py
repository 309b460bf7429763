"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL: a model
change without its migration (or the reverse) fails here, not in a bureau's database."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.db import Database
from storage.models import Base
from storage.tasks import scope_batch_query


async def test_the_migrated_schema_is_the_models_schema(db: Database) -> None:
    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as conn:
        diff = await conn.run_sync(differences)
    assert diff == []


async def test_a_scope_is_read_through_its_covering_index(db: Database) -> None:
    """Migration 0003: the draw's grouped read of a scope walks ix_target_scope, no table."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's planner chooses a scan by table statistics, not by the schema")
    query = scope_batch_query("sqlite", prefix="EXPLAIN QUERY PLAN ")
    async with db.engine.connect() as conn:
        plan = (await conn.execute(query, {"orgs": ["150102", "150103"], "sep": "|"})).all()
    detail = " ".join(str(row[-1]) for row in plan)
    assert "COVERING INDEX ix_target_scope" in detail
    assert "TEMP B-TREE" not in detail
