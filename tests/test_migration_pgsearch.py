"""Migration 0010 (issue 14, 一公开): the public lines of a record published before it get their
search tokens on PostgreSQL, equal to what publication writes (``storage.public.tokens``), from
the kept bigrams; SQLite keeps none. The search then finds what it found before."""

from __future__ import annotations

import importlib

from sqlalchemy import select

from storage import public
from storage.db import Database
from storage.models import PublicEntry
from tests.support.facts import assert_search_index_kept
from tests.support.migrations import to_revision
from tests.support.public import publish_names


async def _tokens(db: Database) -> dict[int, set[str] | None]:
    async with db.transaction() as s:
        rows = (await s.execute(select(PublicEntry.id, PublicEntry.grams))).all()
    return {i: None if g is None else set(g) for i, g in rows}


async def test_art37_migration_gives_earlier_public_lines_their_search_tokens(
    db: Database,
) -> None:
    lines = await publish_names(db)
    kept = await _tokens(db)
    postgresql = db.dialect == "postgresql"
    for entry_id, _, _ in lines:
        assert (kept[entry_id] is not None) == postgresql
    # Three characters (two bigrams or more): on PostgreSQL through the tokens' GIN index
    # (``_search_tokens``); one bigram ("化工") through the bigram rows.
    hanzi = "鑫源化工煤业"
    query = next(
        name[i : i + 3]
        for _, _, name in lines
        for i in range(len(name) - 2)
        if all(c in hanzi for c in name[i : i + 3]) and len(set(name[i : i + 3])) == 3
    )
    assert len(public.bigrams(query)) > 1
    matching = {entry_id for entry_id, _, name in lines if query in name}
    async with db.transaction() as s:
        found = await public.page(s, None, 2026, query="化工", limit=1000)
        longer = await public.page(s, None, 2026, query=query, limit=1000)
    assert {e.id for e in longer.entries} == matching and longer.total == len(matching)
    module = importlib.import_module("storage.migrations.versions.0010_pgsearch")
    await to_revision(db, module.down_revision, down=True)
    await to_revision(db, "head")
    assert await _tokens(db) == kept
    await assert_search_index_kept(db)  # the bigrams and their counts, untouched
    async with db.transaction() as s:
        again = await public.page(s, None, 2026, query="化工", limit=1000)
        longer_again = await public.page(s, None, 2026, query=query, limit=1000)
    assert [e.id for e in again.entries] == [e.id for e in found.entries]
    assert [e.id for e in longer_again.entries] == [e.id for e in longer.entries]
    assert found.total > 0
