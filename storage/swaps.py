"""Swap requests (Art. 29): asked by a team member, decided once by their department head.

A decision is a conditional UPDATE from "pending": duplicate clicks, two heads at once and a
lapse racing a click all leave exactly one outcome. Who may decide: a chief bound to the
member's organisation (their department, or the whole organisation), or a chief of an
organisation above it; never the requester.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Inspector, SwapRequest, TeamMember
from storage.repos import Repositories

PENDING = "pending"
SWAP_STATUS_LABELS = {
    "pending": "待审批",
    "approved": "已批准",
    "rejected": "已驳回",
    "lapsed": "已逾期失效",
}
CHIEF = "chief"


async def pending_for(session: AsyncSession, member_id: int) -> SwapRequest | None:
    rows = await session.execute(
        select(SwapRequest).where(SwapRequest.member_id == member_id, SwapRequest.status == PENDING)
    )
    return rows.scalars().first()


async def pending(session: AsyncSession) -> list[SwapRequest]:
    """Every request still awaiting a decision (few: each lapses within days)."""
    rows = await session.execute(
        select(SwapRequest).where(SwapRequest.status == PENDING).order_by(SwapRequest.id)
    )
    return list(rows.scalars())


async def pending_of_tasks(session: AsyncSession, task_ids: Iterable[int]) -> list[SwapRequest]:
    rows = await session.execute(
        select(SwapRequest)
        .where(SwapRequest.task_id.in_(list(task_ids)), SwapRequest.status == PENDING)
        .order_by(SwapRequest.id)
    )
    return list(rows.scalars())


async def heads_for(repos: Repositories, inspector: Inspector, exclude: Iterable[str]) -> list[str]:
    """The nearest department heads of an inspector: chiefs of their department (or of their
    whole organisation), else the chiefs of the nearest organisation above that has any."""
    skip = set(exclude)
    chain = await repos.orgs.ancestors(inspector.org_code)
    for i, org in enumerate(chain):
        dept = (inspector.dept_code or None) if i == 0 else None
        found = [u for u in await repos.roles.holders(CHIEF, [org], dept) if u not in skip]
        if found:
            return found
    return []


async def may_decide(
    repos: Repositories, bindings: Iterable[tuple[str, str, str]], inspector: Inspector
) -> bool:
    """``bindings``: (role, org_code, dept_code) of the person deciding."""
    above = (await repos.orgs.ancestors(inspector.org_code))[1:]
    for role, org, dept in bindings:
        if role != CHIEF:
            continue
        if org == inspector.org_code and (
            not dept or not inspector.dept_code or dept == inspector.dept_code
        ):
            return True
        if org in above:
            return True
    return False


async def create(
    session: AsyncSession,
    member: TeamMember,
    *,
    task_id: int,
    reason: str,
    heads: list[str],
    now: dt.datetime,
) -> SwapRequest:
    request = SwapRequest(
        inspection_id=member.inspection_id,
        task_id=task_id,
        member_id=member.id,
        certificate_no=member.certificate_no,
        userid=member.userid,
        reason=reason,
        status=PENDING,
        heads=heads,
        card_task_id="",
        created_at=now,
        note="",
    )
    session.add(request)
    await session.flush()
    request.card_task_id = f"swap-{request.id}"
    return request


async def decide(
    session: AsyncSession,
    request_id: int,
    *,
    status: str,
    by: str,
    now: dt.datetime,
    note: str = "",
) -> bool:
    """Move a pending request to ``status``; False when it was no longer pending."""
    result = await session.execute(
        update(SwapRequest)
        .where(SwapRequest.id == request_id, SwapRequest.status == PENDING)
        .values(status=status, decided_by=by, decided_at=now, note=note)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get(session: AsyncSession, request_id: int) -> SwapRequest | None:
    return await session.get(SwapRequest, request_id, populate_existing=True)
