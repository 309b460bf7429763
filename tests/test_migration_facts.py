"""Migration 0008 (Art. 43): the statistics table's facts of a record made before it are filled
from the raw rows, equal to what the record's writes keep (``storage.facts``)."""

from __future__ import annotations

import datetime as dt
import importlib

from inspection.origins import QUOTA_ORIGINS
from storage.db import Database
from tests.factories import add_inspectors, add_targets
from tests.support.facts import snapshot
from tests.support.migrations import to_revision

NOW = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)


async def test_art43_migration_fills_the_facts_of_an_earlier_record(db: Database) -> None:
    from storage.synthetic_checks import generate

    async with db.transaction() as s:
        for org in ("150102", "150103"):
            await add_targets(s, 30, org=org, tier="key", start=100 * int(org[-1]))
            await add_inspectors(s, 5, org=org, prefix=f"F{org}")
        await generate(s, seed=5, inspections=200, year=2026, now=NOW)
    async with db.transaction() as s:
        kept = await snapshot(s)
    assert len(kept[0]) > 50 and len(kept[1]) > len(kept[0])
    before = importlib.import_module("storage.migrations.versions.0008_facts").down_revision
    await to_revision(db, before, down=True)
    await to_revision(db, "head")
    async with db.transaction() as s:
        assert await snapshot(s) == kept


def test_the_migrations_origins_are_those_that_count() -> None:
    module = importlib.import_module("storage.migrations.versions.0008_facts")
    assert sorted(module.ORIGINS) == sorted(QUOTA_ORIGINS)
