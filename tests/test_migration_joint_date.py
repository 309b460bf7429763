"""Migration 0010 (Art. 6, 7, 25): a joint check registered before it has no check date of its
own; it gets its registration time, and its statistics facts move to that date, so that the
facts kept equal a rebuild by today's ``storage.facts``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import insert, select

from storage import migrate
from storage.db import Database
from storage.models import (
    CheckFact,
    CheckFactMember,
    Inspection,
    InspectionResult,
    Inspector,
    JointCheck,
    Target,
    Task,
    TeamMember,
)
from tests.factories import CITY, COUNTY, NOW, uscc
from tests.support.facts import assert_facts_kept
from tests.support.migrations import inserted


async def test_art7_migration_dates_earlier_joint_checks_on_their_registration(
    tmp_path: Path,
) -> None:
    registered = dt.datetime(2026, 9, 30, 8, 0, tzinfo=dt.UTC)
    recorded = NOW  # 2026-11-30: the result came in the next quarter
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    try:
        # The revision before 0010_joint_check_date.
        await migrate.upgrade(db, "0010_letterdeadlines")
        async with db.core_transaction() as conn:  # Core: the ORM knows checked_at, not there yet
            target_id = await inserted(
                conn,
                Target,
                key=uscc(1),
                name="甲",
                uscc=uscc(1),
                org_code=COUNTY,
                tier="general",
                updated_at=NOW,
            )
            inspector_id = await inserted(
                conn, Inspector, certificate_no="C1", name="乙", org_code=COUNTY, updated_at=NOW
            )
            task_id = await inserted(
                conn,
                Task,
                code=f"D2026-{CITY}-001",
                year=2026,
                name="部门联合抽查：甲",
                org_code=CITY,
                check_start=registered.date(),
                check_end=registered.date(),
                status="joint",
                created_by="t",
                created_at=registered,
            )
            inspection_id = await inserted(
                conn,
                Inspection,
                number=1,
                task_id=task_id,
                target_id=target_id,
                target_key=uscc(1),
                tier="general",
                method="onsite",
                origin="joint",
                check_start=registered.date(),
                check_end=registered.date(),
                status="done",
                result_code="no_problem",
                created_at=registered,
            )
            await conn.execute(
                insert(TeamMember).values(
                    inspection_id=inspection_id,
                    inspector_id=inspector_id,
                    certificate_no="C1",
                    userid="u",
                    position=0,
                    joined_at=registered,
                )
            )
            await conn.execute(
                insert(JointCheck).values(
                    inspection_id=inspection_id,
                    lead_authority="市市场监督管理局",
                    lead_task="第3批",
                    lead_draw_ref="SC-1",
                    registered_by="t",
                    registered_at=registered,
                )
            )
            await conn.execute(
                insert(InspectionResult).values(
                    inspection_id=inspection_id,
                    task_id=task_id,
                    state="recorded",
                    code="no_problem",
                    phrase="未发现问题",
                    userid="u",
                    channel="card",
                    at=recorded,
                )
            )
            fact = {"inspection_id": inspection_id, "at": recorded, "org_code": COUNTY}
            await conn.execute(
                insert(CheckFact).values(
                    **fact,
                    target_id=target_id,
                    tier="general",
                    code="no_problem",
                    case_filing=False,
                )
            )
            await conn.execute(insert(CheckFactMember).values(**fact, inspector_id=inspector_id))
        await migrate.upgrade(db)
        async with db.transaction() as s:
            joint = (await s.execute(select(JointCheck))).scalar_one()
            fact_at = (await s.execute(select(CheckFact.at))).scalar_one()
            member_at = (await s.execute(select(CheckFactMember.at))).scalar_one()
        assert joint.checked_at == joint.registered_at == registered
        assert fact_at == member_at == registered  # Q3, the check's quarter, not Q4's result
        await assert_facts_kept(db)
    finally:
        await db.dispose()
