"""Quarterly coverage per league/city (Art. 25): distinct targets randomly checked, with a result
recorded in the quarter, over the sub-directory as it stood at the quarter's start."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from inspection.quotas import Change, DirectoryEntry, Tier, coverage_of, value_at
from storage import quotas
from storage.repos import Repositories
from tests.conftest import Harness
from tests.factories import CITY, uscc
from tests.quotas_support import target_key, tiers
from tests.results_support import ADMIN, CHIEF, click, drawn, visits

ART25 = {Tier.special: Fraction(1, 4), Tier.key: Fraction(1, 5), Tier.general: Fraction(1, 10)}
Q4 = dt.datetime(2026, 10, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def test_art25_value_at_quarter_start_is_what_the_first_later_change_replaced() -> None:
    before = Q4 - dt.timedelta(days=3)
    changes = [Change(Q4 + dt.timedelta(days=9), "key"), Change(Q4 + dt.timedelta(days=2), "x")]
    assert value_at("special", changes, Q4) == "x"
    assert value_at("special", [Change(before, "general")], Q4) == "special"
    assert value_at("special", [], Q4) == "special"


def test_art25_coverage_counts_checked_targets_of_each_sub_directory() -> None:
    directory = [DirectoryEntry(f"s{i}", "special", "operating") for i in range(7)]
    directory += [DirectoryEntry(f"g{i}", "general", "operating") for i in range(21)]
    directory += [DirectoryEntry("gone", "general", "deregistered")]
    cov = coverage_of(directory, {"s0", "g0", "g1", "gone", "elsewhere"}, ART25)
    assert (cov[Tier.special].size, cov[Tier.special].required, cov[Tier.special].done) == (7, 2, 1)
    assert (cov[Tier.general].size, cov[Tier.general].required, cov[Tier.general].done) == (
        21,
        3,
        2,
    )
    assert cov[Tier.general].shortfall == 1 and cov[Tier.key].size == 0 and cov[Tier.key].met


async def city_coverage(h: Harness) -> quotas.QuarterCoverage:
    async with h.db.transaction() as s:
        orgs = await Repositories(s).orgs.subtree(CITY)
        quarter = quotas.Quarter.containing(h.clock.now(), h.settings.tz)
        return await quotas.coverage(s, orgs, quarter)


async def test_art25_only_random_checks_with_a_recorded_result_count(h: Harness) -> None:
    first = await drawn(h)
    tier_of = await tiers(h, first)
    before = await city_coverage(h)
    assert [before[t].size for t in Tier] == [4, 8, 20]
    assert [before[t].done for t in Tier] == [0, 0, 0]  # drawn, not reported: not counted
    reported = first[:3]
    for v in reported:
        await click(h, v.members[0], v, "no_problem")
    # A check outside the draw (Art. 6) with a result does not count.
    outside_key = uscc(219)
    (reply,) = await h.say(CHIEF, f"登记检查 {outside_key} 投诉 夜间异味 成员=cu1501020,cu1501021")
    assert "D2026-150100-001" in reply
    (outside,) = [v for v in await visits(h) if v.number not in tier_of]
    await click(h, outside.members[0], outside, "no_problem")
    after = await city_coverage(h)
    expected = {t: sum(1 for v in reported if tier_of[v.number] == t.value) for t in Tier}
    assert {t: after[t].done for t in Tier} == expected
    # A tier changed during the quarter: the sub-directory at the quarter's start still counts.
    moved = await target_key(h, reported[0])
    other = "特殊" if tier_of[reported[0].number] == "general" else "一般"
    (changed,) = await h.say(ADMIN, f"修改对象 {moved} 类别={other}")
    assert other in changed
    again = await city_coverage(h)
    assert [again[t].size for t in Tier] == [4, 8, 20]
    assert {t: again[t].done for t in Tier} == expected
