"""Editing and cancelling a task before its draw is sealed (Art. 20, 22), each with a reason in
the audit record. Once `抽查` has sealed a draw the task's terms are evidence (the commitment
covers them) and only a chief's re-draw (Art. 29) changes anything; a cancelled task is never
drawn. Refusals are reason codes (``DrawRefused``); the chat and the command line word them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from inspection.pool import quotas_from_json
from inspection.taskspec import SpecError, TaskSpec
from storage import audit, task_approval
from storage.draws.record import DrawRefused, draws_of
from storage.models import Task
from storage.repos import Repositories
from storage.tasks import task_record, validate_spec

EDITABLE = ("proposed", "planned", "refused")
CANCELLED = "cancelled"


def spec_of(task: Task) -> TaskSpec:
    """The task's terms as a ``TaskSpec`` (what `新建任务` would have made of them)."""
    return TaskSpec(
        name=task.name,
        check_start=task.check_start,
        check_end=task.check_end,
        quotas=quotas_from_json(task.quotas),
        org_code=task.org_code,
        scope_orgs=tuple(task.scope_orgs),
        draw_on=task.draw_on,
        item_codes=tuple(task.item_codes),
        focus=task.focus,
        drawing_dept=task.drawing_dept,
        checking_depts=tuple(task.checking_depts),
        initiating_dept=task.initiating_dept,
        participating_depts=tuple(task.participating_depts),
        tag_filter=dict(task.tag_filter),
        team_size=task.team_size,
        qualifying_kinds=tuple(task.qualifying_kinds),
        locality=task.locality,  # type: ignore[arg-type]
        auxiliary_per_team=task.auxiliary_per_team,
        avoid_last_inspector=task.avoid_last_inspector,
        max_load=task.max_load,
        once_a_year=task.once_a_year,
        special_more_often=task.special_more_often,
        recheck_below=task.recheck_below,
        skip_checked_above=task.skip_checked_above,
        construction_projects=task.construction_projects,
        plan_id=task.plan_id,
    )


async def require_open(session: AsyncSession, task: Task) -> None:
    """The task may still be edited or cancelled: no draw sealed, not cancelled, drawable."""
    if task.status == CANCELLED:
        raise DrawRefused("task_cancelled", task=task.code)
    earlier = await draws_of(session, task.id)
    if earlier:
        last = earlier[-1]
        raise DrawRefused("task_sealed", task=task.code, attempt=last.attempt, at=last.committed_at)
    if task.status == "complete":
        raise DrawRefused("task_complete", task=task.code)
    if task.status not in EDITABLE:  # 登记检查, joint checks, imported checks
        raise DrawRefused("outside_draw", task=task.code)


@dataclasses.dataclass(frozen=True)
class Edited:
    changes: dict[str, tuple[Any, Any]]  # audit-record field -> (before, after)
    back_to_approval: bool  # an approved or refused branch task goes back to its city (Art. 5)


async def edit_task(
    session: AsyncSession,
    task: Task,
    changes: Mapping[str, object],
    *,
    actor: str,
    now: dt.datetime,
    today: dt.date,
    reason: str,
) -> Edited:
    """Apply ``changes`` (``TaskSpec`` keyword values; quotas for the tiers given) after the same
    checks as a new task. The task keeps its code, so its year cannot change."""
    await require_open(session, task)
    current = spec_of(task)
    given = dict(changes)
    if "quotas" in given:
        given["quotas"] = {**current.quotas, **given["quotas"]}  # type: ignore[dict-item]
    spec = dataclasses.replace(current, **given)  # type: ignore[arg-type]  # re-checked whole
    if spec.year != task.year:
        raise SpecError(
            f"任务 {task.code} 属于{task.year}年，不能改到{spec.year}年：请取消后重新新建。",
            f"task {task.code} belongs to {task.year}; cancel it and create one for {spec.year}",
        )
    _org, scope, team_size, quotas = await validate_spec(
        session, spec, org_code=task.org_code, today=today
    )
    before = task_record(task)
    task.name = spec.name
    task.check_start, task.check_end, task.draw_on = spec.check_start, spec.check_end, spec.draw_on
    task.scope_orgs = scope
    task.quotas = {tier.value: q.to_json() for tier, q in quotas.items()}
    task.item_codes = list(spec.item_codes)
    task.focus = spec.focus
    task.drawing_dept = spec.drawing_dept
    task.checking_depts = list(spec.checking_depts)
    task.initiating_dept = spec.initiating_dept
    task.participating_depts = list(spec.participating_depts)
    task.tag_filter = dict(spec.tag_filter)
    task.team_size = team_size
    task.qualifying_kinds = list(spec.qualifying_kinds)
    task.locality = spec.locality
    task.auxiliary_per_team = spec.auxiliary_per_team
    task.avoid_last_inspector = spec.avoid_last_inspector
    task.max_load = spec.max_load
    task.once_a_year = spec.once_a_year
    task.special_more_often = spec.special_more_often
    task.recheck_below = spec.recheck_below
    task.skip_checked_above = spec.skip_checked_above
    task.construction_projects = spec.construction_projects
    task.plan_id = spec.plan_id
    after = task_record(task)
    diff = {k: (before[k], after[k]) for k in after if before.get(k) != after[k]}
    if not diff:
        raise SpecError("没有任何改动：所写的值与任务现有的相同。", "nothing changes")
    # Art. 5: the city approved (or refused) these terms, not the new ones: it decides again.
    back = task.status == "refused" or (task.status == "planned" and task.approved_by is not None)
    if back and await task_approval.approving_org(Repositories(session), task) is not None:
        task.status = task_approval.PROPOSED
        task.approved_by = task.approved_at = task.authorised_drawer = None
    else:
        back = False
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="task.edit",
        subject=f"task:{task.code}",
        payload={
            "reason": reason,
            "changes": {k: {"before": b, "after": a} for k, (b, a) in diff.items()},
            "back_to_approval": back,
        },
    )
    return Edited(diff, back)


async def cancel_task(
    session: AsyncSession, task: Task, *, actor: str, now: dt.datetime, reason: str
) -> str:
    """Cancel a task that has no sealed draw; it is kept, marked cancelled, and never drawn.
    Returns the status it had."""
    await require_open(session, task)
    was = task.status
    task.status = CANCELLED
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="task.cancel",
        subject=f"task:{task.code}",
        payload={"reason": reason, "status_before": was},
    )
    return was
