"""Migration 0008 (Art. 25, 37): checks imported before it get their result row, dated on the
check, so that they count in their quarter; none of them is asked to be published."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import insert, select, text

from storage import migrate
from storage.db import Database
from storage.models import ImportedCheck, Inspection, InspectionResult, Target, Task
from tests.factories import CITY, COUNTY, NOW, uscc


async def test_art25_migration_gives_checks_imported_before_it_their_result(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    try:
        await migrate.upgrade(db, "0008_cancel")  # the revision before 0008_letter
        async with db.core_transaction() as conn:
            target_id = (
                await conn.execute(
                    insert(Target)
                    .values(
                        key=uscc(1),
                        name="甲",
                        uscc=uscc(1),
                        org_code=COUNTY,
                        tier="general",
                        updated_at=NOW,
                    )
                    .returning(Target.id)
                )
            ).scalar_one()
            task_id = (
                await conn.execute(
                    insert(Task)
                    .values(
                        code=f"I2026-{CITY}",
                        year=2026,
                        name="导入",
                        org_code=CITY,
                        check_start=dt.date(2026, 1, 1),
                        check_end=dt.date(2026, 12, 31),
                        status="imported",
                        created_by="cli",
                        created_at=NOW,
                    )
                    .returning(Task.id)
                )
            ).scalar_one()
            inspection_id = (
                await conn.execute(
                    insert(Inspection)
                    .values(
                        number=1,
                        task_id=task_id,
                        target_id=target_id,
                        target_key=uscc(1),
                        tier="general",
                        method="onsite",
                        origin="random",
                        check_start=dt.date(2026, 5, 20),
                        check_end=dt.date(2026, 5, 20),
                        status="done",
                        result_code="case_filed",
                        created_at=NOW,
                    )
                    .returning(Inspection.id)
                )
            ).scalar_one()
            await conn.execute(  # the table as it was before 0008
                text(
                    "INSERT INTO imported_check (inspection_id, kind, note, source_file, "
                    "source_row, imported_by, imported_at) "
                    "VALUES (:i, 'random', '', 'a.csv', 2, 'cli', :at)"
                ),
                {"i": inspection_id, "at": NOW},
            )
        await migrate.upgrade(db)
        async with db.transaction() as s:
            (row,) = (await s.execute(select(InspectionResult))).scalars()
            mark = await s.get(ImportedCheck, inspection_id)
            task = await s.get(Task, task_id)
        beijing = dt.timezone(dt.timedelta(hours=8))
        assert (row.state, row.code, row.phrase, row.channel, row.case_filing) == (
            "recorded",
            "case_filed",
            "发现违法行为已立案调查",
            "import",
            True,
        )
        assert row.at.astimezone(beijing) == dt.datetime(2026, 5, 20, 12, 0, tzinfo=beijing)
        assert row.published_at is None and mark is not None and mark.published_elsewhere == ""
        assert task is not None and task.completed_at is None  # nothing asks to publish it
    finally:
        await db.dispose()
