"""Plans and tasks (Art. 5, 19-23): in chat, on the command line and from a spreadsheet."""

from __future__ import annotations

import asyncio
import datetime as dt
from fractions import Fraction
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from bot.cli import main as cli_main
from inspection.pool import Quota
from inspection.quotas import Tier
from inspection.taskspec import SpecError, parse_task_line
from storage.db import Database
from storage.models import AuditEntry, Task
from tests.conftest import Harness
from tests.factories import CITY, NOW, add_item, make_task


def test_art22_the_chat_line_holds_every_field_of_a_task() -> None:
    spec = parse_task_line(
        "四季度联合抽查 单位=150100 范围=150102,150103 特殊=25% 重点=1/5 一般=30个 "
        "检查期＝2026-12-01～2026-12-31 抽取日=2026/11/30 事项=DQ01，FS01 检查重点=VOCs "
        "抽取科室=ZF 检查科室=ZF,HP 发起科室=ZF 参与科室=HP,JC 组员=3 证件=执法证,工作证 "
        "属地=本旗县区 辅助=1 回避上次=否 每人上限=2 标签=行业:火电 本年已查=排除 上级已查=是 "
        "特殊多查=否 复查下级=是 建设项目=否 计划=7"
    )
    assert spec.name == "四季度联合抽查" and spec.org_code == "150100"
    assert spec.scope_orgs == ("150102", "150103")
    assert spec.quotas == {
        Tier.special: Quota(ratio=Fraction(1, 4)),
        Tier.key: Quota(ratio=Fraction(1, 5)),
        Tier.general: Quota(count=30),
    }
    assert (spec.check_start, spec.check_end) == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert spec.draw_on == dt.date(2026, 11, 30) and spec.item_codes == ("DQ01", "FS01")
    assert spec.focus == "VOCs" and spec.drawing_dept == "ZF"
    assert spec.checking_depts == ("ZF", "HP") and spec.joint
    assert spec.participating_depts == ("HP", "JC")
    assert spec.team_size == 3 and spec.qualifying_kinds == ("enforcement", "work")
    assert spec.locality == "same_county" and spec.auxiliary_per_team == 1
    assert not spec.avoid_last_inspector and spec.max_load == 2
    assert spec.tag_filter == {"industry": "火电"}
    assert spec.once_a_year and spec.skip_checked_above
    assert not spec.special_more_often and spec.recheck_below
    assert not spec.construction_projects and spec.plan_id == 7


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("任务 检查期=2026-12-01", "开始~结束"),
        ("任务 检查期=2026-12-31~2026-12-01", "晚于结束日期"),
        ("任务 检查期=2026-12-01~2026-12-31 一般=abc", "应为比例"),
        ("任务 检查期=2026-12-01~2026-12-31 一般=150%", "0到100%"),
        ("任务 检查期=2026-12-01~2026-12-31 颜色=红", "不认识「颜色」"),
        ("任务 检查期=2026-12-01~2026-12-31 属地=全国", "本旗县区"),
        ("任务 检查期=2026-12-01~2026-12-31 发起科室=ZF", "参与科室"),
        # Art. 21, 23: a joint task's teams come from its own departments.
        ("任务 检查期=2026-12-01~2026-12-31 发起科室=ZF 参与科室=HP 检查科室=ZF,QT", "QT"),
        ("两个 名字 检查期=2026-12-01~2026-12-31", "不含空格"),
    ],
)
def test_mistakes_in_the_chat_line_are_explained_in_chinese(line: str, says: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_task_line(line)
    assert says in err.value.zh and err.value.en[:7].isascii()  # English for the CLI


async def test_task_codes_are_unique_in_the_region_and_counted_per_org_and_year(
    db: Database,
) -> None:
    async with db.transaction() as s:
        a = await make_task(s)
        b = await make_task(s)
        c = await make_task(s, org="150200", 检查期="2027-01-04~2027-01-29")
        d = await make_task(s, org="150102")
        actions = (await s.execute(select(AuditEntry.subject, AuditEntry.action))).all()
    assert [a.code, b.code, c.code, d.code] == [
        "T2026-150100-001",
        "T2026-150100-002",
        "T2027-150200-001",
        "T2026-150102-001",
    ]
    assert ("task:T2026-150100-001", "task.create") in actions


async def test_art5_art28_scope_and_team_size_follow_the_rules(db: Database) -> None:
    async with db.transaction() as s:
        with pytest.raises(SpecError, match="不得少于2人"):
            await make_task(s, 组员="1")  # Art. 28, via the rule parameters in force
        default = await make_task(s, 一般="")
        assert default.quotas == {  # Art. 25's minimum ratios when none are given
            "special": {"ratio": "1/4"},
            "key": {"ratio": "1/5"},
            "general": {"ratio": "1/10"},
        }
        assert default.team_size == 2 and default.qualifying_kinds == ["enforcement"]
        with pytest.raises(SpecError, match="管辖范围"):
            await make_task(s, 范围="150202")  # 包头市 is not under 呼和浩特市
        with pytest.raises(SpecError, match="抽查事项清单中没有"):
            await make_task(s, 事项="NOPE")
        task = await make_task(s, org="150000", 范围="150100,150202")
    assert task.scope_orgs == ["150100", "150202"]


async def test_art22_art41_admins_create_and_list_tasks_and_the_level_above_sees_them(
    h: Harness,
) -> None:
    await h.grant("admin1", "admin", CITY)
    await h.grant("cadmin", "admin", "150102")
    async with h.db.transaction() as s:
        await add_item(s, "DQ01", "大气")
    (reply,) = await h.say(
        "admin1", "新建任务 四季度抽查 特殊=25% 一般=10% 检查期=2026-12-01~2026-12-31 事项=DQ01"
    )
    assert "已新建任务 T2026-150100-001「四季度抽查」" in reply and "特殊25%、一般10%" in reply
    (reply,) = await h.say("admin1", "新建任务 坏任务 检查期=2026-12-01")
    assert "开始~结束" in reply
    (listing,) = await h.say("admin1", "任务列表")
    assert "T2026-150100-001 四季度抽查" in listing and "待抽取" in listing
    (listing,) = await h.say("cadmin", "任务列表")
    assert "没有抽查任务" in listing  # the county does not see the city's tasks
    (refused,) = await h.say("cadmin", "新建任务 越权 单位=150100 检查期=2026-12-01~2026-12-31")
    assert "不覆盖" in refused
    # Art. 41-42: the level above sees the plans of the level below.
    await h.grant("regionadmin", "admin", "150000")
    (above,) = await h.say("regionadmin", "任务列表")
    assert "T2026-150100-001 四季度抽查" in above


async def cli(*args: str) -> int:
    return await asyncio.to_thread(cli_main, list(args))


async def test_art25_once_a_year_cannot_be_switched_off(
    h: Harness,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Art. 25, 30: no task keeps targets checked this year; the two exceptions are named."""
    await h.grant("admin1", "admin", CITY)
    (refused,) = await h.say(
        "admin1", "新建任务 再查 一般=10% 检查期=2026-12-01~2026-12-31 本年已查=否"
    )
    assert "第二十五条" in refused and "特殊多查" in refused and "复查下级" in refused
    monkeypatch.setattr("bot.cli.draws.now", lambda: NOW)
    flags = ("--org", CITY, "--name", "再查", "--start", "2026-12-01", "--end", "2026-12-31")
    code = await cli("task", "create", *flags, "--keep-inspected", "--database-url", db_url)
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "Art. 25" in line and "--recheck-below" in line
    async with h.db.transaction() as s:
        assert (await s.execute(select(Task.code))).scalars().all() == []
    (made,) = await h.say(
        "admin1", "新建任务 再查 一般=10% 检查期=2026-12-01~2026-12-31 本年已查=排除"
    )
    assert "T2026-150100-001" in made  # the rule kept on is accepted


async def test_cli_plan_and_task_create_list_and_import(
    db: Database,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bot.cli.draws.now", lambda: NOW)  # dates are checked against today
    base = ("--database-url", db_url)
    assert (
        await cli("plan", "create", "--org", CITY, "--year", "2026", "--name", "年度计划", *base)
        == 0
    )
    assert await cli("plan", "list", *base) == 0
    assert "年度计划" in capsys.readouterr().out
    assert (
        await cli(
            "task",
            "create",
            "--org",
            CITY,
            "--name",
            "四季度",
            "--start",
            "2026-12-01",
            "--end",
            "2026-12-31",
            "--general",
            "10%",
            "--key",
            "3",
            "--plan",
            "1",
            "--locality",
            "same_county",
            "--skip-checked-above",
            *base,
        )
        == 0
    )
    assert "T2026-150100-001" in capsys.readouterr().out
    assert (
        await cli(
            "task",
            "create",
            "--org",
            CITY,
            "--name",
            "x",
            "--start",
            "2026-12-31",
            "--end",
            "2026-12-01",
            *base,
        )
        == 2
    )
    assert capsys.readouterr().err.strip().endswith("is after check end 2026-12-01")

    sheet = tmp_path / "tasks.xlsx"
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["名称", "单位", "范围", "一般", "检查开始", "检查结束", "检查重点"])
    ws.append(
        ["一季度", CITY, "150102", "10%", dt.date(2027, 3, 1), dt.date(2027, 3, 31), "废气 排放"]
    )
    ws.append(["一季度B", CITY, None, 0.2, dt.datetime(2027, 3, 1), dt.datetime(2027, 3, 31), None])
    wb.save(sheet)
    assert await cli("task", "import", str(sheet), *base) == 0
    assert "2 tasks imported" in capsys.readouterr().out
    assert await cli("task", "list", "--year", "2027", *base) == 0
    out = capsys.readouterr().out
    assert "T2027-150100-001" in out and "T2027-150100-002" in out and "general=20%" in out
    async with db.transaction() as s:
        plan_task = (
            await s.execute(select(Task).where(Task.code == "T2026-150100-001"))
        ).scalar_one()
        imported = (
            await s.execute(select(Task).where(Task.code == "T2027-150100-001"))
        ).scalar_one()
    assert plan_task.plan_id == 1 and plan_task.locality == "same_county"
    assert plan_task.skip_checked_above and plan_task.quotas["key"] == {"count": 3}
    assert imported.focus == "废气 排放" and imported.scope_orgs == ["150102"]
