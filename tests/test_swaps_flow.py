"""Swaps need the department head's approval; the replacement is drawn (Art. 29)."""

from __future__ import annotations

import asyncio
import secrets

from sqlalchemy import func, select

from storage import draws
from storage import tasks as task_store
from storage.models import DrawAmendment, GroupChat, SwapRequest, TeamMember
from tests.conftest import Harness
from tests.factories import COUNTY, enable_group_chats
from tests.results_support import CHIEF, TASK, Visit, audit_actions, click, drawn, visits

HEAD2 = "chief_county_2"


async def approval_cards(h: Harness, user: str) -> list[dict[str, object]]:
    return [
        b["template_card"]
        for b in h.wecom.messages(user)
        if b.get("msgtype") == "template_card"
        and b["template_card"]["card_type"] == "button_interaction"
    ]


async def tap(h: Harness, head: str, rid: int, verb: str, *, settle: bool = True) -> None:
    status, _ = await h.post_card_event(
        head,
        event_key=f"swap:{rid}:{verb}",
        task_id=f"swap-{rid}",
        card_type="button_interaction",
        response_code=secrets.token_hex(12),
    )
    assert status == 200
    if settle:
        await h.settle()


async def request(h: Harness, v: Visit, who: str, reason: str = "借调外地 无法参加") -> int:
    (reply,) = await h.say(who, f"申请替换 {v.number} {reason}")
    assert "已提交替换申请" in reply, reply
    async with h.db.transaction() as s:
        rid = await s.scalar(select(func.max(SwapRequest.id)))
    assert rid is not None
    return int(rid)


async def status_of(h: Harness, rid: int) -> SwapRequest:
    async with h.db.transaction() as s:
        row = await s.get(SwapRequest, rid)
        assert row is not None
        return row


async def test_art29_an_approved_swap_draws_the_replacement_and_tells_everyone(
    h: Harness,
) -> None:
    async with h.db.transaction() as s:
        await enable_group_chats(s)
    v, *_ = await drawn(h)
    mate, leaving = v.members[0], v.members[1]  # the first member owns the group chat
    rid = await request(h, v, leaving)
    (card,) = await approval_cards(h, CHIEF)  # the chief above: the county has none
    assert "借调外地" in str(card) and card["task_id"] == f"swap-{rid}"
    await tap(h, CHIEF, rid, "approve")
    row = await status_of(h, rid)
    assert row.status == "approved" and row.decided_by == CHIEF and row.replacement_userid
    joining = row.replacement_userid
    assert joining not in v.members
    assert any("已获" in t and "批准" in t for t in h.wecom.texts_to(leaving))
    assert any("加入编号" in t for t in h.wecom.texts_to(joining))
    assert any("检查组变更" in t for t in h.wecom.texts_to(mate))
    new_cards = [
        b["template_card"]
        for b in h.wecom.messages(joining)
        if b.get("msgtype") == "template_card"
        and b["template_card"]["task_id"] == f"insp-{v.number}-2"
    ]
    assert len(new_cards) == 1
    chat = h.wecom.chats[f"insp{v.number}"]
    assert joining in chat.members and leaving not in chat.members
    # The approval card is marked decided; the team's own task card now names the new team.
    by_card = {u["template_card"]["task_id"]: u for u in h.wecom.card_updates}
    assert sorted(by_card) == sorted([f"swap-{rid}", v.card_task_id])
    assert by_card[f"swap-{rid}"]["template_card"]["replace_text"].startswith("已批准")
    async with h.db.transaction() as s:
        task = await task_store.get_task(s, TASK)
        assert task is not None
        assert await draws.verify_task(s, task) is None  # the record still replays
        (amendment,) = (await s.execute(select(DrawAmendment))).scalars()
        assert amendment.approved_by == CHIEF and amendment.reason == "借调外地 无法参加"
    # The member swapped out can no longer submit on the old card; the new one can.
    await click(h, leaving, v, "no_problem")
    assert "已被替换出" in h.wecom.texts_to(leaving)[-1]
    (after,) = [w for w in await visits(h) if w.number == v.number]
    assert joining in after.members
    await click(
        h, joining, Visit(v.inspection_id, v.number, f"insp-{v.number}-2", []), "no_problem"
    )
    assert any("检查结果已记录" in t for t in h.wecom.texts_to(mate))
    await tap(h, CHIEF, rid, "approve")  # a late duplicate tap changes nothing
    assert "无需重复操作" in h.wecom.texts_to(CHIEF)[-1]
    assert await audit_actions(h, "swap.") == ["swap.request", "swap.approve"]


async def test_art29_rejected_self_approved_and_lapsed_requests(h: Harness) -> None:
    v, w, *_ = await drawn(h)
    leaving = v.members[0]
    await h.grant(leaving, "chief", COUNTY)  # the requester is a head too
    await h.grant("chief_baotou", "chief", "150200")
    rid = await request(h, v, leaving)
    assert await approval_cards(h, leaving) == []  # not sent to the requester
    assert len(await approval_cards(h, CHIEF)) == 1
    (refusal,) = await h.say(leaving, f"批准替换 {rid}")
    assert "不能审批自己的替换申请" in refusal
    await tap(h, leaving, rid, "approve")
    assert "不能审批自己的替换申请" in h.wecom.texts_to(leaving)[-1]
    (refusal,) = await h.say("chief_baotou", f"批准替换 {rid}")
    assert "只能由申请人所在部门的负责人或上级负责人审批" in refusal
    assert (await status_of(h, rid)).status == "pending"
    (again,) = await h.say(leaving, f"申请替换 {v.number} 再次申请")
    assert "正在等待审批" in again
    (done,) = await h.say(CHIEF, f"驳回替换 {rid} 检查任务紧急 请按时参加")
    assert "已驳回" in done
    row = await status_of(h, rid)
    assert row.status == "rejected" and row.note == "检查任务紧急 请按时参加"
    assert any(
        "已被" in t and "驳回" in t and "检查任务紧急" in t for t in h.wecom.texts_to(leaving)
    )
    async with h.db.transaction() as s:
        assert (await s.execute(select(DrawAmendment))).first() is None
        member = (
            await s.execute(select(TeamMember).where(TeamMember.userid == leaving).limit(1))
        ).scalar_one()
        assert member.active
    # An undecided request reminds the head after 24 hours and lapses after 72.
    leaving = w.members[0]
    rid = await request(h, w, leaving)
    (head, *_) = (await status_of(h, rid)).heads
    h.clock.advance(hours=23)
    assert await h.runtime.due.tick() == 0
    h.clock.advance(hours=2)
    assert await h.runtime.due.tick() == 1
    await h.settle()
    assert "提醒：替换申请" in h.wecom.texts_to(head)[-1]
    h.clock.advance(hours=48)
    assert await h.runtime.due.tick() == 1
    await h.settle()
    assert (await status_of(h, rid)).status == "lapsed"
    assert "已失效" in h.wecom.texts_to(leaving)[-1]
    await tap(h, CHIEF, rid, "approve")
    assert "已逾期失效" in h.wecom.texts_to(CHIEF)[-1]
    assert await audit_actions(h, "swap.") == [
        "swap.request",
        "swap.reject",
        "swap.request",
        "swap.remind",
        "swap.lapse",
    ]


async def test_art29_two_heads_deciding_at_once_decide_once(h: Harness) -> None:
    await h.grant("chief_county", "chief", COUNTY)
    await h.grant(HEAD2, "chief", COUNTY)
    v, *_ = await drawn(h)
    rid = await request(h, v, v.members[0])
    assert len(await approval_cards(h, "chief_county")) == 1
    assert len(await approval_cards(h, HEAD2)) == 1
    assert await approval_cards(h, CHIEF) == []  # the nearest heads get the card
    await asyncio.gather(
        tap(h, "chief_county", rid, "approve", settle=False),
        tap(h, HEAD2, rid, "reject", settle=False),
    )
    await h.settle()
    row = await status_of(h, rid)
    loser = HEAD2 if row.decided_by == "chief_county" else "chief_county"
    assert any("无需重复操作" in t for t in h.wecom.texts_to(loser))
    async with h.db.transaction() as s:
        amendments = (await s.execute(select(DrawAmendment))).scalars().all()
    assert len(amendments) == (1 if row.status == "approved" else 0)
    actions = await audit_actions(h, "swap.")
    assert actions[0] == "swap.request" and len(actions) == 2


async def test_art29_a_chat_owner_swapped_out_hands_the_chat_to_the_replacement(
    h: Harness,
) -> None:
    async with h.db.transaction() as s:
        await enable_group_chats(s)
    v, *_ = await drawn(h)
    owner, mate = v.members[0], v.members[1]  # the first member owns the group chat
    chat = h.wecom.chats[f"insp{v.number}"]
    assert chat.owner == owner
    rid = await request(h, v, owner)
    await tap(h, CHIEF, rid, "approve")
    joining = (await status_of(h, rid)).replacement_userid
    assert joining is not None
    assert chat.owner == joining and owner not in chat.members
    assert sorted(chat.members) == sorted([mate, joining])
    assert any("群主改为" in str(m) for m in h.wecom.chat_messages(chat.chatid))
    # The new owner leaves in turn: the chat goes on to the next replacement.
    rid = await request(h, v, joining)
    await tap(h, CHIEF, rid, "approve")
    third = (await status_of(h, rid)).replacement_userid
    assert third is not None and chat.owner == third
    assert sorted(chat.members) == sorted([mate, third])
    # The owner is the domain's own fact (group_chat), not read back from outbox bodies.
    async with h.db.transaction() as s:
        row = await s.get(GroupChat, chat.chatid)
    assert row is not None and row.owner == third
