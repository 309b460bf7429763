"""To the letter of the corrected rules: results in their window, what a result changes,
counts of who stayed on a team (Art. 13, 17, 37, 38)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from storage import results as store
from storage.models import Inspector, SwapRequest, Task
from tests.conftest import Harness
from tests.results_support import ADMIN, CHIEF, TASK, drawn, visits


async def names_by_userid(h: Harness) -> dict[str, str]:
    async with h.db.transaction() as s:
        rows = await s.execute(select(Inspector.userid, Inspector.name))
        return {u: n for u, n in rows.all() if u}


async def test_art17_a_swapped_out_member_does_not_count_the_inspection(h: Harness) -> None:
    v, *_ = await drawn(h)
    leaving = v.members[1]
    before = Counter(u for y in await visits(h) for u in y.members)[leaving]
    (asked,) = await h.say(leaving, f"申请替换 {v.number} 借调外地")
    assert "已提交替换申请" in asked, asked
    async with h.db.transaction() as s:
        rid = (await s.execute(select(SwapRequest.id))).scalar_one()
    await h.say(CHIEF, f"批准替换 {rid}")
    stayed = Counter(u for y in await visits(h) for u in y.members)
    assert stayed[leaving] == before - 1
    names = await names_by_userid(h)
    (reply,) = await h.say(ADMIN, f"查询人员 {names[leaving]}")
    assert f"2026年参与检查 {stayed[leaving]} 次" in reply, reply
    (yearly,) = await h.say(ADMIN, "年度统计 2026")
    if stayed[leaving]:
        assert f"· {names[leaving]}：{stayed[leaving]} 次" in yearly, yearly
    else:
        assert f"· {names[leaving]}：" not in yearly, yearly


async def test_art37_a_result_before_the_check_period_is_refused_with_its_dates(
    h: Harness,
) -> None:
    v, *_ = await drawn(h, in_period=False)  # 2026-11-30, the period is December
    (refused,) = await h.say(v.members[0], f"结果 {v.number} 1")
    assert "2026-12-01" in refused and "2026-12-31" in refused, refused
    async with h.db.transaction() as s:
        assert await store.current(s, v.inspection_id) is None
        task = (await s.execute(select(Task).where(Task.code == TASK))).scalar_one()
        assert task.completed_at is None
    h.clock.advance(days=1)
    replies = await h.say(v.members[0], f"结果 {v.number} 1")
    assert any("检查结果已记录" in r for r in replies), replies
