"""Shared set-up for the results and swaps tests: a drawn task (helper-4's draw chat set-up) and
card clicks as WeCom sends them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from storage.models import AuditEntry, Inspection, TeamMember
from tests.conftest import Harness
from tests.factories import add_targets
from tests.support.draw_chat import ADMIN, CHIEF, TASK, setup

__all__ = ["ADMIN", "CHIEF", "TASK", "Visit", "audit_actions", "click", "drawn", "visits"]


@dataclass(frozen=True)
class Visit:
    inspection_id: int
    number: int
    card_task_id: str
    members: list[str]


async def visits(h: Harness) -> list[Visit]:
    async with h.db.transaction() as s:
        rows = (
            await s.execute(
                select(Inspection.id, Inspection.number, Inspection.card_task_id, TeamMember.userid)
                .join(TeamMember, TeamMember.inspection_id == Inspection.id)
                .where(TeamMember.active.is_(True), Inspection.status == "open")
                .order_by(Inspection.number, TeamMember.position)
            )
        ).all()
        out: dict[int, Visit] = {}
        for inspection_id, number, task_id, userid in rows:
            v = out.setdefault(number, Visit(inspection_id, number, task_id or "", []))
            v.members.append(userid)
    return list(out.values())


async def drawn(h: Harness, *, more_general: int = 0, in_period: bool = True) -> list[Visit]:
    """The draw chat's task (5 inspections; 10 % of ``more_general`` targets more), drawn
    without a witness; with ``in_period``, the clock is then at the first day of its check
    period."""
    await setup(h)
    if more_general:
        async with h.db.transaction() as s:
            await add_targets(s, more_general, tier="general", start=300)
    await h.say(ADMIN, f"抽查 {TASK} 无见证 见证人均出差")
    if in_period:  # drawn on 2026-11-30; the check period begins the next day (Art. 22)
        h.clock.advance(days=1)
    return await visits(h)


async def click(
    h: Harness,
    user: str,
    visit: Visit,
    option: str | None,
    *,
    response_code: str | None = None,
    settle: bool = True,
    **fields: Any,
) -> str:
    """A tap on a result and 提交, as WeCom posts it; returns the click's ResponseCode."""
    code = response_code or secrets.token_hex(12)
    status, _ = await h.post_card_event(
        user,
        event_key=f"result:{visit.number}",
        task_id=visit.card_task_id,
        card_type="vote_interaction",
        response_code=code,
        selected=[("result", [option])] if option else [],
        **fields,
    )
    assert status == 200
    if settle:
        await h.settle()
    return code


async def audit_actions(h: Harness, prefix: str = "") -> list[str]:
    async with h.db.transaction() as s:
        rows = await s.execute(select(AuditEntry.action).order_by(AuditEntry.id))
        return [a for a in rows.scalars() if a.startswith(prefix)]
