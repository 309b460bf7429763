"""`shuangsuiji import`: the exit code and the summary say exactly what was saved (Art. 11-16:
the directories are built by import). Exit 0 when the good rows were saved, 2 when rejected
rows left nothing saved."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from storage.db import Database
from storage.models import Target
from tests.support.directory import write
from tests.test_directory_import import USCC_A, target


async def _count_targets(url: str) -> int:
    db = Database(url)
    try:
        async with db.transaction() as session:
            return (await session.execute(select(func.count()).select_from(Target))).scalar_one()
    finally:
        await db.dispose()


def _sheet(tmp_path: Path, good: int, bad: int) -> Path:
    rows = [target(排污许可证编号=f"{USCC_A}{n:03d}P") for n in range(good)]
    rows += [target(排污许可证编号="", 统一社会信用代码="123") for _ in range(bad)]
    return write(tmp_path / "targets.xlsx", rows)


def test_art11_a_partial_import_saves_the_good_rows_and_exits_0(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, report = _sheet(tmp_path, good=3, bad=1), tmp_path / "rejected.xlsx"
    args = ["import", "targets", str(path), "--report", str(report), "--database-url", db_url]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "3 added" in out and "1 rejected" in out and str(report) in out
    assert report.is_file()
    assert asyncio.run(_count_targets(db_url)) == 3


def test_art11_a_strict_import_with_a_bad_row_says_nothing_was_saved(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _sheet(tmp_path, good=3, bad=1)
    assert main(["import", "targets", str(path), "--strict", "--database-url", db_url]) == 2
    out = capsys.readouterr().out
    assert "nothing was imported" in out and "1 rows rejected" in out
    assert "3 added" not in out
    assert asyncio.run(_count_targets(db_url)) == 0


def test_art11_an_import_whose_every_row_is_rejected_exits_2(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _sheet(tmp_path, good=0, bad=2)
    assert main(["import", "targets", str(path), "--database-url", db_url]) == 2
    out = capsys.readouterr().out
    assert "0 added" in out and "2 rejected" in out
    assert asyncio.run(_count_targets(db_url)) == 0


def test_art11_a_clean_import_exits_0(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _sheet(tmp_path, good=2, bad=0)
    assert main(["import", "targets", str(path), "--database-url", db_url]) == 0
    assert "2 added" in capsys.readouterr().out
    assert asyncio.run(_count_targets(db_url)) == 2
