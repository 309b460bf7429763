"""Inter-agency joint checks (Art. 6, 7, 36): led and drawn by another authority, recorded here
with their lead, task and draw, and counted as random checks (once a year, quotas)."""

from __future__ import annotations

from sqlalchemy import select

from inspection.origins import RANDOM_CHECK_ORIGINS
from storage.models import CheckOutsideDraw, Inspection, JointCheck, Target, Task
from storage.tasks import get_task, target_facts
from tests.conftest import Harness
from tests.factories import uscc
from tests.results_support import ADMIN, TASK, Visit, audit_actions, click
from tests.support.draw_chat import setup

JOINT = "D2026-150100-001"


async def test_art6_art7_joint_check_led_by_another_authority_is_a_random_check(
    h: Harness,
) -> None:
    await setup(h)
    key = uscc(200)
    a, b = "cu1501020", "cu1501021"
    (no_draw,) = await h.say(ADMIN, f"登记检查 {key} 联合 市市场监督管理局 成员={a},{b}")
    assert "任务=" in no_draw and "抽取=" in no_draw
    lead = "任务=2026市场监管联合抽查第3批 抽取=SC-2026-0042"
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
