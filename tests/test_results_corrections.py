"""Corrections before publication and secrecy marks (Art. 37): the original always stays."""

from __future__ import annotations

from sqlalchemy import update

from storage import results as store
from storage.models import InspectionResult, Task
from tests.conftest import Harness
from tests.factories import CITY
from tests.results_support import ADMIN, CHIEF, audit_actions, drawn

OTHER_CHIEF = "chief_baotou"


async def test_art37_corrections_keep_the_original_and_secret_results_are_never_published(
    h: Harness,
) -> None:
    await h.grant("enf1", "enforcement", CITY)
    await h.grant(OTHER_CHIEF, "chief", "150200")
    v, w, x, *_ = await drawn(h)
    a = v.members[0]
    await h.say(a, f"结果 {v.number} 1")
    (refusal,) = await h.say(a, f"更正 {v.number} 3 复核发现超标")
    assert "仅限部门负责人" in refusal
    (refusal,) = await h.say(OTHER_CHIEF, f"更正 {v.number} 3 复核发现超标")
    assert "仅限其抽取部门及上级" in refusal
    (usage,) = await h.say(CHIEF, f"更正 {v.number} 3")
    assert "用法" in usage
    replies = await h.say(CHIEF, f"更正 {v.number} 3 复核监测数据发现超标排放")
    assert any("「未发现问题」→「发现违法行为已立案调查」" in r for r in replies)
    for member in v.members:
        assert any("检查结果更正" in t and "原结果保留" in t for t in h.wecom.texts_to(member))
    assert any("移交立案调查" in t for t in h.wecom.texts_to("enf1"))
    async with h.db.transaction() as s:
        history = await store.entries(s, v.inspection_id)
        row = await store.current(s, v.inspection_id)
    assert [(e.seq, e.kind, e.code, e.userid) for e in history] == [
        (1, "result", "no_problem", a),
        (2, "correction", "case_filed", CHIEF),
    ]
    assert history[1].reason == "复核监测数据发现超标排放"
    assert row is not None and row.code == "case_filed" and row.case_filing
    (details,) = await h.say(CHIEF, f"检查详情 {v.number}")
    assert "1." in details and "未发现问题" in details and "2." in details and "更正" in details
    (same,) = await h.say(CHIEF, f"更正 {v.number} 3 再次复核")
    assert "已是" in same
    async with h.db.transaction() as s:  # published: a correction is still made, and kept
        await s.execute(
            update(InspectionResult)
            .where(InspectionResult.inspection_id == v.inspection_id)
            .values(published_at=h.clock.now())
        )
    (late, *_) = await h.say(CHIEF, f"更正 {v.number} 1 复核有误")
    assert "更正" in "".join(late) and "未发现问题" in late  # the page's line says so (Art. 37)
    assert await audit_actions(h, "result.") == [
        "result.record",
        "result.correct",
        "result.case_referral",
        "result.correct",
    ]
    # Secret results (Art. 37) are marked with a reason and never published.
    (early,) = await h.say(ADMIN, f"保密 {x.number} 涉及国家秘密")
    assert "还没有检查结果" in early
    await h.say(x.members[0], f"结果 {x.number} 1")
    await h.say(w.members[0], f"结果 {w.number} 1")
    (refusal,) = await h.say(x.members[0], f"保密 {x.number} 涉密")
    assert "仅限" in refusal
    (marked,) = await h.say(CHIEF, f"保密 {x.number} 涉及国家秘密")
    assert "标记为保密" in marked and "第37条" in marked
    (again,) = await h.say(ADMIN, f"保密 {x.number} 涉密")
    assert "已标记为保密" in again
    async with h.db.transaction() as s:
        task = await s.get(Task, 1)
        assert task is not None
        published = [r.inspection_id for r in await store.publishable(s, task.id)]
        row = await store.current(s, x.inspection_id)
    assert published == sorted([v.inspection_id, w.inspection_id])  # not the secret one
    assert row is not None and row.secret and row.secret_by == CHIEF
    (details,) = await h.say(ADMIN, f"检查详情 {x.number}")
    assert "保密，不公开" in details
    assert "result.secret" in await audit_actions(h, "result.")
