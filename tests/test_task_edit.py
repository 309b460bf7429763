"""Tasks before their draw (Art. 5, 22): 修改任务 and 取消任务 with a reason on record, refused once
a draw is sealed; 新建任务 step by step, its examples from the admin's own organisation. Through
the real callback."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from storage.models import AuditEntry, Task
from tests.conftest import Harness
from tests.factories import CITY, COUNTY, add_inspectors, add_targets

ADMIN, ADMIN2, OTHER_BRANCH = "cadmin", "cadmin2", "oadmin"
ORDOS, ORDOS_ADMIN = "150600", "eadmin"


async def setup(h: Harness) -> str:
    await h.grant(ADMIN, "admin", CITY)
    await h.grant(ADMIN2, "admin", CITY)
    await h.grant(OTHER_BRANCH, "admin", "150103")
    async with h.db.transaction() as s:
        await add_targets(s, 10)
        await add_inspectors(s, 4)
    (reply,) = await h.say(ADMIN, "新建任务 年终抽查 一般=2 检查期=2026-12-01~2026-12-31")
    found = re.search(r"T2026-150100-\d{3}", reply)
    assert found, reply
    return found.group(0)


async def task(h: Harness, code: str) -> Task:
    async with h.db.transaction() as s:
        return (await s.execute(select(Task).where(Task.code == code))).scalar_one()


async def audits(h: Harness, action: str) -> list[AuditEntry]:
    async with h.db.transaction() as s:
        rows = await s.execute(select(AuditEntry).where(AuditEntry.action == action))
        return list(rows.scalars())


async def test_art22_an_admin_edits_a_task_before_its_draw_and_the_reason_is_on_record(
    h: Harness,
) -> None:
    code = await setup(h)
    reason = "避开 节前（局务会决定）"
    (reply,) = await h.say(
        ADMIN, f"修改任务 {code} 检查期＝2026-12-05~2026-12-28 一般=3 原因={reason}"
    )
    assert "2026-12-05" in reply and "2026-12-28" in reply and reason in reply, reply
    t = await task(h, code)
    assert (t.check_start, t.check_end) == (dt.date(2026, 12, 5), dt.date(2026, 12, 28))
    assert t.quotas["general"] == {"count": 3} and t.name == "年终抽查"
    (entry,) = await audits(h, "task.edit")
    assert entry.actor == ADMIN and entry.payload["reason"] == reason  # as typed
    changes = entry.payload["changes"]
    assert changes["check_start"] == {"before": "2026-12-01", "after": "2026-12-05"}
    assert set(changes) == {"check_start", "check_end", "quotas"}
    assert any(code in t and reason in t for t in h.wecom.texts_to(ADMIN2))  # the other admin


async def test_art22_an_edit_is_checked_like_a_new_task_and_changes_nothing_when_wrong(
    h: Harness,
) -> None:
    code = await setup(h)
    (no_reason,) = await h.say(ADMIN, f"修改任务 {code} 一般=3")
    assert "原因" in no_reason
    (past,) = await h.say(ADMIN, f"修改任务 {code} 检查期=2026-01-01~2026-01-31 原因=试")
    assert "2026-01-31" in past
    (outside,) = await h.say(ADMIN, f"修改任务 {code} 范围=150600 原因=试")
    assert "150600" in outside and "第5条" in outside
    (year,) = await h.say(ADMIN, f"修改任务 {code} 检查期=2027-01-04~2027-01-29 原因=试")
    assert "2027" in year and "取消" in year
    (foreign,) = await h.say(OTHER_BRANCH, f"修改任务 {code} 一般=3 原因=试")
    assert CITY in foreign
    t = await task(h, code)
    assert t.check_start == dt.date(2026, 12, 1) and t.quotas["general"] == {"count": 2}
    assert await audits(h, "task.edit") == []


async def test_art22_a_sealed_draw_freezes_the_task_no_edit_no_cancel(h: Harness) -> None:
    code = await setup(h)
    await h.say(ADMIN, f"抽查 {code} 无见证 现场无人见证")
    (edit,) = await h.say(ADMIN, f"修改任务 {code} 一般=3 原因=多抽")
    (cancel,) = await h.say(ADMIN, f"取消任务 {code} 不抽了")
    for reply in (edit, cancel):
        assert "封存" in reply and "作废抽取" in reply, reply
    t = await task(h, code)
    assert t.quotas["general"] == {"count": 2} and t.status != "cancelled"
    assert await audits(h, "task.edit") == [] and await audits(h, "task.cancel") == []


async def test_art22_a_cancelled_task_is_kept_listed_and_never_drawn(h: Harness) -> None:
    code = await setup(h)
    (reply,) = await h.say(ADMIN, f"取消任务 {code} 与专项行动重复")
    assert "已取消" in reply and "与专项行动重复" in reply
    assert (await task(h, code)).status == "cancelled"
    (entry,) = await audits(h, "task.cancel")
    assert entry.payload == {"reason": "与专项行动重复", "status_before": "planned"}
    (draw,) = await h.say(ADMIN, f"抽查 {code} 无见证 现场无人见证")
    assert "已取消" in draw
    listing = "\n".join(await h.say(ADMIN, "任务列表"))
    assert code in listing and "已取消" in listing
    (again,) = await h.say(ADMIN, f"取消任务 {code} 再取消")
    assert "已取消" in again and len(await audits(h, "task.cancel")) == 1
    (no_reason,) = await h.say(ADMIN2, f"取消任务 {code}")
    assert "原因" in no_reason


async def test_art5_editing_an_approved_branch_task_sends_it_back_to_its_city(
    h: Harness,
) -> None:
    await h.grant(ADMIN, "admin", CITY)
    await h.grant("badmin", "admin", COUNTY)
    (proposed,) = await h.say(
        "badmin", f"新建任务 分局抽查 单位={COUNTY} 一般=2 检查期=2026-12-01~2026-12-31"
    )
    code = re.search(r"T2026-150102-\d{3}", proposed).group(0)  # type: ignore[union-attr]
    await h.say(ADMIN, f"批准任务 {code}")
    assert (await task(h, code)).status == "planned"
    before = len(h.wecom.texts_to(ADMIN))
    (reply,) = await h.say("badmin", f"修改任务 {code} 一般=4 原因=新增企业")
    assert "待" in reply and "批准" in reply
    t = await task(h, code)
    assert t.status == "proposed" and t.approved_by is None
    assert any("批准任务" in m and code in m for m in h.wecom.texts_to(ADMIN)[before:])
    # Refused, amended, proposed again.
    await h.say(ADMIN, f"退回任务 {code} 比例过高")
    assert (await task(h, code)).status == "refused"
    (again,) = await h.say("badmin", f"修改任务 {code} 一般=2 原因=按退回意见调整")
    assert "批准" in again and (await task(h, code)).status == "proposed"


async def test_art22_guided_creation_asks_step_by_step_with_the_admins_own_organisation(
    h: Harness,
) -> None:
    await h.grant(ORDOS_ADMIN, "admin", ORDOS)
    usage = "\n".join(await h.say(ORDOS_ADMIN, "帮助"))
    assert f"范围={ORDOS}" in usage and "150100" not in usage and "修改任务" in usage
    (start,) = await h.say(ORDOS_ADMIN, "新建任务")
    assert f"范围={ORDOS}" in start and "150100" not in start and "第1步" in start
    (step2,) = await h.say(ORDOS_ADMIN, "冬季 专项检查")  # a name with a space, kept as typed
    assert "第2步" in step2
    (wrong,) = await h.say(ORDOS_ADMIN, "十二月")
    assert "第2步" in wrong  # asked again, nothing lost
    # A command keeps its meaning in the middle of the steps.
    (listing,) = await h.say(ORDOS_ADMIN, "任务列表")
    assert "没有抽查任务" in listing
    (step3,) = await h.say(ORDOS_ADMIN, "2026-12-02～2026-12-30")
    assert "第3步" in step3 and "150602" in step3 and "东胜区" in step3
    (step4,) = await h.say(ORDOS_ADMIN, "默认")
    assert "第4步" in step4
    # Art. 25, 45: the minimums in force on the check period's first day, read from the table.
    assert all(p in step4 for p in ("特殊25%", "重点20%", "一般10%")), step4
    (confirm,) = await h.say(ORDOS_ADMIN, "一般=5")
    assert "确认" in confirm and f"范围={ORDOS}" in confirm and "一般=5" in confirm
    (done,) = await h.say(ORDOS_ADMIN, "确认")
    code = re.search(r"T2026-150600-\d{3}", done)
    assert code, done
    t = await task(h, code.group(0))
    assert t.name == "冬季 专项检查" and t.scope_orgs == [ORDOS]
    assert (t.check_start, t.check_end) == (dt.date(2026, 12, 2), dt.date(2026, 12, 30))
    assert t.quotas == {"general": {"count": 5}}
    # The conversation is over: the next text is a command again.
    (after,) = await h.say(ORDOS_ADMIN, "确认")
    assert "未识别" in after


async def test_art22_guided_creation_can_be_abandoned_and_errors_show_the_own_example(
    h: Harness,
) -> None:
    await h.grant(ORDOS_ADMIN, "admin", ORDOS)
    await h.say(ORDOS_ADMIN, "新建任务")
    await h.say(ORDOS_ADMIN, "试一下")
    (quit_,) = await h.say(ORDOS_ADMIN, "放弃")
    assert "放弃" in quit_
    async with h.db.transaction() as s:
        assert (await s.execute(select(Task))).first() is None
    (usage,) = await h.say(ORDOS_ADMIN, "新建任务 没有检查期")
    assert "检查期" in usage
    (usage2,) = await h.say(ORDOS_ADMIN, "新建任务 两个 名称 检查期=2026-12-01~2026-12-31")
    assert f"范围={ORDOS}" in usage2 and "范围=150100" not in usage2, usage2


async def test_art22_an_admin_of_several_organisations_chooses_one_first(h: Harness) -> None:
    """No 「单位=150100」 hint for an admin of Baotou and Ordos: their organisations are offered,
    and the examples come from the one chosen."""
    baotou, multi = "150200", "madmin"
    await h.grant(multi, "admin", ORDOS)
    await h.grant(multi, "admin", baotou)
    (refused,) = await h.say(multi, "新建任务 年终抽查 一般=2 检查期=2026-12-01~2026-12-31")
    assert baotou in refused and ORDOS in refused and "150100" not in refused, refused
    (ask,) = await h.say(multi, "新建任务")
    assert baotou in ask and ORDOS in ask and "150100" not in ask and "第1步" not in ask, ask
    (again,) = await h.say(multi, "150100")  # not theirs: asked again
    assert ORDOS in again and "第1步" not in again, again
    (start,) = await h.say(multi, "鄂尔多斯市")  # by name
    assert f"范围={ORDOS}" in start and f"单位={ORDOS}" in start and "第1步" in start, start
    assert baotou not in start and "150100" not in start
    await h.say(multi, "冬季抽查")
    (step3,) = await h.say(multi, "2026-12-02~2026-12-30")
    assert "150602" in step3, step3
    await h.say(multi, "默认")
    (confirm,) = await h.say(multi, "一般=5")
    assert f"单位={ORDOS}" in confirm, confirm
    (done,) = await h.say(multi, "确认")
    code = re.search(r"T2026-150600-\d{3}", done)
    assert code, done
    t = await task(h, code.group(0))
    assert (t.org_code, t.scope_orgs, t.name) == (ORDOS, [ORDOS], "冬季抽查")


async def test_guided_creation_does_not_take_over_a_description_owed(h: Harness) -> None:
    from handlers.results import DESCRIPTION_STATE
    from storage.repos import Repositories

    await h.grant(ORDOS_ADMIN, "admin", ORDOS)
    until = h.clock.now() + dt.timedelta(minutes=30)
    async with h.db.transaction() as s:
        await Repositories(s).conversations.set(ORDOS_ADMIN, DESCRIPTION_STATE, {}, until)
    (reply,) = await h.say(ORDOS_ADMIN, "新建任务")
    assert "说明" in reply and "第1步" not in reply
    async with h.db.transaction() as s:
        assert await Repositories(s).conversations.state(ORDOS_ADMIN, h.clock.now()) == (
            DESCRIPTION_STATE
        )
