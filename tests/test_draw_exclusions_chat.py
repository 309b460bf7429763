"""Who is left out of a draw and why, as the preview says it (Art. 25, 30), end to end."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import insert, select

from storage.models import Inspection, Target, Task
from tests.conftest import Harness
from tests.factories import COUNTY, add_targets, uscc
from tests.results_support import ADMIN, CHIEF, Visit, click, drawn, special_visit
from tests.support.draw_chat import OUTSIDER, TASK


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


async def test_art30_the_level_above_checking_a_company_with_no_problem_leaves_out_all_its_permits(
    h: Harness,
) -> None:
    """Art. 30 per market entity (as Art. 19 and 25): the city checked one permit of a company
    and found no problem; a county task that leaves out what the level above so checked
    (上级已查=排除) leaves out the company's other permit too. The special tier may be checked
    more often (Art. 25), so without that option both stay in the county's pool; and once the
    city's result says a problem was found (a correction), the company is not left out."""
    v = await special_visit(h, await drawn(h))
    async with h.db.transaction() as s:
        checked = await s.scalar(select(Target).where(Target.key == select_key(v)))
        assert checked is not None and checked.uscc
        other = f"{checked.uscc}002P"  # the same company's second permit, never checked
        await s.execute(
            insert(Target).values(
                key=other,
                name=f"{checked.name}二号厂区",
                uscc=checked.uscc,
                permit_no=other,
                address="",
                org_code=COUNTY,
                tier="special",
                updated_at=h.clock.now(),
            )
        )
    await click(h, v.members[0], v, "no_problem")
    leaving = await new_task(h, OUTSIDER, f"单位={COUNTY} 特殊=100% 上级已查=排除")
    (preview,) = await h.say(OUTSIDER, f"抽查预览 {leaving}")
    assert left_out(preview, "第30条") == 2, preview
    listed, drawable = _special_counts(preview)
    assert drawable == listed - 2, preview
    # The evidence a draw would seal: the city's check, for both permits.
    evidence = await _evidence(h, leaving)
    city_check = {"task": TASK, "inspection": v.number}
    assert evidence[f"above:{checked.key}"] == evidence[f"above:{other}"] == city_check
    # Without the option the special tier is checked more often: neither is left out.
    keeping = await new_task(h, OUTSIDER, f"单位={COUNTY} 特殊=100%")
    (preview,) = await h.say(OUTSIDER, f"抽查预览 {keeping}")
    assert left_out(preview, "第30条") == 0, preview
    listed, drawable = _special_counts(preview)
    assert drawable == listed, preview  # both permits among them (Art. 25: more often)
    # The city corrects its result: a problem was found, so the company is not left out.
    await h.say(CHIEF, f"更正 {v.number} 2 复核发现废气超标排放")
    again = await new_task(h, OUTSIDER, f"单位={COUNTY} 特殊=100% 上级已查=排除")
    (preview,) = await h.say(OUTSIDER, f"抽查预览 {again}")
    assert left_out(preview, "第30条") == 0, preview


async def test_art30_a_level_above_check_still_without_a_result_leaves_the_entity_in(
    h: Harness,
) -> None:
    """Art. 30 leaves out what the level above checked this year "with no problem found": a
    check of the city still without a result has found nothing yet, so a county task that
    leaves out what the level above so checked (上级已查=排除) keeps the entity in its pool;
    once the city records no problem, the entity is left out."""
    v = await special_visit(h, await drawn(h))  # special: may be checked more often (Art. 25)
    waiting = await new_task(h, OUTSIDER, f"单位={COUNTY} 特殊=100% 上级已查=排除")
    (preview,) = await h.say(OUTSIDER, f"抽查预览 {waiting}")
    assert left_out(preview, "第30条") == 0, preview
    listed, drawable = _special_counts(preview)
    assert drawable == listed, preview
    assert f"above:{select_key(v)}" not in await _evidence(h, waiting)
    await click(h, v.members[0], v, "no_problem")
    after = await new_task(h, OUTSIDER, f"单位={COUNTY} 特殊=100% 上级已查=排除")
    (preview,) = await h.say(OUTSIDER, f"抽查预览 {after}")
    assert left_out(preview, "第30条") == 1, preview
    listed, drawable = _special_counts(preview)
    assert drawable == listed - 1, preview


def _special_counts(preview: str) -> tuple[int, int]:
    """(in the directory, drawable) for the special tier, as the preview says them."""
    found = re.search(r"特殊：名录(\d+)个，可抽(\d+)个", preview)
    assert found, preview
    return int(found.group(1)), int(found.group(2))


def select_key(v: Visit) -> Any:
    return select(Inspection.target_key).where(Inspection.id == v.inspection_id).scalar_subquery()


async def _evidence(h: Harness, code: str) -> dict[str, dict[str, Any]]:
    """What the pool's facts name as the checks that leave the task's targets out."""
    from storage.tasks import target_facts

    evidence: dict[str, dict[str, Any]] = {}
    async with h.db.transaction() as s:
        task = await s.scalar(select(Task).where(Task.code == code))
        assert task is not None
        await target_facts(s, task, evidence=evidence)
    return evidence


async def test_art25_art30_a_construction_check_is_the_entitys_random_check_of_the_year(
    h: Harness,
) -> None:
    """Art. 25(4)'s check made in the construction part of a draw is a random check (Art. 25:
    every random check at most once a year per enterprise): the company's other permits leave
    later routine pools (Art. 25) and, with no problem found, the level below's (Art. 30). A
    key construction project due for its one check is never left out by once a year, even
    when its company was randomly checked this year."""
    import datetime as dt

    project = uscc(400)
    async with h.db.transaction() as s:
        await add_targets(
            s,
            1,
            tier="key",
            start=400,
            approval_level="region",
            construction_started_on=dt.date(2025, 3, 1),
        )
    visits = await drawn(h)
    async with h.db.transaction() as s:
        rows = (await s.execute(select(Inspection.target_key, Inspection.origin))).all()
        origin = dict(rows)
        assert origin[project] == "construction"
        random_key = next(k for k, o in rows if o == "random")
        checked = dict((await s.execute(select(Inspection.target_key, Inspection.number))).all())
        # The project's company registers a second permit; a drawn company starts a project.
        permit, second_project = f"{project}002P", f"{random_key}003C"
        await s.execute(insert(Target).values(_target(h, permit, project, "special")))
        await s.execute(
            insert(Target).values(
                **_target(h, second_project, random_key, "key"),
                approval_level="ministry",
                construction_started_on=dt.date(2026, 6, 1),
            )
        )
    # The city again, special tier not checked more often: the project and its company's
    # permit are left out as checked this year, by the construction check.
    city = await new_task(h, ADMIN, "范围=150100 特殊=25% 重点=25% 一般=10% 特殊多查=否")
    plan = await _plan(h, city)
    seen = {e.key: e.evidence for e in plan.exclusions if e.reason == "inspected_this_year"}
    construction_check = {"task": TASK, "inspection": checked[project]}
    assert seen[project] == seen[permit] == construction_check
    # The drawn company's new project is due for its Art. 25(4) check: not left out by once a
    # year, it goes to the construction part.
    due = {e.key for e in plan.exclusions if e.reason == "construction_due"}
    assert second_project in due and second_project not in seen
    (preview,) = await h.say(CHIEF, f"抽查预览 {city}")
    assert left_out(preview, "原则上每年不超过一次") == len(checked) + 1, preview
    assert left_out(preview, "第25条第4项") == 1, preview
    # No problem found at the project: the county (the level below) may leave out the
    # company's permit, which its special tier would otherwise check again (Art. 30).
    (v,) = [v for v in visits if v.number == checked[project]]
    await click(h, v.members[0], v, "no_problem")
    county = await new_task(h, OUTSIDER, f"单位={COUNTY} 特殊=100% 上级已查=排除")
    (preview,) = await h.say(OUTSIDER, f"抽查预览 {county}")
    assert left_out(preview, "第30条") == 1, preview
    above = {e.key: e.evidence for e in (await _plan(h, county)).exclusions}
    assert above[permit] == construction_check


def _target(h: Harness, key: str, company: str, tier: str) -> dict[str, Any]:
    return {
        "key": key,
        "name": f"测试企业{key}",
        "uscc": company,
        "permit_no": key,
        "address": "",
        "org_code": COUNTY,
        "tier": tier,
        "updated_at": h.clock.now(),
    }


async def _plan(h: Harness, code: str) -> Any:
    from storage import draws

    async with h.db.transaction() as s:
        task = await s.scalar(select(Task).where(Task.code == code))
        assert task is not None
        return await draws.preview(s, task)
