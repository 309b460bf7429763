"""Pace warnings (Art. 25): a tier behind its quarterly minimum when two thirds of the quarter
are gone, and again ten working days before the quarter's end; the chief gets the number still
needed, the admin a 新建任务 line that parses and closes the gap; once per occasion."""

from __future__ import annotations

import asyncio
import datetime as dt
from fractions import Fraction

from sqlalchemy import func, select

from bot.runtime.pace import PaceWatch
from inspection.quotas import (
    PaceOccasion,
    QuarterCoverage,
    Tier,
    counts_to_draw,
    pace_occasion,
)
from inspection.taskspec import parse_task_line
from storage.models import AuditEntry, PaceWarning
from tests.conftest import Harness
from tests.factories import CITY, FixedEntropy, add_inspectors, add_item, add_targets
from tests.quotas_support import tiers
from tests.results_support import ADMIN, CHIEF, click, drawn

CST = dt.timezone(dt.timedelta(hours=8))
FIRST, LAST = dt.date(2026, 10, 1), dt.date(2026, 12, 31)
FINAL_FROM = dt.date(2026, 12, 17)  # the tenth working day before 2026-12-31
REQUIRED = {Tier.special: 1, Tier.key: 2, Tier.general: 2}
LABEL = {Tier.special: "特殊", Tier.key: "重点", Tier.general: "一般"}
ART25 = {Tier.special: Fraction(1, 4), Tier.key: Fraction(1, 5), Tier.general: Fraction(1, 10)}


def cov(done: int, size: int = 30) -> QuarterCoverage:
    return QuarterCoverage.compute({Tier.general: size}, {Tier.general: done}, ART25)


def test_art25_pace_occasions_by_share_of_quarter_and_working_days_left() -> None:
    general = cov(1)[Tier.general]  # 1 of 3 required: under two thirds
    assert pace_occasion(FIRST, LAST, dt.date(2026, 11, 30), FINAL_FROM, general) is None
    assert pace_occasion(FIRST, LAST, dt.date(2026, 12, 1), FINAL_FROM, general) == "behind"
    assert pace_occasion(FIRST, LAST, FINAL_FROM, FINAL_FROM, general) == PaceOccasion.final
    on_pace = cov(2)[Tier.general]  # 2 of 3: two thirds reached
    assert pace_occasion(FIRST, LAST, dt.date(2026, 12, 1), FINAL_FROM, on_pace) is None
    assert pace_occasion(FIRST, LAST, FINAL_FROM, FINAL_FROM, on_pace) == "final"
    assert pace_occasion(FIRST, LAST, FINAL_FROM, FINAL_FROM, cov(3)[Tier.general]) is None


def test_art25_the_draw_asks_for_the_gap_but_no_more_than_the_pool_holds() -> None:
    assert counts_to_draw(cov(0), {Tier.general: 10}) == {Tier.general: 3}
    assert counts_to_draw(cov(0), {Tier.general: 2}) == {Tier.general: 2}
    assert counts_to_draw(cov(3), {Tier.general: 10}) == {}


async def warnings(h: Harness) -> int:
    async with h.db.transaction() as s:
        return int((await s.execute(select(func.count()).select_from(PaceWarning))).scalar_one())


async def test_art25_behind_tiers_are_warned_once_with_a_task_line_that_closes_the_gap(
    h: Harness,
) -> None:
    visits = await drawn(h)
    tier_of = await tiers(h, visits)
    await click(h, visits[0].members[0], visits[0], "no_problem")
    done = {t: sum(1 for v in visits[:1] if tier_of[v.number] == t.value) for t in Tier}
    need = {t: REQUIRED[t] - done[t] for t in Tier if done[t] * 3 < REQUIRED[t] * 2}
    watch = h.runtime.pace
    h.clock.set(dt.datetime(2026, 12, 5, 10, 0, tzinfo=CST))  # a Saturday
    assert await watch.tick() == 0
    h.clock.set(dt.datetime(2026, 12, 2, 8, 0, tzinfo=CST))  # before working hours
    assert await watch.tick() == 0
    h.clock.set(dt.datetime(2026, 12, 2, 10, 0, tzinfo=CST))
    assert await watch.tick() == len(need)
    await h.settle()
    (chief,) = h.wecom.texts_to(CHIEF)[-1:]
    for t, n in need.items():
        assert f"{LABEL[t]}监管对象" in chief and f"还需{n}家" in chief
    admin = h.wecom.texts_to(ADMIN)[-1]
    line = next(ln for ln in admin.splitlines() if ln.startswith("新建任务 "))
    spec = parse_task_line(line.removeprefix("新建任务 "))
    assert {t: q.count for t, q in spec.quotas.items()} == need
    assert spec.scope_orgs == ("150100",) and spec.check_end == LAST
    # Later ticks, and another instance, send nothing more for this occasion.
    h.clock.advance(hours=1)
    other = PaceWatch(h.db, h.settings, h.clock)
    assert await asyncio.gather(watch.tick(), other.tick()) == [0, 0]
    assert await warnings(h) == len(need)
    # The line works as typed.
    (created,) = await h.say(ADMIN, line)
    assert "T2026-150100-002" in created
    # Ten working days before the quarter's end: once more, once, across two instances.
    h.clock.set(dt.datetime(2026, 12, 17, 9, 30, tzinfo=CST))
    short = {t for t in Tier if done[t] < REQUIRED[t]}
    ran = await asyncio.gather(
        PaceWatch(h.db, h.settings, h.clock).tick(), PaceWatch(h.db, h.settings, h.clock).tick()
    )
    assert sorted(ran) == [0, len(short)]
    await h.settle()
    final = h.wecom.texts_to(CHIEF)[-1]
    assert "不足10个工作日" in final
    assert await warnings(h) == len(need) + len(short)


async def test_art25_the_pace_draw_leaves_out_what_the_pool_leaves_out(h: Harness) -> None:
    """The 补抽 line counts what a draw could still take with the pool's own once-a-year rule:
    every random check this year of a market entity, whatever its tier; special targets may
    be checked more often."""
    h.runtime.worker.entropy = FixedEntropy()
    await h.grant(ADMIN, "admin", CITY)
    await h.grant(CHIEF, "chief", CITY)
    async with h.db.transaction() as s:
        await add_targets(s, 4, tier="special")
        (company, *_) = await add_targets(s, 5, tier="key", start=100)
        # The company's other permit, general tier: its entity is checked with the key permit.
        await add_targets(s, 1, tier="general", start=100, key=f"{company}002P", uscc=company)
        await add_inspectors(s, 6)
        await add_item(s, "DQ01", "大气污染防治")
    (created,) = await h.say(
        ADMIN,
        "新建任务 四季度双随机 范围=150100 特殊=100% 重点=100% "
        "检查期=2026-12-01~2026-12-31 事项=DQ01",
    )
    assert "T2026-150100-001" in created, created
    await h.say(ADMIN, "抽查 T2026-150100-001 无见证 见证人均出差")
    h.clock.set(dt.datetime(2026, 12, 2, 10, 0, tzinfo=CST))  # no result yet: every tier behind
    assert await h.runtime.pace.tick() == 3
    await h.settle()
    async with h.db.transaction() as s:
        payload = await s.scalar(
            select(AuditEntry.payload).where(AuditEntry.action == "quota.pace_warning")
        )
    assert payload is not None
    assert set(payload["tiers"]) == {"special", "key", "general"}
    # Every key target was drawn this year, and so was the general permit's company.
    assert payload["draw"] == {"special": 1}
    admin = h.wecom.texts_to(ADMIN)[-1]
    line = next(ln for ln in admin.splitlines() if ln.startswith("新建任务 "))
    spec = parse_task_line(line.removeprefix("新建任务 "))
    assert {t: q.count for t, q in spec.quotas.items()} == {Tier.special: 1}
