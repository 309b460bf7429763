"""Everyday use for chiefs (issue 15): an unfillable swap explained, 待办, 任务进度, and
帮助 <命令> with the user's own data (Art. 29, 37, 40)."""

from __future__ import annotations

from sqlalchemy import func, select, update

from storage.models import Inspector, SwapRequest
from tests.conftest import Harness
from tests.results_support import CHIEF, TASK, drawn


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
    assert f"#{rid}" in reply and "没有人可以接替" in reply
    assert "停用、休假或无企业微信账号4人" in reply  # 6 in the cycle: the team of 2 and 4 off
    assert f"驳回替换 {rid}" in reply and f"重新抽查 {TASK}" in reply
    async with h.db.transaction() as s:
        request = await s.get(SwapRequest, rid)
    assert request is not None and request.status == "pending"
