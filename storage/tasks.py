"""Plans and tasks (Art. 19-23), and the directory facts a task's pool is built from.

Task codes are unique in the region and short enough to type: ``T2026-150100-017`` is the 17th
task of 2026 drawn by 呼和浩特市 (150100).
"""

from __future__ import annotations

import datetime as dt
import sys
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import TextClause, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.draw import DrawPolicy
from inspection.params import NoParamsInEffect
from inspection.pool import (
    CONSTRUCTION_APPROVALS,
    InspectorFact,
    PoolRules,
    Quota,
    TargetBatch,
    TargetFact,
    quotas_from_json,
)
from inspection.quotas import Tier
from inspection.taskdates import check_plan_year, check_task_dates
from inspection.taskspec import SpecError, TaskSpec, checking_departments, joint_departments
from storage import audit, checks_this_year
from storage.models import (
    CheckItem,
    Inspection,
    Inspector,
    Plan,
    Target,
    Task,
    TeamMember,
)
from storage.params import rule_params as rule_params  # the table, Art. 45
from storage.register import in_effect as register_in_effect
from storage.repos import OrgNode, Repositories

CHUNK = 500  # keys per IN (...) list: well under SQLite's and asyncpg's parameter limits

# Art. 12 attributes a directed draw (Art. 26) may filter on, besides department tags.
ATTRIBUTE_COLUMNS = (
    "industry",
    "scale",
    "performance_grade",
    "supervision_type",
    "production_cycle",
    "pollutant_types",
    "construction_status",
)


def normalise_code(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().upper()


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- plans --------------------------------------------------------------------------------


async def create_plan(
    session: AsyncSession,
    *,
    org_code: str,
    year: int,
    name: str,
    actor: str,
    now: dt.datetime,
    today: dt.date | None = None,
) -> Plan:
    """``today`` in the bureau's time zone (default: ``now``'s date)."""
    check_plan_year(year, today or now.date())
    repos = Repositories(session)
    if await repos.orgs.get(org_code) is None:
        raise SpecError(f"单位代码「{org_code}」不存在。", f"unknown organisation {org_code!r}")
    existing = await session.execute(
        select(Plan.id).where(Plan.org_code == org_code, Plan.year == year, Plan.name == name)
    )
    if existing.first() is not None:
        raise SpecError(
            f"{year}年已有名为「{name}」的计划。", f"plan {name!r} of {year} already exists"
        )
    plan = Plan(org_code=org_code, year=year, name=name, created_by=actor, created_at=now)
    session.add(plan)
    await session.flush()
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="plan.create",
        subject=f"plan:{plan.id}",
        payload={"org": org_code, "year": year, "name": name},
    )
    return plan


async def list_plans(
    session: AsyncSession, org_codes: Collection[str] | None = None, year: int | None = None
) -> list[Plan]:
    stmt = select(Plan).order_by(Plan.year, Plan.org_code, Plan.id)
    if org_codes is not None:
        stmt = stmt.where(Plan.org_code.in_(list(org_codes)))
    if year is not None:
        stmt = stmt.where(Plan.year == year)
    return list((await session.execute(stmt)).scalars())


# --- tasks --------------------------------------------------------------------------------


async def _check_replaced(session: AsyncSession, code: str, org_code: str) -> None:
    """A task replaces one task of the same unit whose draw was cancelled (or failed), and only one task
    replaces it (its draw names the cancelled one: DRAW_ALGORITHM.md section 16)."""
    old = await session.scalar(select(Task).where(Task.code == code))
    if old is None or old.org_code != org_code:
        raise SpecError(
            f"替代的任务「{code}」不存在或不属本单位。",
            f"no task {code!r} of {org_code} to replace",
        )
    if old.status not in ("cancelled", "failed"):
        raise SpecError(
            f"任务 {code} 的抽取未作废也未失败，不能被替代（作废须经上级批准）。",
            f"task {code}'s draw is neither cancelled nor failed",
        )
    taken = await session.scalar(select(Task.code).where(Task.replaces == code))
    if taken is not None:
        raise SpecError(
            f"任务 {code} 已由任务 {taken} 替代。", f"task {code} is replaced by {taken}"
        )


async def validate_spec(
    session: AsyncSession, spec: TaskSpec, *, org_code: str, today: dt.date
) -> tuple[OrgNode, list[str], int, dict[Tier, Quota]]:
    """What a new or edited task must satisfy: its dates against today (in the bureau's time
    zone), its organisations and items against the directory, its team size against the rules
    in force. Returns the organisation, the scope, the team size and the quotas to store."""
    check_task_dates(spec.check_start, spec.check_end, spec.draw_on, today)
    repos = Repositories(session)
    org = await repos.orgs.get(org_code)
    if org is None:
        raise SpecError(f"单位代码「{org_code}」不存在。", f"unknown organisation {org_code!r}")
    scope = list(dict.fromkeys(spec.scope_orgs or (org_code,)))
    for code in scope:
        if await repos.orgs.get(code) is None:
            raise SpecError(f"范围中的单位代码「{code}」不存在。", f"unknown scope org {code!r}")
        if not await repos.orgs.covers([org_code], code):
            raise SpecError(
                f"范围「{code}」不在{org.name}（{org_code}）的管辖范围内（第5条）。",
                f"scope {code} is outside {org_code}'s subtree",
            )
    await _check_departments(session, repos, org_code, scope, spec)
    try:
        params = rule_params(spec.check_start)
    except NoParamsInEffect as exc:
        raise SpecError(str(exc), exc.english) from None
    team_size = spec.team_size if spec.team_size is not None else params.team_size
    if team_size < params.team_size:
        raise SpecError(
            f"检查组人数不得少于{params.team_size}人（第28条）。",
            f"team size must be at least {params.team_size} (Art. 28)",
        )
    quotas: dict[Tier, Quota] = dict(spec.quotas) or {
        tier: Quota(ratio=ratio) for tier, ratio in params.ratios().items()
    }
    await _check_items(session, repos, org_code, spec.item_codes)
    if spec.plan_id is not None:
        plan = await session.get(Plan, spec.plan_id)
        if plan is None or not await repos.orgs.covers([plan.org_code], org_code):
            raise SpecError(f"计划「{spec.plan_id}」不存在。", f"unknown plan {spec.plan_id}")
        if plan.year != spec.year:
            raise SpecError(
                f"计划「{plan.name}」是{plan.year}年的，任务在{spec.year}年。",
                f"plan {plan.id} is for {plan.year}, the task for {spec.year}",
            )
    return org, scope, team_size, quotas


async def _check_departments(
    session: AsyncSession,
    repos: Repositories,
    org_code: str,
    scope: Sequence[str],
    spec: TaskSpec,
) -> None:
    """Art. 21, 23: the departments that choose a task's inspectors (检查科室, else an internal
    joint task's 发起科室 and 参与科室) are matched against the inspectors' departments (the
    drawing organisation's and its scope's, as ``inspector_facts`` reads them). A word no
    inspector's department matches would leave every inspector of it out: refused, naming the
    unknown ones and the known ones."""
    joint = joint_departments(spec.initiating_dept, spec.participating_depts)
    named = list(dict.fromkeys((*spec.checking_depts, *joint)))
    if not named:
        return
    orgs: dict[str, None] = {org_code: None}
    for root in scope:
        orgs.update(dict.fromkeys(await repos.orgs.subtree(root)))
    known: set[str] = set()
    for part in chunks(list(orgs)):
        known.update(
            await session.scalars(
                select(Inspector.dept_code)
                .where(Inspector.org_code.in_(part), Inspector.dept_code != "")
                .distinct()
            )
        )
    unknown = [d for d in named if d not in known]
    if unknown:
        listed = "、".join(sorted(known)) or "无（执法人员名录中尚未填写科室）"
        raise SpecError(
            f"科室{'、'.join(unknown)}在本任务的执法人员名录中不存在，按此抽取将没有可选派的"
            f"检查人员（第21、23条）。已有科室：{listed}。",
            f"unknown departments {', '.join(unknown)}; known: {', '.join(sorted(known)) or 'none'}",
        )


async def create_task(
    session: AsyncSession,
    spec: TaskSpec,
    *,
    org_code: str,
    actor: str,
    now: dt.datetime,
    today: dt.date | None = None,
) -> Task:
    """Validate against today (in the bureau's time zone; default ``now``'s date), the directory
    and the rules in force, allocate the code, record it."""
    repos = Repositories(session)
    org, scope, team_size, quotas = await validate_spec(
        session, spec, org_code=org_code, today=today or now.date()
    )
    if spec.replaces:
        await _check_replaced(session, spec.replaces, org_code)
    n = await repos.sequences.next(f"task:{spec.year}:{org_code}")
    task = Task(
        replaces=spec.replaces or None,
        code=f"T{spec.year}-{org_code}-{n:03d}",
        plan_id=spec.plan_id,
        year=spec.year,
        name=spec.name,
        org_code=org_code,
        drawing_dept=spec.drawing_dept,
        checking_depts=list(spec.checking_depts),
        initiating_dept=spec.initiating_dept,
        participating_depts=list(spec.participating_depts),
        scope_orgs=scope,
        tag_filter=dict(spec.tag_filter),
        quotas={tier.value: q.to_json() for tier, q in quotas.items()},
        item_codes=list(spec.item_codes),
        focus=spec.focus,
        draw_on=spec.draw_on,
        check_start=spec.check_start,
        check_end=spec.check_end,
        team_size=team_size,
        qualifying_kinds=list(spec.qualifying_kinds),
        locality=spec.locality,
        auxiliary_per_team=spec.auxiliary_per_team,
        avoid_last_inspector=spec.avoid_last_inspector,
        max_load=spec.max_load,
        once_a_year=spec.once_a_year,
        special_more_often=spec.special_more_often,
        recheck_below=spec.recheck_below,
        skip_checked_above=spec.skip_checked_above,
        construction_projects=spec.construction_projects,
        # Art. 5: a banner/county branch proposes, its league/city bureau approves.
        status="proposed" if org.level == "county" else "planned",
        created_by=actor,
        created_at=now,
    )
    session.add(task)
    await session.flush()
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="task.create",
        subject=f"task:{task.code}",
        payload=task_record(task),
    )
    return task


async def _check_items(
    session: AsyncSession, repos: Repositories, org_code: str, codes: Sequence[str]
) -> None:
    """Check items come from the list of the drawing organisation or any level above it."""
    if not codes:
        return
    orgs = await repos.orgs.ancestors(org_code)
    found = set(
        (
            await session.execute(
                select(CheckItem.code).where(
                    CheckItem.code.in_(list(codes)),
                    CheckItem.org_code.in_(orgs),
                    CheckItem.active.is_(True),
                )
            )
        ).scalars()
    )
    missing = [c for c in codes if c not in found]
    if missing:
        raise SpecError(
            f"抽查事项清单中没有：{'、'.join(missing)}（第8-10条）。",
            f"unknown check items: {', '.join(missing)}",
        )


def task_record(task: Task) -> dict[str, Any]:
    """Art. 22's fields as they go into the audit record and the export."""
    return {
        "code": task.code,
        "name": task.name,
        "year": task.year,
        "plan_id": task.plan_id,
        "org": task.org_code,
        "drawing_dept": task.drawing_dept,
        "checking_depts": task.checking_depts,
        "initiating_dept": task.initiating_dept,
        "participating_depts": task.participating_depts,
        "scope": task.scope_orgs,
        "tag_filter": task.tag_filter,
        "quotas": task.quotas,
        "items": task.item_codes,
        "focus": task.focus,
        "draw_on": task.draw_on.isoformat() if task.draw_on else None,
        "check_start": task.check_start.isoformat(),
        "check_end": task.check_end.isoformat(),
        "team_size": task.team_size,
        "qualifying_kinds": task.qualifying_kinds,
        "locality": task.locality,
        "auxiliary_per_team": task.auxiliary_per_team,
        "avoid_last_inspector": task.avoid_last_inspector,
        "max_load": task.max_load,
        "once_a_year": task.once_a_year,
        "special_more_often": task.special_more_often,
        "recheck_below": task.recheck_below,
        "skip_checked_above": task.skip_checked_above,
        "construction_projects": task.construction_projects,
    }


async def get_task(session: AsyncSession, code: str) -> Task | None:
    return (
        await session.execute(select(Task).where(Task.code == normalise_code(code)))
    ).scalar_one_or_none()


async def list_tasks(
    session: AsyncSession, org_codes: Collection[str] | None = None, year: int | None = None
) -> list[Task]:
    stmt = select(Task).order_by(Task.year, Task.org_code, Task.id)
    if org_codes is not None:
        stmt = stmt.where(Task.org_code.in_(list(org_codes)))
    if year is not None:
        stmt = stmt.where(Task.year == year)
    return list((await session.execute(stmt)).scalars())


def policy_of(task: Task) -> DrawPolicy:
    return DrawPolicy(
        team_size=task.team_size,
        qualifying_kinds=frozenset(task.qualifying_kinds),
        locality=task.locality,  # type: ignore[arg-type]
        auxiliary_per_team=task.auxiliary_per_team,
        avoid_last_inspector=task.avoid_last_inspector,
        max_load=task.max_load,
    )


def rules_for(task: Task) -> PoolRules:
    return PoolRules(
        quotas=quotas_from_json(task.quotas),
        check_start=task.check_start,
        check_end=task.check_end,
        policy=policy_of(task),
        tag_filter=dict(task.tag_filter),
        once_a_year=task.once_a_year,
        special_more_often=task.special_more_often,
        recheck_below=task.recheck_below,
        skip_checked_above=task.skip_checked_above,
        construction_projects=task.construction_projects,
        checking_depts=frozenset(
            checking_departments(
                task.checking_depts, task.initiating_dept, task.participating_depts
            )
        ),
    )


# --- the facts the pool is built from -------------------------------------------------------


async def scope_orgs(repos: Repositories, task: Task) -> list[str]:
    codes: dict[str, None] = {}
    for root in task.scope_orgs:
        for code in await repos.orgs.subtree(root):
            codes[code] = None
    return list(codes)


TARGET_COLUMNS = (
    "key, tier, org_code, status, on_positive_list, approval_level, "
    "construction_started_on, operation_started_on"
)


def _date(value: Any) -> dt.date | None:
    # SQLite hands back ISO text, PostgreSQL a date.
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


async def target_facts(
    session: AsyncSession,
    task: Task,
    *,
    batched: bool = True,
    evidence: dict[str, dict[str, Any]] | None = None,
) -> tuple[list[TargetFact], list[TargetBatch]]:
    """Every target in the task's scope, with what earlier inspections say about it: the
    ordinary ones in batches (see ``TargetBatch``; unless not ``batched``), the rest one by
    one. ``evidence`` gets the checks that leave targets out (``inspection.pool.build_pool``)."""
    repos = Repositories(session)
    orgs = await scope_orgs(repos, task)
    here = await checks_this_year.randomly_checked(session, repos, task, evidence)
    above = (
        await checks_this_year.no_problem_above(session, repos, task, evidence)
        if task.skip_checked_above
        else set()
    )
    batches: list[TargetBatch] = []
    facts: list[TargetFact] = []
    attributes: dict[str, dict[str, Any]] = {}
    if task.tag_filter or not batched:  # a directed draw (Art. 26) tests every target's tags
        rows = await _scope_rows(session, orgs)
        attributes = await _attributes(session, orgs) if task.tag_filter else {}
    else:
        rows, batches, facts = await _scope_batches(session, orgs, here, above)
    last_check = await _last_check_end(session) if rows else {}
    no_tags: dict[str, Any] = {}
    # What is read row by row may still be most of the pool (a directed draw): one
    # comprehension, and for a target without construction dates the named tuple is made by
    # tuple.__new__ (what TargetFact(...) does, without a Python-level call per row). Tier and
    # county are interned: the driver makes a new string per row, and the pool, the
    # fingerprint and the draw look them up in dicts 100,000 times over.
    fact, intern = tuple.__new__, sys.intern
    facts += [
        fact(
            TargetFact,
            (
                key,
                intern(tier),  # the plain string: see TargetFact
                intern(org),
                status,
                bool(positive),
                attributes.get(key, no_tags),
                approval,
                None,
                None,
                here.get(key, ""),
                key in above,
                False,
            ),
        )
        if started is None and operating is None
        else _dated_fact(
            (key, intern(tier), intern(org), status, positive, approval, started, operating),
            attributes.get(key, no_tags),
            here.get(key, ""),
            key in above,
            last_check.get(key),
        )
        for key, tier, org, status, positive, approval, started, operating in rows
    ]
    return facts, batches


# A target with no construction or operation date: the pool looks at nothing in its row but
# tier, county, status, the positive list and approval level, so these are read in batches.
_ORDINARY = "construction_started_on IS NULL AND operation_started_on IS NULL"
_SHARED = "tier, org_code, status, on_positive_list, approval_level"  # TargetFact's order
_SEP = "\x1f"  # a control character: never in a validated key


def scope_batch_query(dialect: str, prefix: str = "") -> TextClause:
    """The ordinary targets of the organisations ``:orgs``, grouped, keys joined by ``:sep``."""
    concat = "group_concat" if dialect == "sqlite" else "string_agg"
    return text(
        f"{prefix}SELECT {_SHARED}, count(*), {concat}(key, :sep) FROM target "
        f"WHERE org_code IN :orgs AND {_ORDINARY} GROUP BY {_SHARED}"
    ).bindparams(bindparam("orgs", expanding=True))


async def _scope_batches(
    session: AsyncSession, orgs: Sequence[str], here: Mapping[str, str], above: set[str]
) -> tuple[Sequence[Any], list[TargetBatch], list[TargetFact]]:
    """The scope's ordinary targets as batches, the other rows (as ``_scope_rows`` reads
    them), and one by one the ordinary targets that ``here`` or ``above`` name.

    A row per target costs the driver a Python object per column: at 100,000 targets that was
    most of the read. Here the database groups the ordinary targets by the columns they share
    and joins each group's keys into one string, which Python splits: a few dozen rows. On
    SQLite that is a walk of the covering index ix_target_scope, in order. A key holding the
    separator (the count tells) makes it read row by row instead."""
    query = scope_batch_query(session.get_bind().dialect.name)
    groups = (await session.execute(query, {"orgs": list(orgs), "sep": _SEP})).all()
    batches: list[TargetBatch] = []
    named: list[TargetFact] = []
    special = here.keys() | above
    intern = sys.intern
    for tier, org, status, positive, approval, count, joined in groups:
        keys = joined.split(_SEP)
        if len(keys) != count:
            return await _scope_rows(session, orgs), [], []
        like = TargetFact("", intern(tier), intern(org), status, bool(positive), {}, approval)  # type: ignore[arg-type]
        if special:
            named += [
                like._replace(
                    key=k, checked_this_year=here.get(k, ""), checked_above_no_problem=k in above
                )
                for k in keys
                if k in special
            ]
            keys = [k for k in keys if k not in special]
        batches.append(TargetBatch(like, keys))
    rest = text(
        f"SELECT {TARGET_COLUMNS} FROM target WHERE org_code IN :orgs AND NOT ({_ORDINARY})"
    ).bindparams(bindparam("orgs", expanding=True))
    return (await session.execute(rest, {"orgs": list(orgs)})).all(), batches, named


def _dated_fact(
    row: tuple[Any, ...],
    attributes: dict[str, Any],
    here: str,
    above: bool,
    last_check: dt.date | None,
) -> TargetFact:
    """A target with a construction or operation date (Art. 25(4))."""
    key, tier, org, status, positive, approval, started, operating = row
    started = _date(started)
    checked = last_check if started is not None else None
    return TargetFact(
        key,
        tier,
        org,
        status,
        bool(positive),
        attributes,
        approval,
        started,
        _date(operating),
        here,
        above,
        started is not None and checked is not None and checked >= started,
    )


async def _scope_rows(session: AsyncSession, orgs: Sequence[str]) -> Sequence[Any]:
    """The directory rows of the scope, as plain SQL rows (no ORM objects)."""
    table = await _scope_table(session, orgs)
    query = text(f"SELECT {TARGET_COLUMNS} FROM {table} WHERE org_code IN :orgs").bindparams(
        bindparam("orgs", expanding=True)
    )
    return (await session.execute(query, {"orgs": list(orgs)})).all()


async def _scope_table(session: AsyncSession, orgs: Sequence[str]) -> str:
    """How to read the scope's targets: ``target``, or ``target NOT INDEXED`` on SQLite.

    SQLite has no statistics (nothing runs ANALYZE), so it always takes the org_code index,
    which for a scope holding most of the directory means one random table lookup per row:
    twice as slow as reading the table through. Counting first (an index-only count, a few
    milliseconds at 100,000 rows) says which way to read."""
    if session.get_bind().dialect.name != "sqlite" or not orgs:
        return "target"
    count = text("SELECT count(*) FROM target WHERE org_code IN :orgs").bindparams(
        bindparam("orgs", expanding=True)
    )
    inside = await session.scalar(count, {"orgs": list(orgs)}) or 0
    total = await session.scalar(text("SELECT count(*) FROM target")) or 0
    return "target NOT INDEXED" if inside * 2 > total else "target"


async def _attributes(session: AsyncSession, orgs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Art. 12 attributes and department tags, read only for a directed draw (Art. 26)."""
    columns = [Target.key, Target.tags, *(getattr(Target, c) for c in ATTRIBUTE_COLUMNS)]
    rows = await session.execute(select(*columns).where(Target.org_code.in_(list(orgs))))
    out: dict[str, dict[str, Any]] = {}
    for row in rows.all():
        values = dict(row[1] or {})
        values.update({c: v for c, v in zip(ATTRIBUTE_COLUMNS, row[2:], strict=True) if v})
        out[row[0]] = values
    return out


async def _last_check_end(session: AsyncSession) -> dict[str, dt.date]:
    """Art. 25(4): the latest check window end per construction project inspected."""
    rows = await session.execute(
        select(Inspection.target_key, func.max(Inspection.check_end))
        .join(Target, Target.key == Inspection.target_key)
        .where(
            Target.approval_level.in_(sorted(CONSTRUCTION_APPROVALS)),
            Inspection.status != "cancelled",
        )
        .group_by(Inspection.target_key)
    )
    return {key: end for key, end in rows.all()}


async def entities_in_scope(session: AsyncSession, task: Task) -> dict[str, str]:
    """Art. 19: target key -> credit code, for the market entities with two or more targets
    (permits, sites) in the task's scope; their drawn targets make one visit."""
    # Credit codes held by two targets or more anywhere: a walk of the index on uscc alone
    # (usually none: a directory keyed by credit code); the scope is applied to what it finds.
    shared: list[str] = [
        uscc
        for uscc in await session.scalars(
            select(Target.uscc)
            .where(Target.uscc.is_not(None), Target.uscc != "")
            .group_by(Target.uscc)
            .having(func.count() > 1)
        )
        if uscc
    ]
    if not shared:
        return {}
    orgs = set(await scope_orgs(Repositories(session), task))
    out: dict[str, str] = {}
    for part in chunks(shared):
        rows = await session.execute(
            select(Target.key, Target.uscc, Target.org_code).where(Target.uscc.in_(part))
        )
        out.update({key: uscc for key, uscc, org in rows.all() if uscc and org in orgs})
    return out


async def inspector_facts(session: AsyncSession, task: Task) -> list[InspectorFact]:
    """Inspectors of the task's scope and of the drawing organisation itself."""
    repos = Repositories(session)
    orgs = list(dict.fromkeys([task.org_code, *await scope_orgs(repos, task)]))
    # Only the columns the pool needs, typed by Core (booleans, dates, JSON): no ORM objects.
    rows = await session.execute(
        select(
            Inspector.id,
            Inspector.certificate_no,
            Inspector.userid,
            Inspector.org_code,
            Inspector.certificate_kind,
            Inspector.auxiliary,
            Inspector.active,
            Inspector.dept_code,
        ).where(Inspector.org_code.in_(orgs))
    )
    found = rows.all()
    # Leave and conflicts come from the register (confirmed records in effect now), not from
    # the spreadsheet's columns: a leave is the record overlapping the task's check window.
    register = await register_in_effect(session, [(row[0], row[2]) for row in found])
    last = await _last_teams(session) if task.avoid_last_inspector else {}
    out = []
    for iid, cert, userid, org, kind, auxiliary, active, dept in found:
        leave = register.leave(iid, userid, task.check_start, task.check_end)
        out.append(
            InspectorFact(
                key=cert,
                userid=userid,
                org=org,
                certificate_kind=kind,
                auxiliary=auxiliary,
                active=active,
                leave_from=leave.date_from if leave else None,
                leave_until=leave.date_until if leave else None,
                leave_id=str(leave.record_id) if leave else "",
                dept_code=dept,
                conflicts=register.conflicts(iid, userid),
                last_inspected=frozenset(last.get(cert, ())),
            )
        )
    return out


async def _last_teams(session: AsyncSession) -> dict[str, set[str]]:
    """Certificate number -> targets whose latest inspection they served on."""
    latest = (
        select(func.max(Inspection.id).label("id"))
        .where(Inspection.status.in_(["open", "done"]))
        .group_by(Inspection.target_key)
        .subquery()
    )
    rows = await session.execute(
        select(TeamMember.certificate_no, Inspection.target_key)
        .join(Inspection, Inspection.id == TeamMember.inspection_id)
        .join(latest, latest.c.id == Inspection.id)
        .where(TeamMember.active.is_(True))
    )
    out: dict[str, set[str]] = {}
    for cert, key in rows.all():
        out.setdefault(cert, set()).add(key)
    return out
