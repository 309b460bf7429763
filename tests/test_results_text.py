"""The text fallback, the console, record numbers, 我的任务 and task completion (Art. 35, 37, 40)."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.tools.console import ConsoleSession
from storage import results as store
from storage.models import Inspection, Task, TemplateCard
from tests.conftest import Harness
from tests.results_support import ADMIN, CHIEF, TASK, audit_actions, drawn


async def test_art35_art38_text_fallback_console_record_numbers_and_task_completion(
    h: Harness,
) -> None:
    visits = await drawn(h)
    v, w = visits[0], visits[1]
    a = v.members[0]
    (mine,) = await h.say(a, "我的任务")
    assert f"编号 {v.number}" in mine and "期限 2026-12-31（剩30天）" in mine
    (wrong,) = await h.say(a, f"结果 {v.number} 9")
    assert "无法识别的检查结果" in wrong and "7. 发现问题待后续处理" in wrong
    (wrong,) = await h.say(a, "结果 abc 1")
    assert "请写明检查编号" in wrong
    replies = await h.say(a, f"结果 {v.number} 发现问题已责令整改 围挡破损，已责令修复")
    assert any("检查结果已记录" in r and "围挡破损" in r for r in replies)
    # A text submission closes the card with the code the card's own send returned.
    (update,) = h.wecom.card_updates
    assert update["template_card"]["task_id"] == v.card_task_id
    async with h.db.transaction() as s:  # the sender kept that code with the card
        card = await s.get(TemplateCard, v.card_task_id)
    assert card is not None and update["response_code"] == card.response_code
    (attached,) = await h.say(a, f"记录 {v.number} XCJL-2026-0815")
    assert "XCJL-2026-0815" in attached and "第35条" in attached
    (again,) = await h.say(a, f"记录 {v.number} XCJL-2026-0815")
    assert "已附有" in again
    console = ConsoleSession(h.db, h.settings, w.members[0], clock=h.clock)
    answers = await console.say(f"结果 {w.number} 1")
    assert any("检查结果已记录" in t and "控制台" in t for t in answers)
    async with h.db.transaction() as s:
        rows = {
            n: await store.current(s, i) for n, i in ((1, v.inspection_id), (2, w.inspection_id))
        }
        numbers = await store.record_numbers(s, v.inspection_id)
    assert rows[1] is not None and rows[1].channel == "text" and rows[1].description
    assert rows[2] is not None and rows[2].channel == "console"
    assert [r.record_no for r in numbers] == ["XCJL-2026-0815"]
    (details,) = await h.say(a, f"检查详情 {v.number}")
    assert "XCJL-2026-0815" in details and "发现问题已责令整改" in details
    outsider = next(u for y in visits for u in y.members if u not in v.members)
    (refused,) = await h.say(outsider, f"记录 {v.number} Z1")
    assert "成员" in refused and "记录号" in refused
    # The task completes when its last inspection has a result (Art. 37).
    for y in visits[2:-1]:
        await h.say(y.members[0], f"结果 {y.number} 1")
    async with h.db.transaction() as s:
        task = (await s.execute(select(Task).where(Task.code == TASK))).scalar_one()
        assert task.completed_at is None
    last = visits[-1]
    replies = await h.say(last.members[0], f"结果 {last.number} 6")
    assert any("全部检查已有结果" in r and "最迟" not in r for r in replies)
    for user in (CHIEF, ADMIN):
        (done,) = [t for t in h.wecom.texts_to(user) if "任务完成" in t]
        # Completed 2026-12-01; the 20th working day after it (Art. 37).
        assert "完成日期 2026-12-01" in done and "最迟 2026-12-29" in done
    async with h.db.transaction() as s:
        task = (await s.execute(select(Task).where(Task.code == TASK))).scalar_one()
    assert task.status == "complete" and task.completed_at == h.clock.now()
    assert (await audit_actions(h, "task."))[-1] == "task.complete"
    (refusal,) = await h.say(ADMIN, f"作废抽取 {TASK} 名录有误")  # a complete task stays
    assert "已完成" in refusal


async def test_art38_a_team_card_sent_by_the_draw_is_answered_in_the_console(h: Harness) -> None:
    """The console shows the card the draw sent the whole team (someone else's message), and a
    choice typed by its text taps it; what the team is sent next is shown to the member too."""
    visits = await drawn(h)
    v = visits[0]
    console = ConsoleSession(h.db, h.settings, v.members[0], clock=h.clock)
    shown = "\n".join(await console.say("我的任务"))
    assert "最近收到的卡片" in shown and "[:1]" in shown, shown
    answers = "\n".join(await console.say(":未发现问题"))
    recorded = re.search(r"【检查结果已记录】编号 (\d+)", answers)
    assert recorded and "未发现问题" in answers, answers
    assert f"编号 {recorded[1]}" in shown  # the card shown was that inspection's
    async with h.db.transaction() as s:
        inspection = (
            await s.execute(select(Inspection).where(Inspection.number == int(recorded[1])))
        ).scalar_one()
        row = await store.current(s, inspection.id)
    assert row is not None and row.code == "no_problem" and row.channel == "card"
    assert v.members[0] in [m for y in visits for m in y.members if y.number == inspection.number]
