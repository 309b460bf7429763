"""To the letter of the corrected rules: results in their window, what a result changes,
hand-overs, text as typed, counts of who stayed on a team (Art. 13, 17, 27, 34, 35, 37, 38)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import delete, select

from bot.runtime.due import DueRunner
from inspection.quotas import TIER_LABELS, Tier
from storage import followups
from storage import results as store
from storage.models import (
    AuditEntry,
    DirectoryHistory,
    Draw,
    DueAction,
    Inspection,
    InspectionResult,
    Publication,
    SwapRequest,
    Target,
    Task,
)
from tests.conftest import Harness
from tests.factories import COUNTY
from tests.results_support import ADMIN, CHIEF, TASK, audit_actions, describe, drawn, visits
from tests.support.draw_chat import setup
from tests.test_articles import names_by_userid

BEIJING = dt.timezone(dt.timedelta(hours=8))


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


async def test_art35_art38_free_text_is_stored_exactly_as_typed(h: Harness) -> None:
    v, w, *_ = await drawn(h)
    a = v.members[0]
    described = "废气处理设施未正常运行，已责令停产整改（限期：12月15日）"
    replies = await h.say(a, f"结果　{v.number}　２ {described}")  # full-width spaces and digit
    assert any(described in r for r in replies), replies
    record_no = "呼环罚〔２０２６〕１２号：Ａ"
    await h.say(a, f"记录 {v.number} {record_no}")
    (held,) = await h.say(w.members[0], f"结果 {w.number} 5")
    assert "移交的部门" in held, held
    await describe(h, w.members[0], "市水务局（执法支队）\n废水直排入河，已移交：水务")
    reason = "复核：现场照片显示，设施已停运（见附件）"
    await h.say(CHIEF, f"更正 {v.number} 7 {reason}")
    async with h.db.transaction() as s:
        first = await store.entries(s, v.inspection_id)
        numbers = await store.record_numbers(s, v.inspection_id)
        moved = await store.current(s, w.inspection_id)
    assert first[0].description == described
    assert first[-1].reason == reason
    assert [r.record_no for r in numbers] == [record_no]
    assert moved is not None and moved.department == "市水务局（执法支队）"
    assert moved.description == "废水直排入河，已移交：水务"
    (details,) = await h.say(a, f"检查详情 {v.number}")
    assert described in details and record_no in details and reason in details


async def test_art27_the_witness_value_is_kept_as_typed_per_the_draw_spec(h: Harness) -> None:
    await setup(h)
    await h.say(ADMIN, f"抽查 {TASK}")
    typed = "双色球２０２６１３８期：03－07"
    await h.say(CHIEF, f"见证 {TASK} {typed}")
    async with h.db.transaction() as s:
        witness = (await s.execute(select(Draw.witness))).scalar_one()
    assert witness == typed  # DRAW_ALGORITHM.md: utf8(witness), no normalisation


async def test_art13_art38_a_deregistered_result_marks_the_target_and_leaves_later_pools(
    h: Harness,
) -> None:
    v, *_ = await drawn(h)
    async with h.db.transaction() as s:
        inspection = await s.get(Inspection, v.inspection_id)
        assert inspection is not None
        key = inspection.target_key
    await h.say(v.members[0], f"结果 {v.number} 4")
    async with h.db.transaction() as s:
        target = (await s.execute(select(Target).where(Target.key == key))).scalar_one()
        history = (
            await s.execute(select(DirectoryHistory).where(DirectoryHistory.subject_key == key))
        ).scalar_one()
    assert target.status == "deregistered"
    assert (history.field, history.before, history.after) == ("status", "operating", "deregistered")
    assert history.evidence == f"inspection:{v.number}" and history.actor == v.members[0]
    (created,) = await h.say(
        ADMIN,
        "新建任务 明年一季度 范围=150100 特殊=25% 重点=25% 一般=10% "
        "检查期=2027-03-01~2027-03-31 事项=DQ01",
    )
    assert "T2027-150100-001" in created, created
    (preview,) = await h.say(ADMIN, "抽查预览 T2027-150100-001")
    # Left out of the later pool, counted under its own tier (the preview's wording per rule).
    assert "不参加本次随机抽取的检查对象：" in preview, preview
    assert f"· 已注销：1个（{TIER_LABELS[Tier(target.tier)]}1）" in preview, preview


async def test_art34_art38_hand_over_to_the_judiciary_and_a_later_penalty_decision(
    h: Harness,
) -> None:
    v, *_ = await drawn(h)
    a = v.members[0]
    await h.say(a, f"结果 {v.number} 3 夜间偷排含重金属废水")
    h.clock.advance(days=9)  # 2026-12-10
    body = "呼和浩特市公安局　新城区分局"
    (handed,) = await h.say(a, f"移送司法 {v.number} {body} 2026-12-08")
    assert "2026-12-08" in handed, handed
    (twice,) = await h.say(a, f"移送司法 {v.number} {body} 2026-12-08")
    assert "已记录过" in twice, twice
    (future,) = await h.say(a, f"移送司法 {v.number} 某公安局 2026-12-11")
    assert "2026-12-10" in future, future
    outsider = next(u for y in await visits(h) for u in y.members if u not in v.members)
    (refused,) = await h.say(outsider, f"移送司法 {v.number} 某公安局")
    assert "仅限" in refused, refused
    decision = "呼环罚〔２０２６〕１２号"
    (linked,) = await h.say(CHIEF, f"处罚决定 {v.number} {decision}")
    assert decision in linked and "2026-12-10" in linked, linked
    async with h.db.transaction() as s:
        rows = await followups.of(s, v.inspection_id)
    assert [(f.kind, f.body, f.reference, f.on.isoformat(), f.userid) for f in rows] == [
        ("judiciary", body, "", "2026-12-08", a),
        ("penalty", "", decision, "2026-12-10", CHIEF),
    ]
    assert (await audit_actions(h, "result."))[-2:] == ["result.judiciary", "result.penalty"]
    (details,) = await h.say(CHIEF, f"检查详情 {v.number}")
    assert body in details and decision in details, details


async def test_art37_the_publication_clock_starts_at_the_end_of_the_check_period(
    h: Harness,
) -> None:
    *done, last = await drawn(h)
    for v in done:
        await h.say(v.members[0], f"结果 {v.number} 1")
    (details,) = await h.say(CHIEF, f"检查详情 {last.number}")
    assert f"尚缺1项结果（编号 {last.number}）" in details, details
    async with h.db.transaction() as s:
        task = (await s.execute(select(Task).where(Task.code == TASK))).scalar_one()
        assert task.completed_at is None
    h.clock.set(dt.datetime(2027, 1, 1, 0, 0, 1, tzinfo=BEIJING))
    assert await h.runtime.due.tick() == 1
    await h.settle()
    async with h.db.transaction() as s:
        task = (await s.execute(select(Task).where(Task.code == TASK))).scalar_one()
    assert task.completed_at is not None and task.status == "complete"
    assert task.completed_at.astimezone(BEIJING).date() == dt.date(2026, 12, 31)
    (told,) = [t for t in h.wecom.texts_to(CHIEF) if "任务完成" in t]
    assert "完成日期 2026-12-31" in told and f"编号 {last.number}" in told, told
    assert "尚缺1项" in told
    # A result recorded later is published within 20 working days of its recording.
    h.clock.set(dt.datetime(2027, 1, 4, 10, 0, tzinfo=BEIJING))
    replies = await h.say(last.members[0], f"结果 {last.number} 6")
    assert any("补录结果" in r for r in replies), replies
    assert any("补录结果" in t for t in h.wecom.texts_to(CHIEF))
    calendar = store.work_calendar(
        tuple(h.settings.calendar.holidays), tuple(h.settings.calendar.makeup_workdays)
    )
    due, _ = store.publication_due(task, dt.date(2027, 1, 4), calendar)
    async with h.db.transaction() as s:
        late = (
            await s.execute(select(AuditEntry).where(AuditEntry.action == "result.late"))
        ).scalar_one()
    assert late.payload["publication_due"] == (due.isoformat() if due else None)
    (details,) = await h.say(CHIEF, f"检查详情 {last.number}")
    assert "完成日期 2026-12-31" in details and "全部检查已有结果" in details, details


async def test_art37_a_task_drawn_before_the_period_end_action_existed_still_completes(
    h: Harness,
) -> None:
    """Tasks drawn by older code (or migrated) had no period-end completion scheduled: the due
    runner's sweep schedules it once, whichever instance sweeps first, and it runs once."""
    visits_ = await drawn(h)
    async with h.db.transaction() as s:
        await s.execute(delete(DueAction).where(DueAction.kind == store.PERIOD_END_DUE))
    await h.say(visits_[0].members[0], f"结果 {visits_[0].number} 1")
    other = DueRunner(h.db, h.runtime.due.dispatcher, h.settings, h.clock, "second-instance")
    assert await other.sweep() == [TASK]
    assert await h.runtime.due.sweep() == []  # the first instance finds it scheduled
    async with h.db.transaction() as s:
        (action,) = (
            await s.execute(select(DueAction).where(DueAction.kind == store.PERIOD_END_DUE))
        ).scalars()
    assert action.due_at.astimezone(BEIJING).date() == dt.date(2026, 12, 31)
    h.clock.set(dt.datetime(2027, 1, 1, 0, 0, 1, tzinfo=BEIJING))
    assert await other.tick() + await h.runtime.due.tick() == 1
    await h.settle()
    async with h.db.transaction() as s:
        task = (await s.execute(select(Task).where(Task.code == TASK))).scalar_one()
    assert task.status == "complete" and task.completed_at is not None
    assert task.completed_at.astimezone(BEIJING).date() == dt.date(2026, 12, 31)
    (told,) = [t for t in h.wecom.texts_to(CHIEF) if "任务完成" in t]
    assert f"尚缺{len(visits_) - 1}项" in told, told
    assert await other.sweep() == []  # completed: nothing more to schedule


async def test_art37_a_result_recorded_after_publication_is_published_too(h: Harness) -> None:
    """A result recorded after its unit published the task is published within 20 working days
    of its recording: the publisher records it with 公示 again (a second 公示 with nothing new is
    refused)."""
    await h.grant("pub", "publisher", COUNTY)  # the teams' unit publishes (Art. 37)
    *done, last = await drawn(h)
    for v in done:
        await h.say(v.members[0], f"结果 {v.number} 1")
    h.clock.set(dt.datetime(2027, 1, 1, 0, 0, 1, tzinfo=BEIJING))
    assert await h.runtime.due.tick() == 1
    await h.settle()
    h.clock.set(dt.datetime(2027, 1, 4, 9, 0, tzinfo=BEIJING))
    (published,) = await h.say("pub", f"公示 {TASK} https://portal.example/a")
    assert f"公开 {len(done)} 条" in published, published
    replies = await h.say(last.members[0], f"结果 {last.number} 6")
    (late,) = [r for r in replies if "补录结果" in r]
    assert f"公示 {TASK} <网址>" in late, late
    (supplement,) = await h.say("pub", f"公示 {TASK} https://portal.example/b")
    assert "补充公开" in supplement and "1 条" in supplement, supplement
    async with h.db.transaction() as s:
        pub = (await s.execute(select(Publication))).scalar_one()
        result = await s.get(InspectionResult, last.inspection_id)
    assert pub.results == len(done) + 1 and pub.url == "https://portal.example/a"
    assert result is not None and result.published_at is not None
    assert await audit_actions(h, "publication.") == [
        "publication.record",
        "publication.supplement",
    ]
    (again,) = await h.say("pub", f"公示 {TASK} https://portal.example/c")
    assert "无需重复登记" in again, again
