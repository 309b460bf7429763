"""Migration 0011 (Art. 37, 43): publications recorded before it get one publication event each,
at the publication's time, its results counted on time or late as the publication was judged."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select

from storage.db import Database
from storage.models import Publication, PublicationEvent
from tests.factories import add_inspectors, add_targets
from tests.support.migrations import to_revision

NOW = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)


async def test_art37_art43_migration_gives_each_earlier_publication_its_event(
    db: Database,
) -> None:
    from storage.synthetic_checks import generate

    async with db.transaction() as s:
        for org in ("150102", "150103"):
            await add_targets(s, 30, org=org, tier="key", start=100 * int(org[-1]))
            await add_inspectors(s, 5, org=org, prefix=f"M{org}")
        await generate(s, seed=11, inspections=300, year=2026, now=NOW)
        await s.execute(delete(PublicationEvent))  # the record as it was before 0011
        first, second, *_ = await s.scalars(select(Publication).order_by(Publication.id))
        first.on_time, second.on_time, second.deadline = False, None, None  # late; no deadline
        await s.flush()
        publications = [
            (p.id, p.org_code, p.published_at, p.deadline, p.on_time, p.results)
            for p in await s.scalars(select(Publication))
        ]
    assert {on_time for *_, on_time, _ in publications} == {True, False, None}
    await to_revision(db, "0011_searchfold", down=True)
    await to_revision(db, "head")
    async with db.transaction() as s:
        events = {e.publication_id: e for e in await s.scalars(select(PublicationEvent))}
        assert await s.scalar(select(func.count()).select_from(PublicationEvent)) == len(events)
    assert sorted(events) == sorted(p[0] for p in publications)
    for pid, org, at, deadline, on_time, results in publications:
        e = events[pid]
        assert (e.org_code, e.published_at, e.due, e.supplement) == (org, at, deadline, False)
        assert (e.on_time, e.late) == ((0, results) if on_time is False else (results, 0))
