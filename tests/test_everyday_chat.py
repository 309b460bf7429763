"""Everyday use in chat: people shown by name, refusals in the verb's terms, the publication duty
told to whoever holds it."""

from __future__ import annotations

from sqlalchemy import func, select

from storage import results as results_store
from storage.models import Department, RoleBinding, SwapRequest
from tests.conftest import Harness
from tests.factories import CITY, COUNTY, add_inspectors
from tests.results_support import ADMIN, CHIEF, TASK, drawn
from tests.support.draw_chat import setup

CHIEF_NAME = "王主任"


async def name_the_chief(h: Harness) -> None:
    """The chief in the inspector directory (after any draw: not in its pool)."""
    async with h.db.transaction() as s:
        await add_inspectors(s, 1, org=CITY, prefix="Z", name=CHIEF_NAME, userid=CHIEF)


async def test_art29_swap_messages_name_the_head_not_the_account(h: Harness) -> None:
    v, *_ = await drawn(h)
    await name_the_chief(h)
    leaving = v.members[1]
    (asked,) = await h.say(leaving, f"申请替换 {v.number} 借调外地")
    assert CHIEF_NAME in asked and CHIEF not in asked
    async with h.db.transaction() as s:
        rid = await s.scalar(select(func.max(SwapRequest.id)))
    await h.say(CHIEF, f"批准替换 {rid}")
    (approved,) = [t for t in h.wecom.texts_to(leaving) if f"#{rid}" in t and "批准" in t]
    assert CHIEF_NAME in approved and CHIEF not in approved
    (again,) = await h.say(CHIEF, f"批准替换 {rid}")
    assert f"已由 {CHIEF_NAME}" in again and CHIEF not in again
    assert "已批准" not in again  # one 已: 「已由 … 于 … 批准」
    (details,) = await h.say(CHIEF, f"检查详情 {v.number}")
    assert f"#{rid}" in details and CHIEF_NAME in details and CHIEF not in details


async def test_art29_a_chief_outside_the_directory_is_named_as_granted(h: Harness) -> None:
    """Chiefs and admins are often not inspectors: 授权 … 姓名=… gives the name shown instead of
    the account id (the demo's chief and admins are granted so)."""
    v, *_ = await drawn(h)
    (granted,) = await h.say(ADMIN, f"授权 {CHIEF} 部门负责人 {CITY} 姓名=李主任（环境执法）")
    assert CHIEF in granted
    (asked,) = await h.say(v.members[1], f"申请替换 {v.number} 借调外地")
    assert "李主任（环境执法）" in asked and CHIEF not in asked, asked  # as typed
    (refused,) = await h.say(ADMIN, f"授权 {CHIEF} 部门负责人 {CITY} 姓名=")
    assert "姓名" in refused


async def test_art29_a_grant_checks_the_account_and_department_as_the_cli_does(
    h: Harness,
) -> None:
    """授权 refuses an account id that is not a WeCom userid and a department the organisation
    does not have (the checks of CLI ``role grant``); a department by name is stored by code."""
    await drawn(h)
    async with h.db.transaction() as s:
        s.add(Department(org_code=CITY, code="zfk", name="执法科"))
    for bad in ("张三", "a" * 65):
        (refused,) = await h.say(ADMIN, f"授权 {bad} 部门负责人 {CITY}")
        assert bad in refused and "企业微信账号" in refused, refused
    (refused,) = await h.say(ADMIN, f"授权 boss 部门负责人 {CITY} 不存在科")
    assert "不存在科" in refused and "zfk" in refused, refused
    async with h.db.transaction() as s:
        assert (
            await s.scalar(select(func.count()).where(RoleBinding.userid.in_(["boss", "张三"])))
            == 0
        )
    await h.say(ADMIN, f"授权 boss 部门负责人 {CITY} 执法科")
    async with h.db.transaction() as s:
        depts = (
            await s.scalars(select(RoleBinding.dept_code).where(RoleBinding.userid == "boss"))
        ).all()
    assert list(depts) == ["zfk"]


async def test_art28_commitment_notice_names_the_witnesses(h: Harness) -> None:
    await setup(h)
    await name_the_chief(h)
    (sealed,) = await h.say(ADMIN, f"抽查 {TASK}")
    (told,) = [line for line in sealed.splitlines() if "承诺已发送给" in line]
    assert CHIEF_NAME in told and CHIEF not in told


async def test_art29_refusals_name_the_verb_of_a_non_member(h: Harness) -> None:
    v, w, *_ = await drawn(h)
    outsider = next(u for u in w.members if u not in v.members)
    (swap,) = await h.say(outsider, f"申请替换 {v.number} 生病")
    assert "替换" in swap and "结果" not in swap and str(v.number) in swap
    (record,) = await h.say(outsider, f"记录 {v.number} XCJL-1")
    assert "记录号" in record and "成员" in record
    assert "管理员" not in record and "负责人" not in record
    (result,) = await h.say(outsider, f"结果 {v.number} 1")
    assert "结果" in result and "成员" in result


async def test_art34_inspector_without_enforcement_contact_is_told_in_plain_terms(
    h: Harness,
) -> None:
    v, *_ = await drawn(h)
    replies = await h.say(v.members[0], f"结果 {v.number} 3 超标排放 已立案")
    (note,) = [r for r in replies if "执法联系人" in r]
    assert COUNTY not in note and "150100" not in note  # an office's name, not its code
    assert "结果已记录" in note


async def test_art37_publication_duty_goes_to_publishers_and_chiefs_not_the_last_inspector(
    h: Harness,
) -> None:
    visits = await drawn(h)
    publisher = "publisher_county"
    await h.grant(publisher, "publisher", COUNTY)
    for y in visits[:-1]:
        await h.say(y.members[0], f"结果 {y.number} 1")
    last = visits[-1].members[0]
    replies = await h.say(last, f"结果 {visits[-1].number} 1")
    (complete,) = [r for r in replies if "全部检查已有结果" in r]
    assert "2026-12-01" in complete
    assert "最迟" not in complete and "2026-12-29" not in complete
    for user in (publisher, CHIEF):
        (duty,) = [t for t in h.wecom.texts_to(user) if "任务完成" in t]
        assert "完成日期 2026-12-01" in duty and "最迟 2026-12-29" in duty


async def test_art38_description_hint_names_the_phrase_and_the_phrase_is_accepted(
    h: Harness,
) -> None:
    v, *_ = await drawn(h)
    member = v.members[0]
    (hint,) = await h.say(member, f"结果 {v.number} 2")
    phrase = "发现问题已责令整改"
    assert f"结果 {v.number} {phrase}" in hint
    await h.say(member, f"结果 {v.number} {phrase} 废气排放超标")
    async with h.db.transaction() as s:
        row = await results_store.current(s, v.inspection_id)
    assert row is not None and row.code == "ordered_to_rectify"
    assert row.description == "废气排放超标"


async def test_art28_the_admin_who_sealed_the_draw_hears_its_result(h: Harness) -> None:
    await setup(h)
    await h.say(ADMIN, f"抽查 {TASK}")
    before = len(h.wecom.texts_to(ADMIN))
    replies = await h.say(CHIEF, f"见证 {TASK} 42")  # the chief types the witness value
    summary = replies[-1]
    assert TASK in summary and "42" in summary
    assert summary in h.wecom.texts_to(ADMIN)[before:]  # the sealer gets the same summary
