"""Who organises a branch's draw (Art. 5, 20, 22): the league/city bureau.

A banner/county branch plans its own tasks (Art. 20) and proposes them; its city bureau approves
or refuses each one. An approved branch task is drawn under the city bureau: by the city's (or
the region's) admins and chiefs, or by the one branch admin the city authorised for that task.
Refusals carry reason codes (``DrawRefused``); the chat and the command line word them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.draws.record import DrawRefused
from storage.models import Task
from storage.repos import Repositories

PROPOSED, REFUSED, PLANNED = "proposed", "refused", "planned"


async def approving_org(repos: Repositories, task: Task) -> str | None:
    """The league/city bureau above the branch that proposed ``task``."""
    org = await repos.orgs.get(task.org_code)
    return org.parent_code if org is not None and org.level == "county" else None


async def approve(
    session: AsyncSession,
    task: Task,
    *,
    actor: str,
    now: dt.datetime,
    authorised: str | None = None,
) -> None:
    """Art. 5: the city approves a proposed branch task, optionally naming the branch admin who
    may seal and witness its draw."""
    await _decide(session, task, actor, now, PLANNED, {"authorised_drawer": authorised})
    task.approved_by = actor
    task.approved_at = now
    task.authorised_drawer = authorised


async def refuse(
    session: AsyncSession, task: Task, *, actor: str, now: dt.datetime, reason: str
) -> None:
    """Art. 5: the city refuses a proposed branch task; it is never drawn."""
    await _decide(session, task, actor, now, REFUSED, {"reason": reason})


async def _decide(
    session: AsyncSession,
    task: Task,
    actor: str,
    now: dt.datetime,
    status: str,
    payload: dict[str, Any],
) -> None:
    if task.status != PROPOSED:
        raise DrawRefused("not_proposed", task=task.code, status=task.status)
    task.status = status
    action = "task.approve" if status == PLANNED else "task.refuse"
    await audit.append(
        session, at=now, actor=actor, action=action, subject=f"task:{task.code}", payload=payload
    )
