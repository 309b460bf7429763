"""Checks made before the bot was adopted come in by import (Art. 14, 25, 38): marked as
imported, with their dates and results, counted for once a year from the first year."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from storage import imported_checks
from storage.db import Database
from storage.models import CheckOutsideDraw, ImportedCheck, Inspection, Task
from storage.spreadsheet import open_table
from storage.tasks import target_facts
from tests.factories import CITY, add_targets, make_task, uscc

HEADER = "检查对象信用代码或许可证编号,检查单位代码,检查日期,检查类型,检查结果,备注\n"


def _csv(tmp_path: Path) -> Path:
    a, b, c = uscc(1), uscc(2), uscc(3)
    rows = [
        f"{a},{CITY},2026-05-20,随机抽查,未发现问题,",  # 2
        f"{b},{CITY},2026/6/1,部门联合抽查,2,市场监管局牵头 ",  # 3
        f"{c},{CITY},2026-03-02,投诉举报,发现违法行为已立案调查,群众投诉异味",  # 4
        f"{a},{CITY},2026-13-01,随机抽查,未发现问题,",  # 5: no such date
        f"91150102MA9999999X,{CITY},2026-05-20,随机抽查,未发现问题,",  # 6: not in the directory
        f"{b},{CITY},2026-05-20,随机抽查,还行,",  # 7: not one of the phrases
        f"{b},{CITY},2026-05-20,专项检查,未发现问题,",  # 8: a planned check is drawn
        f"{c},999999,2026-05-20,随机抽查,未发现问题,",  # 9: no such unit
        f"{c},{CITY},2099-01-01,随机抽查,未发现问题,",  # 10: in the future
    ]
    path = tmp_path / "earlier.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


async def test_art14_art25_earlier_checks_are_imported_and_count_for_once_a_year(
    db: Database, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with db.transaction() as s:
        await add_targets(s, 5, tier="general")
    path = _csv(tmp_path)
    code = await asyncio.to_thread(
        main, ["import", "inspections", str(path), "--database-url", db_url]
    )
    out = capsys.readouterr().out
    assert code == 0  # the good rows were saved; the summary counts the rejected ones
    assert "3 added" in out and "6 rejected" in out
    for row in (5, 6, 7, 8, 9, 10):
        assert f"row {row}," in out
    async with db.transaction() as s:
        found = (
            await s.execute(
                select(Inspection, ImportedCheck)
                .join(ImportedCheck, ImportedCheck.inspection_id == Inspection.id)
                .order_by(ImportedCheck.source_row)
            )
        ).all()
        outside = (await s.execute(select(CheckOutsideDraw))).scalars().all()
        task = (await s.execute(select(Task).where(Task.code == f"I2026-{CITY}"))).scalar_one()
    got = [
        (i.target_key, i.check_start.isoformat(), i.origin, i.result_code, i.status, m.kind, m.note)
        for i, m in found
    ]
    assert got == [
        (uscc(1), "2026-05-20", "random", "no_problem", "done", "random", ""),
        (uscc(2), "2026-06-01", "joint", "ordered_to_rectify", "done", "joint", "市场监管局牵头"),
        (uscc(3), "2026-03-02", "targeted", "case_filed", "done", "complaint", "群众投诉异味"),
    ]
    assert [(o.kind, o.reason) for o in outside] == [("complaint", "群众投诉异味")]
    assert task.status == "imported"
    # Re-importing the same file adds nothing.
    await asyncio.to_thread(main, ["import", "inspections", str(path), "--database-url", db_url])
    assert "0 added, 0 updated, 3 unchanged" in capsys.readouterr().out
    async with db.transaction() as s:
        assert (await s.execute(select(func.count()).select_from(ImportedCheck))).scalar() == 3
        # Once a year (Art. 25): the city's own draw this year sees the random and joint ones.
        own = await make_task(s)
        facts, _ = await target_facts(s, own, batched=False)
    assert {f.key for f in facts if f.checked_this_year} == {uscc(1), uscc(2)}


def test_art14_the_inspections_template_is_read_back_by_the_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.xlsx"
    assert main(["template", "inspections", str(path)]) == 0
    with open_table(path, imported_checks.HEADER_MAP) as table:
        assert set(imported_checks.REQUIRED) <= table.present
        (_, cells), *_ = list(table.rows)
    row = imported_checks.parse_row(cells, imported_checks.dt.date(2026, 11, 30))
    assert (row.kind, row.result) == ("random", "no_problem")
