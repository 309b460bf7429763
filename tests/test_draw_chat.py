"""The two-step draw in chat, end to end through the encrypted callback and the WeCom stand-in."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from inspection import reference_verifier
from inspection.verify import verify_export
from storage.draws import export, verify_task
from storage.models import AuditEntry, Draw, Inspection, TeamMember
from storage.tasks import get_task
from tests.conftest import Harness
from tests.factories import (
    COUNTY2,
    add_inspectors,
    add_targets,
    enable_group_chats,
)
from tests.support.draw_chat import (
    ABOVE,
    ADMIN,
    CHIEF,
    NEW_TASK,
    OUTSIDER,
    TASK,
    card_bodies,
    cards,
    setup,
)


async def test_art27_commitment_precedes_the_witness_and_a_task_is_drawn_once(
    h: Harness,
) -> None:
    await setup(h)
    replies = await h.say(ADMIN, f"抽查 {TASK}")
    async with h.db.transaction() as s:
        draw = (await s.execute(select(Draw))).scalar_one()
    assert draw.status == "committed" and draw.witness is None
    assert any(draw.commitment in r and draw.fingerprint in r for r in replies)
    assert f"见证 {TASK}" in replies[-1]
    for user in (CHIEF, ABOVE):
        (notice,) = h.wecom.texts_to(user)
        assert "抽查承诺" in notice and draw.commitment in notice and draw.fingerprint in notice
    assert cards(h) == []  # nothing drawn yet

    (refusal,) = await h.say(ADMIN, f"抽查 {TASK}")  # a task is drawn once
    assert "只抽取一次" in refusal and f"作废抽取 {TASK}" in refusal

    replies = await h.say(CHIEF, f"见证 {TASK} 20261130")
    assert any("抽取结果" in r and "已见证" in r and "20261130" in r for r in replies)
    async with h.db.transaction() as s:
        inspections = (await s.execute(select(Inspection))).scalars().all()
        draw = (await s.execute(select(Draw))).scalar_one()
    assert draw.status == "drawn" and draw.witnessed and draw.witness == "20261130"
    # ceil(25% of 4) + ceil(25% of 8) + ceil(10% of 20) = 1 + 2 + 2
    assert len(inspections) == 5
    # The chief and the level above got the commitment before the result.
    for user in (CHIEF, ABOVE):
        texts = h.wecom.texts_to(user)
        assert "抽查承诺" in texts[0] and "抽取结果" in texts[1]
    (refusal,) = await h.say(ADMIN, f"抽查 {TASK} 无见证 见证人均出差")
    assert "只抽取一次" in refusal
    async with h.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(Draw)) == 1


async def test_art28_each_team_gets_one_card_in_one_message(h: Harness) -> None:
    await setup(h)
    await h.say(ADMIN, f"抽查 {TASK}")
    await h.say(CHIEF, f"见证 {TASK} 7")
    bodies = card_bodies(h)
    async with h.db.transaction() as s:
        rows = (
            await s.execute(
                select(Inspection.number, Inspection.card_task_id, TeamMember.userid)
                .join(TeamMember, TeamMember.inspection_id == Inspection.id)
                .order_by(Inspection.number, TeamMember.position)
            )
        ).all()
    teams: dict[int, list[str]] = {}
    task_ids: dict[int, str | None] = {}
    for number, task_id, userid in rows:
        teams.setdefault(number, []).append(userid)
        task_ids[number] = task_id
    assert len(bodies) == len(teams) == 5
    for body in bodies:
        card = body["template_card"]
        number = int(card["submit_button"]["key"].removeprefix("result:"))
        assert sorted(body["touser"].split("|")) == sorted(teams[number])
        assert card["card_type"] == "vote_interaction"
        assert card["task_id"] == task_ids[number] == f"insp-{number}-1"
        assert f"编号 {number}" in card["main_title"]["title"]
        assert "DQ01 大气污染防治" in card["main_title"]["desc"]
        options = card["checkbox"]["option_list"]
        assert options[0] == {"id": "no_problem", "text": "未发现问题"}
        assert [o["text"] for o in options][:7][-1] == "发现问题待后续处理"
        assert card["checkbox"]["mode"] == 0 and card["checkbox"]["question_key"] == "result"


async def test_art27_unwitnessed_is_marked_everywhere_and_teams_learn_only_their_target(
    h: Harness,
) -> None:
    await setup(h)
    replies = await h.say(ADMIN, f"抽查 {TASK} 无见证 见证人均出差")
    assert any("未见证" in r and "抽取结果" in r for r in replies)
    texts = h.wecom.texts_to(CHIEF)
    assert "无见证" in texts[0] and "未见证" in texts[1]
    (history,) = await h.say(ADMIN, f"抽取记录 {TASK}")
    assert "未见证" in history
    assert all("抽取：未见证" in c["main_title"]["desc"] for c in cards(h))
    async with h.db.transaction() as s:
        draw = (await s.execute(select(Draw))).scalar_one()
    assert not draw.witnessed and draw.witness is None
    async with h.db.transaction() as s:
        rows = (
            await s.execute(
                select(TeamMember.userid, Inspection.target_key).join(
                    Inspection, Inspection.id == TeamMember.inspection_id
                )
            )
        ).all()
    mine: dict[str, set[str]] = {}
    for userid, key in rows:
        mine.setdefault(userid, set()).add(key)
    for userid, keys in mine.items():
        seen = "\n".join(h.wecom.texts_to(userid))
        for body in h.wecom.messages(userid):
            seen += str(body)
        others = {k for _, k in rows} - keys
        assert all(k in seen for k in keys)
        assert not any(k in seen for k in others), userid
    # A county admin below the drawing organisation, and an inspector, are refused the list.
    (refusal,) = await h.say(OUTSIDER, f"抽取名单 {TASK}")
    assert "仅限" in refusal
    member = next(iter(mine))
    (refusal,) = await h.say(member, f"抽取名单 {TASK}")
    assert "仅限" in refusal
    (listing,) = await h.say(ABOVE, f"抽取名单 {TASK}")
    assert "共5项" in listing and "未见证" in listing


async def test_preview_and_constraints_that_cannot_be_met_are_explained_before_any_draw(
    h: Harness,
) -> None:
    await setup(h, people=1)
    async with h.db.transaction() as s:
        await add_targets(s, 3, tier="general", start=900, status="deregistered")
        await add_inspectors(s, 1, start=50, userid=None)
    (preview,) = await h.say(CHIEF, f"抽查预览 {TASK}")
    assert "尚未抽取" in preview
    assert "一般：名录20个，可抽20个，应抽2个（10%）" in preview
    assert "已注销：3个（一般3）" in preview
    assert "未绑定企业微信账号1人" in preview
    assert "无法抽取" in preview and "可选派的检查人员不足" in preview
    (refusal,) = await h.say(ADMIN, f"抽查 {TASK}")
    assert "可选派的检查人员不足" in refusal and "每个检查组需要2名" in refusal
    async with h.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(Draw)) == 0


async def test_art28_a_team_that_cannot_be_formed_is_a_recorded_failure(h: Harness) -> None:
    # Same-county teams: one target county has no inspectors at all.
    await setup(h, 属地="本旗县区")
    async with h.db.transaction() as s:
        await add_targets(s, 30, tier="general", org=COUNTY2, start=500)
    replies = await h.say(ADMIN, f"抽查 {TASK} 无见证 见证人均出差")
    failure = next(r for r in replies if "未能完成" in r)
    assert "无法配齐" in failure and "不在同一旗县区" in failure and "范围内" in failure
    assert f"替代={TASK}" in failure and "重新抽查" not in failure
    async with h.db.transaction() as s:
        draw = (await s.execute(select(Draw))).scalar_one()
        assert draw.status == "failed" and draw.error is not None
        assert draw.error["reason"] == "team_unfilled"
        assert await s.scalar(select(func.count()).select_from(Inspection)) == 0
    (refusal,) = await h.say(ADMIN, f"抽查 {TASK}")
    assert "只抽取一次" in refusal


async def test_art29_a_sealed_draw_is_never_redrawn_only_cancelled_with_the_level_above(
    h: Harness,
) -> None:
    """重新抽查 is gone: a drawn result is cancelled with a reason, approved by the level above
    (not the unit that drew); the draw stays in the record, the task closes, and a new task's
    draw names the cancelled one."""
    await setup(h)
    await h.say(ADMIN, f"抽查 {TASK}")
    await h.say(CHIEF, f"见证 {TASK} 42")
    (gone,) = await h.say(CHIEF, f"重新抽查 {TASK} 结果不理想")  # no such command any more
    assert "已批准" not in gone
    (usage,) = await h.say(ADMIN, f"作废抽取 {TASK}")
    assert "理由" in usage
    (asked,) = await h.say(ADMIN, f"作废抽取 {TASK} 抽取范围漏了一个旗县")
    assert "等待" in asked
    assert any(f"批准作废 {TASK}" in t for t in h.wecom.texts_to(ABOVE))
    (own,) = await h.say(CHIEF, f"批准作废 {TASK}")  # the unit that drew cannot approve
    assert "上级" in own
    (again,) = await h.say(ADMIN, f"抽查 {TASK}")  # nor draw again while it stands
    assert "只抽取一次" in again
    replies = await h.say(ABOVE, f"批准作废 {TASK}")
    assert any("已作废" in r and "撤销检查5项" in r for r in replies)
    (closed,) = await h.say(ADMIN, f"抽查 {TASK}")
    assert "已作废" in closed and f"替代={TASK}" in closed
    (made,) = await h.say(ADMIN, f"{NEW_TASK} 替代={TASK}")
    new_task = TASK.replace("-001", "-002")
    assert new_task in made
    (twice,) = await h.say(ADMIN, f"{NEW_TASK} 替代={TASK}")
    assert f"已由任务 {new_task} 替代" in twice
    await h.say(ADMIN, f"抽查 {new_task}")
    assert any(f"替代已作废的任务 {TASK}" in t for t in h.wecom.texts_to(ABOVE))
    await h.say(CHIEF, f"见证 {new_task} 43")
    async with h.db.transaction() as s:
        draws = (await s.execute(select(Draw).order_by(Draw.id))).scalars().all()
        statuses = (
            await s.execute(select(Inspection.status, func.count()).group_by(Inspection.status))
        ).all()
        logged = (await s.execute(select(AuditEntry.action).order_by(AuditEntry.id))).scalars()
        actions = [a for a in logged if a.startswith("draw.")]
        old_task = await get_task(s, TASK)
        assert old_task is not None and old_task.status == "cancelled"
        old_doc = await export(s, old_task)
        replacing = await get_task(s, new_task)
        assert replacing is not None
        new_doc = await export(s, replacing)
        assert await verify_task(s, old_task) is None
        assert await verify_task(s, replacing) is None
    assert [(d.status, d.attempt) for d in draws] == [("cancelled", 1), ("drawn", 1)]
    assert draws[0].cancellation is not None
    assert draws[0].cancellation["approved_by"] == ABOVE
    assert draws[0].cancellation["approval"] == "level_above"
    assert dict(statuses)["cancelled"] == 5
    assert actions == [
        "draw.commit",
        "draw.witness",
        "draw.run",
        "draw.cancel_requested",
        "draw.cancelled",
        "draw.commit",
        "draw.witness",
        "draw.run",
    ]
    # Both stay in every export, and both verifiers accept them.
    assert old_doc["status"] == "cancelled" and old_doc["result"] is not None
    assert old_doc["cancellation"]["reason"] == "抽取范围漏了一个旗县"
    assert new_doc["replaces"] == {
        "task": TASK,
        "attempt": 1,
        "commitment": draws[0].commitment,
    }
    for doc in (old_doc, new_doc):
        assert verify_export(json.loads(json.dumps(doc))) is None
        assert reference_verifier.verify(json.loads(json.dumps(doc))) is None
    (history,) = await h.say(ABOVE, f"抽取记录 {TASK}")
    assert "已作废" in history and "抽取范围漏了一个旗县" in history


async def test_group_chat_per_team_where_the_organisation_enables_them(h: Harness) -> None:
    async with h.db.transaction() as s:
        await enable_group_chats(s)
    await setup(h)
    await h.say(ADMIN, f"抽查 {TASK} 无见证 见证人均出差")
    assert len(h.wecom.chats) == 5
    for chat in h.wecom.chats.values():
        (message,) = chat.messages
        assert message["msgtype"] == "textcard" and "检查任务" in message["textcard"]["title"]
