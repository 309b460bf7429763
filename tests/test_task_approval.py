"""Who draws (Art. 5, 20, 22): a branch proposes its tasks, the league/city bureau approves or
refuses them and organises the draw, itself or through the branch admin it authorises."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from storage.models import AuditEntry, Draw, Inspection, Task
from tests.conftest import Harness
from tests.factories import CITY, COUNTY, add_inspectors, add_targets

CITY_ADMIN, CITY_CHIEF, BRANCH_ADMIN, BRANCH_ADMIN2 = "cadmin", "cchief", "badmin", "badmin2"
PROPOSE = f"新建任务 分局季度抽查 单位={COUNTY} 一般=2 检查期=2026-12-01~2026-12-31"


async def setup(h: Harness) -> str:
    await h.grant(CITY_ADMIN, "admin", CITY)
    await h.grant(CITY_CHIEF, "chief", CITY)
    await h.grant(BRANCH_ADMIN, "admin", COUNTY)
    await h.grant(BRANCH_ADMIN2, "admin", COUNTY)
    async with h.db.transaction() as s:
        await add_targets(s, 10)
        await add_inspectors(s, 4)
    (reply,) = await h.say(BRANCH_ADMIN, PROPOSE)
    found = re.search(r"T2026-150102-\d{3}", reply)
    assert found and "待" in reply and "批准" in reply, reply
    return found.group(0)


async def status(h: Harness, code: str) -> str:
    async with h.db.transaction() as s:
        return (await s.execute(select(Task.status).where(Task.code == code))).scalar_one()


async def draws(h: Harness) -> int:
    async with h.db.transaction() as s:
        return await s.scalar(select(func.count()).select_from(Draw)) or 0


async def test_art5_a_branch_proposes_and_its_city_approves_and_draws(h: Harness) -> None:
    code = await setup(h)
    assert await status(h, code) == "proposed"
    for user in (CITY_ADMIN, CITY_CHIEF):  # the city's deciders are told
        assert any(code in t and "批准任务" in t for t in h.wecom.texts_to(user))
    (refused,) = await h.say(CITY_ADMIN, f"抽查 {code} 无见证 测试用")
    assert "批准" in refused and "第5条" in refused
    (own,) = await h.say(BRANCH_ADMIN, f"批准任务 {code}")  # a branch cannot approve itself
    assert "第5条" in own
    assert await status(h, code) == "proposed" and await draws(h) == 0
    (ok,) = await h.say(CITY_CHIEF, f"批准任务 {code}")
    assert "已批准" in ok and await status(h, code) == "planned"
    assert any("已批准" in t for t in h.wecom.texts_to(BRANCH_ADMIN))
    (again,) = await h.say(CITY_CHIEF, f"批准任务 {code}")
    assert "不在待批准状态" in again
    # The draw is the city's: the branch admin, not authorised, may not seal it.
    (branch,) = await h.say(BRANCH_ADMIN, f"抽查 {code} 无见证 测试用")
    assert "组织抽取" in branch and await draws(h) == 0
    await h.say(CITY_ADMIN, f"抽查 {code} 无见证 测试用")
    async with h.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(Inspection)) == 2
    assert await draws(h) == 1


async def test_art5_the_city_may_authorise_one_branch_admin_to_draw_a_task(h: Harness) -> None:
    code = await setup(h)
    (wrong,) = await h.say(CITY_ADMIN, f"批准任务 {code} 授权=nobody")
    assert "不是该分局的管理员" in wrong and await status(h, code) == "proposed"
    (ok,) = await h.say(CITY_ADMIN, f"批准任务 {code} 授权={BRANCH_ADMIN}")
    assert BRANCH_ADMIN in ok
    (other,) = await h.say(BRANCH_ADMIN2, f"抽查 {code} 无见证 测试用")  # not the one authorised
    assert "组织抽取" in other and await draws(h) == 0
    await h.say(BRANCH_ADMIN, f"抽查 {code}")  # the witness by default: the city's one chief
    (own,) = await h.say(BRANCH_ADMIN, f"见证 {code} 20261201")  # the sealer cannot witness
    assert "见证人" in own
    await h.say(CITY_CHIEF, f"见证 {code} 20261201")
    async with h.db.transaction() as s:
        drawn = (await s.execute(select(Draw))).scalar_one()
    assert drawn.status == "drawn" and drawn.committed_by == BRANCH_ADMIN


async def test_art5_the_city_refuses_a_branch_task_and_it_is_never_drawn(h: Harness) -> None:
    code = await setup(h)
    (usage,) = await h.say(CITY_ADMIN, f"退回任务 {code}")
    assert "原因" in usage and await status(h, code) == "proposed"
    (ok,) = await h.say(CITY_ADMIN, f"退回任务 {code} 与市局四季度任务重复")
    assert "已退回" in ok and await status(h, code) == "refused"
    assert any("与市局四季度任务重复" in t for t in h.wecom.texts_to(BRANCH_ADMIN))
    (refused,) = await h.say(CITY_ADMIN, f"抽查 {code} 无见证 测试用")
    assert "退回" in refused and await draws(h) == 0
    (late,) = await h.say(CITY_ADMIN, f"批准任务 {code}")
    assert "退回" in late and await status(h, code) == "refused"
    async with h.db.transaction() as s:
        actions = set((await s.execute(select(AuditEntry.action))).scalars())
    assert {"task.create", "task.refuse"} <= actions and "task.approve" not in actions


async def test_art5_a_city_task_needs_no_approval(h: Harness) -> None:
    await setup(h)
    (reply,) = await h.say(CITY_ADMIN, "新建任务 市局抽查 一般=1 检查期=2026-12-01~2026-12-31")
    code = re.search(r"T2026-150100-\d{3}", reply)
    assert code and "待" not in reply.split("\n")[-1]
    assert await status(h, code.group(0)) == "planned"
    (no,) = await h.say(CITY_ADMIN, f"批准任务 {code.group(0)}")
    assert "无需批准" in no
