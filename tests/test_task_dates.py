"""A task's dates on creation (Art. 20, 22, 37): chat and command line, nothing half-made."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select

from bot.cli import main as cli_main
from inspection.taskdates import (
    calendar_warning,
    check_plan_year,
    check_task_dates,
    covered_years,
    uncovered_years,
)
from inspection.taskspec import SpecError
from storage.db import Database
from storage.models import Plan, Task
from tests.conftest import Harness
from tests.factories import CITY, COUNTY, NOW

TODAY = dt.date(2026, 11, 30)


def test_art22_a_check_period_wholly_in_the_past_is_refused() -> None:
    with pytest.raises(SpecError) as err:
        check_task_dates(dt.date(2026, 10, 1), dt.date(2026, 11, 29), None, TODAY)
    assert "已经结束" in err.value.zh and "in the past" in err.value.en
    # Running today, or started earlier and still running: accepted.
    check_task_dates(dt.date(2026, 11, 1), TODAY, None, TODAY)


def test_art20_a_plan_or_task_year_far_from_today_is_refused() -> None:
    for year in (1900, 2024, 2028):
        with pytest.raises(SpecError):
            check_plan_year(year, TODAY)
    for year in (2025, 2026, 2027):
        check_plan_year(year, TODAY)
    with pytest.raises(SpecError) as err:  # a draw date of 1900 makes a task of 1900
        check_task_dates(dt.date(2026, 12, 1), dt.date(2026, 12, 31), dt.date(1900, 1, 1), TODAY)
    assert "1900" in err.value.zh and "1900" in err.value.en


def test_art37_years_the_holiday_calendar_lacks_are_named() -> None:
    packaged = covered_years()
    assert 2026 in packaged and 2099 not in packaged
    start, end = dt.date(2099, 12, 1), dt.date(2100, 1, 31)
    assert uncovered_years(start, end, packaged) == [2099, 2100]
    warning = calendar_warning([2099, 2100])
    assert warning is not None and "2099年、2100年" in warning[0] and "[calendar]" in warning[0]
    configured = covered_years([dt.date(2099, 1, 1)], [dt.date(2100, 1, 4)])
    assert uncovered_years(start, end, configured) == []
    assert calendar_warning([]) is None


async def task_count(h: Harness) -> int:
    async with h.db.transaction() as s:
        return await s.scalar(select(func.count()).select_from(Task)) or 0


async def test_art22_art37_task_dates_are_checked_in_chat(h: Harness) -> None:
    await h.grant("admin1", "admin", CITY)
    (past,) = await h.say("admin1", "新建任务 旧任务 检查期=2026-10-01~2026-10-31")
    assert "已经结束" in past and "2026-11-30" in past  # today, in the bureau's time zone
    (ancient,) = await h.say(
        "admin1", "新建任务 古任务 检查期=2026-12-01~2026-12-31 抽取日=1900-01-01"
    )
    assert "1900" in ancient and "第20条" in ancient
    (backwards,) = await h.say("admin1", "新建任务 倒序 检查期=2026-12-31~2026-12-01")
    assert "晚于结束日期" in backwards
    assert await task_count(h) == 0
    # Into a year the packaged calendar lacks: created, with a warning naming the year.
    covered = covered_years()
    year = max(covered) + 1
    (made,) = await h.say("admin1", f"新建任务 跨年 检查期=2026-12-01~{year}-01-31")
    assert "已新建任务" in made and f"{year}年的节假日安排尚未载入" in made
    # Once the settings' [calendar] names the year, no warning.
    h.settings.calendar.holidays = [dt.date(year, 1, 1)]
    (made,) = await h.say("admin1", f"新建任务 跨年二 检查期=2026-12-01~{year}-01-31")
    assert "已新建任务" in made and "尚未载入" not in made
    assert await task_count(h) == 2


async def cli(*args: str) -> int:
    return await asyncio.to_thread(cli_main, list(args))


async def test_art20_art22_task_and_plan_dates_are_checked_on_the_command_line(
    db: Database,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bot.cli.draws.now", lambda: NOW)  # the command line's clock
    base = ("--database-url", db_url)
    task = ("task", "create", "--org", CITY, "--name", "x")
    assert await cli(*task, "--start", "2026-10-01", "--end", "2026-10-31", *base) == 2
    err = capsys.readouterr().err.strip()
    assert "in the past" in err and len(err.splitlines()) == 1
    assert await cli("plan", "create", "--org", CITY, "--year", "1900", "--name", "p", *base) == 2
    err = capsys.readouterr().err.strip()
    assert "plan year 1900" in err and len(err.splitlines()) == 1
    year = max(covered_years()) + 1
    assert await cli(*task, "--start", "2026-12-01", "--end", f"{year}-01-31", *base) == 0
    captured = capsys.readouterr()
    assert "created" in captured.out and f"lacks {year}" in captured.err
    # A branch's task, from the command line too, awaits its city's approval (Art. 5).
    branch = ("task", "create", "--org", COUNTY, "--name", "y")
    assert await cli(*branch, "--start", "2026-12-01", "--end", "2026-12-31", *base) == 0
    assert "awaits its league/city bureau's approval" in capsys.readouterr().out
    async with db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(Plan)) == 0
        statuses = (await s.execute(select(Task.status).order_by(Task.id))).scalars().all()
    assert statuses == ["planned", "proposed"]
