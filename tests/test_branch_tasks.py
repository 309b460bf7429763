"""A branch's task drawn by its league/city bureau (Art. 5, 20, 22): the branch sees and acts on
its inspections: its inspectors get their cards, its admins and chiefs follow progress and
results, and its publishers publish (who checks, publishes: Art. 37)."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import Inspection, Publication, TeamMember
from tests.conftest import Harness
from tests.factories import CITY, COUNTY
from tests.test_task_approval import BRANCH_ADMIN, CITY_ADMIN, CITY_CHIEF, setup

BRANCH_CHIEF, BRANCH_PUBLISHER = "bchief", "bpub"


async def drawn_for_branch(h: Harness) -> tuple[str, list[tuple[int, list[str]]]]:
    """The branch proposes, the city approves and draws; (task code, [(number, members)])."""
    await h.grant(BRANCH_CHIEF, "chief", COUNTY)
    await h.grant(BRANCH_PUBLISHER, "publisher", COUNTY)
    code = await setup(h)
    await h.say(CITY_CHIEF, f"批准任务 {code}")
    await h.say(CITY_ADMIN, f"抽查 {code} 无见证 现场无人见证")
    h.clock.advance(days=1)  # the check period begins
    async with h.db.transaction() as s:
        rows = (
            await s.execute(
                select(Inspection.number, TeamMember.userid)
                .join(TeamMember, TeamMember.inspection_id == Inspection.id)
                .where(TeamMember.active.is_(True))
                .order_by(Inspection.number, TeamMember.position)
            )
        ).all()
    teams: dict[int, list[str]] = {}
    for number, userid in rows:
        teams.setdefault(number, []).append(userid)
    assert len(teams) == 2, teams
    return code, list(teams.items())


async def test_art5_art22_a_branch_follows_and_acts_on_the_task_its_city_drew(h: Harness) -> None:
    code, teams = await drawn_for_branch(h)
    # Sealed under the city (Art. 5): its chief gets the commitment of the branch's draw.
    assert any(f"【抽查承诺】任务 {code}" in t for t in h.wecom.texts_to(CITY_CHIEF))
    # Its inspectors get their cards.
    for number, members in teams:
        for member in members:
            assert member.startswith(f"cu{COUNTY}"), member
            assert any(
                m.get("msgtype") == "template_card"
                and f"insp-{number}-" in m["template_card"]["task_id"]
                for m in h.wecom.messages(member)
            ), member
    # Its admins and chiefs see progress and results; so does the city above.
    for manager in (BRANCH_ADMIN, BRANCH_CHIEF, CITY_CHIEF):
        (progress,) = await h.say(manager, "进度")
        assert code in progress and "2项未录结果" in progress, (manager, progress)
    (first, a), (second, b) = teams
    await h.say(a[0], f"结果 {first} 1")
    for manager in (BRANCH_ADMIN, BRANCH_CHIEF):
        (details,) = await h.say(manager, f"检查详情 {first}")
        assert "未发现问题" in details and f"尚缺1项结果（编号 {second}）" in details, details
        (listing,) = await h.say(manager, f"抽取名单 {code}")
        assert str(first) in listing and str(second) in listing, listing
    await h.say(b[0], f"结果 {second} 2 废水排口标识不规范，已责令整改")
    for manager in (BRANCH_ADMIN, BRANCH_CHIEF):
        assert any("任务完成" in t and code in t for t in h.wecom.texts_to(manager)), manager
    (waiting,) = await h.say(BRANCH_CHIEF, "进度")
    assert "待公开结果的任务" in waiting and code in waiting, waiting
    # The publication is the branch's: who checks, publishes (Art. 37).
    (not_ours,) = await h.say(CITY_CHIEF, f"公示 {code} https://example.org/gs/1")
    assert "谁检查、谁公开" in not_ours, not_ours
    (published,) = await h.say(BRANCH_PUBLISHER, f"公示 {code} https://example.org/gs/1")
    assert code in published, published
    async with h.db.transaction() as s:
        (row,) = (await s.execute(select(Publication))).scalars()
    assert (row.org_code, row.results, row.published_by) == (COUNTY, 2, BRANCH_PUBLISHER)
    (done,) = await h.say(BRANCH_ADMIN, "进度")
    assert code not in done, done
    assert CITY != COUNTY


async def test_art5_art37_a_city_task_checked_by_branch_inspectors_is_the_branchs_to_follow(
    h: Harness,
) -> None:
    await h.grant(BRANCH_CHIEF, "chief", COUNTY)
    await h.grant(BRANCH_PUBLISHER, "publisher", COUNTY)
    await setup(h)
    (made,) = await h.say(CITY_ADMIN, "新建任务 市局抽查 一般=2 检查期=2026-12-01~2026-12-31")
    code = "T2026-150100-001"
    assert code in made, made
    await h.say(CITY_ADMIN, f"抽查 {code} 无见证 现场无人见证")
    h.clock.advance(days=1)
    async with h.db.transaction() as s:
        numbers = list(
            (await s.execute(select(Inspection.number).order_by(Inspection.number))).scalars()
        )
    for manager in (BRANCH_ADMIN, BRANCH_CHIEF):
        (progress,) = await h.say(manager, "进度")
        assert code in progress and "2项未录结果" in progress, (manager, progress)
        (details,) = await h.say(manager, f"检查详情 {numbers[0]}")
        assert str(numbers[0]) in details and "仅限" not in details, details
    async with h.db.transaction() as s:
        teams = (
            await s.execute(
                select(Inspection.number, TeamMember.userid)
                .join(TeamMember, TeamMember.inspection_id == Inspection.id)
                .where(TeamMember.position == 0)
            )
        ).all()
    for number, lead in teams:
        await h.say(lead, f"结果 {number} 1")
    (waiting,) = await h.say(BRANCH_CHIEF, "进度")
    assert "待公开结果的任务" in waiting and code in waiting, waiting
    (published,) = await h.say(BRANCH_PUBLISHER, f"公示 {code} https://example.org/gs/2")
    assert code in published, published
    for manager in (BRANCH_CHIEF, CITY_CHIEF):  # the only checking unit has published
        (done,) = await h.say(manager, "进度")
        assert code not in done, (manager, done)
