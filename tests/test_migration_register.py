"""Migration 0008 (Art. 29): each inspector's leave period and conflict list, as imported
before the register existed, become confirmed register records, one per leave and per target."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import insert, select

from storage import migrate
from storage.db import Database
from storage.models import Inspector, RegisterEntry
from tests.factories import COUNTY, NOW


async def test_art29_migration_turns_leave_and_conflict_columns_into_register_records(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    try:
        await migrate.upgrade(db, "0008_letter")
        async with db.core_transaction() as conn:  # Core: the ORM reads register_entry
            for n, (leave, conflicts) in enumerate(
                [((dt.date(2026, 12, 1), dt.date(2026, 12, 9)), ["G1", "G2"]), (None, [])]
            ):
                await conn.execute(
                    insert(Inspector.__table__).values(
                        certificate_no=f"C{n}",
                        certificate_kind="enforcement",
                        name=f"检查员{n}",
                        gender="",
                        unit="",
                        position="",
                        phone="",
                        org_code=COUNTY,
                        dept_code="",
                        userid=f"u{n}",
                        auxiliary=False,
                        expertise=[],
                        tags={},
                        active=True,
                        leave_from=leave[0] if leave else None,
                        leave_until=leave[1] if leave else None,
                        conflicts=conflicts,
                        updated_at=NOW,
                    )
                )
        await migrate.upgrade(db)
        async with db.transaction() as s:
            rows = list((await s.scalars(select(RegisterEntry).order_by(RegisterEntry.id))).all())
        assert [(r.certificate_no, r.kind, r.targets) for r in rows] == [
            ("C0", "leave", []),
            ("C0", "conflict", ["G1"]),
            ("C0", "conflict", ["G2"]),
        ]
        assert all(r.record_id == r.id and r.state == "confirmed" for r in rows)
        assert (rows[0].date_from, rows[0].date_until) == (
            dt.date(2026, 12, 1),
            dt.date(2026, 12, 9),
        )
        assert rows[0].effective_at == NOW and rows[0].userid == "u0"
    finally:
        await db.dispose()
