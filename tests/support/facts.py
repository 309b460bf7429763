"""Rows derived from the record and kept by its writes, against a rebuild from the raw rows:
the statistics table's facts (``storage.facts``), the public search's bigram counts
(``public_bigram_count``), each public line's folded name (``public_entry.search_name``)
and, on PostgreSQL, each public line's search tokens
(``public_entry.grams``). The harness checks them at the end of every end-to-end test, so a
write path that moves a figure without keeping its derived rows fails the test that drives it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from storage import facts, public
from storage.db import Database
from storage.models import (
    CheckFact,
    CheckFactMember,
    Publication,
    PublicBigram,
    PublicBigramCount,
    PublicEntry,
    Task,
)


async def snapshot(session: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    rows = await session.execute(
        select(*(getattr(CheckFact, c) for c in facts.FACT_COLUMNS)).order_by(
            CheckFact.inspection_id
        )
    )
    people = await session.execute(
        select(*(getattr(CheckFactMember, c) for c in facts.MEMBER_COLUMNS)).order_by(
            CheckFactMember.inspection_id, CheckFactMember.inspector_id
        )
    )
    return [tuple(r) for r in rows.all()], [tuple(r) for r in people.all()]


async def assert_facts_kept(db: Database) -> None:
    async with db.transaction() as s:
        kept = await snapshot(s)
        await facts.refresh(s)
        rebuilt = await snapshot(s)
    assert kept[0] == rebuilt[0], "check_fact differs from a rebuild from the raw rows"
    assert kept[1] == rebuilt[1], "check_fact_member differs from a rebuild from the raw rows"


async def assert_search_index_kept(db: Database) -> None:
    async with db.transaction() as s:
        kept = {
            (g, y): n
            for g, y, n in (
                await s.execute(
                    select(PublicBigramCount.bigram, PublicBigramCount.year, PublicBigramCount.n)
                )
            ).all()
            if n
        }
        rebuilt = {
            (g, y): n
            for g, y, n in (
                await s.execute(
                    select(PublicBigram.bigram, PublicBigram.year, func.count()).group_by(
                        PublicBigram.bigram, PublicBigram.year
                    )
                )
            ).all()
        }
        astray = await s.scalar(
            select(func.count())
            .select_from(PublicBigram)
            .join(PublicEntry, PublicEntry.id == PublicBigram.entry_id)
            .where(PublicBigram.org_code != PublicEntry.org_code)
        )
        lines = (
            await s.execute(
                select(
                    PublicEntry.id,
                    PublicEntry.year,
                    PublicEntry.org_code,
                    PublicEntry.target_name,
                    PublicEntry.grams,
                    PublicEntry.search_name,
                )
            )
        ).all()
        astray_years = await s.scalar(
            select(func.count())
            .select_from(PublicEntry)
            .join(Publication, Publication.id == PublicEntry.publication_id)
            .join(Task, Task.id == Publication.task_id)
            .where(PublicEntry.year != Task.year)
        )
        postgresql = s.get_bind().dialect.name == "postgresql"
        kept_grams = (
            await s.execute(select(PublicBigram.entry_id, PublicBigram.bigram, PublicBigram.year))
        ).all()
    by_line: dict[int, set[tuple[str, int]]] = {}
    for entry_id, gram, year in kept_grams:
        by_line.setdefault(entry_id, set()).add((gram, year))
    assert kept == rebuilt, "public_bigram_count differs from the bigrams it counts"
    assert astray == 0, "a bigram's unit differs from its line's"
    assert astray_years == 0, "a line is not on its task's year's page (the one 公示 names)"
    for entry_id, year, org, name, grams, search_name in lines:
        assert search_name == public.searchable(name), f"line {entry_id}: search name differs"
        expected_grams = {(g, year) for g in public.bigrams(name)}
        assert by_line.get(entry_id, set()) == expected_grams, f"line {entry_id}: bigrams differ"
        if postgresql:
            expected = set(public.tokens(year, org, name))
            assert set(grams or []) == expected, f"line {entry_id}: tokens differ from its name's"
        else:
            assert grams is None, f"line {entry_id}: SQLite keeps no tokens"
