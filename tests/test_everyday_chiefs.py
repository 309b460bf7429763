"""Everyday use for chiefs (issue 15): an unfillable swap explained, 待办, 任务进度, and
帮助 <命令> with the user's own data (Art. 29, 37, 40)."""

from __future__ import annotations

from sqlalchemy import func, select, update

from bot.runtime.app import dispatcher
from storage import results as result_store
from storage.models import Inspector, SwapRequest
from tests.conftest import Harness
from tests.results_support import ADMIN, CHIEF, TASK, click, drawn
from tests.support.draw_chat import OUTSIDER


async def test_art29_a_swap_nobody_can_fill_says_why_and_what_the_chief_can_do(
    h: Harness,
) -> None:
    visits = await drawn(h)
    v = visits[0]
    leaving = v.members[1]
    async with h.db.transaction() as s:  # everyone not on this team is off duty
        await s.execute(
            update(Inspector).where(Inspector.userid.not_in(v.members)).values(active=False)
        )
    await h.say(leaving, f"申请替换 {v.number} 借调外地")
    async with h.db.transaction() as s:
        rid = await s.scalar(select(func.max(SwapRequest.id)))
    (reply,) = await h.say(CHIEF, f"批准替换 {rid}")
    # Section 10: nobody without a register record from before the request may be passed
    # over; the first of the 4 off duty (6 in the cycle, the team of 2) has none.
    assert f"#{rid}" in reply and "无法执行" in reply and "停用" in reply
    assert f"驳回替换 {rid}" in reply and f"作废抽取 {TASK}" in reply
    async with h.db.transaction() as s:
        request = await s.get(SwapRequest, rid)
    assert request is not None and request.status == "pending"


async def test_art37_task_progress_counts_results_names_who_has_not_reported_and_days_left(
    h: Harness,
) -> None:
    visits = await drawn(h)
    v = visits[0]
    await h.say(v.members[0], f"结果 {v.number} 未发现问题")
    (reply,) = await h.say(CHIEF, f"任务进度 {TASK}")
    assert f"1/{len(visits)}" in reply and "剩30天" in reply
    async with h.db.transaction() as s:
        names = dict((await s.execute(select(Inspector.userid, Inspector.name))).all())
    for w in visits[1:]:
        assert f"编号 {w.number} " in reply
        for u in w.members:
            assert names[u] in reply
    assert f"编号 {v.number} " not in reply  # reported
    (refused,) = await h.say(OUTSIDER, f"任务进度 {TASK}")
    assert "仅限" in refused and "未报告" not in refused


async def test_art29_art38_todo_lists_what_waits_with_the_line_that_does_it(h: Harness) -> None:
    visits = await drawn(h)
    v, w, x = visits[:3]
    a = v.members[0]
    await click(h, a, v, "ordered_to_rectify")
    (mine,) = await h.say(a, "待办")
    assert "待填写的问题说明" in mine and f"编号 {v.number}" in mine
    others = [y for y in visits[1:] if a in y.members]
    assert others  # a is on more than one team
    for y in others:
        assert f"结果 {y.number} 未发现问题" in mine
    await h.say(w.members[1], f"申请替换 {w.number} 借调外地")
    async with h.db.transaction() as s:
        rid = await s.scalar(select(func.max(SwapRequest.id)))
    c = x.members[0]
    await h.say(c, f"结果 {x.number} 发现问题已责令整改 废气超标")
    await h.say(c, f"修改说明 {x.number} 废气处理设施未运行")
    (todo,) = await h.say(CHIEF, "待办")
    assert f"批准替换 {rid}" in todo and f"驳回替换 {rid}" in todo
    assert f"确认结果 {x.number}" in todo and "废气处理设施未运行" in todo
    assert f"任务进度 {TASK}" in todo
    await h.say(CHIEF, f"确认结果 {x.number}")
    await h.say(CHIEF, f"驳回替换 {rid} 任务紧急")
    (todo,) = await h.say(CHIEF, "待办")
    assert f"确认结果 {x.number}" not in todo and f"批准替换 {rid}" not in todo
    assert f"任务进度 {TASK}" in todo


async def test_help_for_one_command_gives_an_example_from_the_users_own_data(
    h: Harness,
) -> None:
    visits = await drawn(h)
    member = visits[0].members[0]
    async with h.db.transaction() as s:
        (first, *_) = await result_store.owed_by(s, member, h.clock.now())
    (usage,) = await h.say(member, "帮助 结果")
    assert "用法：结果 <编号>" in usage and f"结果 {first.number} 未发现问题" in usage
    (usage,) = await h.say(member, "帮助 申请替换")
    assert f"申请替换 {first.number} " in usage
    (usage,) = await h.say(CHIEF, "帮助 任务进度")
    assert f"任务进度 {TASK}" in usage
    (unknown,) = await h.say(member, "帮助 批准替换")  # a chief's command: not theirs
    assert "没有您可用的命令" in unknown and "帮助" in unknown


async def test_help_gives_every_command_an_example_with_nothing_left_to_fill(h: Harness) -> None:
    """帮助 <命令> for every command an admin (here also a chief) may use: an example line with
    no placeholder left, targets and organisations from the user's own data."""
    await drawn(h)
    for command in dispatcher().commands:
        h.clock.advance(seconds=3)  # WeCom's 30 messages a minute per recipient
        replies = await h.say(ADMIN, f"帮助 {command.name}")
        assert len(replies) == 1, (command.name, replies)
        usage = replies[0]
        if "没有您可用的命令" in usage:
            continue
        (example,) = [line for line in usage.splitlines() if line.startswith("示例")] or [""]
        if "<" in command.usage:
            assert example and "<" not in example, (command.name, usage)
    (query,) = await h.say(ADMIN, "帮助 查询")
    assert "示例化工" not in query  # a target of the admin's own organisation
