"""One visit per market entity (Art. 19), end to end: two permits of one company drawn in one
task become one visit with one team, through the real chat flow, the database, the cards and
the exports (DRAW_ALGORITHM.md sections 4 and 8)."""

from __future__ import annotations

import json

from sqlalchemy import func, insert, select, update

from inspection import reference_verifier
from inspection.quotas import TIER_LABELS, Tier
from inspection.verify import verify_export
from storage import draws
from storage.models import (
    AuditEntry,
    DirectoryHistory,
    Inspection,
    ResultEntry,
    Target,
    Task,
    TeamMember,
)
from tests.conftest import Harness
from tests.factories import CITY, COUNTY, FixedEntropy, add_inspectors, add_item, uscc
from tests.support.draw_chat import ADMIN, CHIEF, cards

TASK = "T2026-150100-001"
COMPANY = uscc(7)
PERMITS = [f"{COMPANY}001P", f"{COMPANY}002P"]  # two permits (sites) of one credit code


async def company_with_two_permits(h: Harness, others: int = 0) -> None:
    h.runtime.worker.entropy = FixedEntropy()
    await h.grant(ADMIN, "admin", CITY)
    await h.grant(CHIEF, "chief", CITY)
    async with h.db.transaction() as s:
        rows = [
            {
                "key": key,
                "name": f"甲化工有限公司{n + 1}号厂区",
                "uscc": COMPANY,
                "permit_no": key,
                "address": f"{COUNTY}工业园{n + 1}路",
                "org_code": COUNTY,
                "tier": "general",
                "updated_at": h.clock.now(),
            }
            for n, key in enumerate(PERMITS)
        ]
        rows += [
            {
                "key": uscc(100 + i),
                "name": f"乙企业{i}",
                "uscc": uscc(100 + i),
                "address": "",
                "org_code": COUNTY,
                "tier": "general",
                "updated_at": h.clock.now(),
            }
            for i in range(others)
        ]
        await s.execute(insert(Target), rows)
        await add_inspectors(s, 6)
        await add_item(s, "DQ01", "大气污染防治")
    (reply,) = await h.say(
        ADMIN,
        "新建任务 四季度双随机 范围=150100 一般=100% 检查期=2026-12-01~2026-12-31 事项=DQ01",
    )
    assert TASK in reply, reply


async def test_art19_two_permits_of_one_company_drawn_in_one_task_are_one_visit(
    h: Harness,
) -> None:
    await company_with_two_permits(h, others=2)
    replies = await h.say(ADMIN, f"抽查 {TASK} 无见证 现场无人见证")
    summary = next(r for r in replies if "【抽取结果】" in r)
    # Four targets drawn (100 %), three visits: the company's two permits are one.
    assert "检查组：3个" in summary and "并入同一次检查1个" in summary, summary
    async with h.db.transaction() as s:
        rows = (
            (
                await s.execute(
                    select(Inspection)
                    .where(Inspection.target_key.in_(PERMITS))
                    .order_by(Inspection.number)
                )
            )
            .scalars()
            .all()
        )
        lead, other = rows
        assert (lead.status, other.status) == ("open", "merged")
        assert other.merged_into_id == lead.id
        teams = {
            i: list(
                await s.scalars(
                    select(TeamMember.userid).where(
                        TeamMember.inspection_id == i, TeamMember.active.is_(True)
                    )
                )
            )
            for i in (lead.id, other.id)
        }
        assert len(set(teams[lead.id])) == 2 and teams[other.id] == []
        task = await s.scalar(select(Task).where(Task.code == TASK))
        assert task is not None
        doc = await draws.export(s, task)
        assert await draws.verify_task(s, task) is None
    # One card for the visit, naming both sites; no card for the second permit.
    visit_cards = [c for c in cards(h) if COMPANY in c["main_title"]["desc"]]
    assert len(visit_cards) == 1
    desc = visit_cards[0]["main_title"]["desc"]
    assert all(p in desc for p in PERMITS) and "同一市场主体" in desc
    # The record: the input groups the permits, one team names both sites; both verifiers.
    assert doc["input"]["entities"] == [sorted(PERMITS)]
    (team,) = [t for t in doc["result"]["teams"] if set(t["sites"]) == set(PERMITS)]
    assert team["target_key"] == lead.target_key  # the visit is named by its lead
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    assert verify_export(doc) is None and reference_verifier.verify_bytes(raw) is None
    # A forged export that gives the second permit a team of its own is rejected by both.
    forged = json.loads(raw)
    t = next(t for t in forged["result"]["teams"] if t["target_key"] == lead.target_key)
    t["sites"] = [lead.target_key]
    forged["result"]["teams"].append(dict(t, target_key=other.target_key, sites=[other.target_key]))
    assert verify_export(forged) is not None
    assert reference_verifier.verify(forged) is not None


async def test_art19_a_result_on_the_visit_is_the_result_of_both_permits(h: Harness) -> None:
    from tests.results_support import Visit, click

    await company_with_two_permits(h)
    await h.say(ADMIN, f"抽查 {TASK} 无见证 现场无人见证")
    h.clock.advance(days=1)
    async with h.db.transaction() as s:
        lead = await s.scalar(
            select(Inspection).where(
                Inspection.status == "open", Inspection.target_key.in_(PERMITS)
            )
        )
        assert lead is not None
        members = list(
            await s.scalars(
                select(TeamMember.userid)
                .where(TeamMember.inspection_id == lead.id, TeamMember.active.is_(True))
                .order_by(TeamMember.position)
            )
        )
        visit = Visit(lead.id, lead.number, lead.card_task_id or "", members)
    await click(h, members[0], visit, "no_problem")
    async with h.db.transaction() as s:
        codes = list(
            await s.scalars(
                select(Inspection.result_code).where(Inspection.target_key.in_(PERMITS))
            )
        )
        task = await s.scalar(select(Task).where(Task.code == TASK))
    assert codes == ["no_problem", "no_problem"]
    assert task is not None and task.status == "complete"
    # 一公开: the public export groups the permits by their refs (section 18).
    async with h.db.transaction() as s:
        public = await draws.public_export(s, task)
    refs = {t["ref"] for t in public["input"]["targets"]}
    (group,) = public["input"]["entities"]
    assert len(group) == 2 and set(group) <= refs
    (team,) = public["result"]["teams"]
    assert sorted(team["sites"]) == public["input"]["entities"][0]
    assert verify_export(public) is None and reference_verifier.verify(public) is None


async def _visit_of_the_company(h: Harness) -> tuple[Inspection, list[str]]:
    await h.say(ADMIN, f"抽查 {TASK} 无见证 现场无人见证")
    h.clock.advance(days=1)  # the first day of the check period
    async with h.db.transaction() as s:
        lead = await s.scalar(
            select(Inspection).where(
                Inspection.status == "open", Inspection.target_key.in_(PERMITS)
            )
        )
        assert lead is not None
        members = list(
            await s.scalars(
                select(TeamMember.userid)
                .where(TeamMember.inspection_id == lead.id, TeamMember.active.is_(True))
                .order_by(TeamMember.position)
            )
        )
    return lead, members


async def _statuses(h: Harness) -> dict[str, list[tuple[object, object, str]]]:
    out: dict[str, list[tuple[object, object, str]]] = {}
    async with h.db.transaction() as s:
        for key in PERMITS:
            status = await s.scalar(select(Target.status).where(Target.key == key))
            rows = await s.execute(
                select(DirectoryHistory.before, DirectoryHistory.after, DirectoryHistory.evidence)
                .where(DirectoryHistory.subject_key == key, DirectoryHistory.field == "status")
                .order_by(DirectoryHistory.id)
            )
            out[key] = [(status, "", ""), *((b, a, e) for b, a, e in rows.all())]
    return out


async def test_art13_art19_art38_a_deregistered_visit_marks_every_site_and_leaves_later_pools(
    h: Harness,
) -> None:
    await company_with_two_permits(h)
    lead, members = await _visit_of_the_company(h)
    await h.say(members[0], f"结果 {lead.number} 4")
    for key, (now, *history) in (await _statuses(h)).items():
        assert now[0] == "deregistered", key
        assert history == [("operating", "deregistered", f"inspection:{lead.number}")], key
    changed = await audit_subjects(h, "target.change")
    assert sorted(changed) == sorted(f"target:{p}" for p in PERMITS)
    (created,) = await h.say(
        ADMIN,
        "新建任务 明年一季度 范围=150100 一般=100% 检查期=2027-03-01~2027-03-31 事项=DQ01",
    )
    assert "T2027-150100-001" in created, created
    (preview,) = await h.say(ADMIN, "抽查预览 T2027-150100-001")
    assert f"· 已注销：2个（{TIER_LABELS[Tier.general]}2）" in preview, preview


async def test_art13_art38_correcting_a_deregistered_result_restores_the_earlier_status(
    h: Harness,
) -> None:
    await company_with_two_permits(h)
    async with h.db.transaction() as s:  # one site was suspended before the visit
        await s.execute(update(Target).where(Target.key == PERMITS[1]).values(status="suspended"))
    lead, members = await _visit_of_the_company(h)
    await h.say(members[0], f"结果 {lead.number} 4")
    (corrected,) = await h.say(CHIEF, f"更正 {lead.number} 1 复核发现企业仍在生产")
    assert str(lead.number) in corrected, corrected
    async with h.db.transaction() as s:
        seq = await s.scalar(
            select(func.max(ResultEntry.seq)).where(ResultEntry.inspection_id == lead.id)
        )
    statuses = await _statuses(h)
    for key, before in zip(PERMITS, ("operating", "suspended"), strict=True):
        now, *history = statuses[key]
        assert now[0] == before, key
        assert history == [
            (before, "deregistered", f"inspection:{lead.number}"),
            ("deregistered", before, f"correction:{lead.number}:{seq}"),
        ], key
    assert len(await audit_subjects(h, "target.change")) == 4
    # Back in the pool of a later task.
    await h.say(
        ADMIN,
        "新建任务 明年一季度 范围=150100 一般=100% 检查期=2027-03-01~2027-03-31 事项=DQ01",
    )
    (preview,) = await h.say(ADMIN, "抽查预览 T2027-150100-001")
    assert "已注销" not in preview, preview


async def audit_subjects(h: Harness, action: str) -> list[str]:
    async with h.db.transaction() as s:
        return list(await s.scalars(select(AuditEntry.subject).where(AuditEntry.action == action)))
