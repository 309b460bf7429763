"""One visit for two tasks (Art. 19, 21, 23): the host's result is the merged visit's too, and
both tasks can complete (Art. 37)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from inspection.results import PHRASES, ResultCode
from storage import results as store
from storage.db import Database
from storage.models import Inspection, Task
from storage.results import Submission
from tests.factories import add_inspectors, add_item, add_targets
from tests.support.draws import draw_all

AT = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC)
TZ = dt.timezone(dt.timedelta(hours=8))


async def test_art19_the_host_visits_result_completes_both_tasks(db: Database) -> None:
    async with db.transaction() as s:
        await add_targets(s, 1, tier="special")  # checked more often (Art. 25)
        await add_inspectors(s, 4)
        await add_item(s, "DQ01", "大气")
        await add_item(s, "FS01", "废水")
    await draw_all(db, 一般="0", 特殊="1", 事项="DQ01")
    await draw_all(db, 一般="0", 特殊="1", 事项="FS01", 检查期="2026-12-15~2027-01-15")
    async with db.transaction() as s:
        host, merged = (await s.execute(select(Inspection).order_by(Inspection.id))).scalars()
        code = ResultCode.ordered_to_rectify
        sub = Submission(code.value, PHRASES[code], "u1", "检查员", "card", "废水超标", "")
        won, row = await store.claim(s, host, sub, now=AT)
        assert won and row.state == "recorded"
        done = await store.complete_if_done(s, [host.task_id, merged.task_id], AT, TZ)
        assert {c.task.id for c in done} == {host.task_id, merged.task_id}
        assert all(c.completed_on == dt.date(2026, 12, 3) for c in done)
        # Completed 2026-12-03: the 20th working day after is 2026-12-31 (Art. 37).
        assert {c.publication_due for c in done} == {dt.date(2026, 12, 31)}
    async with db.transaction() as s:
        merged_row = await store.current(s, merged.id)
        (entry,) = await store.entries(s, merged.id)
        tasks = (await s.execute(select(Task.status))).scalars().all()
    assert merged_row is not None and merged_row.code == code.value
    assert entry.kind == "merged" and "合并检查" in entry.reason
    assert list(tasks) == ["complete", "complete"]


async def test_art19_a_correction_of_the_host_is_the_merged_visits_correction_too(
    db: Database,
) -> None:
    """The merged visit shares the host's result whole: a chief's correction carries the
    department a case is handed to and the case-filing mark to it as well."""
    async with db.transaction() as s:
        await add_targets(s, 1, tier="special")  # checked more often (Art. 25)
        await add_inspectors(s, 4)
        await add_item(s, "DQ01", "大气")
        await add_item(s, "FS01", "废水")
    await draw_all(db, 一般="0", 特殊="1", 事项="DQ01")
    await draw_all(db, 一般="0", 特殊="1", 事项="FS01", 检查期="2026-12-15~2027-01-15")
    async with db.transaction() as s:
        host, merged = (await s.execute(select(Inspection).order_by(Inspection.id))).scalars()
        code = ResultCode.no_problem
        sub = Submission(code.value, PHRASES[code], "u1", "检查员", "card", "", "")
        won, _ = await store.claim(s, host, sub, now=AT)
        assert won
        handed = ResultCode.transferred
        fix = Submission(handed.value, PHRASES[handed], "chief", "科长", "text", "噪声", "住建局")
        await store.correct(s, host, fix, reason="复核", now=AT)
    async with db.transaction() as s:
        rows = [await store.current(s, i.id) for i in (host, merged)]
    assert [(r.code, r.department) for r in rows if r is not None] == [
        (handed.value, "住建局"),
        (handed.value, "住建局"),
    ]


async def test_art19_a_merge_into_another_tasks_visit_is_an_amendment_that_replays(
    db: Database,
) -> None:
    """Issue 13, item 5: the second task's drawn visit is done by the first task's visit; its
    team is released, and the record says so as a merge amendment (section 13) that both
    verifiers replay and the audit record anchors (section 16)."""
    import json

    from inspection import reference_verifier
    from inspection.verify import verify_export
    from storage import draws
    from storage.draws.binding import bound
    from storage.models import TeamMember
    from storage.tasks import get_task

    async with db.transaction() as s:
        await add_targets(s, 1, tier="special")  # checked more often (Art. 25)
        await add_inspectors(s, 4)
        await add_item(s, "DQ01", "大气")
        await add_item(s, "FS01", "废水")
    first = await draw_all(db, 一般="0", 特殊="1", 事项="DQ01")
    second = await draw_all(db, 一般="0", 特殊="1", 事项="FS01", 检查期="2026-12-15~2027-01-15")
    async with db.transaction() as s:
        host, merged = (await s.execute(select(Inspection).order_by(Inspection.id))).scalars()
        assert merged.merged_into_id == host.id and merged.status == "merged"
        released = await s.scalar(
            select(TeamMember.id).where(TeamMember.inspection_id == merged.id)
        )
        assert released is None  # the drawn team does not go: the host's team does
        task = await get_task(s, second)
        assert task is not None
        doc = await draws.export(s, task)
        assert await draws.verify_task(s, task) is None
        facts = await bound(s, task, doc["attempt"])
    (amendment,) = doc["amendments"]
    assert amendment["kind"] == "merge" and amendment["into"] == f"{first}:{host.number}"
    assert amendment["target_key"] == merged.target_key
    assert (facts.amendments, facts.head) == (1, doc["amendments_head"])
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    assert verify_export(doc) is None and reference_verifier.verify_bytes(raw) is None
    # Dropping the merge (the visit shown as done by its drawn team) no longer verifies.
    doc["amendments"] = []
    assert verify_export(doc) is not None and reference_verifier.verify(doc) is not None
