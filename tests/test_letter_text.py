"""Text is kept as typed (issue 11): what a person writes in their own words (reasons, a lead
authority and its references, a task's name, focus and departments, a refusal's reason) is
stored exactly as typed; only what is parsed (command words, codes, numbers, dates) is folded."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from inspection.taskspec import parse_task_line
from storage import followups
from storage import results as results_store
from storage.models import (
    AuditEntry,
    CheckOutsideDraw,
    Inspection,
    InspectionResult,
    JointCheck,
    RegisterEntry,
    RoleBinding,
    SwapRequest,
    Task,
)
from tests.conftest import Harness
from tests.factories import CITY, COUNTY, uscc
from tests.results_support import ADMIN, CHIEF, drawn
from tests.support.draw_chat import NEW_TASK
from tests.support.draw_chat import setup as draw_chat_setup
from tests.test_task_approval import CITY_ADMIN
from tests.test_task_approval import setup as branch_setup

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the backend is irrelevant


@SQLITE
async def test_art6_art7_a_registered_checks_reason_and_lead_references_are_kept_as_typed(
    h: Harness,
) -> None:
    await drawn(h)
    a, b = "cu1501020", "cu1501021"
    reason = "群众投诉：夜间异味，疑似偷排（附照片）　两次"
    # Full-width spaces between the words and a full-width ＝ in the options still parse.
    (done,) = await h.say(CHIEF, f"登记检查　{uscc(200)}　投诉　{reason} 成员＝{a}，{b}")
    assert "D2026-150100-001" in done and reason in done, done
    lead, task_ref, draw_ref = (
        "市市场监督管理局（执法稽查局）",
        "２０２６联合抽查：第３批",
        "ＳＣ－0042",
    )
    # The check date is parsed: typed in full-width digits, it folds.
    refs = f"任务＝{task_ref} 抽取={draw_ref} 日期＝２０２６－１１－２７"
    (joint,) = await h.say(ADMIN, f"登记检查 {uscc(201)} 联合 {lead} {refs} 成员={a},{b}")
    assert "D2026-150100-002" in joint and task_ref in joint and "2026-11-27" in joint, joint
    async with h.db.transaction() as s:
        outside = (await s.execute(select(CheckOutsideDraw))).scalar_one()
        led = (await s.execute(select(JointCheck))).scalar_one()
        tasks = {t.code: t for t in (await s.execute(select(Task))).scalars()}
        audited = (
            (await s.execute(select(AuditEntry).where(AuditEntry.action == "check.register")))
            .scalars()
            .all()
        )
    assert outside.reason == reason
    assert tasks["D2026-150100-001"].focus == reason
    assert (led.lead_authority, led.lead_task, led.lead_draw_ref) == (lead, task_ref, draw_ref)
    assert tasks["D2026-150100-002"].focus == lead  # whole: refused only past 100 characters
    assert [e.payload["reason"] for e in audited] == [reason, lead]


def test_art22_a_tasks_name_focus_and_drawing_department_are_kept_as_typed() -> None:
    spec = parse_task_line(
        "四季度（火电）抽查 检查期＝２０２６-１２-０１～2026-12-31 一般＝１０％ "
        "检查重点＝ＶＯＣｓ：无组织排放 抽取科室＝执法一科（综合） "
        "发起科室＝ＺＦ 参与科室＝ＨＰ，ＪＣ"
    )
    assert spec.name == "四季度（火电）抽查"
    assert spec.focus == "ＶＯＣｓ：无组织排放" and spec.drawing_dept == "执法一科（综合）"
    # What is parsed is folded: the department codes matched against the inspectors' (Art. 21,
    # 23), the dates and the ratio.
    assert (spec.initiating_dept, spec.participating_depts) == ("ZF", ("HP", "JC"))
    assert (spec.check_start, spec.check_end) == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert [q.label() for q in spec.quotas.values()] == ["10%"]


@SQLITE
async def test_art5_art22_a_task_made_in_chat_and_its_refusal_keep_what_was_typed(
    h: Harness,
) -> None:
    code = await branch_setup(h)
    reason = "范围不符：请按「一企一查」重新拟定（见市局通知）"
    (refused,) = await h.say(CITY_ADMIN, f"退回任务 {code} {reason}")
    assert reason in refused, refused
    (made,) = await h.say(
        CITY_ADMIN,
        "新建任务 十二月，专项复核 一般=2 检查期=2026-12-01~2026-12-31 检查重点=废水：总磷",
    )
    async with h.db.transaction() as s:
        refusal = (
            await s.execute(select(AuditEntry).where(AuditEntry.action == "task.refuse"))
        ).scalar_one()
        made_task = (
            await s.execute(select(Task).where(Task.name.startswith("十二月")))
        ).scalar_one()
        branch_task = (await s.execute(select(Task).where(Task.code == code))).scalar_one()
    assert refusal.payload["reason"] == reason
    assert made_task.name == "十二月，专项复核" and made_task.focus == "废水：总磷"
    assert made_task.code in made and branch_task.org_code == COUNTY
    assert not (await _inspections(h))


async def _inspections(h: Harness) -> list[Inspection]:
    async with h.db.transaction() as s:
        return list((await s.execute(select(Inspection))).scalars())


@SQLITE
async def test_art6_art7_art34_too_long_text_is_refused_with_its_limit_never_cut(
    h: Harness,
) -> None:
    v, *_ = await drawn(h)
    a, b = "cu1501020", "cu1501021"
    members = f"成员={a},{b}"
    (refused,) = await h.say(CHIEF, f"登记检查 {uscc(200)} 投诉 {'夜' * 501} {members}")
    assert "500" in refused and "501" in refused, refused
    lead = "内蒙古自治区呼和浩特市市场监督管理局稽查局"  # 21 characters
    joint = f"登记检查 {uscc(201)} 联合 {{lead}} 任务={{task}} 抽取=SC-1 日期=2026-11-27 {members}"
    (refused,) = await h.say(ADMIN, joint.format(lead="局" * 101, task="第3批"))
    assert "100" in refused and "101" in refused, refused
    (refused,) = await h.say(ADMIN, joint.format(lead=lead, task="批" * 201))
    assert "200" in refused and "201" in refused, refused
    async with h.db.transaction() as s:
        assert not (await s.execute(select(JointCheck))).all()
        assert not (await s.execute(select(CheckOutsideDraw))).all()
    # At the limit: kept whole.
    (done,) = await h.say(ADMIN, joint.format(lead=lead, task="批" * 200))  # 21: accepted
    assert "D2026-150100-001" in done, done
    async with h.db.transaction() as s:
        led = (await s.execute(select(JointCheck))).scalar_one()
    assert (led.lead_authority, led.lead_task) == (lead, "批" * 200)
    await h.say(v.members[0], f"结果 {v.number} 3 夜间偷排含重金属废水")
    (refused,) = await h.say(v.members[0], f"移送司法 {v.number} {'局' * 101}")
    assert "100" in refused and "101" in refused, refused
    (refused,) = await h.say(v.members[0], f"处罚决定 {v.number} {'号' * 101} 2026-12-01")
    assert "100" in refused and "101" in refused, refused
    async with h.db.transaction() as s:
        assert await followups.of(s, v.inspection_id) == []
    await h.say(v.members[0], f"移送司法 {v.number} {'局' * 100}")
    async with h.db.transaction() as s:
        (row,) = await followups.of(s, v.inspection_id)
    assert row.body == "局" * 100


def _refused_with(reply: str, limit: int, typed: int) -> None:
    """The refusal names the field's limit and the length typed (Chinese wording aside)."""
    assert str(limit) in reply and str(typed) in reply, reply


async def test_art35_art37_art38_a_correction_record_number_and_reasons_are_stored_whole_or_refused(
    h: Harness,
) -> None:
    """更正 used to cut its reason at 500 characters, 记录 its number at 64, 保密 its reason at
    500 and a transfer's department at 100: now what is stored is what was typed, and what
    its field cannot hold is refused with the limit and the length, nothing stored."""
    v, w, *_ = await drawn(h)
    a = v.members[0]
    await h.say(a, f"结果 {v.number} 1")
    head = "复核，现场照片（见附件）显示："  # full-width punctuation: stored as typed
    too_long = head + "查" * (501 - len(head))
    (refused,) = await h.say(CHIEF, f"更正 {v.number} 2 {too_long}")
    _refused_with(refused, 500, 501)
    whole = head + "查" * (500 - len(head))
    await h.say(CHIEF, f"更正 {v.number} 2 {whole}")
    (refused,) = await h.say(a, f"记录 {v.number} {'Ａ' * 65}")
    _refused_with(refused, 64, 65)
    record_no = "呼环〔２０２６〕" + "Ａ" * 56  # 64 characters
    await h.say(a, f"记录 {v.number} {record_no}")
    (refused,) = await h.say(CHIEF, f"保密 {v.number} {'密' * 501}")
    _refused_with(refused, 500, 501)
    (refused,) = await h.say(w.members[0], f"结果 {w.number} 5 {'局' * 101} 废水直排入河")
    _refused_with(refused, 100, 101)
    async with h.db.transaction() as s:
        entries = await results_store.entries(s, v.inspection_id)
        numbers = await results_store.record_numbers(s, v.inspection_id)
        marked = await s.get(InspectionResult, v.inspection_id)
        moved = await results_store.current(s, w.inspection_id)
    assert [e.reason for e in entries] == ["", whole]  # the refused one left no entry
    assert [n.record_no for n in numbers] == [record_no]
    assert marked is not None and marked.secret_reason == ""
    assert moved is None
    department = "鄂尔多斯市水务局（执法支队）"
    await h.say(w.members[0], f"结果 {w.number} 5 {department} 废水直排入河")
    async with h.db.transaction() as s:
        moved = await results_store.current(s, w.inspection_id)
    assert moved is not None and moved.department == department


async def test_art29_leave_conflict_swap_reasons_and_a_granted_name_are_stored_whole_or_refused(
    h: Harness,
) -> None:
    """请假, 回避, 申请替换 cut their reasons at 500 characters; now a longer one is refused
    with the limit and the length, and one at the limit is kept whole; 授权 … 姓名= says the
    limit and the length too."""
    v, *_ = await drawn(h)
    person = v.members[0]
    long_reason, whole = "病" * 501, "家中老人住院，需陪护（附诊断书）：" + "病" * 483
    assert len(whole) == 500
    (refused,) = await h.say(person, f"请假 2026-12-20 2026-12-22 {long_reason}")
    _refused_with(refused, 500, 501)
    (refused,) = await h.say(person, f"回避 {uscc(200)} {long_reason}")
    _refused_with(refused, 500, 501)
    (refused,) = await h.say(person, f"申请替换 {v.number} {long_reason}")
    _refused_with(refused, 500, 501)
    (refused,) = await h.say(ADMIN, f"授权 {CHIEF} 部门负责人 {CITY} 姓名={'李' * 41}")
    _refused_with(refused, 40, 41)
    async with h.db.transaction() as s:
        assert not (await s.execute(select(RegisterEntry))).all()
        assert not (await s.execute(select(SwapRequest))).all()
        assert not (
            await s.execute(select(RoleBinding).where(RoleBinding.name.startswith("李")))
        ).all()
    await h.say(person, f"请假 2026-12-20 2026-12-22 {whole}")
    await h.say(person, f"申请替换 {v.number} {whole}")
    name = "李主任（环境执法）"
    await h.say(ADMIN, f"授权 {CHIEF} 部门负责人 {CITY} 姓名={name}")
    async with h.db.transaction() as s:
        (leave,) = (await s.execute(select(RegisterEntry))).scalars()
        (swap,) = (await s.execute(select(SwapRequest))).scalars()
        names = (
            await s.execute(select(RoleBinding.name).where(RoleBinding.userid == CHIEF))
        ).scalars()
    assert leave.reason == whole and swap.reason == whole
    assert name in list(names)


async def test_art22_a_tasks_name_and_departments_are_refused_past_their_limit_never_cut(
    h: Harness,
) -> None:
    await draw_chat_setup(h)  # the draw chat's task already made
    async with h.db.transaction() as s:
        before = set((await s.execute(select(Task.code))).scalars())
    (refused,) = await h.say(ADMIN, f"{NEW_TASK} 抽取科室={'科' * 21}")
    _refused_with(refused, 20, 21)
    (refused,) = await h.say(ADMIN, NEW_TASK.replace("四季度双随机", "名" * 201))
    _refused_with(refused, 200, 201)
    async with h.db.transaction() as s:
        assert set((await s.execute(select(Task.code))).scalars()) == before
    dept = "执法一科（综合）" + "科" * 12  # 20 characters
    (made,) = await h.say(ADMIN, f"{NEW_TASK} 抽取科室={dept}")
    async with h.db.transaction() as s:
        (task,) = (await s.execute(select(Task).where(Task.code.not_in(before)))).scalars()
    assert task.code in made and task.drawing_dept == dept
