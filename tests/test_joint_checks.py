"""Inter-agency joint checks (Art. 6, 7, 36): led and drawn by another authority, recorded here
with their lead, task and draw, and counted as random checks (once a year, quotas)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select

from inspection.origins import RANDOM_CHECK_ORIGINS
from storage.draws import verify_task
from storage.models import (
    CheckFact,
    CheckOutsideDraw,
    Inspection,
    Inspector,
    JointCheck,
    PublicEntry,
    Target,
    Task,
    TeamMember,
)
from storage.tasks import get_task, target_facts
from tests.conftest import Harness
from tests.factories import CITY, COUNTY, FixedEntropy, add_inspectors, add_item, add_targets, uscc
from tests.results_support import ADMIN, CHIEF, TASK, Visit, audit_actions, click, visits
from tests.support.draw_chat import cards, setup
from tests.support.public import public_settings
from tests.support.reminders import CST, PUBLISHER, at, reminder_keys, tick_at
from tests.test_draw_entities_chat import COMPANY, PERMITS
from tests.test_draw_exclusions_chat import left_out

JOINT = "D2026-150100-001"


async def test_art6_art7_joint_check_led_by_another_authority_is_a_random_check(
    h: Harness,
) -> None:
    await setup(h)
    key = uscc(200)
    a, b = "cu1501020", "cu1501021"
    (no_draw,) = await h.say(ADMIN, f"登记检查 {key} 联合 市市场监督管理局 成员={a},{b}")
    assert "任务=" in no_draw and "抽取=" in no_draw and "日期=" in no_draw
    lead = "任务=2026市场监管联合抽查第3批 抽取=SC-2026-0042 日期=2026-11-27"
    (one,) = await h.say(ADMIN, f"登记检查 {key} 联合 市市场监督管理局 {lead} 成员={a}")
    assert "至少需要2名" in one  # our participants: at least two where we inspect (Art. 28)
    (done,) = await h.say(ADMIN, f"登记检查 {key} 联合 市市场监督管理局 {lead} 成员={a},{b}")
    assert JOINT in done and "计入随机抽查" in done and "SC-2026-0042" in done
    async with h.db.transaction() as s:
        task = (await s.execute(select(Task).where(Task.code == JOINT))).scalar_one()
        inspection = (
            await s.execute(select(Inspection).where(Inspection.task_id == task.id))
        ).scalar_one()
        joint = await s.get(JointCheck, inspection.id)
        outside = await s.get(CheckOutsideDraw, inspection.id)
    assert outside is None and joint is not None
    assert (joint.lead_authority, joint.lead_task, joint.lead_draw_ref) == (
        "市市场监督管理局",
        "2026市场监管联合抽查第3批",
        "SC-2026-0042",
    )
    assert inspection.origin == "joint" and inspection.origin in RANDOM_CHECK_ORIGINS
    assert task.status == "joint"
    (refusal,) = await h.say(ADMIN, f"抽查 {JOINT}")  # drawn by the lead, not by us
    assert "不参加抽取" in refusal
    visit = Visit(inspection.id, inspection.number, f"insp-{inspection.number}-1", [a, b])
    await click(h, a, visit, "no_problem")
    async with h.db.transaction() as s:
        recorded = await s.get(Inspection, inspection.id)
    assert recorded is not None and recorded.result_code == "no_problem"
    # Counted with the random checks, not apart.
    (figures,) = await h.say(ADMIN, "检查统计 2026")
    assert "部门联合抽查" in figures and "双随机以外的检查合计0项" in figures
    (card,) = await h.say(ADMIN, f"查询 {key}")
    assert "随机抽查 1 次，其他检查 0 次" in card
    # Once a year (Art. 25): the city's own draw sees the target as randomly checked this year.
    async with h.db.transaction() as s:
        drawn_here = await get_task(s, TASK)
        assert drawn_here is not None
        facts, _ = await target_facts(s, drawn_here, batched=False)
        entity = (await s.execute(select(Target).where(Target.key == key))).scalar_one()
    checked = {f.key for f in facts if f.checked_this_year}
    assert checked == {entity.key}
    assert await audit_actions(h, "check.") == ["check.register"]


async def test_art7_art25_art37_joint_check_is_dated_on_the_lead_authoritys_check_day(
    h: Harness,
) -> None:
    """A joint check made on the last day of Q3 and registered in Q4 (2026-11-30) counts in Q3
    (Art. 25, 43); its year is the check's, so our own draw leaves the entity out (Art. 25,
    once a year) while one checked jointly last December is not; its publication clock starts
    on the check day (Art. 37) and the public page shows that day. What was typed stays."""
    await setup(h)
    await h.grant(PUBLISHER, "publisher", COUNTY)
    key, old = uscc(201), uscc(202)
    a, b = "cu1501020", "cu1501021"
    lead = "任务=第三季度联合抽查（市场监管） 抽取=ＳＣ-2026-0042"
    command = f"登记检查 {key} 联合 市市场监督管理局 {lead} 成员={a},{b}"
    # The date is the lead authority's: typed, a day that has come, this year or the last.
    for wrong, says in [
        ("日期=2026-12-01", "晚于今天"),
        ("日期=2024-09-30", "早于2025年"),
        ("日期=2026-02-30", "不存在"),
        ("日期=2026-09-30 截止=2026-12-31", "不设截止日期"),
    ]:
        (refused,) = await h.say(ADMIN, f"{command} {wrong}")
        assert says in refused, refused
    (done,) = await h.say(ADMIN, f"{command} 日期=2026-09-30")
    assert "2026-09-30" in done and "ＳＣ-2026-0042" in done
    (last_year,) = await h.say(
        ADMIN, f"登记检查 {old} 联合 市生态环境执法支队 {lead} 日期=2025-12-31 成员={a},{b}"
    )
    assert "D2025-150100-001" in last_year
    async with h.db.transaction() as s:
        joint, inspection, task = (
            await s.execute(
                select(JointCheck, Inspection, Task)
                .join(Inspection, Inspection.id == JointCheck.inspection_id)
                .join(Task, Task.id == Inspection.task_id)
                .where(Inspection.target_key == key)
            )
        ).one()
    assert joint.checked_at.astimezone(CST).date() == dt.date(2026, 9, 30)
    assert (joint.lead_task, joint.lead_draw_ref) == (
        "第三季度联合抽查（市场监管）",
        "ＳＣ-2026-0042",
    )
    assert (task.code, task.year, task.check_start, task.check_end) == (
        JOINT,
        2026,
        dt.date(2026, 9, 30),
        dt.date(2026, 9, 30),
    )
    assert inspection.check_start == inspection.check_end == dt.date(2026, 9, 30)
    # Once a year (Art. 25): this year's joint check leaves the entity out of our draw; last
    # December's does not.
    (preview,) = await h.say(CHIEF, f"抽查预览 {TASK}")
    assert left_out(preview, "第25条") == 1 and "一般1" in preview
    # The result, recorded today, counts in Q3, the quarter of the check (Art. 25, 43).
    visit = Visit(inspection.id, inspection.number, f"insp-{inspection.number}-1", [a, b])
    await click(h, a, visit, "no_problem")
    (q3, *_) = await h.say(ADMIN, "统计 2026Q3")
    (q4, *_) = await h.say(ADMIN, "统计 2026Q4")
    assert "一般：抽查1/" in q3 and "一般：抽查0/" in q4
    async with h.db.transaction() as s:
        completed_at = (await s.get(Task, task.id)).completed_at  # type: ignore[union-attr]
        fact_at = (await s.get(CheckFact, inspection.id)).at  # type: ignore[union-attr]
    assert fact_at.astimezone(CST).date() == dt.date(2026, 9, 30)
    # The publication clock starts on the check day (Art. 37): the result came in after it,
    # so it is published within 20 working days of its recording, and the team hears so.
    assert completed_at is not None and completed_at.astimezone(CST).date() == dt.date(2026, 9, 30)
    late = [t for t in h.wecom.texts_to(a) if "补录结果" in t]
    assert len(late) == 1 and "2026-09-30" in late[0] and "录入后20个工作日" in late[0], late
    # One deadline everywhere: the result's own, 20 working days after 2026-11-30 (Art. 37),
    # never the check day's clock (2026-11-03, already past when the result came in).
    assert "2026-12-28" in late[0], late
    (complete,) = [t for t in h.wecom.texts_to(PUBLISHER) if t.startswith("【任务完成】")]
    assert "2026-12-28" in complete and "2026-11-03" not in complete, complete
    await tick_at(h, at(2026, 12, 1, 10))
    assert await reminder_keys(h, "publication") == []
    assert await reminder_keys(h, "publication_overdue_list") == []
    assert not [t for t in h.wecom.texts_to(PUBLISHER) if "逾期" in t]
    # Five working days before its own deadline, the checking unit is reminded of that date.
    await tick_at(h, at(2026, 12, 21, 10))
    (reminded,) = [t for t in h.wecom.texts_to(PUBLISHER) if t.startswith("【公开提醒】")]
    assert "2026-12-28" in reminded and "还剩 5 个工作日" in reminded, reminded
    (progress,) = await h.say(ADMIN, f"任务进度 {JOINT}")
    assert "2026-09-30" in progress and "最迟 2026-12-28" in progress, progress
    # The public page dates the line on the check day.
    h.runtime.worker.settings = public_settings(h)
    (published,) = await h.say(PUBLISHER, f"公示 {JOINT}")
    async with h.db.transaction() as s:
        line = (
            await s.execute(select(PublicEntry).where(PublicEntry.inspection_id == inspection.id))
        ).scalar_one()
    assert (line.check_date, line.year) == (dt.date(2026, 9, 30), 2026), published
    # Published on 2026-12-21, before the result's own deadline: on time (Art. 37, 43).
    assert "按期" in published and "2026-12-28" in published, published


# --- internal joint tasks (Art. 19, 21, 23): several departments of one bureau, drawn by us --

DEPTS = {"ZF": "执法支队", "HP": "环评科", "JC": "监测科", "QT": "办公室"}
INTERNAL = "新建任务 四季度内部联合抽查 范围=150100 一般=100% 检查期=2026-12-01~2026-12-31"


async def internal_joint_task(h: Harness) -> None:
    """A company with two permits and two others (all general), two inspectors in each of four
    departments, and a joint task of the enforcement unit (ZF) with HP and JC, created in chat."""
    h.runtime.worker.entropy = FixedEntropy()
    await h.grant(ADMIN, "admin", CITY)
    await h.grant(CHIEF, "chief", CITY)
    await h.grant(PUBLISHER, "publisher", COUNTY)
    async with h.db.transaction() as s:
        await s.execute(
            insert(Target),
            [
                {
                    "key": key,
                    "name": f"甲化工有限公司{n + 1}号厂区",
                    "uscc": COMPANY,
                    "permit_no": key,
                    "org_code": COUNTY,
                    "tier": "general",
                    "updated_at": h.clock.now(),
                }
                for n, key in enumerate(PERMITS)
            ],
        )
        await add_targets(s, 2, start=300)
        for n, dept in enumerate(DEPTS):
            await add_inspectors(s, 2, start=10 * n, dept_code=dept)
        await add_item(s, "DQ01", "大气污染防治")
        await add_item(s, "HP01", "环评执行情况")
    (created,) = await h.say(ADMIN, f"{INTERNAL} 事项=DQ01,HP01 发起科室=ZF 参与科室=HP,JC")
    assert TASK in created, created


async def test_art21_art23_a_joint_task_naming_a_department_without_inspectors_is_refused(
    h: Harness,
) -> None:
    """A 发起科室/参与科室 word no inspector's department matches would leave every inspector
    out of the draw: the task is refused, naming the unknown codes and the known ones."""
    await internal_joint_task(h)
    async with h.db.transaction() as s:
        before = len((await s.scalars(select(Task.code))).all())
    (refused,) = await h.say(ADMIN, f"{INTERNAL} 发起科室=执法 参与科室=HP,XX")
    assert "执法" in refused and "XX" in refused, refused
    known = refused.split("已有科室", 1)[1]
    assert all(code in known for code in DEPTS), refused
    # The same for the departments an ordinary task's teams come from.
    (refused,) = await h.say(ADMIN, f"{INTERNAL} 检查科室=ZF,XY")
    assert "XY" in refused and "已有科室" in refused, refused
    async with h.db.transaction() as s:
        assert len((await s.scalars(select(Task.code))).all()) == before


async def test_art19_art21_art23_an_internal_joint_task_is_drawn_visited_once_and_counted(
    h: Harness,
) -> None:
    await internal_joint_task(h)
    # Drawn at random like any task, witnessed (Art. 21, 27).
    (sealed,) = await h.say(ADMIN, f"抽查 {TASK} 见证人={CHIEF}")
    assert "封存" in sealed
    replies = await h.say(CHIEF, f"见证 {TASK} 7391")
    assert any("抽取结果" in r for r in replies), replies
    async with h.db.transaction() as s:
        task = await get_task(s, TASK)
        assert task is not None and await verify_task(s, task) is None
        rows = (
            await s.execute(
                select(Inspection.number, Inspection.target_key, Inspection.status, Inspector)
                .join(TeamMember, TeamMember.inspection_id == Inspection.id)
                .join(Inspector, Inspector.id == TeamMember.inspector_id)
                .where(Inspection.task_id == task.id, TeamMember.active.is_(True))
            )
        ).all()
        origins = set((await s.scalars(select(Inspection.origin))).all())
    # One visit per market entity (Art. 19): three companies, three teams; the company's
    # second permit rides with the first.
    teams: dict[int, set[str]] = {}
    for number, _key, status, person in rows:
        assert status == "open"
        teams.setdefault(number, set()).add(person.dept_code)
    assert len(teams) == 3 and origins == {"random"}
    # The team comes from the departments taking part (Art. 21, 23), never from another one.
    assert set().union(*teams.values()) <= {"ZF", "HP", "JC"}, teams
    # One card per visit: both departments' items, both sites of the company.
    sent = [c["main_title"]["desc"] for c in cards(h)]
    assert len(sent) == 3 and all("DQ01" in d and "HP01" in d for d in sent)
    assert all("发起科室 ZF" in d and "参与科室 HP、JC" in d for d in sent)
    (company,) = [d for d in sent if PERMITS[0] in d]
    assert PERMITS[1] in company
    # A result recorded is a random check like any (Art. 6, 25).
    h.clock.advance(days=1)  # 2026-12-01: the check period has begun
    company_visit = next(number for number, key, *_ in rows if key in PERMITS)
    (v,) = [v for v in await visits(h) if v.number == company_visit]
    await click(h, v.members[0], v, "no_problem")
    (figures,) = await h.say(ADMIN, "检查统计 2026")
    assert "双随机抽查：3项，已有结果1项" in figures, figures
    (card,) = await h.say(ADMIN, f"查询 {PERMITS[1]}")  # the permit that rode along
    assert "随机抽查 1 次" in card, card
    (q4, *_) = await h.say(ADMIN, "统计 2026Q4")
    assert "一般：抽查2/" in q4, q4  # both permits of the company: its sites were checked
    # Every visit reported, the unit publishes: one line per visit, the company's once (Art. 19,
    # 37).
    for other in [v for v in await visits(h) if v.number != company_visit]:
        await click(h, other.members[0], other, "no_problem")
    h.runtime.worker.settings = public_settings(h)
    (published,) = await h.say(PUBLISHER, f"公示 {TASK}")
    async with h.db.transaction() as s:
        lines = list(await s.scalars(select(PublicEntry)))
    assert {e.task_code for e in lines} == {TASK} and len(lines) == 3, published
    assert [e.uscc for e in lines].count(COMPANY) == 1
