"""Migration 0006 (Art. 6, 45): checks registered before it keep their meaning: joint checks
become random checks of their own kind, the other kinds take Art. 6's names; the table of rule
parameters starts with the rules of 2024-07-18."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert, select

from storage import migrate
from storage.db import Database
from storage.models import CheckOutsideDraw, Inspection, JointCheck, RuleParam, Target, Task
from tests.factories import CITY, COUNTY, NOW, uscc


async def test_art6_art45_migration_keeps_earlier_checks_and_seeds_the_parameters(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    try:
        await migrate.upgrade(db, "0006_letterresults")  # the revision before 0006_letterparams
        async with db.core_transaction() as conn:  # Core: the ORM reads rule_param, not there yet
            await conn.execute(
                insert(Target).values(
                    key=uscc(1),
                    name="甲",
                    uscc=uscc(1),
                    org_code=COUNTY,
                    tier="general",
                    updated_at=NOW,
                )
            )
            target_id = (await conn.execute(select(Target.id))).scalar_one()
            for n, (kind, lead) in enumerate(
                [("joint", "市水务局"), ("transfer", ""), ("incident", ""), ("nuclear", "")],
                start=1,
            ):
                task_id = (
                    await conn.execute(
                        insert(Task)
                        .values(
                            code=f"D2026-{CITY}-{n:03d}",
                            year=2026,
                            name="x",
                            org_code=CITY,
                            check_start=NOW.date(),
                            check_end=NOW.date(),
                            status="targeted",
                            created_by="t",
                            created_at=NOW,
                        )
                        .returning(Task.id)
                    )
                ).scalar_one()
                inspection_id = (
                    await conn.execute(
                        insert(Inspection)
                        .values(
                            number=n,
                            task_id=task_id,
                            target_id=target_id,
                            target_key=uscc(1),
                            tier="general",
                            method="onsite",
                            origin="joint" if kind == "joint" else "targeted",
                            check_start=NOW.date(),
                            check_end=NOW.date(),
                            created_at=NOW,
                        )
                        .returning(Inspection.id)
                    )
                ).scalar_one()
                await conn.execute(
                    insert(CheckOutsideDraw).values(
                        inspection_id=inspection_id,
                        kind=kind,
                        reason="r",
                        lead_dept=lead,
                        registered_by="t",
                        registered_at=NOW,
                    )
                )
        await migrate.upgrade(db)
        async with db.transaction() as s:
            joint = (await s.execute(select(JointCheck))).scalars().all()
            kinds = sorted((await s.execute(select(CheckOutsideDraw.kind))).scalars())
            seeded = (await s.execute(select(RuleParam))).scalars().all()
        assert [(j.inspection_id, j.lead_authority) for j in joint] == [(1, "市水务局")]
        assert kinds == ["emergency", "higher_authority", "nuclear_safety"]
        assert len(seeded) == 14  # 12 here, the two Art. 43 filing days in 0010_letterdeadlines
    finally:
        await db.dispose()
