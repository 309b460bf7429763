"""Results on the task card, end to end through the encrypted callback (Art. 35, 38)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from inspection.results import PHRASES, ResultCode
from storage import results as store
from storage.models import Inspection, InspectionResult, OutboxMessage, ResultEntry
from storage.results import Submission
from tests.conftest import Harness
from tests.factories import CITY
from tests.results_support import CHIEF, click, describe, drawn, task_card_updates

ENFORCER = "enf1"
DESCRIPTIONS = {
    ResultCode.ordered_to_rectify: "污水处理设施未运行，已责令整改",
    ResultCode.case_filed: "超标排放，已立案",
    ResultCode.transferred: "市水务局 取水许可问题",
    ResultCode.pending_followup: "待监测报告出具后处理",
}


async def entries_of(h: Harness, inspection_id: int) -> list[ResultEntry]:
    async with h.db.transaction() as s:
        return await store.entries(s, inspection_id)


async def test_art38_each_of_the_seven_results_on_the_card(h: Harness) -> None:
    await h.grant(ENFORCER, "enforcement", CITY)
    visits = await drawn(h, more_general=40)
    assert len(visits) >= 7
    for code, v in zip(ResultCode, visits, strict=False):
        clicker = v.members[0]
        await click(h, clicker, v, code.value)
        if code in DESCRIPTIONS:
            await describe(h, clicker, DESCRIPTIONS[code])  # shown back, then 确认
        for member in v.members:  # everyone on the team gets a text confirmation
            assert any(
                f"编号 {v.number}" in t and PHRASES[code] in t and "检查结果已记录" in t
                for t in h.wecom.texts_to(member)
            ), (code, member)
    async with h.db.transaction() as s:
        rows = {r.inspection_id: r for r in (await s.execute(select(InspectionResult))).scalars()}
        done = (
            await s.execute(select(Inspection.number, Inspection.result_code, Inspection.status))
        ).all()
    assert len(rows) == 7
    for code, v in zip(ResultCode, visits, strict=False):
        row = rows[v.inspection_id]
        assert (row.state, row.code, row.phrase, row.channel) == (
            "recorded",
            code.value,
            PHRASES[code],
            "card",
        )
        assert row.userid == v.members[0]
    transferred = rows[visits[4].inspection_id]
    assert (transferred.department, transferred.description) == ("市水务局", "取水许可问题")
    assert rows[visits[2].inspection_id].case_filing
    assert sum(1 for _, code, status in done if code and status == "done") == 7
    # The card is updated for the whole team with the clicker's ResponseCode, choices closed.
    assert len(task_card_updates(h)) == 7
    for code, update in zip(ResultCode, task_card_updates(h), strict=True):
        card = update["template_card"]
        assert card["checkbox"]["disable"] is True and card["replace_text"] == "已提交"
        checked = [o["id"] for o in card["checkbox"]["option_list"] if o.get("is_checked")]
        assert checked == [code.value]
    first = visits[0]
    assert sorted(task_card_updates(h)[0]["userids"]) == sorted(set(first.members))
    # Phrase 3: the enforcement contacts are told (Art. 34).
    (referral,) = [t for t in h.wecom.texts_to(ENFORCER) if "移交立案调查" in t]
    assert f"编号 {visits[2].number}" in referral and "超标排放" in referral


async def test_art38_duplicate_clicks_and_two_teammates_at_once_give_one_result(
    h: Harness,
) -> None:
    v, w, x, *_ = await drawn(h)
    first, second = v.members[0], v.members[1]
    code = await click(h, first, v, "no_problem", settle=False)
    await click(h, first, v, "no_problem", response_code=code)  # WeCom's retry: same event
    assert len(await entries_of(h, v.inspection_id)) == 1
    assert len(h.wecom.card_updates) == 1
    confirmations = [t for t in h.wecom.texts_to(first) if "检查结果已记录" in t]
    assert len(confirmations) == 1
    await click(h, first, v, "refused")  # a second tap with a fresh ResponseCode
    assert "已由您于" in h.wecom.texts_to(first)[-1]
    await click(h, second, v, "refused")  # a teammate later: told what was recorded, by whom
    told = h.wecom.texts_to(second)[-1]
    assert "已由检查员" in told and "「未发现问题」" in told and "以先提交的为准" in told
    (entry,) = await entries_of(h, v.inspection_id)
    assert (entry.code, entry.userid) == ("no_problem", first)
    assert len(h.wecom.card_updates) == 1
    # Two teammates tap at once.
    a, b = w.members[0], w.members[1]
    await asyncio.gather(
        click(h, a, w, "no_problem", settle=False), click(h, b, w, "refused", settle=False)
    )
    await h.settle()
    (entry,) = await entries_of(h, w.inspection_id)
    loser = b if entry.userid == a else a
    assert any("以先提交的为准" in t for t in h.wecom.texts_to(loser))

    # The database decides even when two transactions race (real concurrency on PostgreSQL).
    async def submit(userid: str, code: str) -> bool:
        async with h.db.transaction() as s:
            mine = await s.get(Inspection, x.inspection_id)
            assert mine is not None
            s_ = Submission(code, PHRASES[ResultCode(code)], userid, userid, "text")
            won, _ = await store.claim(s, mine, s_, now=h.clock.now())
            return won

    wins = await asyncio.gather(submit(x.members[0], "no_problem"), submit(x.members[1], "refused"))
    assert sorted(wins) == [False, True]
    assert len(await entries_of(h, x.inspection_id)) == 1


async def test_art38_outsiders_cannot_submit_and_a_failed_card_update_leaves_the_result(
    h: Harness,
) -> None:
    visits = await drawn(h)
    v, w = visits[0], visits[1]
    outsider = next(u for y in visits for u in y.members if u not in v.members)
    await click(h, outsider, v, "no_problem")
    assert "您不是编号" in h.wecom.texts_to(outsider)[-1]
    (reply,) = await h.say(outsider, f"结果 {v.number} 1")
    assert "您不是编号" in reply
    await click(h, CHIEF, v, "no_problem")  # a chief is not on the team either
    assert "您不是编号" in h.wecom.texts_to(CHIEF)[-1]
    (reply,) = await h.say(CHIEF, f"结果 {v.number} 1")
    assert "仅限检查人员" in reply
    assert await entries_of(h, v.inspection_id) == []
    # WeCom refuses the card update: the result stands and everyone has the text anyway.
    h.wecom.inject("/cgi-bin/message/update_template_card", errcode=40058, times=5)
    await click(h, w.members[0], w, "deregistered")
    (entry,) = await entries_of(h, w.inspection_id)
    assert entry.code == "deregistered"
    for member in w.members:
        assert any("检查对象已注销" in t for t in h.wecom.texts_to(member))
    assert h.wecom.card_updates == []
    async with h.db.transaction() as s:
        update = (
            await s.execute(
                select(OutboxMessage).where(OutboxMessage.api == "message/update_template_card")
            )
        ).scalar_one()
    assert update.status == "failed" and "40058" in (update.error or "")
