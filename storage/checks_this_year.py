"""What this year's random checks say about a task's targets (Art. 25, 30).

Art. 25 counts per market entity (GLOSSARY: one company, one USCC, however many permits or
sites): a random check of any of its targets, whatever the tier and whichever level drew it,
is its check of the year. An inter-agency joint check (origin "joint", drawn by the authority
that leads it, Art. 6, 7) and a key construction project's check in the construction part of a
draw (origin "construction", Art. 25(4)) are random checks all the same
(``inspection.origins.RANDOM_CHECK_ORIGINS``, what the quotas count too); a check aimed at a
specific target (origin "targeted", Art. 6) is not, and counts for neither rule. A project due
for its Art. 25(4) check is never left out of the construction part by these
(``inspection.pool.build_pool``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.origins import RANDOM_CHECK_ORIGINS
from storage.models import Inspection, Target, Task
from storage.repos import Repositories

CHUNK = 500  # values per IN (...) list
LIVE = ("open", "done", "merged")  # a cancelled inspection was never a check


Evidence = dict[str, Any]  # {"task": code, "inspection": number}: the check that counts


async def randomly_checked(
    session: AsyncSession,
    repos: Repositories,
    task: Task,
    evidence: dict[str, Evidence] | None = None,
) -> dict[str, str]:
    """Target key -> "below" when its entity was randomly checked this year only by the
    levels below the task's organisation (Art. 30: the level above may re-check), "level"
    when by anyone else (this level, the level above, another branch); unchecked: absent.

    ``evidence``, when given, gets per target key the check behind its value (the first by
    number among those of the strongest kind): what the sealed exclusions list names."""
    return await checked_in_year(
        session, repos, task.org_code, task.year, evidence, leaving_out=task.id
    )


async def checked_in_year(
    session: AsyncSession,
    repos: Repositories,
    org_code: str,
    year: int,
    evidence: dict[str, Evidence] | None = None,
    *,
    leaving_out: int | None = None,
) -> dict[str, str]:
    """``randomly_checked`` for a draw ``org_code`` would make in ``year`` (a task not yet
    created, as the pace warnings' 补抽 line; ``leaving_out``: the task's own id)."""
    below = set(await repos.orgs.subtree(org_code)) - {org_code}
    query = (
        select(Inspection.target_key, Target.uscc, Task.org_code, Task.code, Inspection.number)
        .join(Task, Task.id == Inspection.task_id)
        .outerjoin(Target, Target.key == Inspection.target_key)
        .where(
            Task.year == year,
            Inspection.origin.in_(RANDOM_CHECK_ORIGINS),
            Inspection.status.in_(LIVE),
        )
        .order_by(Inspection.number)
    )
    if leaving_out is not None:
        query = query.where(Task.id != leaving_out)
    rows = await session.execute(query)
    by_key: dict[str, str] = {}
    by_entity: dict[str, str] = {}
    shown: dict[str, tuple[str, Evidence]] = {}  # key or "uscc:<code>" -> (how, evidence)
    for key, uscc, org, code, number in rows.all():
        how = "below" if org in below else "level"
        by_key[key] = _stronger(by_key.get(key), how)
        check = {"task": code, "inspection": number}
        for name in (key, f"uscc:{uscc}" if uscc else None):
            if name is not None and (
                name not in shown or (how, shown[name][0]) == ("level", "below")
            ):
                shown[name] = (how, check)
        if uscc:
            by_entity[uscc] = _stronger(by_entity.get(uscc), how)
    # The entity's other targets (permits, sites) were checked with it.
    for key, uscc in await _targets_of(session, by_entity):
        by_key[key] = _stronger(by_key.get(key), by_entity[uscc])
        if evidence is not None:
            own = shown.get(key)
            entity = shown[f"uscc:{uscc}"]
            evidence[key] = (own if own is not None and own[0] == by_key[key] else entity)[1]
    if evidence is not None:
        for key in by_key:
            if key not in evidence and key in shown:
                evidence[key] = shown[key][1]
    return by_key


def _stronger(old: str | None, new: str) -> str:
    return "level" if "level" in (old, new) else new


async def _targets_of(session: AsyncSession, usccs: Iterable[str]) -> list[tuple[str, str]]:
    values = sorted(usccs)
    out: list[tuple[str, str]] = []
    for i in range(0, len(values), CHUNK):
        rows = await session.execute(
            select(Target.key, Target.uscc).where(Target.uscc.in_(values[i : i + CHUNK]))
        )
        out += [(key, uscc) for key, uscc in rows.all() if uscc]
    return out


async def no_problem_above(
    session: AsyncSession,
    repos: Repositories,
    task: Task,
    evidence: dict[str, Evidence] | None = None,
) -> set[str]:
    """Art. 30: the targets of the market entities the level above randomly checked this year
    and found no problem at ("已由上级抽查且未被发现生态环境问题"), which the level below may
    leave out. Counted per market entity, as Art. 25's once a year and Art. 19's one visit:

    - the level above's random checks of any of the entity's targets (permits, sites) are
      its checks; a targeted check by the level above is no reason to leave a target out;
    - "no problem found" is every one of those checks recorded 未发现问题: a problem found at
      one permit is a problem of the company, and a check without its result yet has found
      nothing either way; such an entity is not left out, none of its targets;
    - an entity left out is left out whole: its permits the level above did not visit too,
      since the check of the company is what Art. 30 relies on (Art. 19 makes it one visit).

    A target with no credit code is its own entity. ``evidence`` gets, per target left out,
    the first such check by number (its own if the level above checked it, else the
    entity's); it overrides an Art. 25 one: this is the reason shown."""
    above = (await repos.orgs.ancestors(task.org_code))[1:]
    if not above:
        return set()
    rows = await session.execute(
        select(
            Inspection.target_key,
            Target.uscc,
            Inspection.result_code,
            Task.code,
            Inspection.number,
        )
        .join(Task, Task.id == Inspection.task_id)
        .outerjoin(Target, Target.key == Inspection.target_key)
        .where(
            Task.year == task.year,
            Task.org_code.in_(above),
            Inspection.origin.in_(RANDOM_CHECK_ORIGINS),
            Inspection.status.in_(LIVE),
        )
        .order_by(Inspection.number)
    )
    clean: dict[str, bool] = {}  # entity -> every check found no problem
    first: dict[str, Evidence] = {}  # target key or "uscc:<code>" -> the first clean check
    checked_keys: dict[str, str] = {}  # target key -> its entity
    for key, uscc, result, code, number in rows.all():
        entity = f"uscc:{uscc}" if uscc else f"key:{key}"
        checked_keys[key] = entity
        ok = result == "no_problem"
        clean[entity] = clean.get(entity, True) and ok
        if ok:
            check = {"task": code, "inspection": number}
            first.setdefault(key, check)
            first.setdefault(entity, check)
    entity_of = {key: entity for key, entity in checked_keys.items() if clean[entity]}
    usccs = {e.removeprefix("uscc:") for e, ok in clean.items() if ok and e.startswith("uscc:")}
    for key, uscc in await _targets_of(session, usccs):
        entity_of[key] = f"uscc:{uscc}"
    if evidence is not None:
        for key, entity in entity_of.items():
            evidence[f"above:{key}"] = first.get(key) or first[entity]
    return set(entity_of)
