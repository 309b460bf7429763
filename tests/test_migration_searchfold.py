"""Migration 0011 (issue 14, 一公开, Art. 37): the public lines of a record published before it
get their folded search name, equal to what publication writes, and lines written on their
check date's year (a task's result recorded in January of the next year) move to their task's
year, the page 公示 named, with their bigrams, counts and, on PostgreSQL, search tokens."""

from __future__ import annotations

import importlib

from sqlalchemy import delete, func, insert, select, update

from storage import public
from storage.db import Database
from storage.models import PublicBigram, PublicBigramCount, PublicEntry
from tests.support.facts import assert_search_index_kept
from tests.support.migrations import to_revision
from tests.support.public import publish_names

NEXT = 2027


async def _as_before(db: Database, moved: list[int]) -> None:
    """The record as the code before 0011 left it: these lines on the next year's page (their
    bigrams, counts and tokens with them), and no folded names."""
    async with db.transaction() as s:
        await s.execute(update(PublicEntry).where(PublicEntry.id.in_(moved)).values(year=NEXT))
        await s.execute(
            update(PublicBigram).where(PublicBigram.entry_id.in_(moved)).values(year=NEXT)
        )
        if db.dialect == "postgresql":
            for entry in await s.scalars(select(PublicEntry).where(PublicEntry.id.in_(moved))):
                entry.grams = public.tokens(NEXT, entry.org_code, entry.target_name)
        await s.execute(delete(PublicBigramCount))
        counted = select(PublicBigram.bigram, PublicBigram.year, func.count()).group_by(
            PublicBigram.bigram, PublicBigram.year
        )
        await s.execute(insert(PublicBigramCount).from_select(["bigram", "year", "n"], counted))
    module = importlib.import_module("storage.migrations.versions.0011_searchfold")
    await to_revision(db, module.down_revision, down=True)


async def test_art37_migration_folds_earlier_names_and_puts_lines_on_their_tasks_year(
    db: Database,
) -> None:
    lines = await publish_names(db)
    moved = [i for i, _, _ in lines[::7]]
    async with db.transaction() as s:
        before = await public.page(s, None, 2026, query="化工", limit=1000)
    await _as_before(db, moved)
    async with db.transaction() as s:
        astray = await public.page(s, None, NEXT, query="", limit=1000)
    assert sorted(e.id for e in astray.entries) == sorted(moved)  # the old code's next year
    await to_revision(db, "head")
    await assert_search_index_kept(db)  # folded names, years, bigrams, counts and tokens
    async with db.transaction() as s:
        after = await public.page(s, None, 2026, query="化工", limit=1000)
        gone = await public.page(s, None, NEXT, query="", limit=1000)
        folded = dict((await s.execute(select(PublicEntry.id, PublicEntry.search_name))).all())
    assert [e.id for e in after.entries] == [e.id for e in before.entries]
    assert before.total > 0 and gone.total == 0
    assert all(folded[i] == public.searchable(name) for i, _, name in lines)
