"""Checks outside the draw (Art. 6, 7, 36): recorded like random ones, counted apart."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import CheckOutsideDraw, Inspection, Task
from tests.conftest import Harness
from tests.factories import uscc
from tests.results_support import ADMIN, CHIEF, Visit, audit_actions, click, drawn

COMPLAINT = "D2026-150100-001"


async def test_art6_targeted_checks_are_recorded_and_counted_apart(h: Harness) -> None:
    await drawn(h)
    key = uscc(200)  # a general target of the draw's directory
    a, b = "cu1501020", "cu1501021"
    (usage,) = await h.say(CHIEF, f"登记检查 {key} 投诉")
    assert "用法" in usage
    (wrong,) = await h.say(CHIEF, f"登记检查 {key} 抽查 夜间异味")
    assert "检查类型「抽查」不认识" in wrong
    (wrong,) = await h.say(CHIEF, f"登记检查 {key} 专项 夜间异味")  # a planned check: drawn
    assert "检查类型「专项」不认识" in wrong
    (small,) = await h.say(CHIEF, f"登记检查 {key} 投诉 夜间异味 成员={a}")
    assert "至少需要2名" in small
    (missing,) = await h.say(CHIEF, "登记检查 91150102MA9999999X 投诉 夜间异味")
    assert "名录中没有" in missing
    (done,) = await h.say(CHIEF, f"登记检查 {key} 投诉 群众投诉夜间异味 成员={a},{b}")
    assert COMPLAINT in done and "双随机以外" in done and "不计入双随机抽查比例" in done
    async with h.db.transaction() as s:
        task = (await s.execute(select(Task).where(Task.code == COMPLAINT))).scalar_one()
        inspection = (
            await s.execute(select(Inspection).where(Inspection.task_id == task.id))
        ).scalar_one()
        outside = await s.get(CheckOutsideDraw, inspection.id)
    assert inspection.origin == "targeted" and inspection.draw_id is None
    assert outside is not None and (outside.kind, outside.reason) == (
        "complaint",
        "群众投诉夜间异味",
    )
    for member in (a, b):
        cards = [
            m["template_card"]
            for m in h.wecom.messages(member)
            if m.get("msgtype") == "template_card"
            and m["template_card"]["task_id"] == f"insp-{inspection.number}-1"
        ]
        assert len(cards) == 1 and cards[0]["card_type"] == "vote_interaction"
    # The same phrases, the same card, the same record.
    visit = Visit(inspection.id, inspection.number, f"insp-{inspection.number}-1", [a, b])
    await click(h, a, visit, "no_problem")
    assert any("检查结果已记录" in t for t in h.wecom.texts_to(b))
    (referral,) = await h.say(ADMIN, f"登记检查 {key} 移送 公安机关移送 成员={a},{b}")
    assert "其他部门移送案件" in referral and "D2026-150100-002" in referral
    (figures,) = await h.say(ADMIN, "检查统计 2026")
    assert "双随机抽查：5项，已有结果0项" in figures
    assert "定向检查（双随机以外）：2项，已有结果1项" in figures
    assert "双随机以外的检查合计2项" in figures
    (refusal,) = await h.say(ADMIN, "抽查 D2026-150100-002")  # open, but not ours to draw
    assert "不参加抽取" in refusal
    (swap,) = await h.say(a, f"申请替换 {inspection.number} 有事")
    assert "无需申请替换" in swap
    assert await audit_actions(h, "check.") == ["check.register", "check.register"]
    async with h.db.transaction() as s:
        task = (await s.execute(select(Task).where(Task.code == COMPLAINT))).scalar_one()
    assert task.status == "complete" and task.completed_at is not None


async def test_art14_art17_annual_counts_keep_random_checks_apart(h: Harness) -> None:
    v, *_ = await drawn(h)
    await click(h, v.members[0], v, "no_problem")
    text = "\n".join(await h.say(ADMIN, "年度统计 2026"))
    assert "随机抽查与其他检查分开统计" in text
    assert "随机抽查" in text and "（随机" in text
