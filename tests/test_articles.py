"""Tests naming the articles of RULES.md that no other test named, each proving what the
software does for that article: the real database, and the encrypted callback where a user acts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select, update

from inspection.draw import draw
from inspection.quotas import Tier
from inspection.taskspec import SpecError
from storage import audit, draws
from storage.db import Database
from storage.models import AuditEntry, CheckItem, Inspection, InspectionResult, Inspector
from storage.tasks import create_plan, list_plans
from tests.conftest import Harness
from tests.factories import CITY, COUNTY, COUNTY2, NOW, add_inspectors, add_item, make_task
from tests.inspection.factories import inspectors, make_input, targets
from tests.results_support import ADMIN, TASK, click, drawn, special_visit
from tests.support.directory import inspector, item, run_import, write
from tests.support.draw_chat import ABOVE, OUTSIDER, cards

ENFORCER = "enf1"


async def names_by_userid(h: Harness) -> dict[str, str]:
    async with h.db.transaction() as s:
        rows = await s.execute(select(Inspector.userid, Inspector.name))
        return {u: n for u, n in rows.all() if u}


async def target_key(h: Harness, inspection_id: int) -> str:
    async with h.db.transaction() as s:
        inspection = await s.get(Inspection, inspection_id)
        assert inspection is not None
        return inspection.target_key


async def inspection_numbers(h: Harness) -> list[int]:
    async with h.db.transaction() as s:
        return list((await s.execute(select(Inspection.number))).scalars())


# --- Art. 2: random targets, random inspectors ----------------------------------------------


def test_art2_targets_and_inspectors_are_both_drawn_at_random() -> None:
    pool, people = targets(10), inspectors(6)
    inp = make_input(pool, people, {Tier.general: 2})
    selections: set[frozenset[str]] = set()
    teams: dict[str, set[frozenset[str]]] = defaultdict(set)
    for i in range(200):
        seed = hashlib.sha256(f"art2-{i}".encode()).digest()
        result = draw(inp, seed)
        assert result == draw(inp, seed)  # the seed, and nothing else, decides
        selections.add(frozenset(s.key for s in result.selected))
        for team in result.teams:
            assert len(set(team.members)) == 2
            teams[team.target_key].add(frozenset(team.members))
    # Which targets: many of the 45 pairs turn up, every target among them.
    assert len(selections) > 30
    assert set().union(*selections) == {t.key for t in pool}
    # Who inspects them: a target is not tied to a team; each got several different teams.
    assert all(len(seen) > 3 for seen in teams.values())


# --- Art. 9-10: the check-item list ---------------------------------------------------------


async def test_art9_a_task_checks_only_items_on_the_check_item_list(db: Database) -> None:
    async with db.transaction() as s:
        await add_item(s, "DQ01", "大气污染防治", org="150000")  # the region's list
        await add_item(s, "FS01", "水污染防治", org="150200")  # 包头市's list
        task = await make_task(s, 事项="DQ01")  # the city may use the list above it
        assert task.item_codes == ["DQ01"]
        # Another city's list is not the city's; a list item never made is nobody's.
        for codes, missing in (("FS01", "FS01"), ("NOPE", "NOPE"), ("DQ01,FS01", "FS01")):
            with pytest.raises(SpecError, match=f"抽查事项清单中没有：{missing}（"):
                await make_task(s, 事项=codes)
        await s.execute(update(CheckItem).values(active=False))
        with pytest.raises(SpecError, match="抽查事项清单中没有：DQ01"):
            await make_task(s, 事项="DQ01")


async def test_art10_a_check_item_keeps_scope_type_method_basis_and_responsible_body(
    db: Database, tmp_path: Path
) -> None:
    rows = [item(), item(事项编号="HB-002", 检查类型="定向", 检查方式="非现场", 责任科室="监测科")]
    report = await run_import(db, "items", write(tmp_path / "items.xlsx", rows))
    assert report.added == 2, report.to_text()
    async with db.transaction() as s:
        found = {c.code: c for c in (await s.execute(select(CheckItem))).scalars()}
    first, second = found["HB-001"], found["HB-002"]
    assert (first.name, first.target_scope, first.legal_basis) == (
        "排污许可制度执行情况检查",
        "持有排污许可证的排污单位",
        "《排污许可管理条例》",
    )
    assert (first.check_type, first.method, first.responsible_dept) == (
        "undirected",
        "onsite",
        "执法科",
    )
    assert (second.check_type, second.method, second.responsible_dept) == (
        "directed",
        "offsite",
        "监测科",
    )
    assert first.org_code == second.org_code == CITY


# --- Art. 15, 17: the inspector directory and each inspector's yearly count ----------------


async def test_art15_enforcement_and_supervisory_staff_are_both_in_the_inspector_directory(
    db: Database, tmp_path: Path
) -> None:
    rows = [
        inspector(),  # holds an enforcement certificate
        inspector(  # has supervisory duties and a work certificate; not an auxiliary
            姓名="赵敏",
            性别="女",
            **{"执法证号/工作证号": "GZ-150100-0007"},
            证件类型="工作证",
            职务="副科长",
            科室="大气环境科",
            企业微信账号="zhaomin",
            工作年限=3,
            专长="大气",
        ),
    ]
    report = await run_import(db, "inspectors", write(tmp_path / "people.xlsx", rows))
    assert report.added == 2, report.to_text()
    async with db.transaction() as s:
        people = {p.name: p for p in (await s.execute(select(Inspector))).scalars()}
    li, zhao = people["李四"], people["赵敏"]
    assert (li.certificate_kind, zhao.certificate_kind) == ("enforcement", "work")
    assert not zhao.auxiliary and zhao.active
    assert (zhao.gender, zhao.unit, zhao.certificate_no, zhao.position, zhao.phone) == (
        "女",
        "呼和浩特市生态环境局",
        "GZ-150100-0007",
        "副科长",
        "13800000000",
    )
    assert zhao.certificate_issued_on == dt.date(2015, 6, 1)
    assert (zhao.years_of_service, zhao.expertise, zhao.dept_code) == (3, ["大气"], "大气环境科")


async def test_art17_each_inspectors_yearly_count_is_shown(h: Harness) -> None:
    visits = await drawn(h)
    served = Counter(u for v in visits for u in v.members)
    names = await names_by_userid(h)
    idle = [u for u in names if u not in served]
    assert len(served) >= 2 and max(served.values()) >= 2  # 5 teams of 2 from 6 people
    for userid, times in served.items():
        (reply,) = await h.say(ADMIN, f"查询人员 {names[userid]}")
        assert f"2026年参与检查 {times} 次" in reply, reply
    for userid in idle:
        (reply,) = await h.say(ADMIN, f"查询人员 {names[userid]}")
        assert "2026年参与检查 0 次" in reply, reply
    (yearly,) = await h.say(ADMIN, "年度统计 2026")
    busiest, most = served.most_common(1)[0]
    assert f"· {names[busiest]}：{most} 次（随机 {most} 次）" in yearly, yearly


# --- Art. 20-23: annual plans and joint tasks ----------------------------------------------


async def test_art20_tasks_belong_to_their_organisations_annual_plan_of_the_same_year(
    db: Database,
) -> None:
    async with db.transaction() as s:
        plan = await create_plan(
            s, org_code=CITY, year=2026, name="2026年度随机抽查计划", actor="a", now=NOW
        )
        task = await make_task(s, 计划=str(plan.id))
        assert task.plan_id == plan.id
        with pytest.raises(SpecError, match="是2026年的"):
            await make_task(s, 计划=str(plan.id), 检查期="2027-01-04~2027-01-29")
        with pytest.raises(SpecError, match="不存在"):  # 包头市 cannot use 呼和浩特市's plan
            await make_task(s, org="150200", 计划=str(plan.id))
        with pytest.raises(SpecError, match="已有名为"):
            await create_plan(
                s, org_code=CITY, year=2026, name="2026年度随机抽查计划", actor="a", now=NOW
            )
        assert [p.id for p in await list_plans(s, [CITY], 2026)] == [plan.id]
        actions = (await s.execute(select(AuditEntry.action))).scalars().all()
    assert "plan.create" in actions


async def test_art21_art23_a_joint_task_names_its_initiating_and_participating_departments(
    db: Database,
) -> None:
    async with db.transaction() as s:
        await add_item(s, "DQ01", "大气污染防治")
        await add_item(s, "FS01", "水污染防治")
        for n, dept in enumerate(("ZF", "HP", "JC")):  # the departments must have inspectors
            await add_inspectors(s, 1, start=n, dept_code=dept)
        task = await make_task(
            s,
            名称="内部联合抽查",
            发起科室="ZF",
            参与科室="HP,JC",
            检查科室="ZF,HP",
            事项="DQ01,FS01",
            检查重点="VOCs治理",
            一般="5",
        )
        with pytest.raises(SpecError, match="参与科室"):  # an initiator needs participants
            await make_task(s, 发起科室="ZF")
        (created,) = (
            await s.execute(select(AuditEntry.payload).where(AuditEntry.action == "task.create"))
        ).scalars()
    assert (task.initiating_dept, task.participating_depts) == ("ZF", ["HP", "JC"])
    assert created["initiating_dept"] == "ZF" and created["participating_depts"] == ["HP", "JC"]
    assert created["items"] == ["DQ01", "FS01"] and created["focus"] == "VOCs治理"
    assert created["quotas"] == {"general": {"count": 5}}
    assert (created["check_start"], created["check_end"]) == ("2026-12-01", "2026-12-31")


# --- Art. 32-34: on site, the record, and what happens to a violation ---------------------


async def test_art32_each_team_is_told_what_to_check_how_and_by_when(h: Harness) -> None:
    visits = await drawn(h)
    names = await names_by_userid(h)
    by_number = {v.number: v for v in visits}
    sent = cards(h)
    assert len(sent) == len(visits)
    for card in sent:
        number = int(card["submit_button"]["key"].removeprefix("result:"))
        desc = card["main_title"]["desc"]
        assert f"任务：{TASK}" in desc
        assert "事项：DQ01 大气污染防治" in desc and "方式：现场检查" in desc
        assert "检查期：2026-12-01 至 2026-12-31" in desc
        team = "、".join(names[u] for u in by_number[number].members)
        assert f"检查组：{team}" in desc


async def test_art33_every_step_of_an_inspection_is_recorded_under_its_task(h: Harness) -> None:
    v, *_ = await drawn(h)
    member = v.members[0]
    await click(h, member, v, "no_problem")
    await h.say(member, f"记录 {v.number} YDZF-2026-0001")
    async with h.db.transaction() as s:
        story = await audit.history(s, f"task:{TASK}")
        report = await audit.verify(s)
    steps = [(e.action, e.actor) for e in story]
    wanted = [
        ("task.create", ADMIN),
        ("draw.commit", ADMIN),
        ("draw.run", ADMIN),
        ("result.record", member),
        ("result.record_no", member),
    ]
    assert [step for step in steps if step in wanted] == wanted, steps
    recorded = next(e for e in story if e.action == "result.record")
    assert recorded.payload["inspection"] == v.number
    assert report.ok and report.entries >= len(story)


async def test_art34_violations_go_to_enforcement_and_other_matters_to_the_named_department(
    h: Harness,
) -> None:
    await h.grant(ENFORCER, "enforcement", CITY)
    v, w, *_ = await drawn(h)
    await h.say(v.members[0], f"结果 {v.number} 3 超标排放，已立案")
    await h.say(w.members[0], f"结果 {w.number} 5 市水务局 取水许可问题")
    (referral,) = [t for t in h.wecom.texts_to(ENFORCER) if "移交立案调查" in t]
    assert f"编号 {v.number}" in referral and "超标排放" in referral
    assert f"编号 {w.number}" not in referral
    async with h.db.transaction() as s:
        filed = await s.get(InspectionResult, v.inspection_id)
        handed = await s.get(InspectionResult, w.inspection_id)
        referrals = (
            await s.execute(
                select(AuditEntry.payload).where(AuditEntry.action == "result.case_referral")
            )
        ).scalars()
        notified = [p["notified"] for p in referrals]
    assert filed is not None and filed.case_filing and filed.code == "case_filed"
    assert handed is not None and not handed.case_filing
    assert (handed.code, handed.department, handed.description) == (
        "transferred",
        "市水务局",
        "取水许可问题",
    )
    assert notified == [[ENFORCER]]


# --- Art. 39, 42: one record across levels, supervised from above --------------------------


async def test_art39_a_result_recorded_once_is_recognised_below_and_counted_above(
    h: Harness,
) -> None:
    drawn_visits = await drawn(h)
    v = await special_visit(h, drawn_visits)
    w = next(x for x in drawn_visits if x is not v)
    await click(h, v.members[0], v, "no_problem")
    await h.say(w.members[0], f"结果 {w.number} 2 围挡破损，已责令修复")
    # The county (below the city) may leave out what the city found no problem with (Art. 30),
    # on the city's own record: nobody enters the result again. (Once a year, Art. 25, leaves
    # out all the city checked but the special target, which may be checked more often.)
    async with h.db.transaction() as s:
        county = await make_task(s, org=COUNTY, 上级已查="排除")
        plan = await draws.preview(s, county)
    left_out = {e.key for e in plan.exclusions if e.reason == "checked_above"}
    assert left_out == {await target_key(h, v.inspection_id)}
    # The region (above) counts the same results and reads the same record.
    (figures,) = await h.say(ABOVE, "检查统计 2026")
    assert f"双随机抽查：{len(await inspection_numbers(h))}项，已有结果2项" in figures, figures
    (details,) = await h.say(ABOVE, f"检查详情 {w.number}")
    assert "结果：发现问题已责令整改" in details and "围挡破损" in details


async def test_art42_the_level_above_sees_the_plans_draws_and_results_below(h: Harness) -> None:
    v, *_ = await drawn(h)
    await click(h, v.members[0], v, "no_problem")
    (tasks,) = await h.say(ABOVE, "任务列表")
    assert TASK in tasks
    (history,) = await h.say(ABOVE, f"抽取记录 {TASK}")
    assert "第1次" in history and "未见证" in history
    (listing,) = await h.say(ABOVE, f"抽取名单 {TASK}")
    assert all(str(n) in listing for n in await inspection_numbers(h))
    (details,) = await h.say(ABOVE, f"检查详情 {v.number}")
    assert "结果：未发现问题" in details
    # A level below the drawing city sees none of its plans and draws; the branch whose
    # inspectors check an inspection sees that inspection (Art. 5, 37: who checks, publishes),
    # another branch does not.
    for line in (f"抽取记录 {TASK}", f"抽取名单 {TASK}"):
        (refused,) = await h.say(OUTSIDER, line)
        assert "仅限" in refused, (line, refused)
    (checking,) = await h.say(OUTSIDER, f"检查详情 {v.number}")  # the team are COUNTY's
    assert "结果：未发现问题" in checking, checking
    await h.grant("county2admin", "admin", COUNTY2)
    (refused,) = await h.say("county2admin", f"检查详情 {v.number}")
    assert "仅限" in refused, refused
    (tasks,) = await h.say(OUTSIDER, "任务列表")
    assert TASK not in tasks
