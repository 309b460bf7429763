"""Who is left out of a draw and why, as the preview says it (Art. 25, 30), end to end."""

from __future__ import annotations

import re

from sqlalchemy import select

from storage.models import Inspection, Task
from tests.conftest import Harness
from tests.factories import COUNTY, uscc
from tests.results_support import ADMIN, CHIEF, Visit, click, drawn, special_visit
from tests.support.draw_chat import OUTSIDER


def left_out(preview: str, article: str) -> int:
    """How many the preview says were left out under the rule of ``article`` (0: no line)."""
    for line in preview.splitlines():
        if line.startswith("·") and article in line:
            found = re.search(r"：(\d+)个", line)
            assert found, line
            return int(found.group(1))
    return 0


async def new_task(h: Harness, user: str, fields: str) -> str:
    (reply,) = await h.say(user, f"新建任务 复查 检查期=2026-12-01~2026-12-31 {fields}")
    found = re.search(r"T2026-\d{6}-\d{3}", reply)
    assert found, reply
    return found.group(0)


async def test_art25_the_preview_counts_targets_checked_this_year_by_any_level(
    h: Harness,
) -> None:
    visits = await drawn(h)  # the city: 1 special, 2 key, 2 general
    assert len(visits) == 5
    # The city again: every tier but special (which may be checked more often) is left out.
    city = await new_task(h, ADMIN, "范围=150100 特殊=25% 重点=25% 一般=10%")
    (preview,) = await h.say(CHIEF, f"抽查预览 {city}")
    assert left_out(preview, "第25条") == 4 and "重点2、一般2" in preview
    # The county may not draw again what its city drew this year (the observed double check).
    county = await new_task(h, OUTSIDER, f"单位={COUNTY} 特殊=25% 重点=25% 一般=10% 特殊多查=否")
    (preview,) = await h.say(OUTSIDER, f"抽查预览 {county}")
    assert left_out(preview, "第25条") == 5 and "特殊1、重点2、一般2" in preview


async def test_art30_only_the_level_aboves_random_checks_let_the_level_below_leave_out(
    h: Harness,
) -> None:
    v = await special_visit(h, await drawn(h))  # special: may be checked more often (Art. 25)
    await click(h, v.members[0], v, "no_problem")
    # A targeted check by the city (a complaint, Art. 6), no problem found either.
    drawn_keys = await _drawn_keys(h)
    key = next(uscc(i) for i in range(200, 220) if uscc(i) not in drawn_keys)
    a, b = "cu1501020", "cu1501021"
    (done,) = await h.say(CHIEF, f"登记检查 {key} 投诉 群众投诉夜间异味 成员={a},{b}")
    assert "双随机以外" in done
    async with h.db.transaction() as s:
        targeted = (
            await s.execute(select(Inspection).where(Inspection.origin == "targeted"))
        ).scalar_one()
    visit = Visit(targeted.id, targeted.number, f"insp-{targeted.number}-1", [a, b])
    await click(h, a, visit, "no_problem")
    async with h.db.transaction() as s:
        results = dict((await s.execute(select(Inspection.origin, Inspection.result_code))).all())
    assert results["targeted"] == "no_problem"
    county = await new_task(h, OUTSIDER, f"单位={COUNTY} 一般=10% 上级已查=排除")
    (preview,) = await h.say(OUTSIDER, f"抽查预览 {county}")
    assert left_out(preview, "第30条") == 1  # the random check only, not the complaint's
    assert left_out(preview, "第25条") == 4  # the city's other random checks (key, general)


async def _drawn_keys(h: Harness) -> set[str]:
    async with h.db.transaction() as s:
        rows = await s.execute(
            select(Inspection.target_key).join(Task, Task.id == Inspection.task_id)
        )
        return set(rows.scalars())


async def test_art25_each_exclusion_sealed_with_a_draw_carries_its_evidence(
    h: Harness,
) -> None:
    """Issue 13, item 3: "checked this year" names the task and inspection number of that check,
    "on leave" the leave record and its dates; both verifiers check the structure, and the
    checks named are real inspections of this year (what a supervising authority looks up)."""
    import datetime as dt

    from inspection import reference_verifier
    from inspection.verify import verify_export
    from storage import draws, register
    from storage.models import Inspector
    from tests.support.draw_chat import TASK

    visits = await drawn(h)
    async with h.db.transaction() as s:  # the draw reads leave from the register (Art. 29)
        person = await s.scalar(
            select(Inspector).where(Inspector.certificate_no == f"C{COUNTY}0005")
        )
        assert person is not None
        record = await register.create(
            s,
            person,
            kind=register.LEAVE,
            entered_by=ADMIN,
            now=h.clock.now(),
            date_from=dt.date(2026, 12, 10),
            date_until=dt.date(2027, 1, 20),
            confirmed=True,
            source="import",
        )
        checked = dict((await s.execute(select(Inspection.target_key, Inspection.number))).all())
    city = await new_task(h, ADMIN, "范围=150100 特殊=25% 重点=25% 一般=10%")
    await h.say(ADMIN, f"抽查 {city} 无见证 现场无人见证")
    async with h.db.transaction() as s:
        task = await s.scalar(select(Task).where(Task.code == city))
        assert task is not None
        doc = await draws.export(s, task)
    by_reason: dict[str, list[dict[str, object]]] = {}
    for e in doc["exclusions"]:
        by_reason.setdefault(str(e["reason"]), []).append(e)
    seen = by_reason["inspected_this_year"]
    assert len(seen) == 4 and len(visits) == 5
    for e in seen:
        assert e["evidence"] == {"task": TASK, "inspection": checked[e["key"]]}
    (leave,) = by_reason["on_leave"]
    assert leave["key"] == f"C{COUNTY}0005"
    assert leave["evidence"] == {
        "leave": str(record.record_id),
        "from": "2026-12-10",
        "until": "2027-01-20",
    }
    assert verify_export(doc) is None and reference_verifier.verify(doc) is None
