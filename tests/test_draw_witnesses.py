"""Witnesses fixed at sealing, and draws cancelled instead of re-drawn (issue 13 item 2; Art. 27-29,
41), end to end through the encrypted callback, the database and the outbox."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from inspection import reference_verifier
from inspection.draw import derive_seed
from inspection.verify import verify_export
from storage.draws import export, verify_task
from storage.models import AuditEntry, Draw
from storage.report import figures_by_org
from storage.tasks import get_task
from tests.conftest import Harness
from tests.factories import CITY, add_item
from tests.support.draw_chat import ABOVE, ADMIN, CHIEF, NEW_TASK, OUTSIDER, TASK, cards, setup
from tests.support.public import PREFIX, serve

REGION = "150000"
REGION_CHIEF, REGION_ADMIN2 = "rchief", "radmin2"


async def draw_row(h: Harness, code: str = TASK) -> Draw:
    async with h.db.transaction() as s:
        task = await get_task(s, code)
        assert task is not None
        return (await s.execute(select(Draw).where(Draw.task_id == task.id))).scalar_one()


async def public_draws(h: Harness, org: str = CITY) -> str:
    client = await serve(h)
    try:
        return await (await client.get(f"{PREFIX}/{org}/2026/draws")).text()
    finally:
        await client.close()


async def test_art27_only_the_witnesses_fixed_at_sealing_give_values_in_the_sealed_order(
    h: Harness,
) -> None:
    await setup(h)
    (myself,) = await h.say(ADMIN, f"抽查 {TASK} 见证人={ADMIN}")  # never the sealer
    assert "封存" in myself and "见证人" in myself
    (unknown,) = await h.say(ADMIN, f"抽查 {TASK} 见证人=nobody")
    assert "nobody" in unknown and CHIEF in unknown
    await h.say(ADMIN, f"抽查 {TASK} 见证人={CHIEF},{ABOVE}")
    row = await draw_row(h)
    assert row.status == "committed" and row.witnesses == [CHIEF, ABOVE]
    # The commitment and the witness form reach both witnesses before any value exists, and
    # the public page shows them.
    for user in (CHIEF, ABOVE):
        (notice,) = h.wecom.texts_to(user)
        assert row.commitment in notice and "2位见证人" in notice and "见证期限" in notice
    page = await public_draws(h)
    assert row.commitment in page and "2位见证人" in page and "待见证" in page
    # The sealer, and a manager who is not a witness, cannot give a value.
    (sealer,) = await h.say(ADMIN, f"见证 {TASK} 1")
    assert "见证人" in sealer
    await h.grant("chief2", "chief", CITY)
    (other,) = await h.say("chief2", f"见证 {TASK} 1")
    assert "见证人" in other
    # The second witness answers first: the seed still takes the values in the sealed order.
    (waiting,) = await h.say(ABOVE, f"见证 {TASK} 上级-7")
    assert "第2位" in waiting and "尚待" in waiting and cards(h) == []
    (twice,) = await h.say(ABOVE, f"见证 {TASK} 上级-8")
    assert "不能更改" in twice
    replies = await h.say(CHIEF, f"见证 {TASK} 负责人-3")
    assert any("抽取结果" in r for r in replies)
    # The sealer and the other witness hear the result summary.
    for user in (ADMIN, ABOVE):
        assert any("抽取结果" in t and row.commitment in t for t in h.wecom.texts_to(user))
    row = await draw_row(h)
    assert row.status == "drawn" and row.witness_values == ["负责人-3", "上级-7"]
    async with h.db.transaction() as s:
        task = await get_task(s, TASK)
        assert task is not None
        doc = json.loads(json.dumps(await export(s, task)))
        assert await verify_task(s, task) is None
        values = [
            p["value"]
            for a, p in (
                await s.execute(
                    select(AuditEntry.action, AuditEntry.payload).order_by(AuditEntry.id)
                )
            ).all()
            if a == "draw.witness"
        ]
    assert doc["witness"] == ["负责人-3", "上级-7"] and doc["witnesses"] == [CHIEF, ABOVE]
    assert values == ["上级-7", "负责人-3"]  # as they came, in the audit record
    assert verify_export(doc) is None and reference_verifier.verify(doc) is None
    secret = bytes.fromhex(doc["secret_hex"])
    assert derive_seed(secret, ["负责人-3", "上级-7"]) != derive_seed(
        secret, ["上级-7", "负责人-3"]
    )
    reordered = json.loads(json.dumps(doc)) | {"witness": ["上级-7", "负责人-3"]}
    assert verify_export(reordered) is not None and reference_verifier.verify(reordered) is not None
    page = await public_draws(h)
    assert "负责人-3 | 上级-7" in page


async def test_art27_after_the_witness_deadline_the_draw_can_only_be_cancelled(h: Harness) -> None:
    await setup(h)
    await h.say(ADMIN, f"抽查 {TASK}")  # the one chief witnesses by default; 3 days
    h.clock.advance(days=4)
    (late,) = await h.say(CHIEF, f"见证 {TASK} 99")
    assert "期限" in late and "作废" in late
    (resealed,) = await h.say(ADMIN, f"抽查 {TASK}")
    assert "只抽取一次" in resealed
    await h.say(ADMIN, f"作废抽取 {TASK} 见证人未在期限内提供见证值")
    (own,) = await h.say(ADMIN, f"批准作废 {TASK}")
    assert "自己批准" in own
    (same_unit,) = await h.say(CHIEF, f"批准作废 {TASK}")  # not the unit that drew
    assert "上级" in same_unit
    await h.say(ABOVE, f"批准作废 {TASK}")
    row = await draw_row(h)
    assert row.status == "cancelled" and row.result is None and row.witness is None
    assert cards(h) == []
    async with h.db.transaction() as s:
        task = await get_task(s, TASK)
        assert task is not None and task.status == "cancelled"
        doc = json.loads(json.dumps(await export(s, task)))
        assert await verify_task(s, task) is None
        start = dt.date(2026, 1, 1)
        figures = await figures_by_org(s, start, dt.date(2027, 1, 1), h.settings.tz)
    assert doc["status"] == "cancelled" and doc["result"] is None and doc["witness"] is None
    assert doc["cancellation"]["approval"] == "level_above"
    assert verify_export(doc) is None and reference_verifier.verify(doc) is None
    # The statistics count it as a cancelled draw of the unit (Art. 41-43).
    assert figures[CITY].draws_cancelled == 1 and figures[CITY].draws_witnessed == 0
    page = await public_draws(h)
    assert "已作废" in page and "见证人未在期限内提供见证值" in page and "上级批准" in page


async def test_art27_an_unwitnessed_draw_needs_its_reason_and_shows_it(h: Harness) -> None:
    await setup(h)
    (refused,) = await h.say(ADMIN, f"抽查 {TASK} 无见证")
    assert "理由" in refused
    await h.say(ADMIN, f"抽查 {TASK} 无见证 见证人均出差")
    row = await draw_row(h)
    assert row.status == "drawn" and not row.witnessed and row.witnesses is None
    assert row.unwitnessed_reason == "见证人均出差"
    (history,) = await h.say(ABOVE, f"抽取记录 {TASK}")
    assert "未见证" in history and "见证人均出差" in history
    page = await public_draws(h)
    assert "未见证" in page and "见证人均出差" in page


async def test_art41_a_region_draw_is_cancelled_by_its_chief_and_a_second_admin(
    h: Harness,
) -> None:
    await setup(h)
    await h.grant(REGION_CHIEF, "chief", REGION)
    await h.grant(REGION_ADMIN2, "admin", REGION)
    async with h.db.transaction() as s:
        await add_item(s, "DQ01", "大气污染防治", org=REGION)
    (made,) = await h.say(ABOVE, f"{NEW_TASK} 单位={REGION}")
    code = f"T2026-{REGION}-001"
    assert code in made, made
    await h.say(ABOVE, f"抽查 {code} 见证人={REGION_CHIEF}")
    await h.say(REGION_CHIEF, f"见证 {code} 5")
    (below,) = await h.say(OUTSIDER, f"作废抽取 {code} 范围有误")
    assert "仅限" in below
    await h.say(ABOVE, f"作废抽取 {code} 范围有误")
    (self_approved,) = await h.say(ABOVE, f"批准作废 {code}")
    assert "自己批准" in self_approved
    (no_chief,) = await h.say(REGION_ADMIN2, f"批准作废 {code}")  # two admins, no chief
    assert "部门负责人" in no_chief
    assert (await draw_row(h, code)).status == "drawn"
    replies = await h.say(REGION_CHIEF, f"批准作废 {code}")
    assert any("两人批准" in r for r in replies)
    row = await draw_row(h, code)
    assert row.status == "cancelled" and row.cancellation is not None
    assert row.cancellation["approval"] == "region_two_person"
    assert row.cancellation["requested_by"] == ABOVE
    assert row.cancellation["approved_by"] == REGION_CHIEF
    async with h.db.transaction() as s:
        payloads = [
            p
            for a, p in (
                await s.execute(
                    select(AuditEntry.action, AuditEntry.payload).order_by(AuditEntry.id)
                )
            ).all()
            if a == "draw.cancelled"
        ]
    assert [p["approval"] for p in payloads] == ["region_two_person"]
    page = await public_draws(h, REGION)
    assert "两人批准" in page


async def test_art29_a_rejected_cancellation_leaves_the_draw_in_force(h: Harness) -> None:
    await setup(h)
    await h.say(ADMIN, f"抽查 {TASK}")
    await h.say(CHIEF, f"见证 {TASK} 12")
    await h.say(ADMIN, f"作废抽取 {TASK} 结果不理想")
    (pending,) = await h.say(ADMIN, f"作废抽取 {TASK} 再申请")
    assert "已有作废申请" in pending
    await h.say(ABOVE, f"驳回作废 {TASK} 作废理由不成立")
    assert any("驳回" in t for t in h.wecom.texts_to(ADMIN))
    row = await draw_row(h)
    assert row.status == "drawn" and row.cancellation is None
    (none,) = await h.say(ABOVE, f"批准作废 {TASK}")
    assert "没有待批准" in none
    async with h.db.transaction() as s:
        actions = [
            a
            for a in (await s.execute(select(AuditEntry.action).order_by(AuditEntry.id))).scalars()
            if a.startswith("draw.cancel")
        ]
    assert actions == ["draw.cancel_requested", "draw.cancel_rejected"]


async def test_art27_a_public_random_source_is_typed_by_one_and_confirmed_by_a_second(
    h: Harness,
) -> None:
    await setup(h)
    source = "上证综指2026-12-15收盘价（休市则取下一交易日收盘价）"
    await h.say(ADMIN, f"抽查 {TASK} 随机源 {source}")
    row = await draw_row(h)
    assert row.status == "committed" and row.public_source is not None and row.witnessed
    assert any(source in t and row.commitment in t for t in h.wecom.texts_to(ABOVE))
    page = await public_draws(h)
    assert source in page and "待见证" in page  # named before its value exists
    (no_person,) = await h.say(CHIEF, f"见证 {TASK} 7")
    assert "随机源值" in no_person
    (bad,) = await h.say(ADMIN, f"随机源值 {TASK} 3,890.27")
    assert "千位" in bad
    await h.say(ADMIN, f"随机源值 {TASK} 3890.72")  # a typo
    (own,) = await h.say(ADMIN, f"确认随机源 {TASK} 3890.72")
    assert "不能自己确认" in own
    (disputed,) = await h.say(CHIEF, f"确认随机源 {TASK} 3890.27")
    assert "不一致" in disputed and cards(h) == []
    await h.say(ADMIN, f"随机源值 {TASK} 3890.27")
    replies = await h.say(CHIEF, f"确认随机源 {TASK} 3890.27")
    assert any("抽取结果" in r and "3890.27" in r for r in replies)
    assert any("抽取结果" in t for t in h.wecom.texts_to(ADMIN))  # the sealer hears it
    async with h.db.transaction() as s:
        task = await get_task(s, TASK)
        assert task is not None
        doc = json.loads(json.dumps(await export(s, task)))
        assert await verify_task(s, task) is None
        actions = [
            a
            for a in (await s.execute(select(AuditEntry.action).order_by(AuditEntry.id))).scalars()
            if a.startswith("draw.source")
        ]
    assert doc["witness"] == {"source": source, "value": "3890.27"}
    assert verify_export(doc) is None and reference_verifier.verify(doc) is None
    assert actions == [
        "draw.source_typed",
        "draw.source_disputed",
        "draw.source_typed",
        "draw.source_confirmed",
    ]
    page = await public_draws(h)
    assert "3890.27" in page
