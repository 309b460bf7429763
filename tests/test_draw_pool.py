"""The pool and the count, rule by rule (Art. 13, 18, 25-31), before any seed exists."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from fractions import Fraction

from sqlalchemy import func, select, text, update

from inspection.draw import DrawPolicy, draw, fingerprint
from inspection.pool import (
    InspectorFact,
    PoolPlan,
    PoolRules,
    Quota,
    TargetBatch,
    TargetFact,
    build_pool,
)
from inspection.quotas import Tier
from storage import draws
from storage.db import Database
from storage.draws import DrawRefused
from storage.models import Draw, Inspection, TeamMember
from storage.tasks import get_task, rules_for, target_facts
from tests.factories import (
    CITY,
    COUNTY,
    add_inspectors,
    add_targets,
    make_task,
)
from tests.support.draws import SEED, draw_all, seal, witnessed
from tests.support.waiting import wait_until, within

START, END = dt.date(2026, 12, 1), dt.date(2026, 12, 31)


def facts(
    n: int, tier: Tier = Tier.general, prefix: str = "G", **fields: object
) -> list[TargetFact]:
    return [TargetFact(f"{prefix}{i:03d}", tier, COUNTY, **fields) for i in range(n)]  # type: ignore[arg-type]


def people(n: int, prefix: str = "C", **fields: object) -> list[InspectorFact]:
    return [
        InspectorFact(f"{prefix}{i:03d}", f"{prefix.lower()}{i}", COUNTY, **fields)  # type: ignore[arg-type]
        for i in range(n)
    ]


def rules(**kwargs: object) -> PoolRules:
    values: dict[str, object] = {
        "quotas": {Tier.general: Quota(ratio=Fraction(1, 10))},
        "check_start": START,
        "check_end": END,
    }
    values.update(kwargs)
    return PoolRules(**values)  # type: ignore[arg-type]


# --- pure rules -----------------------------------------------------------------------------


def test_art25_ratio_is_of_the_sub_directory_before_exclusions_rounded_up() -> None:
    targets = facts(16) + facts(5, prefix="H", checked_this_year="level")
    plan = build_pool(targets, people(4), rules())
    assert plan.tier_sizes[Tier.general] == 21
    assert plan.counts[Tier.general] == 3  # ceil(2.1)
    assert plan.pool_sizes[Tier.general] == 16
    assert plan.excluded("target") == {"inspected_this_year": 5}


def test_art25_every_tier_checked_this_year_is_left_out_but_special_may_be_checked_again() -> None:
    targets = (
        facts(10, prefix="G", checked_this_year="level")
        + facts(10, Tier.key, prefix="K", checked_this_year="level")
        + facts(10, Tier.special, prefix="S", checked_this_year="level")
    )
    quotas = {Tier.general: Quota(count=1), Tier.key: Quota(count=1), Tier.special: Quota(count=1)}
    plan = build_pool(targets, people(4), rules(quotas=quotas))
    assert plan.pool_sizes == {Tier.special: 10, Tier.key: 0, Tier.general: 0}
    assert plan.excluded("target") == {"inspected_this_year": 20}
    assert not plan.drawable and "一般监管对象应抽取1个" in " ".join(plan.problems)
    once = build_pool(targets, people(4), rules(quotas=quotas, special_more_often=False))
    assert once.pool_sizes[Tier.special] == 0
    kept = build_pool(targets, people(4), rules(quotas=quotas, once_a_year=False))
    assert kept.pool_sizes == {Tier.special: 10, Tier.key: 10, Tier.general: 10} and kept.drawable


def test_art30_the_level_above_may_recheck_what_only_the_levels_below_checked() -> None:
    targets = facts(6) + facts(2, prefix="B", checked_this_year="below")
    targets += facts(2, prefix="L", checked_this_year="level")
    assert build_pool(targets, people(3), rules()).pool_sizes[Tier.general] == 6
    plan = build_pool(targets, people(3), rules(recheck_below=True))
    assert plan.pool_sizes[Tier.general] == 8
    assert plan.excluded("target") == {"inspected_this_year": 2}
    assert {e.key for e in plan.exclusions} == {"L000", "L001"}


def test_art25_4_a_construction_project_due_is_never_left_out_as_checked_this_year() -> None:
    due = TargetFact(
        "P1",
        Tier.general,
        COUNTY,
        approval_level="region",
        construction_started_on=dt.date(2026, 3, 1),
        checked_this_year="level",
    )
    plan = build_pool([*facts(10), due], people(4), rules())
    assert plan.construction is not None
    assert [t.key for t in plan.construction.targets] == ["P1"]
    assert plan.excluded("target") == {"construction_due": 1}


def test_art30_targets_the_level_above_found_no_problem_with_may_be_left_out() -> None:
    targets = facts(8) + facts(2, prefix="A", checked_above_no_problem=True)
    assert build_pool(targets, people(3), rules()).pool_sizes[Tier.general] == 10
    plan = build_pool(targets, people(3), rules(skip_checked_above=True))
    assert plan.pool_sizes[Tier.general] == 8
    assert plan.excluded("target") == {"checked_above": 2}


def test_art31_positive_list_targets_are_checked_off_site() -> None:
    targets = facts(5, on_positive_list=True)
    plan = build_pool(targets, people(2), rules(quotas={Tier.general: Quota(count=5)}))
    result = draw(plan.input, SEED)
    assert {s.method for s in result.selected} == {"offsite"}


def test_art13_deregistered_targets_are_neither_in_the_pool_nor_in_the_sub_directory() -> None:
    targets = facts(10) + facts(10, prefix="D", status="deregistered")
    plan = build_pool(targets, people(2), rules())
    assert plan.tier_sizes[Tier.general] == 10 and plan.counts[Tier.general] == 1
    assert plan.excluded("target") == {"deregistered": 10}


def test_art25_4_construction_projects_due_are_checked_outside_the_random_selection() -> None:
    due = dict(approval_level="ministry", construction_started_on=dt.date(2025, 3, 1))
    targets = [
        *facts(20),
        TargetFact("P-building", Tier.key, COUNTY, **due),  # type: ignore[arg-type]
        TargetFact(  # went into operation 8 months before the window: still due
            "P-new",
            Tier.general,
            COUNTY,
            operation_started_on=dt.date(2026, 4, 1),
            **due,  # type: ignore[arg-type]
        ),
        TargetFact(  # more than a year in operation: no longer due
            "P-old",
            Tier.general,
            COUNTY,
            operation_started_on=dt.date(2025, 6, 1),
            **due,  # type: ignore[arg-type]
        ),
        TargetFact(  # already checked since construction began
            "P-done",
            Tier.general,
            COUNTY,
            inspected_since_construction=True,
            **due,  # type: ignore[arg-type]
        ),
        TargetFact(  # approved by the city: not Art. 25(4)
            "P-city",
            Tier.general,
            COUNTY,
            approval_level="city",
            construction_started_on=dt.date(2025, 3, 1),
        ),
    ]
    plan = build_pool(targets, people(4), rules())
    assert plan.construction is not None
    assert sorted(t.key for t in plan.construction.targets) == ["P-building", "P-new"]
    assert plan.construction.counts == {Tier.special: 0, Tier.key: 1, Tier.general: 1}
    # Counted in the sub-directory (24 general), not in the random pool or count.
    assert plan.tier_sizes[Tier.general] == 24 and plan.counts[Tier.general] == 3
    assert "P-new" not in {t.key for t in plan.input.targets}
    assert plan.excluded("target") == {"construction_due": 2}
    off = build_pool(targets, people(4), rules(construction_projects=False))
    assert off.construction is None


def test_a_pool_smaller_than_the_count_is_an_error_never_a_short_draw() -> None:
    plan = build_pool(facts(20), people(4), rules(quotas={Tier.general: Quota(count=30)}))
    assert not plan.drawable
    (problem,) = plan.problems
    assert "一般监管对象应抽取30个" in problem and "可抽取的只有20个" in problem


def test_inspectors_who_cannot_serve_are_excluded_before_the_seed_with_reasons() -> None:
    crowd = [
        *people(3),
        InspectorFact("NOUID", None, COUNTY),
        InspectorFact("GONE", "gone", COUNTY, active=False),
        InspectorFact("LEAVE", "leave", COUNTY, leave_from=dt.date(2026, 12, 20)),
        InspectorFact(
            "BACK",
            "back",
            COUNTY,
            leave_from=dt.date(2026, 11, 1),
            leave_until=dt.date(2026, 11, 30),
        ),
        InspectorFact("WORK", "work", COUNTY, certificate_kind="work"),
        InspectorFact("AUX", "aux", COUNTY, auxiliary=True),
        InspectorFact("DEPT", "dept", COUNTY, dept_code="FG"),
    ]
    plan = build_pool(facts(10), crowd, rules(checking_depts=frozenset({""})))
    assert {i.key for i in plan.input.inspectors} == {"C000", "C001", "C002", "BACK"}
    reasons = {e.key: e.reason for e in plan.exclusions if e.kind == "inspector"}
    assert reasons == {
        "NOUID": "no_userid",
        "GONE": "inactive",
        "LEAVE": "on_leave",
        "WORK": "certificate_kind",
        "AUX": "auxiliary_not_wanted",
        "DEPT": "department",
    }
    both = DrawPolicy(qualifying_kinds=frozenset({"enforcement", "work"}))
    assert "WORK" in {
        i.key for i in build_pool(facts(10), crowd, rules(policy=both)).input.inspectors
    }


def test_art18_auxiliary_inspectors_join_on_top_of_the_minimum() -> None:
    crowd = people(4) + people(2, prefix="A", auxiliary=True, certificate_kind="work")
    policy = DrawPolicy(auxiliary_per_team=1)
    plan = build_pool(facts(10), crowd, rules(policy=policy, quotas={Tier.general: Quota(count=3)}))
    result = draw(plan.input, SEED)
    for team in result.teams:
        assert len(team.members) == 2 and all(k.startswith("C") for k in team.members)
        assert len(team.auxiliary) == 1 and team.auxiliary[0].startswith("A")


def test_art26_a_directed_draw_keeps_only_targets_with_the_tags() -> None:
    targets = facts(10, attributes={"industry": "火电"}) + facts(
        30, prefix="X", attributes={"industry": "化工", "pollutant_types": ["SO2", "NOx"]}
    )
    plan = build_pool(targets, people(3), rules(tag_filter={"industry": "火电"}))
    assert plan.tier_sizes[Tier.general] == 10 and plan.counts[Tier.general] == 1
    listed = build_pool(targets, people(3), rules(tag_filter={"pollutant_types": "NOx"}))
    assert listed.tier_sizes[Tier.general] == 30


def test_art28_impossible_teams_are_refused_before_the_commitment() -> None:
    plan = build_pool(facts(10), people(1), rules())
    assert any("每个检查组需要2名" in p for p in plan.problems)
    capped = build_pool(
        facts(40), people(3), rules(policy=DrawPolicy(max_load=1))
    )  # 4 teams of 2 need 8 places, 3 people give 3
    assert any("每人上限1组" in p for p in capped.problems)


# --- facts from the record ------------------------------------------------------------------


async def test_art25_and_30_exclusions_come_from_earlier_draws(db: Database) -> None:
    async with db.transaction() as s:
        await add_targets(s, 10)
        await add_targets(s, 3, start=50, tier="special")
        await add_inspectors(s, 4)
    await draw_all(db, 一般="0", 特殊="100%")  # special targets: checked more often (Art. 25)
    await draw_all(db, 一般="3")
    async with db.transaction() as s:
        # Same level (a city) later the same year: those 3 general targets are left out.
        again = await make_task(s, 一般="10%")
        plan = await draws.preview(s, again)
        assert plan.excluded("target") == {"inspected_this_year": 3}
        assert plan.tier_sizes[Tier.general] == 10
        # The region (the level above) leaves them out too, unless it re-checks (Art. 30).
        region = await make_task(s, org="150000", 范围=CITY)
        assert (await draws.preview(s, region)).excluded("target") == {"inspected_this_year": 3}
        recheck = await make_task(s, org="150000", 范围=CITY, 复查下级="是")
        assert (await draws.preview(s, recheck)).excluded("target") == {}
        # The county cannot draw what its city checked this year (the observed double check).
        county = await make_task(s, org=COUNTY)
        assert (await draws.preview(s, county)).excluded("target") == {"inspected_this_year": 3}
        # Once the city found no problem, the county may leave out the special targets it may
        # otherwise check again when it says so; the general ones stay out once a year.
        await s.execute(update(Inspection).values(result_code="no_problem"))
        county = await make_task(s, org=COUNTY, 上级已查="排除")
        assert (await draws.preview(s, county)).excluded("target") == {
            "inspected_this_year": 3,
            "checked_above": 3,
        }


async def test_art25_once_a_year_counts_per_market_entity_whichever_tier(db: Database) -> None:
    """Two permits of one company (one USCC): a random check of one is its check of the year."""
    async with db.transaction() as s:
        await add_targets(s, 10)
        await add_targets(s, 4, start=50, tier="key")
        await add_inspectors(s, 4)
        entity = (await add_targets(s, 1, start=90, tier="key"))[0]
        await add_targets(s, 1, start=91, key="SITE-2", uscc=entity)  # its second site
    await draw_all(db, 一般="0", 重点="100%")  # the key targets, the company's first permit
    async with db.transaction() as s:
        later = await make_task(s, 一般="100%", 重点="0")
        plan = await draws.preview(s, later)
    left_out = {e.key for e in plan.exclusions if e.reason == "inspected_this_year"}
    assert "SITE-2" in left_out  # a general target, drawn by no one, but its company was
    assert plan.pool_sizes[Tier.general] == 10


async def test_art25_4_a_construction_project_is_checked_once(db: Database) -> None:
    async with db.transaction() as s:
        await add_targets(s, 9)  # with the project: 10 general, so 1 drawn at random
        await add_targets(
            s, 1, start=99, approval_level="region", construction_started_on=dt.date(2026, 5, 1)
        )
        await add_inspectors(s, 4)
    await draw_all(db)
    async with db.transaction() as s:
        origins = dict(
            (
                await s.execute(select(Inspection.origin, func.count()).group_by(Inspection.origin))
            ).all()
        )
        assert origins == {"random": 1, "construction": 1}
        later = await make_task(s, 检查期="2027-01-01~2027-01-31")
        assert (await draws.preview(s, later)).construction is None


async def test_art29_whoever_inspected_a_target_last_time_is_avoided(db: Database) -> None:
    async with db.transaction() as s:
        await add_targets(s, 1)
        await add_inspectors(s, 4)
    await draw_all(db, 一般="1")
    async with db.transaction() as s:
        first = set((await s.execute(select(TeamMember.certificate_no))).scalars())
        later = await make_task(s, 一般="1", 检查期="2027-03-01~2027-03-31")
        row, plan = await seal(s, later, SEED)
        outcome = await witnessed(s, later, row, "w", plan=plan)
        assert outcome.result is not None
        assert not set(outcome.result.teams[0].members) & first


async def test_art19_a_target_drawn_by_two_tasks_in_overlapping_windows_is_one_visit(
    db: Database,
) -> None:
    async with db.transaction() as s:
        await add_targets(s, 1, tier="special")  # checked more often (Art. 25)
        await add_inspectors(s, 4)
        from tests.factories import add_item

        await add_item(s, "DQ01", "大气")
        await add_item(s, "FS01", "废水")
    first = await draw_all(db, 一般="0", 特殊="1", 事项="DQ01")
    second = await draw_all(db, 一般="0", 特殊="1", 事项="FS01", 检查期="2026-12-15~2027-01-15")
    async with db.transaction() as s:
        visits = (await s.execute(select(Inspection).order_by(Inspection.id))).scalars().all()
    host, merged = visits
    assert host.status == "open" and host.item_codes == ["DQ01", "FS01"]
    assert host.joined_tasks == [second] and first != second
    assert merged.status == "merged" and merged.merged_into_id == host.id
    assert merged.card_task_id is None


async def test_draws_on_one_organisation_are_serialised(db: Database) -> None:
    """The second draw starts while the first holds its commitment open, waits for it, then
    finds the task drawn. Without the organisation's lock both would draw."""
    async with db.transaction() as s:
        await add_targets(s, 10)
        await add_inspectors(s, 4)
        code = (await make_task(s)).code
    holding, release, started = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def attempt(secret: bytes, *, hold: bool) -> str:
        if not hold:
            started.set()
        try:
            async with db.transaction() as s:
                task = await get_task(s, code)
                assert task is not None
                await seal(s, task, secret)
                if hold:  # keep the transaction, and so the lock, until the second one waits
                    holding.set()
                    await release.wait()
                return "committed"
        except DrawRefused:
            return "refused"

    first = asyncio.create_task(attempt(bytes(32), hold=True))
    tasks = [first]
    try:
        await within(holding.wait(), "the first draw to commit")
        second = asyncio.create_task(attempt(bytes([1]) * 32, hold=False))
        tasks.append(second)
        await within(started.wait(), "the second draw to start")
        await wait_until(lambda: waits_for_the_first(db, second), "the second draw to wait")
        assert not second.done()
    except BaseException:
        release.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    release.set()
    outcomes = [await within(first, "the first draw"), await within(second, "the second draw")]
    assert outcomes == ["committed", "refused"]
    async with db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(Draw)) == 1


async def waits_for_the_first(db: Database, second: asyncio.Task[str]) -> bool:
    """Whether ``second`` (started) is blocked behind the first draw's transaction.

    PostgreSQL: a session of this database waits for an advisory lock (seen from a connection of
    its own, outside ``db.transaction()``). SQLite has one writer: the second draw's first step
    is to queue for its transaction, so once it has started and yielded, it waits there."""
    if second.done():
        return False
    if not db.is_sqlite:
        async with db.engine.connect() as conn:
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                )
            )
        return bool(waiting)
    return True


# --- the scope read in batches ----------------------------------------------------------------


def plan_summary(plan: PoolPlan) -> tuple[object, ...]:
    """Everything a plan decides; the pools by fingerprint (their order is not part of it)."""
    extra = fingerprint(plan.construction) if plan.construction else None
    return (
        plan.tier_sizes,
        plan.pool_sizes,
        plan.counts,
        plan.exclusions,
        plan.problems,
        plan.warnings,
        fingerprint(plan.input),
        extra,
    )


def test_a_batch_of_targets_is_exactly_the_facts_it_stands_for() -> None:
    rng = random.Random(7)
    for _ in range(60):
        likes = [
            TargetFact(
                "",
                rng.choice(list(Tier)),
                rng.choice([COUNTY, "150103"]),
                rng.choice(["operating", "suspended", "deregistered"]),
                rng.random() < 0.3,
                approval_level=rng.choice(["", "region"]),
                construction_started_on=rng.choice([None, dt.date(2026, 5, 1)]),
                checked_this_year=rng.choice(["", "", "", "below", "level"]),
                checked_above_no_problem=rng.random() < 0.2,
            )
            for _ in range(rng.randint(1, 6))
        ]
        batches = [
            TargetBatch(like, [f"K{b}-{i}" for i in range(rng.randint(0, 30))])
            for b, like in enumerate(likes)
        ]
        facts_ = [f for batch in batches for f in batch.facts()]
        loose = facts(rng.randint(0, 10), prefix="L")
        quotas = {t: Quota(ratio=Fraction(rng.randint(1, 5), 10)) for t in Tier}
        for kept in ({t: quotas[t] for t in rng.sample(list(Tier), 2)}, quotas):
            r = rules(
                quotas=kept,
                skip_checked_above=rng.random() < 0.5,
                once_a_year=rng.random() < 0.7,
                special_more_often=rng.random() < 0.7,
                recheck_below=rng.random() < 0.5,
            )
            one_by_one = build_pool(loose + facts_, people(4), r)
            assert plan_summary(build_pool(loose, people(4), r, batches)) == plan_summary(
                one_by_one
            )


async def test_the_scope_read_in_batches_is_the_scope_read_row_by_row(db: Database) -> None:
    """Every kind of directory row, and earlier draws at this level and above: the pool read
    in batches (``_scope_batches``) is the pool read a row at a time."""
    async with db.transaction() as s:
        await add_targets(s, 30)
        await add_targets(s, 12, start=100, tier="key", on_positive_list=True)
        await add_targets(s, 5, start=200, tier="special", status="suspended")
        await add_targets(s, 4, start=300, status="deregistered")
        await add_targets(s, 3, start=400, org="150103", approval_level="region")
        await add_targets(
            s, 2, start=500, approval_level="ministry", construction_started_on=dt.date(2026, 5, 1)
        )
        await add_targets(s, 2, start=600, operation_started_on=dt.date(2025, 1, 1))
        await add_inspectors(s, 6)
    await draw_all(db, 一般="5", 重点="2")  # the city draws: inspected here this year
    async with db.transaction() as s:
        await s.execute(update(Inspection).values(result_code="no_problem"))
        for task in (
            await make_task(s, 一般="10%", 重点="50%", 特殊="1"),
            await make_task(s, org=COUNTY, 上级已查="排除", 一般="20%"),
        ):
            rows, none = await target_facts(s, task, batched=False)
            facts_, batches = await target_facts(s, task)
            assert none == [] and len(batches) >= 4
            assert sum(len(b.keys) for b in batches) + len(facts_) == len(rows)
            r = rules_for(task)
            assert plan_summary(build_pool(facts_, [], r, batches)) == plan_summary(
                build_pool(rows, [], r)
            )


async def test_a_key_that_cannot_be_batched_is_read_row_by_row(db: Database) -> None:
    async with db.transaction() as s:
        keys = await add_targets(s, 10)
        await add_targets(s, 1, start=50, key="KEY\x1fWITH\x1fSEPARATORS")
        task = await make_task(s, 一般="100%")
        facts_, batches = await target_facts(s, task)
    assert batches == []
    assert sorted(f.key for f in facts_) == sorted([*keys, "KEY\x1fWITH\x1fSEPARATORS"])
