"""Checks made before the bot was adopted come in by import (Art. 14, 25, 38): marked as
imported, with their dates and results, counted for once a year from the first year."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.cli import main
from inspection.quotas import Tier
from inspection.uscc import make_uscc, validate_uscc
from storage import imported_checks
from storage.db import Database
from storage.directory import EXAMPLE_MARK
from storage.models import (
    CheckOutsideDraw,
    ImportedCheck,
    Inspection,
    InspectionResult,
    Publication,
    Task,
)
from storage.quotas import Quarter, coverage
from storage.spreadsheet import open_table
from storage.tasks import target_facts
from tests.conftest import Harness
from tests.factories import CITY, add_targets, make_task, uscc

PUBLISHER, CHIEF = "pub1", "chief1"
BEIJING = dt.timezone(dt.timedelta(hours=8))

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
    # The example's credit code is marked, and valid without the mark.
    assert row.target.startswith(EXAMPLE_MARK)
    assert validate_uscc(row.target.removeprefix(EXAMPLE_MARK)) == make_uscc("91150102MA0N00001")


async def test_art14_the_inspections_templates_example_row_is_skipped_and_said_so(
    db: Database, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the directory templates': the example row is marked 【示例】 and never imported."""
    async with db.transaction() as s:
        await add_targets(s, 1, tier="general")
    path = tmp_path / "t.xlsx"
    assert await asyncio.to_thread(main, ["template", "inspections", str(path)]) == 0
    args = ["import", "inspections", str(path), "--database-url", db_url]
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr().out
    assert "0 added" in out and "0 rejected" in out and "row 2" in out, out
    async with db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(ImportedCheck)) == 0
        assert await s.scalar(select(func.count()).select_from(Inspection)) == 0


async def test_art25_art37_an_imported_check_counts_in_its_quarter_and_this_years_are_published(
    h: Harness, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Decided: a random or joint check of the import's year whose result was not published
    elsewhere is published here like any other (Art. 37: 100 % of the year's results); earlier
    years, checks outside the draw and results published elsewhere are not asked for."""
    await h.grant(PUBLISHER, "publisher", CITY)
    await h.grant(CHIEF, "chief", CITY)
    async with h.db.transaction() as s:
        await add_targets(s, 5, tier="general")
    elsewhere = "https://hhht.example.gov.cn/gs/２０２６-1"
    rows = [
        f"{uscc(1)},{CITY},2026-05-20,随机抽查,未发现问题,,",  # to publish here
        f"{uscc(2)},{CITY},2026-06-01,随机抽查,1,,{elsewhere}",  # published elsewhere
        f"{uscc(3)},{CITY},2025-11-03,随机抽查,1,,",  # an earlier year
        f"{uscc(4)},{CITY},2026-03-02,投诉举报,1,群众投诉,",  # outside the draw (Art. 6)
    ]
    path = tmp_path / "earlier.csv"
    path.write_text(HEADER.strip() + ",公开情况\n" + "\n".join(rows) + "\n", encoding="utf-8")
    config = tmp_path / "drill.toml"  # the command line on 2026-12-01
    config.write_text("[clock]\nstart = 2026-12-01T09:00:00+08:00\n", encoding="utf-8")
    args = ["import", "inspections", str(path), "--config", str(config), "--database-url", db_url]
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr().out
    assert "4 added" in out and f"task I2026-{CITY}-01" in out, out
    async with h.db.transaction() as s:
        marks = {
            m.source_row: (task.code, m.published_elsewhere, r.at.astimezone(BEIJING).date())
            for m, task, r in (
                await s.execute(
                    select(ImportedCheck, Task, InspectionResult)
                    .join(Inspection, Inspection.id == ImportedCheck.inspection_id)
                    .join(Task, Task.id == Inspection.task_id)
                    .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
                )
            ).all()
        }
        publish = (
            await s.execute(select(Task).where(Task.code == f"I2026-{CITY}-01"))
        ).scalar_one()
        q2 = await coverage(
            s, [CITY, "150102", "150103"], Quarter.of(2026, 2, ZoneInfo("Asia/Shanghai"))
        )
    assert marks == {
        2: (f"I2026-{CITY}-01", "", dt.date(2026, 5, 20)),
        3: (f"I2026-{CITY}", elsewhere, dt.date(2026, 6, 1)),  # as typed
        4: (f"I2025-{CITY}", "", dt.date(2025, 11, 3)),
        5: (f"I2026-{CITY}", "", dt.date(2026, 3, 2)),
    }
    assert publish.completed_at is not None
    # Both random checks of the second quarter count for its quota (Art. 25).
    assert q2[Tier.general].done == 2
    # The city's publisher is asked for the one result, and publishes it like any other.
    h.clock.set(dt.datetime(2026, 12, 2, 10, 0, tzinfo=BEIJING))
    (progress,) = await h.say(CHIEF, "进度")
    assert f"I2026-{CITY}-01" in progress and f"I2026-{CITY}」" not in progress, progress
    (no,) = await h.say(PUBLISHER, f"公示 I2026-{CITY} https://hhht.example.gov.cn/gs/9")
    assert "无需在本系统登记公开" in no, no
    (done,) = await h.say(PUBLISHER, f"公示 I2026-{CITY}-01 https://hhht.example.gov.cn/gs/9")
    assert f"I2026-{CITY}-01" in done, done
    async with h.db.transaction() as s:
        (publication,) = (await s.execute(select(Publication))).scalars()
        published = (
            await s.execute(
                select(Inspection.target_key)
                .join(InspectionResult, InspectionResult.inspection_id == Inspection.id)
                .where(InspectionResult.published_at.is_not(None))
            )
        ).scalars()
    assert (publication.org_code, publication.results, publication.on_time) == (CITY, 1, True)
    assert list(published) == [uscc(1)]


def test_art14_a_file_name_longer_than_kept_is_refused_never_cut(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each imported check records its file's name whole: one too long is refused (one
    English line, exit 2) before anything is read; nothing imported."""
    long = tmp_path / ("e" * 197 + ".csv")  # 201 characters
    long.write_text(_csv(tmp_path).read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["import", "inspections", str(long), "--database-url", db_url]) == 2
    err = capsys.readouterr().err
    assert "201" in err and "200" in err and err.count("\n") == 1 and "Traceback" not in err

    async def imported() -> int:
        db = Database(db_url)
        try:
            async with db.transaction() as s:
                return int(await s.scalar(select(func.count()).select_from(ImportedCheck)) or 0)
        finally:
            await db.dispose()

    assert asyncio.run(imported()) == 0
