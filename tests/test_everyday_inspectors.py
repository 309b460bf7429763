"""Everyday use for inspectors (issue 15): a description is confirmed before it is recorded,
natural transfer replies, the police as the judiciary, one message to the loser of a tap, and
every card of an inspection kept true after a swap (Art. 29, 34, 35, 38)."""

from __future__ import annotations

import asyncio
import secrets

from sqlalchemy import func, select

from inspection.results import PHRASES, ResultCode
from storage import followups
from storage import results as store
from storage.models import CardVoid, SwapRequest
from tests.conftest import Harness
from tests.results_support import (
    CHIEF,
    Visit,
    click,
    confirm,
    confirmation_card,
    drawn,
    task_card_updates,
)


async def result_of(h: Harness, v: Visit) -> tuple[str, str, str, str] | None:
    async with h.db.transaction() as s:
        row = await store.current(s, v.inspection_id)
    return None if row is None else (row.state, row.code, row.description, row.department)


async def test_art38_a_mistyped_command_after_a_problem_phrase_is_shown_back_not_recorded(
    h: Harness,
) -> None:
    v, *_ = await drawn(h)
    a = v.members[0]
    await click(h, a, v, "ordered_to_rectify")
    (shown,) = await h.say(a, "我的人物")  # a typo of 我的任务: shown back, nothing recorded
    assert "我的人物" in shown and "确认" in shown and "修改" in shown
    typo_card = confirmation_card(h, a)
    assert (await result_of(h, v) or ("",))[0] == "held"
    (mine,) = await h.say(a, "我的任务")  # a command keeps its meaning mid-confirmation
    assert f"编号 {v.number}" in mine and "待提交结果" in mine
    (again,) = await confirm(h, a, "edit")
    assert "新说明" in again
    (shown,) = await h.say(a, "废气处理设施未运行")
    assert "废气处理设施未运行" in shown
    stale = await confirm(h, a, card=typo_card)  # the typo's card no longer counts
    assert any("已过期" in t for t in stale)
    assert (await result_of(h, v) or ("",))[0] == "held"
    replies = await h.say(a, "确认")  # the text fallback
    assert any("检查结果已记录" in r and "废气处理设施未运行" in r for r in replies)
    assert await result_of(h, v) == (
        "recorded",
        "ordered_to_rectify",
        "废气处理设施未运行",
        "",
    )


async def test_art38_a_natural_transfer_reply_names_the_department(h: Harness) -> None:
    v, *_ = await drawn(h)
    a = v.members[0]
    await click(h, a, v, "transferred")
    (shown,) = await h.say(a, "移交给鄂尔多斯市水务局，取水口未登记")
    assert "鄂尔多斯市水务局" in shown and "取水口未登记" in shown
    await confirm(h, a)
    assert await result_of(h, v) == (
        "recorded",
        "transferred",
        "取水口未登记",
        "鄂尔多斯市水务局",
    )


async def test_art34_a_transfer_to_the_police_is_the_hand_over_to_the_judiciary(
    h: Harness,
) -> None:
    v, w, *_ = await drawn(h)
    a = v.members[0]
    await click(h, a, v, "transferred")
    (told,) = await h.say(a, "移交给鄂尔多斯市公安局，涉嫌非法倾倒危险废物")
    assert "移送司法机关" in told and "第34条" in told and "鄂尔多斯市公安局" in told
    assert await result_of(h, v) is None  # not phrase 5; the result is still to be chosen
    async with h.db.transaction() as s:
        (f,) = await followups.of(s, v.inspection_id)
    assert (f.kind, f.body) == (followups.JUDICIARY, "鄂尔多斯市公安局")
    await h.say(a, f"结果 {v.number} 3 涉嫌非法倾倒危险废物")
    assert await result_of(h, v) == ("recorded", "case_filed", "涉嫌非法倾倒危险废物", "")
    # The one-line form too: a procuratorate named with phrase 5.
    b = w.members[0]
    (told,) = await h.say(b, f"结果 {w.number} 5 市人民检察院 公益诉讼线索")
    assert "移送司法机关" in told
    assert await result_of(h, w) is None
    (details,) = await h.say(b, f"检查详情 {w.number}")
    assert "移送司法机关：市人民检察院" in details


async def test_art38_the_loser_of_a_simultaneous_tap_gets_one_message(h: Harness) -> None:
    v, *_ = await drawn(h)
    a, b = v.members[0], v.members[1]
    before = {u: len(h.wecom.texts_to(u)) for u in (a, b)}
    await asyncio.gather(
        click(h, a, v, "no_problem", settle=False), click(h, b, v, "refused", settle=False)
    )
    await h.settle()
    async with h.db.transaction() as s:
        row = await store.current(s, v.inspection_id)
    assert row is not None
    winner, loser = (a, b) if row.userid == a else (b, a)
    lost_choice = PHRASES[ResultCode.refused if loser == b else ResultCode.no_problem]
    (only,) = h.wecom.texts_to(loser)[before[loser] :]
    assert row.phrase in only and row.name in only and str(v.number) in only
    assert f"「{lost_choice}」未记录" in only and f"更正 {v.number}" in only
    assert [t for t in h.wecom.texts_to(winner)[before[winner] :] if "检查结果已记录" in t]


async def swap(h: Harness, v: Visit, leaving: str) -> str:
    (asked,) = await h.say(leaving, f"申请替换 {v.number} 借调外地")
    assert "已提交替换申请" in asked
    async with h.db.transaction() as s:
        rid = await s.scalar(select(func.max(SwapRequest.id)))
    await h.say(CHIEF, f"批准替换 {rid}")
    async with h.db.transaction() as s:
        request = await s.get(SwapRequest, rid)
        assert request is not None and request.replacement_userid
        return request.replacement_userid


async def test_art29_after_a_swap_every_card_shows_the_new_team_or_is_voided(
    h: Harness,
) -> None:
    v, w, *_ = await drawn(h)
    mate, leaving = v.members[0], v.members[1]
    joining = await swap(h, v, leaving)
    (update,) = [u for u in task_card_updates(h) if u["template_card"]["task_id"] == v.card_task_id]
    assert sorted(update["userids"]) == sorted([mate, leaving])
    desc = update["template_card"]["main_title"]["desc"]
    async with h.db.transaction() as s:
        names = await store.names_of(s, [joining, leaving])
    assert names[joining] in desc and names[leaving] not in desc  # the new team
    assert "disable" not in update["template_card"]["checkbox"]  # still open for a result
    await click(h, mate, v, "no_problem")  # the updated card still takes the result
    assert (await result_of(h, v) or ("",))[:2] == ("recorded", "no_problem")
    # 73 hours on, the card's code has lapsed: the copy is voided by a short text instead.
    mate, leaving = w.members[0], w.members[1]
    h.clock.advance(hours=73)
    updates = len(h.wecom.card_updates)
    joining = await swap(h, w, leaving)
    assert len(h.wecom.card_updates) == updates  # nothing updated with a lapsed code
    (void,) = [t for t in h.wecom.texts_to(mate) if "卡片已失效" in t]
    async with h.db.transaction() as s:
        names = await store.names_of(s, [joining, leaving])
    assert str(w.number) in void and names[joining] in void  # the new team
    assert names[leaving] not in void
    async with h.db.transaction() as s:
        voided = (await s.execute(select(CardVoid.userid))).scalars().all()
    assert mate in voided
    before = len(h.wecom.texts_to(mate))
    await click(h, mate, w, "no_problem", response_code=secrets.token_hex(12))
    (stale,) = h.wecom.texts_to(mate)[before:]
    assert "已过期" in stale and "尚未提交结果" in stale
    assert await result_of(h, w) is None  # the stale tap changed nothing
    replies = await h.say(mate, f"结果 {w.number} 未发现问题")
    assert any("检查结果已记录" in r for r in replies)


async def test_art38_the_submitter_amends_their_own_description_until_the_chief_confirms(
    h: Harness,
) -> None:
    v, *_ = await drawn(h)
    a, b = v.members[0], v.members[1]
    await h.say(a, f"结果 {v.number} 发现问题已责令整改 废气超标")
    await h.say(a, f"记录 {v.number} XCJL-1")
    (amended,) = await h.say(a, f"修改说明 {v.number} 废气处理设施未运行，已责令整改")
    assert "废气超标" in amended and "废气处理设施未运行" in amended
    assert any(f"确认结果 {v.number}" in t for t in h.wecom.texts_to(CHIEF))
    (refused,) = await h.say(b, f"修改说明 {v.number} 另一种说法")
    assert "提交人本人" in refused and "更正" in refused
    (renumbered,) = await h.say(a, f"修改记录 {v.number} XCJL-2")
    assert "XCJL-1" in renumbered and "XCJL-2" in renumbered
    async with h.db.transaction() as s:
        row = await store.current(s, v.inspection_id)
        history = await store.entries(s, v.inspection_id)
        numbers = await store.record_numbers(s, v.inspection_id)
    assert row is not None and row.description == "废气处理设施未运行，已责令整改"
    assert [(e.kind, e.description) for e in history] == [
        ("result", "废气超标"),
        ("amendment", "废气处理设施未运行，已责令整改"),
    ]
    assert [(r.record_no, r.superseded_at is not None) for r in numbers] == [
        ("XCJL-1", True),
        ("XCJL-2", False),
    ]
    await h.say(CHIEF, f"确认结果 {v.number}")
    assert any("已经" in t and "确认" in t for t in h.wecom.texts_to(a))
    (late,) = await h.say(a, f"修改说明 {v.number} 再改一次")
    assert "确认" in late and "更正" in late
    (late,) = await h.say(a, f"修改记录 {v.number} XCJL-3")
    assert "确认" in late
    (details,) = await h.say(a, f"检查详情 {v.number}")
    assert "XCJL-1（已替换）" in details and "修改说明" in details and "确认" in details
    async with h.db.transaction() as s:
        row = await store.current(s, v.inspection_id)
    assert row is not None and row.description == "废气处理设施未运行，已责令整改"


async def test_art38_my_tasks_hints_with_the_phrase_not_two_bare_numbers(h: Harness) -> None:
    v, *_ = await drawn(h)
    (mine,) = await h.say(v.members[0], "我的任务")
    assert "<序号>" not in mine and "<结果文字>" in mine and " 未发现问题」" in mine
    (shown,) = await h.say(v.members[0], f"结果 {v.number} 2")
    assert f"结果 {v.number} 发现问题已责令整改" in shown  # the hold's hint names the phrase
    await h.say(v.members[0], "设施未运行")  # a draft, awaiting 确认
    (redrafted,) = await h.say(v.members[0], "记录 显示设施未运行")  # not a number: a new draft
    assert "说明：记录 显示设施未运行" in redrafted  # the draft replaced, as typed


async def test_art38_the_loser_of_a_tap_against_a_problem_phrase_gets_one_message(
    h: Harness,
) -> None:
    v, *_ = await drawn(h)
    a, b = v.members[0], v.members[1]
    before = {u: len(h.wecom.texts_to(u)) for u in (a, b)}
    await asyncio.gather(
        click(h, a, v, "ordered_to_rectify", settle=False),
        click(h, b, v, "transferred", settle=False),
    )
    await h.settle()
    async with h.db.transaction() as s:
        row = await store.current(s, v.inspection_id)
    assert row is not None and row.state == "held"
    loser = b if row.userid == a else a
    lost_choice = PHRASES[ResultCode.transferred if loser == b else ResultCode.ordered_to_rectify]
    (only,) = h.wecom.texts_to(loser)[before[loser] :]
    assert row.phrase in only and row.name in only and str(v.number) in only
    assert f"「{lost_choice}」未记录" in only and f"更正 {v.number}" in only


async def test_art38_an_unconfirmed_description_is_shown_back_when_the_hold_lapses(
    h: Harness,
) -> None:
    v, *_ = await drawn(h)
    a, b = v.members[0], v.members[1]
    await click(h, a, v, "transferred")
    await h.say(a, "移交给鄂尔多斯市水务局，取水口未登记")  # a draft, never confirmed
    h.clock.advance(minutes=31)
    assert await h.runtime.due.tick() == 1
    await h.settle()
    told = h.wecom.texts_to(a)[-1]
    assert str(v.number) in told and "取水口未登记" in told and "鄂尔多斯市水务局" in told
    assert "未确认" in told and "结果未记录" in told
    assert "确认" in h.wecom.texts_to(b)[-1] and str(v.number) in h.wecom.texts_to(b)[-1]
    assert await result_of(h, v) is None
    phrase = PHRASES[ResultCode.transferred]
    await h.say(a, f"结果 {v.number} {phrase} 鄂尔多斯市水务局 取水口未登记")  # as suggested
    assert await result_of(h, v) == (
        "recorded",
        "transferred",
        "取水口未登记",
        "鄂尔多斯市水务局",
    )


async def test_art38_a_result_voids_the_copies_of_the_card_that_cannot_be_updated(
    h: Harness,
) -> None:
    v, *_ = await drawn(h)
    a, b = v.members[0], v.members[1]
    h.clock.advance(hours=73)  # the card's code has lapsed: no copy can be updated
    before = len(h.wecom.texts_to(b))
    updates = len(h.wecom.card_updates)
    await h.say(a, f"结果 {v.number} 未发现问题")
    assert len(h.wecom.card_updates) == updates
    (told,) = h.wecom.texts_to(b)[before:]  # one message: the result, the card void
    assert "检查结果已记录" in told and "卡片已失效" in told and str(v.number) in told
    async with h.db.transaction() as s:
        voided = (await s.execute(select(CardVoid.userid))).scalars().all()
    assert sorted(voided) == sorted(v.members)
    before = len(h.wecom.texts_to(b))
    await click(h, b, v, "refused")  # a tap on the void copy changes nothing
    (stale,) = h.wecom.texts_to(b)[before:]
    assert "已过期" in stale and PHRASES[ResultCode.no_problem] in stale
    assert f"更正 {v.number}" in stale and f"结果 {v.number} <" not in stale
    assert (await result_of(h, v) or ("",))[:2] == ("recorded", "no_problem")
